import { Args, Command, Flags, loadHelpClass } from '@oclif/core';

export default class HelpCommand extends Command {
  static override description = 'Show help for chorus, or for one command or topic.';
  static override usage = 'help [COMMAND...]';
  static override examples = ['<%= config.bin %> help', '<%= config.bin %> help job add', '<%= config.bin %> help instance', '<%= config.bin %> help --nested-commands'];
  // Every word after `help` is part of the command's name (`help job add`).
  static override strict = false;
  static override args = { command: Args.string({ required: false, description: 'command or topic to show help for, e.g. job add' }) };
  static override flags = { 'nested-commands': Flags.boolean({ char: 'n', description: 'list the commands of every topic too' }) };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(HelpCommand);
    // The help class comes from the in-memory config (no helpClass in package.json), so
    // this works the same in the single executable.
    const Help = await loadHelpClass(this.config);
    const help = new Help(this.config, { all: flags['nested-commands'] });
    // oclif reads the word "help" as a request for help, never as its subject: name it here.
    const self = this.config.findCommand('help');
    if (argv.length === 1 && argv[0] === 'help' && self) await help.showCommandHelp(self, this.config.topics);
    else await help.showHelp(argv as string[]);
  }
}
