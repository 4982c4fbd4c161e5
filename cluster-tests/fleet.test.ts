// A fleet, not five (issue 9): 25 real daemons on this machine, a broadcast to all of them,
// and in the middle of it three daemons killed with SIGKILL (the leader among them) and
// one frozen with SIGSTOP. The broadcast checker (src/testing/checker.ts) compares every
// start the job commands recorded with the final records: no (instance, node, attempt)
// ran twice, only owners ran, the dead ones are node-lost under their own ids, and
// everything ends; the frozen one, thawed, reports its own result.
import { describe, expect, it } from 'vitest';
import type { InstanceView, JobView } from '../src/api/views.js';
import {
  Work,
  expectChecked,
  instancesOf,
  okJson,
  runsOf,
  sortById,
  startCluster,
  subtaskOf,
  summarize,
  useProcessCleanup,
  waitForAgreement,
  waitForEnd,
  waitForInstance,
  type Daemon,
} from './support/index.js';

useProcessCleanup();

const FLEET = 25;
/** Starting 25 daemons at once on a loaded 2-core machine takes a while; every wait inside has its own deadline. */
const SCENARIO_MS = 420_000;

describe('a fleet of 25 daemons', () => {
  it(
    'a broadcast survives three kills (the leader among them) and a freeze in its middle: each share stays with its node, runs at most once, and the instance ends',
    async () => {
      const nodes = sortById(await startCluster({ prefix: 'fl', count: FLEET, parallel: true, daemon: { logLevel: 'info', readyTimeoutMs: 120_000 } }));
      const leaderId = (await waitForAgreement({ alive: nodes, timeoutMs: 120_000, intervalMs: 500, what: `${FLEET} daemons agreeing` })).leader;
      const leader = nodes.find((n) => n.nodeId === leaderId) as Daemon;
      const followers = nodes.filter((n) => n !== leader);
      const killed = [leader, followers[3], followers[11]] as Daemon[];
      const frozen = followers[17] as Daemon;
      const survivors = nodes.filter((n) => !killed.includes(n) && n !== frozen);
      const everyId = nodes.map((n) => n.nodeId).sort();

      const work = await Work.create();
      await okJson<JobView>(survivors[0] as Daemon, ['job', 'add', 'fleet', '--cmd', work.cmd({ wait: true })]);
      const created = await okJson<InstanceView>(survivors[1] as Daemon, ['job', 'run', 'fleet']);
      expect(created.targets).toEqual(everyId);
      await work.waitStarted(everyId, created.id, 1, 90_000);

      for (const v of killed) v.kill('SIGKILL');
      frozen.freeze();
      for (const v of killed) expect(await v.waitForExit()).toEqual({ exitCode: null, signal: 'SIGKILL' });

      // A new leader among the survivors gives the four lost shares their verdict, each under
      // its own node id, while every survivor's own share keeps running.
      const gone = [...killed, frozen];
      const during = await waitForInstance(
        survivors,
        created.id,
        (i) => gone.every((v) => subtaskOf(i, v.nodeId).reason === 'node-lost'),
        { what: 'the killed and the frozen shares to be node-lost on every survivor', timeoutMs: 60_000 },
      );
      for (const view of during) for (const s of survivors) expect(subtaskOf(view, s.nodeId).status, summarize(view)).toBe('running');

      await work.release();
      const final = await waitForEnd(survivors, created.id, 90_000);
      expect(final.status, summarize(final)).toBe('failed');
      expect(final.subtasks.map((s) => s.nodeId)).toEqual(everyId);
      for (const v of gone) expect(subtaskOf(final, v.nodeId), summarize(final)).toMatchObject({ nodeId: v.nodeId, status: 'failed', reason: 'node-lost', attempt: 1 });
      for (const s of survivors) {
        expect(subtaskOf(final, s.nodeId)).toMatchObject({ status: 'succeeded', reason: null, attempt: 1, exitCode: 0 });
        expect(runsOf(work, s.nodeId, created.id)).toEqual([1]);
      }
      for (const v of gone) expect(runsOf(work, v.nodeId, created.id)).toEqual([1]);
      expectChecked(work, await instancesOf(survivors[0] as Daemon, 'fleet'), survivors.map((s) => s.nodeId), [created.id]);

      // Thawed, the frozen node reports what really happened (its command ended while it
      // slept): the owner's own report outranks the verdict, and it still ran only once.
      frozen.thaw();
      const after = await waitForInstance(
        [...survivors, frozen],
        created.id,
        (i) => subtaskOf(i, frozen.nodeId).reason !== 'node-lost',
        { what: 'the thawed node to report its own result everywhere', timeoutMs: 90_000 },
      );
      for (const view of after) expect(subtaskOf(view, frozen.nodeId)).toMatchObject({ status: 'succeeded', attempt: 1 });
      expect(runsOf(work, frozen.nodeId, created.id)).toEqual([1]);
      expectChecked(work, await instancesOf(survivors[0] as Daemon, 'fleet'), [...survivors, frozen].map((s) => s.nodeId), [created.id]);
    },
    SCENARIO_MS,
  );
});
