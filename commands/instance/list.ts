import { Flags } from '@oclif/core';
import type { InstanceSummaryView, InstanceView } from '../../src/api/views.js';
import { ClientCommand } from '../../src/cli/base.js';
import { formatInstanceList } from '../../src/cli/format.js';

export default class InstanceList extends ClientCommand {
  static override description = 'List instances, newest first.';
  static override examples = [
    '<%= config.bin %> instance list',
    '<%= config.bin %> instance list --job disk-report --limit 10',
  ];
  static override flags = {
    job: Flags.string({ description: 'only instances of this job' }),
    limit: Flags.integer({ default: 50, min: 1, max: 10_000, description: 'at most this many' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(InstanceList);
    // The table needs only each instance's counts: it asks for summaries (a fleet-wide
    // broadcast is then a few hundred bytes, not every node's part); --json gives them whole.
    const query = new URLSearchParams({ limit: String(flags.limit), ...(flags.job ? { job: flags.job } : {}), ...(flags.json ? {} : { summary: '1' }) });
    await this.printAnswer(flags, (client) => client.request<InstanceView[] | InstanceSummaryView[]>('GET', `/v1/instances?${query}`), formatInstanceList);
  }
}
