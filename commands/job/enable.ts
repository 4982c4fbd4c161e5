import { Args } from '@oclif/core';
import type { JobView } from '../../src/api/views.js';
import { checkJobName } from '../../src/cli/job-spec.js';
import { ClientCommand } from '../../src/cli/base.js';
import { formatJob } from '../../src/cli/format.js';

export default class JobEnable extends ClientCommand {
  static override description = 'Enable a job: its schedule fires again.';
  static override examples = [
    '<%= config.bin %> job enable disk-report',
  ];
  static override args = { name: Args.string({ required: true }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(JobEnable);
    const job = await (await this.client(flags)).request<JobView>('POST', `/v1/jobs/${encodeURIComponent(checkJobName(args.name))}/enable`);
    this.output(job, () => `enabled\n${formatJob(job)}`);
  }
}
