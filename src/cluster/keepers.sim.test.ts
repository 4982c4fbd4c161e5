// Keepers (issue 22; DESIGN.md, guarantee 6) on simulated nodes: the keepers hold every
// record, every other member the shared records and its own work only, and any node's API
// answers what a keeper answers. A keeper that dies is replaced by the next in line, which
// catches up; a member that stops being a keeper forgets the others' work.
import { describe, expect, it } from 'vitest';
import { holderOf } from '../records/scope.js';
import { SimCluster, replayHint } from '../testing/sim-cluster.js';

async function withSim(size: number, seed: number, scenario: (sim: SimCluster) => Promise<void>, config: Partial<SimCluster['config']> = {}): Promise<void> {
  const sim = new SimCluster({ seed, size, config });
  try {
    await scenario(sim);
    expect(sim.unjustifiedVerdicts(), 'node-lost verdicts against nodes that never failed').toEqual([]);
    const attempts = sim.executions.map((e) => `${e.instanceId}:${e.step ?? ''}#${e.attempt}@${e.nodeId}`);
    expect(attempts.length, 'an attempt started twice').toBe(new Set(attempts).size);
  } catch (err) {
    console.error(`simulation failed [seed ${seed}] ${replayHint(seed, 'src/cluster/keepers.sim.test.ts')}\n${sim.describe()}`);
    throw err;
  } finally {
    sim.dispose();
  }
}

async function formed(sim: SimCluster): Promise<void> {
  sim.start();
  const all = sim.ids();
  await sim.until(() => sim.agreed() && all.every((v) => all.every((s) => sim.membersSeenBy(v)[s] === 'alive')) && sim.converged(), 15_000, 'the cluster forming');
}

/** Other members' subtasks and steps node `id` holds. */
function othersWorkHeld(sim: SimCluster, id: string): number {
  return sim
    .store(id)
    .all()
    .filter((r) => {
      const holder = holderOf(r);
      return holder !== null && holder !== id;
    }).length;
}

