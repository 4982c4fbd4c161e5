import { Flags } from '@oclif/core';
import type { InstanceView } from '../src/api/views.js';
import { ClientCommand, followInstance, idempotencyFlag, requestIdOf } from '../src/cli/base.js';
import { DEFAULT_LEADER_WAIT_MS } from '../src/api/client.js';
import { badInput, durationFlag, notifyFlags, parseNotify, parseRollout, parseTags, rolloutFlags } from '../src/cli/job-spec.js';
import type { JobSpec } from '../src/records/types.js';
import { formatPlan } from '../src/cli/format.js';
import { shellWord } from '../src/core/shell-quote.js';
import type { PlanView } from '../src/scheduler/plan.js';

export default class Run extends ClientCommand {
  static override description = 'Run a command once on every eligible node now (an ad-hoc broadcast, no stored job).';
  static override usage = 'run [--tag KEY=VALUE]... [--wait] [--timeout DURATION] [--plan] [--json] [ROLLOUT FLAGS] [NOTIFY FLAGS] -- CMD [ARG]...';
  static override examples = [
    '<%= config.bin %> run --wait -- uname -a',
    '<%= config.bin %> run --tag role=web --wait --timeout 5m -- systemctl reload nginx',
    "<%= config.bin %> run --wait -- 'df -h / | tail -1'",
    '<%= config.bin %> run --waves 1,50%,100% --max-failures 1 --wait -- systemctl restart agent',
  ];
  static override strict = false;
  static override flags = {
    tag: Flags.string({ multiple: true, description: 'only nodes with this tag (KEY=VALUE, repeatable, all must match)' }),
    wait: Flags.boolean({ description: 'wait until every node finished; exit 0 only if all succeeded' }),
    plan: Flags.boolean({ description: 'print the nodes it would run on now (and those left out, and why); run nothing', exclusive: ['wait'] }),
    timeout: Flags.string({ description: 'give up after this long: waiting for a busy leader to take the run (default 60s), and with --wait for the run to end (exit 124)' }),
    'cmd-timeout': Flags.string({ description: 'kill the command on a node after this long (reason timeout)' }),
    ...idempotencyFlag,
    ...rolloutFlags,
    ...notifyFlags,
  };

  async run(): Promise<void> {
    const { flags, argv } = await this.parse(Run);
    const words = argv as string[];
    if (words.length === 0) throw badInput('nothing to run: put the command after --, e.g. chorus run --wait -- uname -a');
    const spec: JobSpec = {
      // One word is a shell line (`-- 'df -h | tail -1'`); several are quoted word by word.
      cmd: words.length === 1 ? (words[0] as string) : words.map(shellWord).join(' '),
      type: 'broadcast',
      schedule: null,
      tags: parseTags(flags.tag),
      timeoutMs: flags['cmd-timeout'] === undefined ? null : durationFlag('cmd-timeout', flags['cmd-timeout']),
      retries: 0,
      concurrency: 'allow',
      pre: null,
      post: null,
      ...parseRollout(flags),
      ...parseNotify(flags),
    };
    const client = await this.client(flags);
    if (flags.plan) {
      const plan = await client.request<PlanView>('POST', '/v1/plan', { spec });
      this.output(plan, () => formatPlan(plan));
      return;
    }
    const timeoutMs = flags.timeout === undefined ? null : durationFlag('timeout', flags.timeout);
    const view = await client.requestRun<InstanceView>('/v1/run', { spec, requestId: requestIdOf(flags) }, timeoutMs ?? DEFAULT_LEADER_WAIT_MS, (line) => this.progress(line));
    this.finish(await followInstance(this, client, view, { wait: flags.wait, timeoutMs, json: flags.json }));
  }
}
