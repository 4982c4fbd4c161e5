import { Args, Flags } from '@oclif/core';
import type { InstanceView } from '../../src/api/views.js';
import { ClientCommand, followInstance } from '../../src/cli/base.js';
import { durationFlag, checkJobName } from '../../src/cli/job-spec.js';

export default class JobRun extends ClientCommand {
  static override description = 'Start an instance of a job now. With --wait, follow it per node and exit with its outcome.';
  static override examples = [
    '<%= config.bin %> job run disk-report',
    '<%= config.bin %> job run disk-report --wait --timeout 15m',
  ];
  static override args = { name: Args.string({ required: true }) };
  static override flags = {
    wait: Flags.boolean({ description: 'wait until the instance ends; exit 0 only if every subtask succeeded' }),
    timeout: Flags.string({ description: 'with --wait: give up waiting after this long (exit 124); the instance goes on' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(JobRun);
    this.jsonMode = flags.json;
    const timeoutMs = flags.timeout === undefined ? null : durationFlag('timeout', flags.timeout);
    const client = await this.client(flags);
    const view = await client.request<InstanceView>('POST', `/v1/jobs/${encodeURIComponent(checkJobName(args.name))}/run`);
    this.finish(await followInstance(this, client, view, { wait: flags.wait, timeoutMs, json: flags.json }));
  }
}
