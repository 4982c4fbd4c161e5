import type { JobView } from '../../src/api/views.js';
import { ClientCommand, jobNameArg, jobPath } from '../../src/cli/base.js';
import { formatJob } from '../../src/cli/format.js';

export default class JobShow extends ClientCommand {
  static override description = 'Show a job.';
  static override examples = [
    '<%= config.bin %> job show disk-report',
    '<%= config.bin %> job show disk-report --json',
  ];
  static override args = jobNameArg;

  async run(): Promise<void> {
    const { args, flags } = await this.parse(JobShow);
    await this.printAnswer(flags, (client) => client.request<JobView>('GET', jobPath(args.name)), formatJob);
  }
}
