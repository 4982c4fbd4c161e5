// A busy leader is not a lost leader (issue 28): a run asked through another member while
// the leader is frozen for 3 s or more (SIGSTOP, then SIGCONT) is created once, and the CLI said
// it was waiting rather than failing; a run asked again with the same --idempotency-key is
// the same instance.
import { describe, expect, it } from 'vitest';
import type { InstanceView, JobView } from '../src/api/views.js';
import { sleep, waitFor } from '../src/testing/wait.js';
import { EXIT, expectExit, expectStable, instancesOf, okJson, spawnCli, startCluster, useProcessCleanup, waitForAgreement, waitForEnd, type Daemon } from './support/index.js';

useProcessCleanup();

describe('a busy leader', () => {
  it('a run through a member while the leader is stopped for 3 s waits for it, says so, and is created once; the same idempotency key again is the same instance', async () => {
    const nodes = await startCluster({ prefix: 'bl', count: 3 });
    const { leader: leaderId } = await waitForAgreement({ alive: nodes, what: 'three daemons agreeing on a leader' });
    const leader = nodes.find((n) => n.nodeId === leaderId) as Daemon;
    const member = nodes.find((n) => n !== leader) as Daemon;
    await okJson<JobView>(member, ['job', 'add', 'slow-leader', '--cmd', 'true']);
    // The leader has answered one request before it is stopped.
    expectExit(await member.cli(['job', 'run', 'slow-leader', '--wait']), EXIT.ok);

    leader.freeze();
    const frozenAt = Date.now();
    const run = spawnCli(['job', 'run', 'slow-leader', '--json', '--idempotency-key', 'busy-leader-1'], { dataDir: member.dataDir });
    // The leader stays stopped at least 3 s (the scenario), and until the CLI has had its first
    // try go unanswered (it starts in about a second, and its first try waits 2.5 s).
    await waitFor(() => /waiting for the leader/.test(run.stderr()), { what: 'the CLI saying it waits for the leader', timeoutMs: 30_000 });
    await sleep(Math.max(0, 3000 - (Date.now() - frozenAt))); // the scenario itself, not a wait for a condition
    leader.thaw();
    const exit = await run.exited;
    const stderr = run.stderr();
    expect(exit.exitCode, stderr).toBe(0);
    expect(stderr).toMatch(/^waiting for the leader \((busy|it is gone; the next one takes the request)\): /m);
    const created = JSON.parse(run.lines.map((l) => l.text).join('\n')) as InstanceView;
    const ended = await waitForEnd(nodes, created.id, 30_000);
    expect(ended.status).toBe('succeeded');

    // Once: every node holds two instances of the job (the one before, and this one), for a while.
    const ids = async () => (await Promise.all(nodes.map((n) => instancesOf(n, 'slow-leader')))).map((list) => list.map((i) => i.id).sort());
    const seen = await expectStable(ids, { durationMs: 3000, intervalMs: 500, what: 'the instances of the job on every node' });
    for (const list of seen) expect(list).toHaveLength(2);
    expect(seen[0]).toContain(created.id);

    // The same key again (a CI job retried): the same instance, nothing new; another command with it is refused.
    const again = await okJson<InstanceView>(member, ['job', 'run', 'slow-leader', '--idempotency-key', 'busy-leader-1']);
    expect(again.id).toBe(created.id);
    const other = await member.cli(['run', '--idempotency-key', 'busy-leader-1', '--', 'true']);
    expectExit(other, EXIT.ok); // another job (ad hoc): the key names a request per job
    const reused = await member.cli(['run', '--idempotency-key', 'busy-leader-1', '--', 'false']);
    expectExit(reused, EXIT.failed);
    expect(reused.stderr).toMatch(/the request id was used for another run/);
    expect((await instancesOf(member, 'slow-leader')).map((i) => i.id).sort()).toEqual(seen[0]);
  });
});
