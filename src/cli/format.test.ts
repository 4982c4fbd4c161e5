// The human forms: relative times, short node ids, 80-column tables, the retry reason
// and the output tail that --wait ends with.
import { describe, expect, it } from 'vitest';
import type { LogView, StatusView } from '../api/control-plane.js';
import { describeSchedule, type AttemptView, type FireView, type InstanceView, type JobView, type NodeView, type SubtaskView } from '../api/views.js';
import {
  formatHistory,
  formatInstance,
  formatInstanceList,
  formatJob,
  formatJobList,
  formatLogGroups,
  formatLogs,
  formatNodes,
  formatOutputTail,
  formatPlan,
  formatProgressLine,
  formatRetryLines,
  formatSkipped,
  formatStatus,
  formatSubtaskSummary,
  formatTokens,
  nodeLabels,
  SUMMARY_MAX_REASONS,
  TAIL_MAX_CHARS,
  TAIL_MAX_LINES,
  TAIL_MAX_NODES,
} from './format.js';
import { instanceView, jobSpec, subtaskView } from '../testing/fixtures.js';

const NOW_MS = Date.parse('2026-12-02T09:00:03.000Z');
const isoAt = (offsetMs: number) => new Date(NOW_MS + offsetMs).toISOString();
const NODE_A = '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVeabcdef123456';
const NODE_B = '12D3KooWLRPJAA5o6Z6ASTVPjxLSK9GiqMf2kVNYvfnzuNfed0987654321';
const LONG_CMD = `bash -c 'for host in $(seq 1 100); do echo checking $host; ${'x'.repeat(300)}; done'`;

function subtask(over: Partial<SubtaskView> = {}): SubtaskView {
  return subtaskView(NODE_A, { nodeName: 'n1', startedAt: isoAt(-2000), finishedAt: isoAt(-1000), ...over });
}

function instance(over: Partial<InstanceView> = {}): InstanceView {
  const subtasks = over.subtasks ?? [subtask(), subtask({ nodeId: NODE_B, nodeName: 'n2', shardIndex: 1 })];
  return instanceView(subtasks, {
    id: '3f2a9c0d1e4b5a67',
    job: 'disk-report',
    cmd: 'df -h /',
    createdAt: isoAt(-3000),
    startedAt: isoAt(-2000),
    finishedAt: isoAt(-1000),
    ...over,
  });
}

function job(over: Partial<JobView> = {}): JobView {
  const spec = jobSpec({ cmd: 'df -h /', schedule: { kind: 'every', intervalMs: 2_160_000_000 } });
  return {
    name: 'disk-report',
    spec,
    ...spec,
    scheduleText: describeSchedule(spec.schedule),
    nextRunAt: isoAt(120_000),
    enabled: true,
    createdAt: isoAt(-60_000),
    updatedAt: isoAt(-60_000),
    ...over,
  };
}

function node(over: Partial<NodeView> = {}): NodeView {
  return { nodeId: NODE_A, name: 'n1', tags: { role: 'web' }, addrs: [], incarnation: 1, state: 'alive', leader: true, keeper: true, draining: false, lastSeenMs: NOW_MS - 3000, lastSeen: isoAt(-3000), suspicion: null, ...over };
}

const widest = (text: string) => Math.max(...text.split('\n').map((l) => [...l].length));

