import { Flags } from '@oclif/core';
import type { InstanceView } from '../../src/api/views.js';
import { ClientCommand, followInstance, idempotencyFlag, jobNameArg, jobPath, requestIdOf } from '../../src/cli/base.js';
import { DEFAULT_LEADER_WAIT_MS } from '../../src/api/client.js';
import { optionalDurationFlag } from '../../src/cli/job-spec.js';

export default class JobRun extends ClientCommand {
  static override description = 'Start an instance of a job now. With --wait, follow it per node and exit with its outcome.';
  static override examples = [
    '<%= config.bin %> job run disk-report',
    '<%= config.bin %> job run disk-report --wait --timeout 15m',
  ];
  static override args = jobNameArg;
  static override flags = {
    wait: Flags.boolean({ description: 'wait until the instance ends; exit 0 only if every subtask succeeded' }),
    timeout: Flags.string({ description: 'give up after this long: waiting for a busy leader to take the run (default 60s), and with --wait for the instance to end (exit 124; the instance goes on)' }),
    ...idempotencyFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(JobRun);
    const timeoutMs = optionalDurationFlag('timeout', flags.timeout);
    const client = await this.client(flags);
    const view = await client.requestRun<InstanceView>(jobPath(args.name, '/run'), { requestId: requestIdOf(flags) }, timeoutMs ?? DEFAULT_LEADER_WAIT_MS, (line) => this.progress(line));
    this.finish(await followInstance(this, client, view, { wait: flags.wait, timeoutMs, json: flags.json }));
  }
}
