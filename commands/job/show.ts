import { Args } from '@oclif/core';
import type { JobView } from '../../src/api/views.js';
import { checkJobName } from '../../src/cli/job-spec.js';
import { ClientCommand } from '../../src/cli/base.js';
import { formatJob } from '../../src/cli/format.js';

export default class JobShow extends ClientCommand {
  static override description = 'Show a job.';
  static override examples = [
    '<%= config.bin %> job show disk-report',
    '<%= config.bin %> job show disk-report --json',
  ];
  static override args = { name: Args.string({ required: true }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(JobShow);
    const job = await (await this.client(flags)).request<JobView>('GET', `/v1/jobs/${encodeURIComponent(checkJobName(args.name))}`);
    this.output(job, () => formatJob(job));
  }
}
