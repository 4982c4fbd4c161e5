// Keepers with real daemon processes (DESIGN.md, guarantees 6 and 8): a few members keep
// the whole state, the others their own work, and any node answers as a keeper would. A
// keeper killed (-9) in the middle of a broadcast loses nothing that was acknowledged: the
// job, the run and the owners' results survive on the other keepers, a new keeper is
// chosen and catches up, and the broadcast completes.
import { describe, expect, it } from 'vitest';
import type { StatusView } from '../src/api/control-plane.js';
import type { InstanceView, JobView } from '../src/api/views.js';
import {
  EXIT,
  Work,
  expectChecked,
  expectExit,
  instancesOf,
  nodesOf,
  okJson,
  runsOf,
  sortById,
  startCluster,
  subtaskOf,
  summarize,
  useProcessCleanup,
  waitFor,
  waitForAgreement,
  waitForEnd,
  type Daemon,
} from './support/index.js';

useProcessCleanup();

const SCENARIO_MS = 150_000;

/** The keepers as a daemon names them (chorus status --json), leader first. */
async function keepersOf(d: Daemon): Promise<string[]> {
  return (await okJson<StatusView>(d, ['status'])).keepers;
}

describe('keepers', () => {
  it(
    'five nodes, a keeper killed (-9) mid-broadcast: nothing acknowledged is lost, a new keeper takes over, and a member answers as a keeper does',
    async () => {
      const nodes = sortById(await startCluster({ prefix: 'k', tags: [[], [], [], [], []], parallel: true }));
      const { leader } = await waitForAgreement({ alive: nodes });
      // Sorted as the keepers are chosen: by code unit (sortById compares as the locale does).
      const ids = nodes.map((n) => n.nodeId).sort();
      // Every node names the same three keepers: the leader, then the smallest ids.
      const expected = [leader, ...ids.filter((id) => id !== leader).slice(0, 2)];
      await waitFor(async () => (await Promise.all(nodes.map(keepersOf))).every((k) => JSON.stringify(k) === JSON.stringify(expected)), { what: 'every node naming the same keepers' });
      const members = nodes.filter((n) => !expected.includes(n.nodeId));
      const victim = nodes.find((n) => n.nodeId === expected[1]) as Daemon;
      const survivors = nodes.filter((n) => n !== victim);
      const rows = await nodesOf(members[0] as Daemon);
      expect(rows.filter((r) => r.keeper).map((r) => r.nodeId).sort()).toEqual([...expected].sort());

      // Acknowledged through a member that is not a keeper: the job and the run.
      const work = await Work.create();
      await okJson<JobView>(members[0] as Daemon, ['job', 'add', 'kept', '--cmd', work.cmd({ wait: true })]);
      const created = await okJson<InstanceView>(members[1] as Daemon, ['job', 'run', 'kept']);
      expect(created.targets).toEqual(ids);
      await work.waitStarted(ids, created.id);
      for (const n of nodes) await work.pgid(n.nodeId, created.id);

      victim.kill('SIGKILL');
      expect(await victim.waitForExit()).toEqual({ exitCode: null, signal: 'SIGKILL' });
      await waitForAgreement({ observers: survivors, alive: survivors, gone: [{ daemon: victim, state: 'dead' }] });
      // The next in line keeps now, on every survivor.
      const next = [leader, ...ids.filter((id) => id !== leader && id !== victim.nodeId).slice(0, 2)];
      await waitFor(async () => (await Promise.all(survivors.map(keepersOf))).every((k) => JSON.stringify(k) === JSON.stringify(next)), { what: 'a new keeper named by every survivor' });

      await work.release();
      const final = await waitForEnd(survivors, created.id, 60_000);
      expect(final.status, summarize(final)).toBe('failed');
      expect(subtaskOf(final, victim.nodeId)).toMatchObject({ status: 'failed', reason: 'node-lost' });
      for (const s of survivors) expect(subtaskOf(final, s.nodeId)).toMatchObject({ status: 'succeeded', attempt: 1, exitCode: 0 });
      for (const n of nodes) expect(runsOf(work, n.nodeId, created.id)).toEqual([1]);
      expectChecked(work, await instancesOf(survivors[0] as Daemon, 'kept'), survivors.map((s) => s.nodeId), [created.id]);

      // The job is everywhere; `instance show` prints the same on a member and on a keeper.
      for (const s of survivors) expect((await okJson<JobView>(s, ['job', 'show', 'kept'])).name).toBe('kept');
      // A member that is still no keeper, and the keeper chosen after the kill (it caught up).
      const member = survivors.find((s) => !next.includes(s.nodeId)) as Daemon;
      const keeper = survivors.find((s) => s.nodeId === next[2]) as Daemon;
      const onMember = await member.cli(['instance', 'show', created.id]);
      const onKeeper = await keeper.cli(['instance', 'show', created.id]);
      expectExit(onMember, EXIT.ok);
      expectExit(onKeeper, EXIT.ok);
      // Relative times ("3s ago") may tick between the two commands.
      const steady = (text: string) => text.replace(/\d+(\.\d+)?\s*(ms|s|m|h|d) ago/g, 'ago').replace(/in \d+(\.\d+)?\s*(ms|s|m|h|d)/g, 'in');
      expect(steady(onMember.stdout)).toBe(steady(onKeeper.stdout));
      // The member holds its own subtask only, and asked a keeper.
      const status = await okJson<StatusView>(member, ['status']);
      expect(status.isKeeper).toBe(false);
      expect(status.counters['replication.recordsNotHeld'] ?? 0).toBeGreaterThan(0);
    },
    SCENARIO_MS,
  );
});