describe('human views', () => {
  it('show relative times, with the exact time in show-style views', () => {
    const shown = formatInstance(instance(), NOW_MS);
    expect(shown).toContain(`created:  3s ago (${isoAt(-3000)})`);
    expect(shown).toContain(`finished: 1s ago (${isoAt(-1000)})`);
    expect(formatInstanceList([instance()], NOW_MS)).toMatch(/│ 3s ago +│/);
    expect(formatJob(job(), NOW_MS)).toContain(`next run:    in 2m (${isoAt(120_000)})`);
    expect(formatJobList([job()], NOW_MS)).toMatch(/│ in 2m +│/);
    expect(formatNodes([node()], NOW_MS)).toMatch(/│ 3s ago +│/);
    // A suspect shows when this node will declare it dead unless it answers.
    const suspicion = { sinceMs: NOW_MS - 1000, since: isoAt(-1000), confirmations: 1, expectedConfirmations: 3, deadAtMs: NOW_MS + 4000, deadAt: isoAt(4000), verified: true };
    expect(formatNodes([node({ state: 'suspect', suspicion }), node({ nodeId: NODE_B, name: 'n2' })], NOW_MS).split('\n').slice(-1)).toEqual([
      'n1 (…abcdef123456) suspect since 1s ago: dead in 4s unless it answers (1 of 3 confirmation(s) from other members)',
    ]);
  });

  it('name nodes by their short id only, in tables, nodes, status and logs', () => {
    const outputs = [
      formatInstance(instance(), NOW_MS),
      formatNodes([node(), node({ nodeId: NODE_B, name: 'n2', leader: false })], NOW_MS),
      formatLogs([{ nodeId: NODE_A, attempt: 1, stdout: 'hi\n', stderr: '', stdoutDroppedBytes: 0, stderrDroppedBytes: 0 }]),
    ];
    for (const out of outputs) {
      expect(out).toContain('…abcdef123456');
      expect(out).not.toContain(NODE_A);
    }
    const status = formatStatus({
      nodeId: NODE_A,
      name: 'n1',
      tags: {},
      version: '0.1.0',
      leader: NODE_B,
      isLeader: false,
      keepers: [NODE_B],
      isKeeper: false,
      members: 2,
      aliveMembers: 2,
      multiaddrs: ['/ip4/127.0.0.1/tcp/7400'],
      api: 'http://127.0.0.1:7410',
      dataDir: '/var/lib/chorus',
      uptimeMs: 1000,
      runningSubtasks: 0,
      containment: { kind: 'cgroup', detail: 'every process of the attempt, by its cgroup in /sys/fs/cgroup/chorus/n1 (cgroup v2)' },
      records: 0,
      counters: {},
      errors: [],
      memory: { rssBytes: 120 * 1024 * 1024, heapUsedBytes: 40 * 1024 * 1024, heapTotalBytes: 0, externalBytes: 0 },
      bounds: [
        { name: 'records', used: 1200, limit: 100_000, about: '' },
        { name: 'connections', used: 33, limit: 32, about: '' },
      ],
    } satisfies StatusView);
    expect(status.split('\n')[0]).toBe('node …abcdef123456 (n1)');
    expect(status).toContain('leader:   …ed0987654321');
    expect(status).toContain('keepers:  …ed0987654321 (this node keeps its own work; queries go to a keeper)');
    // ...and the whole id once, on its own line, for --join addresses.
    expect(status).toContain(`id:       ${NODE_A}`);
    // Every bound with its limit, and the one exceeded marked.
    expect(status).toContain('memory:   120.0 MiB resident, 40.0 MiB heap');
    // How a timeout or a cancel reaches every process of an attempt.
    expect(status).toContain('kills:    every process of the attempt, by its cgroup in /sys/fs/cgroup/chorus/n1 (cgroup v2)\n');
    expect(status).toContain('    records      1200 of 100000\n');
    expect(status).toContain('    connections    33 of 32  (over the limit)');
  });

  it('show a job timeout and an --every schedule in their own units', () => {
    expect(describeSchedule({ kind: 'every', intervalMs: 25 * 86_400_000 })).toBe('every 25d');
    expect(describeSchedule({ kind: 'every', intervalMs: 5_400_000 })).toBe('every 1h30m');
    expect(describeSchedule({ kind: 'every', intervalMs: 90_000 })).toBe('every 1m30s');
    expect(describeSchedule({ kind: 'every', intervalMs: 500 })).toBe('every 500ms');
    const shown = formatJob(job({ timeoutMs: 25 * 86_400_000 }), NOW_MS);
    expect(shown).toContain('schedule:    every 25d');
    expect(shown).toContain('timeout:     25d');
  });
});

