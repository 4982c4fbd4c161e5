import type { InstanceView } from '../../src/api/views.js';
import { ClientCommand, instanceIdArg, instancePath } from '../../src/cli/base.js';
import { formatInstance } from '../../src/cli/format.js';

export default class InstancePause extends ClientCommand {
  static override description = 'Pause a rolling broadcast: no further subtask is released until `instance resume`; released ones run to their end.';
  static override examples = ['<%= config.bin %> instance pause 3f2a9c0d1e4b5a67'];
  static override args = instanceIdArg;

  async run(): Promise<void> {
    const { args, flags } = await this.parse(InstancePause);
    await this.printAnswer(flags, (client) => client.request<InstanceView>('POST', instancePath(args.id, '/pause')), (view) => `paused: no further subtask is released until \`chorus instance resume ${view.id}\`\n${formatInstance(view)}`);
  }
}
