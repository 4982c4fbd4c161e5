import { ClientCommand, jobNameArg, jobPath } from '../../src/cli/base.js';

export default class JobRm extends ClientCommand {
  static override description = 'Remove a job. Its past instances stay until retention removes them.';
  static override examples = [
    '<%= config.bin %> job rm disk-report',
  ];
  static override args = jobNameArg;

  async run(): Promise<void> {
    const { args, flags } = await this.parse(JobRm);
    await this.printAnswer(flags, (client) => client.request<{ removed: string }>('DELETE', jobPath(args.name)), () => `removed ${args.name}`);
  }
}