describe('the 80-column rule', () => {
  it('keeps every line of the tables and the instance view within 80 columns, cutting long cells with …', () => {
    const longName = `n-${'a'.repeat(60)}`;
    const subtasks = [subtask({ nodeName: longName }), subtask({ nodeId: NODE_B, nodeName: 'n2', status: 'failed', reason: 'exit-code', exitCode: 127 })];
    const view = instance({ cmd: LONG_CMD, job: `j-${'b'.repeat(62)}`, subtasks, failure: `no alive node matches the tags ${'role=web, '.repeat(20)}` });
    const outputs = {
      formatJobList: formatJobList([job({ name: `j-${'c'.repeat(62)}`, cmd: LONG_CMD }), job({ cmd: 'echo\nmultiline' })], NOW_MS),
      formatInstanceList: formatInstanceList([view, instance({ job: '(ad hoc)' })], NOW_MS),
      formatInstance: formatInstance(view, NOW_MS),
      formatNodes: formatNodes([node({ name: longName, tags: { role: 'web', zone: 'eu-west-1a', rack: 'r'.repeat(50) } })], NOW_MS),
    };
    for (const [name, out] of Object.entries(outputs)) {
      expect(widest(out), `${name}:\n${out}`).toBeLessThanOrEqual(80);
      expect(out, name).toContain('…');
    }
    // The instance id, which people type back, is never cut.
    expect(outputs.formatInstanceList).toContain(view.id);
    expect(outputs.formatJobList).toContain('bash -c');
    // A wrapped failure keeps all its words.
    expect(outputs.formatInstance.replace(/\s+/g, ' ')).toContain(`no alive node matches the tags ${'role=web, '.repeat(20).trim()}`);
  });

  it('marks a disabled job in the NEXT RUN column', () => {
    expect(formatJobList([job({ enabled: false, nextRunAt: null })], NOW_MS)).toMatch(/│ disabled +│ df -h \/ +│/);
  });

  it('leaves short tables as they were', () => {
    const out = formatJobList([job()], NOW_MS);
    expect(out).not.toContain('…');
    expect(out).toContain('df -h /');
  });
});

describe('--wait progress', () => {
  const failedAttempt = (attempt: number, exitCode: number): AttemptView => ({
    attempt,
    status: 'failed',
    reason: 'exit-code',
    exitCode,
    signal: null,
    startedAt: isoAt(-5000),
    finishedAt: isoAt(-4000),
  });

  it('says which attempt failed and why when a subtask is retried', () => {
    const retried = subtask({ attempt: 2, status: 'running', exitCode: null, finishedAt: null, history: [failedAttempt(1, 3)] });
    expect(formatRetryLines(retried, 1, NOW_MS)).toEqual(['  n1 …abcdef123456: attempt 1 failed (exit-code 3), retrying as attempt 2']);
    expect(formatProgressLine(retried)).toBe('  n1 …abcdef123456: running attempt 2');
  });

  it('names every attempt retried since the last report, and the backoff when one is pending', () => {
    const s = subtask({
      attempt: 3,
      status: 'pending',
      exitCode: null,
      startedAt: null,
      finishedAt: null,
      notBefore: isoAt(4000),
      history: [failedAttempt(1, 3), { ...failedAttempt(2, 0), reason: 'timeout', exitCode: null }],
    });
    expect(formatRetryLines(s, 1, NOW_MS)).toEqual([
      '  n1 …abcdef123456: attempt 1 failed (exit-code 3), retrying as attempt 2',
      '  n1 …abcdef123456: attempt 2 failed (timeout), retrying as attempt 3 in 4s',
    ]);
    expect(formatRetryLines(s, 2, NOW_MS)).toHaveLength(1);
    expect(formatRetryLines(s, 3, NOW_MS)).toEqual([]);
  });
});

