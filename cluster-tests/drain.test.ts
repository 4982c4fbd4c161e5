// `chorus node drain|undrain` on real daemons: a drain asked of one member reaches the
// drained one, a broadcast skips it (and says so), `nodes` shows it, `--wait` returns once
// it runs nothing, the drain survives a restart of the drained daemon, and undrain brings
// it back into new broadcasts.
import { describe, expect, it } from 'vitest';
import type { InstanceView, NodeDetailView, NodeView } from '../src/api/views.js';
import { EXIT, expectExit, startCluster, useProcessCleanup, waitFor, waitForAgreement } from './support/index.js';

useProcessCleanup();

const TEST_TIMEOUT_MS = 180_000;

describe('chorus node drain', () => {
  it('a drained node gets no new work, keeps running what it has, stays drained across a restart, and comes back when undrained', { timeout: TEST_TIMEOUT_MS }, async () => {
    const [a, b, c] = await startCluster({ prefix: 'drain-', count: 3 });
    if (!a || !b || !c) throw new Error('three daemons expected');
    await waitForAgreement({ alive: [a, b, c], stableMs: 1000, what: 'three daemons agreeing' });
    const drainingSeenBy = async (viewer: typeof a, draining: boolean) =>
      (await viewer.json<NodeView[]>(['nodes'])).find((n) => n.nodeId === b.nodeId)?.draining === draining;

    // Something long on b first: the drain lets it finish.
    const long = await a.cli(['run', '--json', '--', 'sleep 2']);
    expectExit(long, EXIT.ok);
    const longId = long.json<InstanceView>().id;
    await waitFor(async () => (await b.json<InstanceView>(['instance', 'show', longId])).subtasks.some((s) => s.nodeId === b.nodeId && s.status === 'running'), { timeoutMs: 20_000, what: 'the long command running on b' });

    // Asked of a, by name, with --wait: returns once b runs nothing.
    const drained = await a.cli(['node', 'drain', 'drain-2', '--wait', '--json']);
    expectExit(drained, EXIT.ok);
    expect(drained.json<NodeDetailView>()).toMatchObject({ nodeId: b.nodeId, draining: true, unfinished: 0 });
    const longView = await a.json<InstanceView>(['instance', 'show', longId]);
    expect(longView.subtasks.find((s) => s.nodeId === b.nodeId)?.status).toBe('succeeded');
    await waitFor(() => drainingSeenBy(c, true), { timeoutMs: 20_000, what: 'c to see b draining' });
    const table = await c.cli(['nodes']);
    expect(table.stdout).toMatch(/drain-2\s+│ alive\s+│[^│]*│ yes/);

    const skipped = await c.cli(['run', '--wait', '--', 'true']);
    expectExit(skipped, EXIT.ok);
    expect(skipped.stderr).toContain(`on 2 node(s); skipped 1 draining: drain-2 (…${b.nodeId.slice(-12)})`);

    // A restart of b: still draining.
    expect((await b.stop()).exitCode).toBe(0);
    await b.restart();
    await waitFor(async () => (await a.json<NodeView[]>(['nodes'])).find((n) => n.nodeId === b.nodeId)?.incarnation === 2, { timeoutMs: 30_000, what: 'a to see b restarted' });
    expect(await drainingSeenBy(a, true)).toBe(true);
    const afterRestart = await a.cli(['run', '--wait', '--json', '--', 'true']);
    expectExit(afterRestart, EXIT.ok);
    expect(afterRestart.json<InstanceView>().targets).not.toContain(b.nodeId);

    // Undrained from b itself (no NODE: the daemon the CLI talks to).
    const undrained = await b.cli(['node', 'undrain', '--json']);
    expectExit(undrained, EXIT.ok);
    expect(undrained.json<NodeDetailView>().draining).toBe(false);
    await waitFor(() => drainingSeenBy(a, false), { timeoutMs: 20_000, what: 'a to see b undrained' });
    const back = await a.cli(['run', '--wait', '--json', '--', 'true']);
    expectExit(back, EXIT.ok);
    expect(back.json<InstanceView>().targets).toContain(b.nodeId);

    // A node nobody knows: exit 2, naming the members.
    const unknown = await a.cli(['node', 'drain', 'no-such-node']);
    expectExit(unknown, EXIT.badInput);
    expect(unknown.stderr).toMatch(/no node named or ending in "no-such-node" in the cluster; known: drain-1/);
  });
});
