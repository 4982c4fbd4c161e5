// The daemon's log: JSON lines on stderr when it is not a terminal (here, a file), readable
// lines with --log-format pretty; every instance and subtask event carries job, instanceId,
// nodeId and attempt.
import { describe, expect, it } from 'vitest';
import type { InstanceView } from '../src/api/views.js';
import { EXIT, expectExit, startDaemon, useProcessCleanup, waitFor } from './support/index.js';

useProcessCleanup();

const TEST_TIMEOUT_MS = 120_000;

type Line = Record<string, unknown> & { msg: string };

describe('daemon logs', () => {
  it('are JSON lines by default off a terminal, and instance and subtask events carry job, instanceId, nodeId and attempt', { timeout: TEST_TIMEOUT_MS }, async () => {
    const d = await startDaemon({ name: 'logs-json', logLevel: 'info' });
    const run = await d.cli(['run', '--wait', '--json', '--', 'exit 4']);
    expectExit(run, EXIT.failed);
    const id = run.json<InstanceView>().id;
    const events = await waitFor(
      () => {
        const lines = d.logs().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line);
        const mine = lines.filter((l) => l.instanceId === id);
        return mine.some((l) => l.msg === 'instance failed') ? mine : null;
      },
      { timeoutMs: 20_000, what: `the events of ${id} in the log` },
    );
    const byMsg = (msg: string) => events.find((l) => l.msg === msg);
    const common = { job: '(ad hoc)', instanceId: id, nodeId: d.nodeId };
    expect(byMsg('instance created')).toMatchObject({ ...common, attempt: null, trigger: 'adhoc', targets: 1 });
    expect(byMsg('subtask started')).toMatchObject({ ...common, attempt: 1 });
    expect(byMsg('subtask failed (exit-code 4)')).toMatchObject({ ...common, attempt: 1, status: 'failed', reason: 'exit-code', exitCode: 4, retry: false });
    expect(byMsg('instance failed')).toMatchObject({ ...common, attempt: null, status: 'failed' });
    // Every line of the log is JSON: nothing else is mixed into stderr.
    const logged = d.logs().split('\n').filter((l) => l.trim() !== '' && !l.startsWith('====='));
    for (const line of logged) expect(() => JSON.parse(line), line).not.toThrow();
  });

  it('--log-format pretty writes readable lines', { timeout: TEST_TIMEOUT_MS }, async () => {
    const d = await startDaemon({ name: 'logs-pretty', logLevel: 'info', extraArgs: ['--log-format', 'pretty'] });
    expectExit(await d.cli(['run', '--wait', '--', 'true']), EXIT.ok);
    await waitFor(() => /INFO.*subtask succeeded/.test(d.logs()), { timeoutMs: 20_000, what: 'a readable subtask line' });
    const line = d.logs().split('\n').find((l) => /subtask succeeded/.test(l)) as string;
    expect(line).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO/);
    expect(line.startsWith('{')).toBe(false);
    expect(d.logs()).toMatch(/\n\s+instanceId: "[0-9a-f]+"/);
  });
});
