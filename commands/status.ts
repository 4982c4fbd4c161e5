import type { StatusView } from '../src/api/control-plane.js';
import { ClientCommand } from '../src/cli/base.js';
import { formatStatus } from '../src/cli/format.js';

export default class Status extends ClientCommand {
  static override description = 'Show this node: id, leader, members, addresses.';
  static override examples = [
    '<%= config.bin %> status',
    '<%= config.bin %> status --json',
    '<%= config.bin %> status --data-dir /var/lib/chorus',
  ];

  async run(): Promise<void> {
    const { flags } = await this.parse(Status);
    await this.printAnswer(flags, (client) => client.request<StatusView>('GET', '/v1/status'), formatStatus);
  }
}
