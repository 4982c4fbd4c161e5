import type { NodeView } from '../src/api/views.js';
import { ClientCommand } from '../src/cli/base.js';
import { formatNodes } from '../src/cli/format.js';

export default class Nodes extends ClientCommand {
  static override description = 'List the cluster members as this node sees them (alive, suspect, dead, left) and the leader.';
  static override examples = [
    '<%= config.bin %> nodes',
    '<%= config.bin %> nodes --json',
  ];

  async run(): Promise<void> {
    const { flags } = await this.parse(Nodes);
    await this.printAnswer(flags, (client) => client.request<NodeView[]>('GET', '/v1/nodes'), formatNodes);
  }
}
