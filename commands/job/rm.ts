import { Args } from '@oclif/core';
import { checkJobName } from '../../src/cli/job-spec.js';
import { ClientCommand } from '../../src/cli/base.js';

export default class JobRm extends ClientCommand {
  static override description = 'Remove a job. Its past instances stay until retention removes them.';
  static override examples = [
    '<%= config.bin %> job rm disk-report',
  ];
  static override args = { name: Args.string({ required: true }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(JobRm);
    const result = await (await this.client(flags)).request<{ removed: string }>('DELETE', `/v1/jobs/${encodeURIComponent(checkJobName(args.name))}`);
    this.output(result, () => `removed ${args.name}`);
  }
}
