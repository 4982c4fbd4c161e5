import type { JobView } from '../../src/api/views.js';
import { ClientCommand, jobNameArg, jobPath } from '../../src/cli/base.js';
import { formatJob } from '../../src/cli/format.js';

export default class JobDisable extends ClientCommand {
  static override description = 'Disable a job: its schedule stops firing; job run still works.';
  static override examples = [
    '<%= config.bin %> job disable disk-report',
  ];
  static override args = jobNameArg;

  async run(): Promise<void> {
    const { args, flags } = await this.parse(JobDisable);
    await this.printAnswer(flags, (client) => client.request<JobView>('POST', jobPath(args.name, '/disable')), (job) => `disabled\n${formatJob(job)}`);
  }
}
