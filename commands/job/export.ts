import { Args, Flags } from '@oclif/core';
import type { JobView } from '../../src/api/views.js';
import { ClientCommand, jobPath } from '../../src/cli/base.js';

export default class JobExport extends ClientCommand {
  static override description = 'Print jobs as a job file that `chorus job apply -f` takes back unchanged (TOML, or JSON with --format json).';
  static override examples = ['<%= config.bin %> job export > jobs.toml', '<%= config.bin %> job export backup --format json'];
  static override args = { name: Args.string({ description: 'only this job [default: every job]' }) };
  static override flags = {
    format: Flags.string({ options: ['toml', 'json'], default: 'toml', description: 'file format' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(JobExport);
    const { exportJobs } = await import('../../src/cli/job-file.js'); // not a start-up cost of every command
    const client = await this.client(flags);
    const jobs =
      args.name === undefined
        ? await client.request<JobView[]>('GET', '/v1/jobs')
        : [await client.request<JobView>('GET', jobPath(args.name))];
    // The file is the output, --json or not (--json gives the JSON form).
    process.stdout.write(exportJobs(jobs, flags.json ? 'json' : (flags.format as 'toml' | 'json')));
  }
}