describe('the output tail after --wait', () => {
  const log = (nodeId: string, stdout: string, stderr = '', attempt = 1): LogView => ({ nodeId, attempt, stdout, stderr, stdoutDroppedBytes: 0, stderrDroppedBytes: 0 });

  it('shows the last lines of each node, and stderr only of a failed attempt', () => {
    const failed = subtask({ nodeId: NODE_B, nodeName: 'n2', status: 'failed', reason: 'exit-code', exitCode: 3 });
    const view = instance({ status: 'failed', subtasks: [subtask(), failed] });
    const lines = formatOutputTail(view, [log(NODE_A, 'hello\n', 'a warning\n'), log(NODE_B, 'partial\n', 'boom\n')]);
    expect(lines).toEqual([
      'output of instance 3f2a9c0d1e4b5a67 (last lines per node):',
      '  n1 …abcdef123456: succeeded',
      '    hello',
      '  n2 …ed0987654321: failed (exit-code 3)',
      '    partial',
      '    stderr:',
      '    boom',
    ]);
  });

  it(`keeps at most ${TAIL_MAX_LINES} lines and ${TAIL_MAX_CHARS} characters per node, and says where the rest is`, () => {
    const many = Array.from({ length: 50 }, (_, i) => `line ${i}`).join('\n');
    const lines = formatOutputTail(instance({ subtasks: [subtask()] }), [log(NODE_A, `${many}\n`)]);
    expect(lines.slice(2, -1)).toEqual(['    line 45', '    line 46', '    line 47', '    line 48', '    line 49']);
    expect(lines.at(-1)).toBe('some output was cut; see the output with: chorus instance logs 3f2a9c0d1e4b5a67');

    const long = formatOutputTail(instance({ subtasks: [subtask()] }), [log(NODE_A, 'y'.repeat(5000))]);
    const body = long.slice(2, -1).join('\n');
    expect([...body.replace(/^ {4}/gm, '')].length).toBeLessThanOrEqual(TAIL_MAX_CHARS);
    expect(body).toMatch(/^ {4}…y+$/);
  });

  it('takes the log of the current attempt, and says when a node printed nothing', () => {
    const s = subtask({ attempt: 2, history: [] });
    const lines = formatOutputTail(instance({ subtasks: [s, subtask({ nodeId: NODE_B, nodeName: 'n2' })] }), [log(NODE_A, 'first try\n', '', 1), log(NODE_A, 'second try\n', '', 2)]);
    expect(lines).toContain('    second try');
    expect(lines).not.toContain('    first try');
    expect(lines.slice(-2)).toEqual(['  n2 …ed0987654321: succeeded', '    (no output)']);
  });

  it('points to chorus instance logs when the logs cannot be fetched or there are too many nodes', () => {
    expect(formatOutputTail(instance(), null)).toEqual(['see the output with: chorus instance logs 3f2a9c0d1e4b5a67']);
    const many = Array.from({ length: TAIL_MAX_NODES + 1 }, (_, i) => subtask({ nodeId: `node-${i}`, nodeName: null }));
    expect(formatOutputTail(instance({ subtasks: many }), [])).toEqual(['see the output with: chorus instance logs 3f2a9c0d1e4b5a67']);
  });
});

describe('the subtask summary of instance show', () => {
  let seq = 0;
  const s = (over: Partial<SubtaskView>) => subtask({ nodeId: `id-${++seq}`, ...over });
  const failed = (reason: SubtaskView['reason'], exitCode: number | null = null) => s({ status: 'failed', reason, exitCode });

  it('counts by status, failures by reason and exit code, most frequent first, in one line', () => {
    const subtasks = [s({}), s({}), s({}), failed('exit-code', 1), failed('node-lost'), failed('exit-code', 1), failed('exit-code', 2)];
    expect(formatSubtaskSummary(subtasks)).toBe('7 subtasks: 3 succeeded, 4 failed (exit 1: 2, exit 2: 1, node-lost: 1)');
    expect(formatSubtaskSummary([s({}), s({ status: 'running', exitCode: null }), s({ status: 'pending', exitCode: null })])).toBe('3 subtasks: 1 succeeded, 1 running, 1 pending');
    expect(formatSubtaskSummary([s({})])).toBe('1 subtask: 1 succeeded');
    expect(formatSubtaskSummary([])).toBe('no subtasks');
  });

  it('explains cancelled subtasks only when some were aborted, and cuts a long list of reasons', () => {
    expect(formatSubtaskSummary([s({ status: 'cancelled', reason: 'cancelled' })])).toBe('1 subtask: 1 cancelled');
    expect(formatSubtaskSummary([s({ status: 'cancelled', reason: 'cancelled' }), s({ status: 'cancelled', reason: 'aborted' as SubtaskView['reason'] })])).toBe('2 subtasks: 2 cancelled (aborted: 1, cancelled: 1)');
    const many = [1, 2, 3, 4, 5].map((code) => failed('exit-code', code));
    expect(formatSubtaskSummary(many)).toBe(`5 subtasks: 5 failed (exit 1: 1, exit 2: 1, exit 3: 1, +${5 - SUMMARY_MAX_REASONS} more)`);
  });

  it('comes before the table in instance show', () => {
    const shown = formatInstance(instance(), NOW_MS).split('\n');
    const summary = shown.findIndex((l) => l === '  2 subtasks: 2 succeeded');
    expect(summary).toBeGreaterThan(0);
    expect(shown[summary + 1]).toMatch(/^┌/);
    expect(shown.some((l) => /succeeded, 0 failed/.test(l))).toBe(false);
  });
});

