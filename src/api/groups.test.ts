// `instance logs --group`: the same outcome and output on several nodes is one group, like
// `dshbak -c`; any difference (a byte of stdout or stderr, the exit code) splits them.
import { describe, expect, it } from 'vitest';
import type { LogView } from './control-plane.js';
import { instanceView, subtaskView } from '../testing/fixtures.js';
import { groupLogs } from './groups.js';

const log = (nodeId: string, stdout: string, over: Partial<LogView> = {}): LogView => ({ nodeId, attempt: 1, stdout, stderr: '', stdoutDroppedBytes: 0, stderrDroppedBytes: 0, ...over });

describe('groupLogs', () => {
  it('puts nodes with the same output and outcome together, biggest group first, nodes by name', () => {
    const view = instanceView([
      subtaskView('id-c', { nodeName: 'web-10' }),
      subtaskView('id-a', { nodeName: 'web-2' }),
      subtaskView('id-b', { nodeName: 'web-1' }),
      subtaskView('id-d', { nodeName: 'db-1', status: 'failed', reason: 'exit-code', exitCode: 3 }),
      subtaskView('id-e', { nodeName: 'db-2' }),
    ]);
    const logs = [log('id-a', 'ok\n'), log('id-b', 'ok\n'), log('id-c', 'ok\n'), log('id-d', 'ok\n'), log('id-e', 'ok\n', { stderr: 'warn\n' })];
    const groups = groupLogs(view, logs);
    expect(groups.map((g) => g.nodes.map((n) => n.name))).toEqual([['web-1', 'web-2', 'web-10'], ['db-1'], ['db-2']]);
    expect(groups[0]).toMatchObject({ step: null, status: 'succeeded', exitCode: 0, stdout: 'ok\n', stderr: '' });
    // Same stdout, but it failed: not the same.
    expect(groups[1]).toMatchObject({ status: 'failed', reason: 'exit-code', exitCode: 3, stdout: 'ok\n' });
    expect(groups[2]).toMatchObject({ stdout: 'ok\n', stderr: 'warn\n' });
  });

  it("takes each node's current attempt (not an earlier one), the steps apart, and --node's node only", () => {
    const view = instanceView([subtaskView('id-a', { nodeName: 'a', attempt: 2 }), subtaskView('id-b', { nodeName: 'b', status: 'running', exitCode: null, finishedAt: null })], {
      pre: { cmd: 'p', nodeId: 'id-b', attempt: 1, status: 'succeeded', reason: null, exitCode: 0, signal: null, startedAt: null, finishedAt: null },
    });
    const logs = [log('id-b', 'prepared\n', { step: 'pre' }), log('id-a', 'first try\n'), log('id-a', 'second try\n', { attempt: 2 })];
    const groups = groupLogs(view, logs);
    expect(groups.map((g) => [g.step, g.nodes.map((n) => `${n.name}#${n.attempt}`), g.status, g.stdout])).toEqual([
      ['pre', ['b#1'], 'succeeded', 'prepared\n'],
      [null, ['a#2'], 'succeeded', 'second try\n'],
      // Running: no log of this attempt yet.
      [null, ['b#1'], 'running', ''],
    ]);
    expect(groupLogs(view, logs, { only: 'id-a' }).map((g) => g.nodes[0]?.nodeId)).toEqual(['id-a']);
  });

  it("shows the daemon's note for a node whose logs it could not fetch", () => {
    const view = instanceView([subtaskView('id-a', { nodeName: 'a' })]);
    const groups = groupLogs(view, [log('id-a', '', { attempt: 0, stderr: '(logs unavailable: timed out)' })]);
    expect(groups[0]?.stderr).toBe('(logs unavailable: timed out)');
  });
});