describe('keepers', () => {
  it('a broadcast to 12 nodes: the keepers hold every result, a member its own; every node answers the same', () =>
    withSim(12, 1, async (sim) => {
      await formed(sim);
      const keepers = sim.node('n07').membership.keepers();
      expect(keepers).toEqual(['n01', 'n02', 'n03']);
      await sim.addJob('n09', 'all', { cmd: 'sleep:200' });
      const instance = await sim.runJob('n09', 'all');
      await sim.until(() => sim.converged() && sim.liveIds().every((id) => sim.progressSeenBy(id, instance.id)?.status === 'succeeded'), 10_000, 'the broadcast ending');
      for (const k of keepers) expect(sim.store(k).subtasksOf(instance.id).size).toBe(12);
      const members = sim.ids().filter((id) => !keepers.includes(id));
      for (const m of members) {
        expect([...sim.store(m).subtasksOf(instance.id).keys()], `${m} holds its own subtask only`).toEqual([m]);
        expect(othersWorkHeld(sim, m)).toBe(0);
        // Others' results reached it at most as gossip it dropped unread, never checked.
        expect(sim.node(m).replicator.counters.recordsForged).toBe(0);
      }
      // Every node's API answers what a keeper answers, a member by asking one.
      const shown = await sim.drive(Promise.all(sim.ids().map((id) => Promise.resolve(sim.plane(id).getInstance(instance.id)))), 'the instance on every node');
      for (const view of shown) expect(view).toEqual(shown[0]);
      expect(shown[0]?.subtasks.filter((s) => s.status === 'succeeded')).toHaveLength(12);
      const listed = await sim.drive(Promise.resolve(sim.plane('n12').listInstances({ limit: 10 })), 'the list on a member');
      expect(listed.items.map((i) => [i.id, i.status])).toEqual([[instance.id, 'succeeded']]);
      expect(sim.plane('n12').counters.asked).toBeGreaterThan(0);
      expect(sim.plane('n01').counters.answered).toBeGreaterThan(0);
    }));

  it('a keeper that dies mid-broadcast is replaced by the next in line, which catches up; the broadcast completes', () =>
    withSim(8, 2, async (sim) => {
      await formed(sim);
      await sim.addJob('n05', 'long', { cmd: 'sleep:3000' });
      const instance = await sim.runJob('n05', 'long');
      await sim.until(() => sim.store('n02').subtasksOf(instance.id).size === 8 && [...sim.store('n02').subtasksOf(instance.id).values()].every((s) => s.status === 'running'), 5_000, 'every subtask running, known to the keeper n02');
      sim.crash('n02');
      const live = sim.liveIds();
      await sim.until(() => live.every((id) => sim.node(id).membership.keepers().join() === 'n01,n03,n04'), 10_000, 'n04 the new keeper everywhere');
      await sim.until(() => sim.converged(live) && live.every((id) => sim.progressSeenBy(id, instance.id)?.status === 'failed'), 15_000, 'the broadcast ending');
      const view = sim.storeAnswering('n08');
      expect(view.subtask(instance.id, 'n02')).toMatchObject({ status: 'failed', reason: 'node-lost' });
      for (const id of live) expect(sim.store('n04').subtask(instance.id, id)).toMatchObject({ status: 'succeeded', reporter: id });
    }));

  it('a member that stops being a keeper forgets the others\' work once the handover time has passed', () =>
    withSim(6, 3, async (sim) => {
      await formed(sim);
      await sim.addJob('n06', 'all', { cmd: 'sleep:100' });
      const first = await sim.runJob('n06', 'all');
      await sim.until(() => sim.liveIds().every((id) => sim.progressSeenBy(id, first.id)?.status === 'succeeded') && sim.converged(), 10_000, 'the first broadcast ending');
      expect(othersWorkHeld(sim, 'n04')).toBe(0);
      sim.crash('n03');
      await sim.until(() => sim.liveIds().every((id) => sim.node(id).membership.keepers().join() === 'n01,n02,n04') && sim.converged(), 15_000, 'n04 keeping, caught up');
      expect(othersWorkHeld(sim, 'n04')).toBeGreaterThan(0);
      sim.restart('n03');
      await sim.until(() => sim.liveIds().every((id) => sim.node(id).membership.keepers().join() === 'n01,n02,n03'), 15_000, 'n03 keeping again');
      await sim.run(sim.config.keeperHandoverMs + 1_000);
      expect(othersWorkHeld(sim, 'n04')).toBe(0);
      await sim.until(() => sim.converged(), 10_000, 'one converged cluster');
      expect(sim.storeAnswering('n04').subtasksOf(first.id).size).toBe(6);
    }));

  it('a member prunes old instances as the keepers did: it cannot tell when an instance ended, a keeper tells it in anti-entropy', () =>
    withSim(
      6,
      4,
      async (sim) => {
        await formed(sim);
        await sim.addJob('n06', 'kept', { cmd: 'sleep:50' });
        const ids: string[] = [];
        for (let i = 0; i < 5; i++) {
          const instance = await sim.runJob('n06', 'kept');
          ids.push(instance.id);
          await sim.until(() => sim.progressSeenBy('n01', instance.id)?.status === 'succeeded', 10_000, `run ${i + 1} ending`);
        }
        // Retention keeps the newest 2 on the keepers; the members learn it and agree.
        await sim.until(() => sim.liveIds().every((id) => sim.store(id).instances().length === 2) && sim.converged(), 20_000, 'every node holding the newest 2');
        for (const id of sim.liveIds()) expect(sim.store(id).instances().map((i) => i.id).sort()).toEqual(ids.slice(3).sort());
        expect(sim.node('n05').replicator.counters.prunedByPeers).toBeGreaterThan(0);
      },
      { retainInstancesPerJob: 2, retentionIntervalMs: 1_000 },
    ));

  it('a peer that wrongly says it pruned a running instance: a member keeps it while its own part runs, and the keepers keep it all', () =>
    withSim(6, 10, async (sim) => {
      await formed(sim);
      await sim.addJob('n06', 'long', { cmd: 'sleep:3000' });
      const instance = await sim.runJob('n06', 'long');
      await sim.until(() => sim.store('n05').subtask(instance.id, 'n05')?.status === 'running', 5_000, 'n05 running its subtask');
      // A peer that pruned the running instance (a bug, or a lying peer) says so in anti-entropy.
      sim.store('n04').removeInstance(instance.id);
      const replicator = sim.node('n05').replicator;
      const syncs = replicator.counters.syncsCompleted;
      // An exchange is skipped while the peer pulls from n05, or one with it runs already: tried until one completes.
      for (let i = 0; i < 20 && replicator.counters.syncsCompleted === syncs; i++) {
        await sim.drive(replicator.syncWith('n04'), 'n05 syncing with n04');
        if (replicator.counters.syncsCompleted === syncs) await sim.run(250);
      }
      expect(replicator.counters.syncsCompleted).toBeGreaterThan(syncs);
      expect(sim.node('n05').replicator.counters.prunedByPeers).toBe(0);
      expect(sim.store('n05').instance(instance.id)).toBeDefined();
      // (n04 dropped its own running part with the instance: the broadcast waits on it, not on n05.)
      await sim.until(() => ['n01', 'n02', 'n03'].every((k) => sim.store(k).subtask(instance.id, 'n05')?.status === 'succeeded'), 10_000, 'n05 succeeded, known to the keepers');
      // Once its own part ended, a member may take the word (its copy is not what anyone is answered from); the keepers never do.
      await sim.run(5_000);
      for (const k of ['n01', 'n02', 'n03']) expect(sim.store(k).subtasksOf(instance.id).size, `${k} keeps every result`).toBe(6);
    }));
});