describe('a command killed by a signal (reason signal), the same in every human form', () => {
  const killed = subtask({ nodeId: NODE_B, nodeName: 'n2', status: 'failed', reason: 'signal', exitCode: null, signal: 'SIGKILL' });

  it('reads failed (signal SIGKILL) in progress, retry and output-tail lines, and in the pre/post step line', () => {
    expect(formatProgressLine(killed)).toBe('  n2 …ed0987654321: failed (signal SIGKILL)');
    const retried = subtask({ attempt: 2, status: 'pending', exitCode: null, history: [{ attempt: 1, status: 'failed', reason: 'signal', exitCode: null, signal: 'SIGSEGV', startedAt: null, finishedAt: null }] });
    expect(formatRetryLines(retried, 1, NOW_MS)).toEqual(['  n1 …abcdef123456: attempt 1 failed (signal SIGSEGV), retrying as attempt 2']);
    expect(formatOutputTail(instance({ status: 'failed', subtasks: [killed] }), [])).toContain('  n2 …ed0987654321: failed (signal SIGKILL)');
    const post = { cmd: 'report', nodeId: NODE_A, attempt: 1, status: 'failed' as const, reason: 'signal' as const, exitCode: null, signal: 'SIGKILL', startedAt: null, finishedAt: null };
    expect(formatInstance(instance({ status: 'failed', post }), NOW_MS)).toContain('  post step: failed (signal SIGKILL) on …abcdef123456  [report]');
  });

  it('instance show: the count line names the signal, the table has it where an exit code would be', () => {
    const shown = formatInstance(instance({ status: 'failed', subtasks: [subtask(), killed] }), NOW_MS);
    expect(shown).toContain('  2 subtasks: 1 succeeded, 1 failed (signal SIGKILL: 1)');
    expect(shown).toMatch(/│ n2 +│ failed +│ 1 +│ SIGKILL +│ signal +│/);
  });

  it('instance logs --group: the outcome in the header', () => {
    const text = formatLogGroups([{ nodes: [{ nodeId: NODE_B, name: 'n2', attempt: 1 }], step: null, status: 'failed', reason: 'signal', exitCode: null, signal: 'SIGKILL', stdout: '', stderr: '', stdoutDroppedBytes: 0, stderrDroppedBytes: 0 }]);
    expect(text.split('\n')[0]).toBe('---- n2 (1) failed (signal SIGKILL) ----');
  });
});

describe('instance logs --group', () => {
  it('prints each group once under its nodes, like dshbak -c, with the outcome when it is not a success', () => {
    const text = formatLogGroups([
      { nodes: ['web-1', 'web-2', 'web-3'].map((name, i) => ({ nodeId: `id-${i}`, name, attempt: 1 })), step: null, status: 'succeeded', reason: null, exitCode: 0, signal: null, stdout: 'one\ntwo\n', stderr: '', stdoutDroppedBytes: 0, stderrDroppedBytes: 0 },
      { nodes: [{ nodeId: 'id-9', name: 'db-1', attempt: 2 }], step: null, status: 'failed', reason: 'exit-code', exitCode: 3, signal: null, stdout: '', stderr: 'boom\n', stdoutDroppedBytes: 0, stderrDroppedBytes: 0 },
      { nodes: [{ nodeId: 'id-0', name: 'web-1', attempt: 1 }], step: 'post', status: 'succeeded', reason: null, exitCode: 0, signal: null, stdout: '', stderr: '', stdoutDroppedBytes: 0, stderrDroppedBytes: 0 },
    ]);
    expect(text.split('\n')).toEqual([
      '---- web-1,web-2,web-3 (3) ----',
      'one',
      'two',
      '---- db-1#2 (1) failed (exit-code 3) ----',
      '--- stderr ---',
      'boom',
      '---- post step: web-1 ----',
      '(no output)',
    ]);
  });
});

