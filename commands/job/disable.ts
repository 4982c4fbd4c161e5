import { Args } from '@oclif/core';
import type { JobView } from '../../src/api/views.js';
import { checkJobName } from '../../src/cli/job-spec.js';
import { ClientCommand } from '../../src/cli/base.js';
import { formatJob } from '../../src/cli/format.js';

export default class JobDisable extends ClientCommand {
  static override description = 'Disable a job: its schedule stops firing; job run still works.';
  static override examples = [
    '<%= config.bin %> job disable disk-report',
  ];
  static override args = { name: Args.string({ required: true }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(JobDisable);
    const job = await (await this.client(flags)).request<JobView>('POST', `/v1/jobs/${encodeURIComponent(checkJobName(args.name))}/disable`);
    this.output(job, () => `disabled\n${formatJob(job)}`);
  }
}
