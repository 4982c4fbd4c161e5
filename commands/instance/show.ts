import type { InstanceView } from '../../src/api/views.js';
import { ClientCommand, instanceIdArg, instancePath } from '../../src/cli/base.js';
import { formatInstance } from '../../src/cli/format.js';

export default class InstanceShow extends ClientCommand {
  static override description = 'Show an instance with the outcome on every node.';
  static override examples = [
    '<%= config.bin %> instance show 3f2a9c0d1e4b5a67',
    '<%= config.bin %> instance show 3f2a9c0d1e4b5a67 --json',
  ];
  static override args = instanceIdArg;

  async run(): Promise<void> {
    const { args, flags } = await this.parse(InstanceShow);
    await this.printAnswer(flags, (client) => client.request<InstanceView>('GET', instancePath(args.id)), (view) => formatInstance(view));
  }
}
