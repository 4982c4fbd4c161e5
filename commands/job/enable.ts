import type { JobView } from '../../src/api/views.js';
import { ClientCommand, jobNameArg, jobPath } from '../../src/cli/base.js';
import { formatJob } from '../../src/cli/format.js';

export default class JobEnable extends ClientCommand {
  static override description = 'Enable a job: its schedule fires again.';
  static override examples = [
    '<%= config.bin %> job enable disk-report',
  ];
  static override args = jobNameArg;

  async run(): Promise<void> {
    const { args, flags } = await this.parse(JobEnable);
    await this.printAnswer(flags, (client) => client.request<JobView>('POST', jobPath(args.name, '/enable')), (job) => `enabled\n${formatJob(job)}`);
  }
}