/** A formed cluster and the job `all` (a 100 ms broadcast, defined on n02), held by `target` too. */
async function withBroadcastJob(sim: SimCluster, target: string): Promise<void> {
  await formed(sim);
  await sim.addJob('n02', 'all', { cmd: 'sleep:100' });
  await sim.until(() => sim.store(target).job('all') !== undefined, 5_000, `the job reaching ${target}`);
}

// A broadcast's pending subtasks are implied by its instance (records/rollout.ts
// impliesSubtasks): none is written, and a target starts its own as soon as the instance
// reaches it live. One that reaches it by anti-entropy (it was cut off, or down, when the
// instance was created) waits for a keeper's word first: the leader may have given it a
// node-lost verdict meanwhile, and it must not run after that.
describe('pending subtasks implied by the instance', () => {
  it('a broadcast writes no pending subtask: each target starts from the instance alone', () =>
    withSim(6, 5, async (sim) => {
      await formed(sim);
      const pendingWritten: string[] = [];
      for (const id of sim.ids()) {
        sim.store(id).onChange((records) => {
          for (const r of records) if (r.kind === 'subtask' && r.record.status === 'pending') pendingWritten.push(`${r.record.nodeId} at ${id}`);
        });
      }
      await sim.addJob('n04', 'all', { cmd: 'sleep:100' });
      const instance = await sim.runJob('n04', 'all');
      await sim.until(() => sim.converged() && sim.liveIds().every((id) => sim.progressSeenBy(id, instance.id)?.status === 'succeeded'), 10_000, 'the broadcast ending');
      expect(pendingWritten).toEqual([]);
      expect(sim.executions.filter((e) => e.instanceId === instance.id).map((e) => e.nodeId).sort()).toEqual(sim.ids().sort());
      // While it waited, a target's subtask showed pending everywhere (implied, not stored).
      expect(sim.storeAnswering('n05').subtaskOrImplied(instance, 'n05')).toMatchObject({ status: 'succeeded', reporter: 'n05' });
    }));

  it('a target cut off when the instance was created, declared dead, then back: it gets the instance by anti-entropy and never runs its node-lost subtask', () =>
    withSim(6, 6, async (sim) => {
      await withBroadcastJob(sim, 'n06');
      sim.partition(['n06'], ['n01', 'n02', 'n03', 'n04', 'n05']);
      const instance = await sim.runJob('n02', 'all');
      expect(instance.targets).toContain('n06');
      await sim.until(() => sim.store('n01').subtask(instance.id, 'n06')?.reason === 'node-lost', 20_000, 'the node-lost verdict on n06');
      await sim.until(() => sim.progressSeenBy('n01', instance.id)?.status === 'failed', 10_000, 'the broadcast ending');
      sim.heal();
      await sim.until(() => sim.store('n06').instance(instance.id) !== undefined && sim.store('n06').subtask(instance.id, 'n06') !== undefined && sim.converged(), 20_000, 'n06 catching up');
      // Long enough for a start to show: the worker polls every workerTickMs.
      await sim.run(3_000);
      expect(sim.executions.filter((e) => e.instanceId === instance.id && e.nodeId === 'n06')).toEqual([]);
      expect(sim.store('n06').subtask(instance.id, 'n06')).toMatchObject({ status: 'failed', reason: 'node-lost' });
      expect(sim.progressSeenBy('n06', instance.id)?.status).toBe('failed');
    }));

  it('a target down when the instance was created and restarted: the node-lost verdict reaches it before anything starts', () =>
    withSim(6, 7, async (sim) => {
      await withBroadcastJob(sim, 'n05');
      const instance = await sim.runJob('n02', 'all');
      sim.crash('n05'); // before the instance reaches it (gossip takes a few virtual ms)
      expect(instance.targets).toContain('n05');
      await sim.until(() => sim.store('n01').subtask(instance.id, 'n05')?.reason === 'node-lost' && sim.progressSeenBy('n01', instance.id)?.status === 'failed', 20_000, 'the node-lost verdict on n05');
      sim.restart('n05', 'n01');
      await sim.until(() => sim.store('n05').subtask(instance.id, 'n05') !== undefined && sim.converged(), 20_000, 'n05 catching up');
      await sim.run(3_000);
      expect(sim.executions.filter((e) => e.instanceId === instance.id && e.nodeId === 'n05')).toEqual([]);
      expect(sim.store('n05').subtask(instance.id, 'n05')).toMatchObject({ status: 'failed', reason: 'node-lost' });
    }));

  it('a target frozen when the instance was created, declared dead, then thawed: what waited in its sockets is not taken as live, and its node-lost subtask never runs', () =>
    withSim(6, 9, async (sim) => {
      await formed(sim);
      sim.net.configure({ frozenReceiversBuffer: true });
      await sim.addJob('n02', 'all', { cmd: 'sleep:100' });
      await sim.until(() => sim.store('n06').job('all') !== undefined, 5_000, 'the job reaching n06');
      sim.freeze('n06');
      const instance = await sim.runJob('n02', 'all');
      expect(instance.targets).toContain('n06');
      await sim.until(() => sim.store('n01').subtask(instance.id, 'n06')?.reason === 'node-lost' && sim.progressSeenBy('n01', instance.id)?.status === 'failed', 20_000, 'the node-lost verdict on n06');
      sim.thaw('n06');
      await sim.until(() => sim.store('n06').subtask(instance.id, 'n06') !== undefined && sim.converged(), 20_000, 'n06 catching up');
      await sim.run(3_000);
      expect(sim.node('n06').membership.counters.stallsDetected).toBeGreaterThan(0);
      expect(sim.executions.filter((e) => e.instanceId === instance.id && e.nodeId === 'n06')).toEqual([]);
      expect(sim.store('n06').subtask(instance.id, 'n06')).toMatchObject({ status: 'failed', reason: 'node-lost' });
    }));

  it('a target cut off too briefly to be declared dead gets the instance by anti-entropy, asks a keeper, and runs its subtask once', () =>
    withSim(6, 8, async (sim) => {
      await withBroadcastJob(sim, 'n06');
      sim.partition(['n06'], ['n01', 'n02', 'n03', 'n04', 'n05']);
      const instance = await sim.runJob('n02', 'all');
      await sim.run(300);
      sim.heal();
      await sim.until(() => sim.converged() && sim.liveIds().every((id) => sim.progressSeenBy(id, instance.id)?.status === 'succeeded'), 20_000, 'the broadcast ending');
      expect(sim.executions.filter((e) => e.instanceId === instance.id && e.nodeId === 'n06')).toHaveLength(1);
      expect(sim.node('n06').replicator.counters.workSyncs).toBeGreaterThan(0);
    }));
});