describe('nodeLabels', () => {
  it('names a node by its name, adding the short id when two share it, and by the short id without one', () => {
    expect(nodeLabels([{ nodeId: NODE_A, name: 'web' }, { nodeId: NODE_B, name: 'web' }, { nodeId: 'n3', name: 'db' }, { nodeId: 'n4', name: null }])).toEqual(
      new Map([
        [NODE_A, 'web(…abcdef123456)'],
        [NODE_B, 'web(…ed0987654321)'],
        ['n3', 'db'],
        ['n4', 'n4'],
      ]),
    );
  });
});

describe('rollouts and fire history', () => {
  it('a rollout line says where it is, and the table has a WAVE column and "not released"', () => {
    const subtasks = [
      subtaskView('a', { wave: 1 }),
      subtaskView('b', { wave: 2, status: 'running', exitCode: null, finishedAt: null }),
      subtaskView('c', { wave: 2, status: 'pending', released: false, releasedAt: null, exitCode: null, startedAt: null, finishedAt: null }),
    ];
    const view = instanceView(subtasks, {
      status: 'running',
      paused: true,
      rollout: { maxParallel: 1, waves: [1, '100%'], maxFailures: 0, minSuccess: null, parallelLimit: 1, waveSizes: [1, 2], currentWave: 2, released: 2, aborted: false },
    });
    const text = formatInstance(view, Date.parse('2026-01-01T00:00:05Z')).replace(/\n {12}/g, ' '); // the rollout line wraps at 80 columns
    expect(text).toMatch(/rollout: {2}wave 2 of 2 \(sizes 1, 2\), at most 1 at once, stops after more than 0 failed, 2 of 3 released; PAUSED \(chorus instance resume\)/);
    expect(text).toMatch(/│ NODE +│ NAME +│ WAVE +│ STATUS/);
    expect(text).toMatch(/pending +│ 1 +│ +│ not released/);
  });

  it('history: one row per fire, due time in UTC, newest first', () => {
    const fire = (at: string, outcome: FireView['outcome'], reason: FireView['reason'], instanceId: string | null): FireView => ({ job: 'j', scheduledAt: at, outcome, reason, instanceId, leader: 'n1', leaderName: 'web-1', decidedAt: at });
    const text = formatHistory([fire('2026-12-06T22:28:41.000Z', 'missed', 'past-misfire-window', null), fire('2026-12-06T22:27:41.000Z', 'created', null, 'f5c1a1971da8c134')], Date.parse('2026-12-06T23:30:00Z'));
    expect(text).toMatch(/12-06 22:28:41Z │ missed +│ past-misfire-window │ +│ web-1/);
    expect(text).toMatch(/12-06 22:27:41Z │ created +│ +│ f5c1a1971da8c134 │ web-1/);
    expect(text.split('\n').every((l) => l.length <= 80)).toBe(true);
    expect(text).toMatch(/2 fire\(s\), the newest due 1h ago$/);
    expect(formatHistory([])).toMatch(/^no fires decided yet/);
  });
});

