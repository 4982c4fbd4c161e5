// Rolling broadcasts under failure (issue 11), in virtual time: a leader killed in the
// middle of a rollout, a partition during a wave, a thaw after an abort, pause and resume.
// Each run ends with the broadcast checker, rollout invariants included (never more than
// --max-parallel released and unended, waves in order, no release after an abort, no
// subtask released twice), over every command start the fake executor saw.
import { describe, expect, it } from 'vitest';
import { instanceView, type InstanceView } from '../api/views.js';
import { isInstanceFinished } from '../records/status.js';
import type { JobSpec } from '../records/types.js';
import { checkBroadcasts, peakRunning, rolloutContested, type CheckInput } from '../testing/checker.js';
import { SimCluster } from '../testing/sim-cluster.js';

async function formed(size: number, seed: number): Promise<SimCluster> {
  const sim = new SimCluster({ seed, size, network: { lossRate: 0.02, minDelayMs: 1, maxDelayMs: 10 } });
  sim.start('all');
  await sim.until(() => sim.agreed() && sim.agreedLeader() !== null && sim.liveIds().every((v) => Object.values(sim.membersSeenBy(v)).every((s) => s === 'alive')), 15_000, 'the cluster forming');
  return sim;
}

/** Runs `test` on a formed cluster, disposed of afterwards whatever happened. */
async function inFormed(size: number, seed: number, test: (sim: SimCluster) => Promise<void>): Promise<void> {
  const sim = await formed(size, seed);
  try {
    await test(sim);
  } finally {
    sim.dispose();
  }
}

function viewOf(sim: SimCluster, on: string, id: string): InstanceView {
  const store = sim.store(on);
  const instance = store.instance(id);
  if (!instance) throw new Error(`instance ${id} is missing at ${on}`);
  return instanceView(instance, store.factsOf(instance), () => null);
}

/** Runs the checker over one instance; returns its view. Fails the test on any violation, and if the rollout checks did not apply. */
function checked(sim: SimCluster, id: string, expectRolloutChecks = true): InstanceView {
  const on = sim.liveIds()[0] as string;
  const view = viewOf(sim, on, id);
  const input: Omit<CheckInput, 'instances'> = {
    history: sim.executions.filter((e) => e.step === null).map((e) => ({ nodeId: e.nodeId, instanceId: e.instanceId, attempt: e.attempt })),
    survivors: new Set(sim.ids().filter((n) => !sim.disrupted.has(n))),
    expectedInstances: [id],
    releases: sim.deliveredReleases(),
    verdicts: sim.verdicts,
    contested: [...sim.contested, ...sim.partitions],
  };
  expect(checkBroadcasts({ ...input, instances: [view] })).toEqual([]);
  if (expectRolloutChecks) expect(rolloutContested(view, input), 'the rollout checks applied (no two leaders during the instance)').toBe(false);
  return view;
}

const endedEverywhere = (sim: SimCluster, id: string) => () => sim.converged() && sim.liveIds().every((n) => isInstanceFinished(sim.progressSeenBy(n, id)?.status ?? 'pending'));

async function runOn(sim: SimCluster, spec: Partial<JobSpec>): Promise<string> {
  const leader = sim.agreedLeader() as string;
  await sim.addJob(leader, 'roll', spec);
  return (await sim.runJob(leader, 'roll')).id;
}

