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
});