describe('text from the cluster is printed inert', () => {
  // A job on one host, or a node's name or tag, must not drive the reader's terminal.
  const EVIL = '\x1b]0;pwned\x07\x1b[2J';
  const SHOWN = '\\x1b]0;pwned\\x07\\x1b[2J';
  const EVIL_NAME = 'web\x1b[8m-1\u202e';
  const SHOWN_NAME = 'web\\x1b[8m-1\\u202e';
  // What a terminal acts on: any control but newline and tab, a CR not ending a line, C1, bidi overrides.
  // eslint-disable-next-line no-control-regex -- looking for what must not be printed
  const RAW = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r(?!\n)/;
  const log = (stdout: string, stderr = ''): LogView => ({ nodeId: NODE_A, attempt: 1, stdout, stderr, stdoutDroppedBytes: 0, stderrDroppedBytes: 0 });

  it('instance logs: stdout and stderr escaped, newlines and tabs kept', () => {
    const text = formatLogs([log(`${EVIL}\nnext\tcolumn\n`, `oops\rhidden\n\x9b31m`)]);
    expect(text).not.toMatch(RAW);
    expect(text.split('\n')).toEqual(['==> node …abcdef123456 attempt 1 <==', SHOWN, 'next\tcolumn', '--- stderr ---', 'oops\\rhidden', '\\u009b31m']);
  });

  it('instance logs --group: the output and the node names in the header', () => {
    const text = formatLogGroups([{ nodes: [{ nodeId: NODE_A, name: EVIL_NAME, attempt: 1 }], step: null, status: 'succeeded', reason: null, exitCode: 0, signal: null, stdout: `${EVIL}\n`, stderr: '', stdoutDroppedBytes: 0, stderrDroppedBytes: 0 }]);
    expect(text).not.toMatch(RAW);
    expect(text.split('\n')).toEqual([`---- ${SHOWN_NAME} (1) ----`, SHOWN]);
  });

  it('the output tail of --wait and its progress lines: output, a lone CR and the node name', () => {
    const evil = subtask({ nodeName: EVIL_NAME, status: 'failed', reason: 'exit-code', exitCode: 1, attempt: 2, history: [{ attempt: 1, status: 'failed', reason: 'exit-code', exitCode: 1, signal: null, startedAt: null, finishedAt: null }] });
    const lines = formatOutputTail(instance({ subtasks: [evil] }), [{ ...log(`${EVIL}\r\nall good\rrm -rf /\r\n`, 'bad\x1b[2K\n'), attempt: 2 }]);
    expect(lines.join('\n')).not.toMatch(RAW);
    expect(lines.slice(1)).toEqual([`  ${SHOWN_NAME} …abcdef123456: failed (exit-code 1)`, `    ${SHOWN}`, '    all good\\rrm -rf /', '    stderr:', '    bad\\x1b[2K']);
    expect(formatProgressLine(evil)).toBe(`  ${SHOWN_NAME} …abcdef123456: failed (exit-code 1) attempt 2`);
    expect(formatRetryLines(evil, 1, NOW_MS)).toEqual([`  ${SHOWN_NAME} …abcdef123456: attempt 1 failed (exit-code 1), retrying as attempt 2`]);
    expect(formatSkipped({ skipped: [{ nodeId: NODE_B, nodeName: EVIL_NAME, reason: 'draining' }] })).toBe(`1 draining: ${SHOWN_NAME} (…ed0987654321)`);
  });

  it('tables of nodes and plans: names and tags escaped before the columns are measured, so they stay aligned', () => {
    const nodes = formatNodes([node({ name: EVIL_NAME, tags: { r: '\x9b' } }), node({ nodeId: NODE_B, name: 'n2', leader: false })], NOW_MS);
    const plan = formatPlan({
      job: null,
      type: 'broadcast',
      cmd: `echo ${EVIL}`,
      tags: {},
      targets: [{ nodeId: NODE_A, name: EVIL_NAME, tags: { [`k\x07`]: 'v' }, state: 'alive', shardIndex: 0, wave: 1 }],
      leftOut: [{ nodeId: NODE_B, name: `n2\u2066`, tags: {}, state: 'alive', reason: 'draining', detail: 'draining' }],
      waveSizes: [1],
      parallelLimit: null,
      failure: null,
    });
    for (const text of [nodes, plan]) {
      expect(text).not.toMatch(RAW);
      expect(text).toContain('web\\x1b'); // the name column may be cut to fit 80 columns
      // Every line of a table is as wide as its border.
      const tables = text.split(/\n(?=┌)/).map((t) => t.split('\n').filter((l) => /^[┌│└]/.test(l))).filter((t) => t.length > 0);
      expect(tables.length).toBeGreaterThan(0);
      for (const table of tables) {
        expect(new Set(table.map((l) => [...l].length)).size, text).toBe(1);
      }
    }
    expect(nodes).toContain('r=\\u009b');
    expect(plan).toContain(`plan for run of echo ${SHOWN}: 1 node(s)`);
    expect(plan).toContain('k\\x07=v');
    expect(plan).toContain('n2\\u2066');
  });

  it('instance show, job show, status and the suspect lines: names, commands and messages', () => {
    const view = instance({
      cmd: `printf '${EVIL}'`,
      failure: `no node answered: ${EVIL}`,
      subtasks: [subtask({ nodeName: EVIL_NAME })],
      notifications: [{ url: 'https://hooks.example/x', status: 'failed', attempts: 3, lastError: `HTTP 500 ${EVIL}`, deliveredAt: null, runner: NODE_A }],
    });
    const suspicion = { sinceMs: NOW_MS - 1000, since: isoAt(-1000), confirmations: 1, expectedConfirmations: 3, deadAtMs: NOW_MS + 4000, deadAt: isoAt(4000), verified: true };
    const outputs = {
      formatInstance: formatInstance(view, NOW_MS),
      formatJob: formatJob(job({ cmd: `printf '${EVIL}'`, pre: `echo ${EVIL}` }), NOW_MS),
      formatNodes: formatNodes([node({ name: EVIL_NAME, state: 'suspect', suspicion })], NOW_MS),
      formatStatus: formatStatus({ nodeId: NODE_A, name: EVIL_NAME, tags: {}, version: '0.1.0', leader: NODE_A, isLeader: true, keepers: [NODE_A], isKeeper: true, members: 1, aliveMembers: 1, multiaddrs: [], api: '', dataDir: '', uptimeMs: 0, runningSubtasks: 0, containment: { kind: 'environment', detail: '' }, records: 0, counters: {}, errors: [], memory: { rssBytes: 0, heapUsedBytes: 0, heapTotalBytes: 0, externalBytes: 0 }, bounds: [] }),
    };
    for (const [name, text] of Object.entries(outputs)) expect(text, name).not.toMatch(RAW);
    expect(outputs.formatInstance).toContain(`command:  printf '${SHOWN}'`);
    expect(outputs.formatInstance.replace(/\n {12}/g, ' ')).toContain(`failure:  no node answered: ${SHOWN}`);
    expect(outputs.formatInstance).toContain('HTTP 500 \\x1b]0;pw'); // the webhook line is cut at 80 columns
    expect(outputs.formatJob).toContain(`command:     printf '${SHOWN}'`);
    expect(outputs.formatJob).toContain(`pre:         echo ${SHOWN}`);
    expect(outputs.formatNodes.split('\n').at(-1)).toMatch(new RegExp(`^${SHOWN_NAME.replace(/[\\[]/g, '\\$&')} \\(…abcdef123456\\) suspect since`));
    expect(outputs.formatStatus.split('\n')[0]).toBe(`node …abcdef123456 (${SHOWN_NAME}), leader`);
  });

  it('nodeLabels (the --follow and --group prefixes) are escaped', () => {
    expect(nodeLabels([{ nodeId: NODE_A, name: EVIL_NAME }, { nodeId: 'n\x1b', name: null }])).toEqual(
      new Map([
        [NODE_A, SHOWN_NAME],
        ['n\x1b', 'n\\x1b'],
      ]),
    );
  });
});

