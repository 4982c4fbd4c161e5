import { Args, Flags } from '@oclif/core';
import type { ChorusClient } from '../../src/api/client.js';
import type { JobView } from '../../src/api/views.js';
import { ClientCommand, idempotencyFlag, jobPath, requestIdOf } from '../../src/cli/base.js';
import { formatJob } from '../../src/cli/format.js';
import { buildSpec, misfireFlags, notifyFlags, rolloutFlags } from '../../src/cli/job-spec.js';

export default class JobAdd extends ClientCommand {
  static override description = 'Add a job. Without a schedule it runs only with `chorus job run`.';
  static override examples = [
    '<%= config.bin %> job add disk-report --cmd "df -h /" --cron "0 6 * * *" --tz Europe/Berlin',
    '<%= config.bin %> job add heartbeat --cmd "date" --every 30s --type standalone',
    '<%= config.bin %> job add nightly --cmd "backup.sh" --cron "0 2 * * *" --misfire all --misfire-window 6h',
    '<%= config.bin %> job add restart-agent --cmd "systemctl restart agent" --waves 1,10%,100% --max-parallel 5 --max-failures 2',
  ];
  static override args = { name: Args.string({ required: true, description: 'job name (letters, digits, . _ -)' }) };
  static override flags = {
    cmd: Flags.string({ required: true, description: 'shell command to run' }),
    type: Flags.string({ options: ['broadcast', 'standalone'], default: 'broadcast', description: 'broadcast: on every eligible node; standalone: on one' }),
    cron: Flags.string({ description: 'cron expression, 5 fields or 6 with seconds first' }),
    every: Flags.string({ description: 'run at a fixed interval, e.g. 30s, 5m, 1h' }),
    at: Flags.string({ description: 'run once at a time (ISO 8601) or after a delay (+10m)' }),
    tz: Flags.string({ description: 'time zone of --cron (IANA name), default UTC' }),
    tag: Flags.string({ multiple: true, description: 'only nodes with this tag (KEY=VALUE, repeatable, all must match)' }),
    timeout: Flags.string({ description: 'kill the command after this long, e.g. 30s' }),
    retries: Flags.integer({ default: 0, description: 'retries of a failed subtask, on the same node' }),
    concurrency: Flags.string({ options: ['allow', 'forbid'], default: 'allow', description: 'forbid: skip a run while one is unfinished' }),
    pre: Flags.string({ description: 'command run once before the subtasks' }),
    post: Flags.string({ description: 'command run once after every subtask ended (per-node results as JSON on stdin)' }),
    replace: Flags.boolean({ description: 'replace an existing job of that name' }),
    ...rolloutFlags,
    ...misfireFlags,
    ...notifyFlags,
    ...idempotencyFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(JobAdd);
    const spec = buildSpec(flags, Date.now());
    const put = (client: ChorusClient) =>
      client.request<JobView>('PUT', jobPath(args.name), {
        spec,
        replace: flags.replace,
        // Only a key given by the user: a retry by hand of a write whose answer was lost is answered as the first was.
        ...(flags['idempotency-key'] === undefined ? {} : { requestId: requestIdOf(flags) }),
      });
    await this.printAnswer(flags, put, (job) => `added\n${formatJob(job)}`);
  }
}