describe('rolling broadcasts in the simulator', () => {
  it('--max-parallel 2 over 6 nodes: never more than 2 at once, all succeed', () =>
    inFormed(6, 101, async (sim) => {
      const id = await runOn(sim, { cmd: 'sleep:300', maxParallel: 2 });
      await sim.until(endedEverywhere(sim, id), 30_000, 'the rollout ending');
      const view = checked(sim, id);
      expect(view.status).toBe('succeeded');
      expect(peakRunning(view)).toBe(2);
      expect(view.subtasks.every((s) => s.released)).toBe(true);
    }));

  it('a leader killed in the middle of a rollout: the next leader continues it within --max-parallel, releasing nothing twice', () =>
    inFormed(6, 102, async (sim) => {
      const leader = sim.agreedLeader() as string;
      const id = await runOn(sim, { cmd: 'sleep:400', maxParallel: 2, waves: [1, '100%'] });
      // Wait until the second wave is under way (the first node ran alone), then kill the leader.
      await sim.until(() => viewOf(sim, leader, id).subtasks.filter((s) => s.released).length >= 3, 20_000, 'the second wave started');
      sim.crash(leader);
      await sim.until(() => { const l = sim.agreedLeader(); return l !== null && l !== leader; }, 20_000, 'a new leader');
      await sim.until(endedEverywhere(sim, id), 60_000, 'the rollout ending under the new leader');
      const view = checked(sim, id);
      const mine = view.subtasks.find((s) => s.nodeId === leader);
      // The killed leader's own subtask is node-lost (if it was released and unended) or never ran; the others all succeeded.
      expect(view.subtasks.filter((s) => s.nodeId !== leader).map((s) => s.status)).toEqual(Array(5).fill('succeeded'));
      expect(mine?.status === 'succeeded' || mine?.reason === 'node-lost').toBe(true);
      expect(peakRunning(view)).toBeLessThanOrEqual(2);
      const releasesAfter = sim.deliveredReleases().filter((r) => r.instanceId === id && r.by !== leader);
      expect(releasesAfter.length, 'the new leader released the rest').toBeGreaterThan(0);
    }));

  it('waves run in order: 1, then up to 50 %, then the rest', () =>
    inFormed(6, 103, async (sim) => {
      const id = await runOn(sim, { cmd: 'sleep:200', waves: [1, '50%', '100%'] });
      await sim.until(endedEverywhere(sim, id), 30_000, 'the rollout ending');
      const view = checked(sim, id);
      expect(view.rollout?.waveSizes).toEqual([1, 2, 3]);
      expect(view.subtasks.map((s) => s.wave)).toEqual([1, 2, 2, 3, 3, 3]);
      const starts = (wave: number) => view.subtasks.filter((s) => s.wave === wave).map((s) => Date.parse(s.startedAt as string));
      const ends = (wave: number) => view.subtasks.filter((s) => s.wave === wave).map((s) => Date.parse(s.finishedAt as string));
      expect(Math.min(...starts(2))).toBeGreaterThanOrEqual(Math.max(...ends(1)));
      expect(Math.min(...starts(3))).toBeGreaterThanOrEqual(Math.max(...ends(2)));
    }));

  it('--max-failures 1: the second failure stops the rollout; unreleased subtasks end aborted, running ones finish, the instance fails', () =>
    inFormed(6, 104, async (sim) => {
      const ids = sim.ids().sort();
      const id = await runOn(sim, { cmd: `sleep:200 failon:${ids[0]},${ids[1]}`, maxParallel: 1, maxFailures: 1 });
      await sim.until(endedEverywhere(sim, id), 30_000, 'the rollout ending');
      const view = checked(sim, id);
      expect(view.status).toBe('failed');
      expect(view.rollout?.aborted).toBe(true);
      expect(view.subtasks.slice(0, 2).map((s) => [s.status, s.reason])).toEqual([['failed', 'exit-code'], ['failed', 'exit-code']]);
      expect(view.subtasks.slice(2).map((s) => [s.status, s.reason, s.released])).toEqual(Array(4).fill(['cancelled', 'aborted', false]));
      expect(sim.executions.filter((e) => e.instanceId === id)).toHaveLength(2);
    }));

  it('--min-success: succeeded with one failure when 5 of 6 are enough, per-node results as they happened', () =>
    inFormed(6, 105, async (sim) => {
      const ids = sim.ids().sort();
      const id = await runOn(sim, { cmd: `sleep:50 failon:${ids[3]}`, minSuccess: 5 });
      await sim.until(endedEverywhere(sim, id), 30_000, 'the instance ending');
      const view = checked(sim, id);
      expect(view.status).toBe('succeeded');
      expect(view.counts).toMatchObject({ succeeded: 5, failed: 1 });
      expect(view.subtasks[3]?.status).toBe('failed');
    }));

  it('a partition during a wave: every subtask still runs at most once and the instance ends after the heal', () =>
    inFormed(6, 106, async (sim) => {
      const leader = sim.agreedLeader() as string;
      const id = await runOn(sim, { cmd: 'sleep:800', waves: [2, '100%'], maxParallel: 3 });
      await sim.until(() => viewOf(sim, leader, id).subtasks.filter((s) => s.released).length >= 3, 20_000, 'the second wave started');
      const ids = sim.ids();
      sim.partition(ids.slice(0, 2), ids.slice(2));
      await sim.run(6_000);
      sim.heal();
      await sim.until(endedEverywhere(sim, id), 60_000, 'the instance ending after the heal');
      const view = checked(sim, id, false);
      expect(isInstanceFinished(view.status)).toBe(true);
      expect(view.subtasks.every((s) => s.status !== 'pending')).toBe(true);
    }));

  it('a thaw after an abort: the frozen node reports its own result, nothing more is released', () =>
    inFormed(6, 107, async (sim) => {
      const ids = sim.ids().sort();
      const leader = sim.agreedLeader() as string;
      // The first two targets run together; the one that is not the leader freezes while the other fails: the rollout stops.
      const frozen = ids.slice(0, 2).find((n) => n !== leader) as string;
      const failing = ids.slice(0, 2).find((n) => n !== frozen) as string;
      const id = await runOn(sim, { cmd: `sleep:3000 failon:${failing}`, maxParallel: 2, maxFailures: 0 });
      await sim.until(() => viewOf(sim, leader, id).subtasks.filter((s) => s.status === 'running').length === 2, 10_000, 'two running');
      sim.freeze(frozen);
      await sim.until(() => viewOf(sim, leader, id).rollout?.aborted === true, 20_000, 'the abort');
      const releasedAtAbort = viewOf(sim, leader, id).subtasks.filter((s) => s.released).length;
      sim.thaw(frozen);
      await sim.until(endedEverywhere(sim, id), 60_000, 'the instance ending after the thaw');
      const view = checked(sim, id);
      expect(view.status).toBe('failed');
      expect(view.subtasks.filter((s) => s.released)).toHaveLength(releasedAtAbort);
      expect(view.subtasks.filter((s) => s.reason === 'aborted')).toHaveLength(4);
      expect(sim.executions.filter((e) => e.instanceId === id).map((e) => e.nodeId).sort()).toEqual([failing, frozen].sort());
    }));

  it('pause holds back releases (running ones finish); resume continues', () =>
    inFormed(4, 108, async (sim) => {
      const leader = sim.agreedLeader() as string;
      const member = sim.liveIds().find((n) => n !== leader) as string;
      const id = await runOn(sim, { cmd: 'sleep:300', maxParallel: 1 });
      await sim.until(() => sim.store(member).instance(id) !== undefined, 5_000, 'the member learning of the instance');
      await sim.drive(sim.service(member).pauseInstance(id, true), 'pause');
      const released = () => viewOf(sim, leader, id).subtasks.filter((s) => s.released).length;
      await sim.until(() => viewOf(sim, leader, id).subtasks.some((s) => s.status === 'succeeded'), 10_000, 'the running one finishing');
      const held = released();
      await sim.run(2_000);
      expect(released()).toBe(held);
      expect(viewOf(sim, leader, id).paused).toBe(true);
      await sim.drive(sim.service(member).pauseInstance(id, false), 'resume');
      await sim.until(endedEverywhere(sim, id), 30_000, 'the instance ending after resume');
      const view = checked(sim, id);
      expect(view.status).toBe('succeeded');
      expect(view.paused).toBe(false);
    }));

  it('a cancel of a rolling broadcast: the running one is killed, the unreleased ones end cancelled and never run', () =>
    inFormed(5, 109, async (sim) => {
      const leader = sim.agreedLeader() as string;
      const member = sim.liveIds().find((n) => n !== leader) as string;
      const id = await runOn(sim, { cmd: 'sleep:2000', maxParallel: 1 });
      await sim.until(() => viewOf(sim, leader, id).subtasks.some((s) => s.status === 'running') && sim.store(member).instance(id) !== undefined, 10_000, 'the first running');
      await sim.cancel(member, id);
      await sim.until(endedEverywhere(sim, id), 30_000, 'the instance ending');
      const view = checked(sim, id);
      expect(view.status).toBe('cancelled');
      expect(view.subtasks.map((s) => [s.status, s.reason, s.released])).toEqual([['cancelled', 'cancelled', true], ...Array(4).fill(['cancelled', 'cancelled', false])]);
      expect(sim.executions.filter((e) => e.instanceId === id)).toHaveLength(1);
    }));
});
