import type { InstanceView } from '../../src/api/views.js';
import { ClientCommand, instanceIdArg, instancePath } from '../../src/cli/base.js';
import { formatInstance } from '../../src/cli/format.js';

export default class InstanceCancel extends ClientCommand {
  static override description = 'Cancel an instance: running subtasks are killed (whole process group), pending ones never start.';
  static override examples = [
    '<%= config.bin %> instance cancel 3f2a9c0d1e4b5a67',
  ];
  static override args = instanceIdArg;

  async run(): Promise<void> {
    const { args, flags } = await this.parse(InstanceCancel);
    await this.printAnswer(flags, (client) => client.request<InstanceView>('POST', instancePath(args.id, '/cancel')), (view) => `cancel requested\n${formatInstance(view)}`);
  }
}
