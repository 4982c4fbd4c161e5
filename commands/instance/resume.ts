import type { InstanceView } from '../../src/api/views.js';
import { ClientCommand, instanceIdArg, instancePath } from '../../src/cli/base.js';
import { formatInstance } from '../../src/cli/format.js';

export default class InstanceResume extends ClientCommand {
  static override description = 'Resume a paused rolling broadcast: the leader releases its subtasks again.';
  static override examples = ['<%= config.bin %> instance resume 3f2a9c0d1e4b5a67'];
  static override args = instanceIdArg;

  async run(): Promise<void> {
    const { args, flags } = await this.parse(InstanceResume);
    await this.printAnswer(flags, (client) => client.request<InstanceView>('POST', instancePath(args.id, '/resume')), (view) => `resumed\n${formatInstance(view)}`);
  }
}