describe('token list', () => {
  it('shows the tokens, then each live dashboard session with the token that made it and when it ends', () => {
    const tokens = [{ id: '3f2a9c0d1e4b', role: 'operate' as const, name: 'laptop', createdAt: '2026-12-02T08:00:03.000Z' }];
    const session = { id: 'ui-9c0d1e4b3f', role: 'operate' as const, tokenId: '3f2a9c0d1e4b', tokenName: 'laptop', createdAt: '2026-12-02T08:58:03.000Z', expiresAt: '2026-12-02T20:58:03.000Z' };
    const text = formatTokens(tokens, [session, { ...session, id: 'ui-0a1b2c3d4e', role: 'read', tokenId: 'daemon', tokenName: null }], NOW_MS);
    expect(text).toContain('dashboard sessions (end one with chorus token revoke ID):');
    expect(text).toMatch(/ui-9c0d1e4b3f +│ operate +│ 3f2a9c0d1e4b \(laptop\) +│ 2m ago +│ in 11h/);
    expect(text).toMatch(/ui-0a1b2c3d4e +│ read +│ daemon \(the daemon's own\)/);
    expect(formatTokens([], [], NOW_MS)).toBe("no tokens besides the daemon's own (DIR/api-token, role operate)\nno dashboard sessions");
  });
});
