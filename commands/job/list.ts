import type { JobView } from '../../src/api/views.js';
import { ClientCommand } from '../../src/cli/base.js';
import { formatJobList } from '../../src/cli/format.js';

export default class JobList extends ClientCommand {
  static override description = 'List jobs.';
  static override examples = [
    '<%= config.bin %> job list',
    '<%= config.bin %> job list --json',
  ];

  async run(): Promise<void> {
    const { flags } = await this.parse(JobList);
    await this.printAnswer(flags, (client) => client.request<JobView[]>('GET', '/v1/jobs'), formatJobList);
  }
}
