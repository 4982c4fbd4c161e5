// Reaping dead and left members (issue 21, point 6), rule by rule, on a few simulated nodes:
// a member gone for reapAfterMs is forgotten everywhere, not before; its old record and old
// news do not come back from a node that still holds them; a new start of it, or the same
// process back from a freeze longer than reapAfterMs, is a member again; a member whose
// work the leader has not settled yet waits; and an instance that names a reaped node still
// shows it. The churn of thousands of fresh identities is in churn.sim.test.ts.
import { describe, expect, it } from 'vitest';
import type { AnyRecord } from '../records/types.js';
import { SWIM_GOSSIP, SWIM_STATE } from './membership.js';
import type { SwimStateMessage } from './swim.js';
import { SimCluster, replayHint } from '../testing/sim-cluster.js';

const REAP_AFTER_MS = 10_000;
/** Small enough that a push/pull period stays under reapAfterMs (config.ts checks it). */
const PUSH_PULL_MS = 2_000;

async function withSim(scenario: (sim: SimCluster) => Promise<void>, size = 5, seed = 1): Promise<void> {
  const sim = new SimCluster({ seed, size, config: { reapAfterMs: REAP_AFTER_MS, pushPullIntervalMs: PUSH_PULL_MS } });
  try {
    await scenario(sim);
    expect(sim.unjustifiedVerdicts(), 'node-lost verdicts against nodes that never failed').toEqual([]);
  } catch (err) {
    console.error(`simulation failed [seed ${seed}] ${replayHint(seed, 'src/cluster/reap.sim.test.ts')}\n${sim.describe()}`);
    throw err;
  } finally {
    sim.dispose();
  }
}

async function formed(sim: SimCluster): Promise<void> {
  sim.start();
  const all = sim.ids();
  await sim.until(() => sim.agreed() && all.every((v) => all.every((s) => sim.membersSeenBy(v)[s] === 'alive')), 15_000, 'the cluster forming');
}

/** `subject` is reaped at `viewer`: no record, no failure-detector entry, a tombstone. */
function reapedAt(sim: SimCluster, viewer: string, subject: string): boolean {
  return sim.store(viewer).member(subject) === undefined && sim.store(viewer).reapedAt(subject) !== undefined && !(subject in sim.membersSeenBy(viewer));
}

describe('reaping dead and left members', () => {
  it('forgets a member reapAfterMs after it died or left, not before, on every node, and a new start of it is a member again', async () => {
    await withSim(async (sim) => {
      await formed(sim);
      const others = ['n01', 'n02', 'n03'];
      sim.crash('n05');
      await sim.leave('n04');
      const goneAtMs = sim.now();
      await sim.until(() => others.every((v) => sim.membersSeenBy(v).n05 === 'dead' && sim.membersSeenBy(v).n04 === 'left'), 10_000, 'n05 dead and n04 left everywhere');
      // Still shown (chorus nodes) and exchanged until reapAfterMs has passed.
      await sim.run(REAP_AFTER_MS - (sim.now() - goneAtMs) - 500);
      for (const v of others) expect(sim.membersSeenBy(v)).toMatchObject({ n04: 'left', n05: 'dead' });
      await sim.until(() => others.every((v) => reapedAt(sim, v, 'n04') && reapedAt(sim, v, 'n05')), 10_000, 'n04 and n05 reaped everywhere');
      for (const v of others) {
        const node = sim.node(v);
        expect(node.membership.heldMembers()).toBe(2);
        expect(node.membership.counters.reaped).toBe(2);
        expect(sim.store(v).members()).toHaveLength(3);
        expect(sim.service(v).nodes().map((n) => n.nodeId)).toEqual(['n01', 'n02', 'n03']);
        // Whatever still names it (a step, a webhook delivery) finds it gone.
        expect(node.membership.stateOf('n05')).toBe('dead');
        expect(node.bounds().find((b) => b.name === 'members')).toMatchObject({ used: 3 });
      }
      // The host restarts with its data (a new incarnation): a member again, everywhere.
      sim.restart('n05');
      await sim.until(() => others.every((v) => sim.membersSeenBy(v).n05 === 'alive' && sim.store(v).member('n05')?.incarnation === 2), 10_000, 'n05 back');
      for (const v of others) expect(sim.store(v).reapedAt('n05')).toBeUndefined();
      // n05 came back holding n04's record from before it left: to n05 it is a member known from
      // records only, which does not answer; n05 holds it dead, and reaps it in its own time.
      await sim.until(() => sim.agreed() && reapedAt(sim, 'n05', 'n04'), REAP_AFTER_MS + 10_000, 'n05 forgetting n04 too');
      expect(sim.converged()).toBe(true);
    });
  });

  it('takes back no old record and no old news from a node that has not reaped the member yet', async () => {
    await withSim(async (sim) => {
      await formed(sim);
      const others = ['n01', 'n02', 'n03'];
      const resurrections: string[] = [];
      const reapedOnce = new Set<string>();
      for (const v of others) {
        sim.store(v).onChange((records: AnyRecord[]) => {
          for (const r of records) if (r.kind === 'member' && r.record.nodeId === 'n05' && sim.store(v).reapedAt('n05') === undefined && reapedOnce.has(v)) resurrections.push(`${v} took n05's record back at +${sim.now()}`);
        });
      }
      sim.crash('n05');
      await sim.until(() => ['n01', 'n02', 'n03', 'n04'].every((v) => sim.membersSeenBy(v).n05 === 'dead'), 10_000, 'n05 dead everywhere');
      // n04 goes down holding n05's record and its death, and comes back after the others forgot n05.
      sim.crash('n04');
      await sim.until(() => others.every((v) => reapedAt(sim, v, 'n05')), REAP_AFTER_MS + 10_000, 'n05 reaped by the others');
      for (const v of others) reapedOnce.add(v);
      expect(sim.store('n04').member('n05')).toBeDefined();
      sim.restart('n04');
      // n04 syncs its records (n05's among them) and push/pulls its view (n05 dead, once it finds it silent) for a while.
      await sim.until(() => others.every((v) => sim.membersSeenBy(v).n04 === 'alive'), 10_000, 'n04 back');
      await sim.run(2 * REAP_AFTER_MS);
      expect(resurrections).toEqual([]);
      for (const v of others) expect(reapedAt(sim, v, 'n05'), `${v} holds n05 again`).toBe(true);
      // n04 reaps it in its own time: by then every node has forgotten it.
      expect(reapedAt(sim, 'n04', 'n05')).toBe(true);
      expect(sim.converged()).toBe(true);
    });
  });

  it('ignores news of a reaped member at the incarnation it was reaped at or an older one, and tells a peer that still holds it alive that it is dead', async () => {
    await withSim(async (sim) => {
      await formed(sim);
      sim.crash('n05');
      await sim.until(() => ['n01', 'n02', 'n03', 'n04'].every((v) => reapedAt(sim, v, 'n05')), REAP_AFTER_MS + 10_000, 'n05 reaped');
      const tomb = sim.store('n01').reapedAt('n05');
      if (!tomb) throw new Error('no tombstone for n05 at n01');
      const reapedInc = [tomb.incarnation, tomb.refutes];
      const selfInc = [sim.node('n02').selfRecord.incarnation, 0];
      const held = sim.node('n01').membership.heldMembers();
      // Stale news relayed by a peer (as from one that has not reaped n05 yet), at the same and at an older incarnation.
      for (const update of [
        { node: 'n05', state: 'dead', inc: reapedInc },
        { node: 'n05', state: 'suspect', inc: reapedInc, by: 'n03' },
        { node: 'n05', state: 'alive', inc: reapedInc },
        { node: 'n05', state: 'dead', inc: [0, 0] },
      ]) {
        await sim.drive(sim.node('n02').rpc.call('n01', SWIM_GOSSIP, { self: selfInc, you: null, updates: [update] }, 1000), 'gossip to n01');
      }
      expect(sim.node('n01').membership.heldMembers()).toBe(held);
      expect(reapedAt(sim, 'n01', 'n05')).toBe(true);
      // A push/pull from a peer that holds n05 alive: the answer says n05 is dead, at the incarnation it was reaped at.
      const reply = (await sim.drive(sim.node('n02').rpc.call('n01', SWIM_STATE, { self: selfInc, states: [{ node: 'n05', state: 'alive', inc: reapedInc }] }, 1000), 'push/pull with n01')) as SwimStateMessage;
      expect(reply.states.filter((u) => u.node === 'n05')).toEqual([{ node: 'n05', state: 'dead', inc: reapedInc }]);
      expect(reapedAt(sim, 'n01', 'n05')).toBe(true);
    });
  });

  it('a process frozen longer than reapAfterMs (the same start) is told it is dead when it speaks, refutes, and is a member again', async () => {
    await withSim(async (sim) => {
      await formed(sim);
      const others = ['n01', 'n02', 'n04', 'n05'];
      sim.freeze('n03');
      await sim.until(() => others.every((v) => reapedAt(sim, v, 'n03')), REAP_AFTER_MS + 15_000, 'n03 reaped');
      sim.thaw('n03');
      await sim.until(
        () => sim.agreed() && others.every((v) => sim.membersSeenBy(v).n03 === 'alive' && sim.store(v).member('n03')?.incarnation === 1 && sim.store(v).reapedAt('n03') === undefined),
        20_000,
        'n03 back in the same start',
      );
      expect(sim.node('n03').membership.counters.refutations).toBeGreaterThan(0);
    });
  });

  it('keeps a member whose work the leader has not settled yet, and an instance still shows a subtask of a reaped node', async () => {
    await withSim(async (sim) => {
      await formed(sim);
      // The pre step holds the subtasks back for 20 s: the leader gives n05's target its
      // node-lost verdict only once the pre step is done, so n05 must not be reaped before.
      await sim.addJob('n01', 'slow-pre', { cmd: 'sleep:100', pre: 'sleep:20000' });
      const instance = await sim.runJob('n01', 'slow-pre');
      expect(instance.targets).toContain('n05');
      sim.crash('n05');
      const crashedAtMs = sim.now();
      const others = ['n01', 'n02', 'n03', 'n04'];
      await sim.until(() => others.every((v) => sim.membersSeenBy(v).n05 === 'dead'), 10_000, 'n05 dead everywhere');
      await sim.run(REAP_AFTER_MS + 3_000 - (sim.now() - crashedAtMs));
      // The keepers hold every record, so they know n05's work is open (the others hold only their own, and reap it).
      const keepers = others.filter((v) => sim.node(v).replicator.isKeeper());
      expect(keepers).toContain(sim.agreedLeader());
      for (const v of keepers) expect(sim.membersSeenBy(v).n05, `${v} reaped n05 with its target unsettled`).toBe('dead');
      await sim.until(() => others.every((v) => sim.progressSeenBy(v, instance.id)?.status === 'failed'), 30_000, 'the instance ending');
      await sim.until(() => others.every((v) => reapedAt(sim, v, 'n05')), 10_000, 'n05 reaped once its work is settled');
      for (const v of others) {
        const view = await sim.drive(Promise.resolve(sim.plane(v).getInstance(instance.id)), `the instance as ${v} answers`);
        expect(view.subtasks.find((s) => s.nodeId === 'n05')).toMatchObject({ nodeId: 'n05', nodeName: null, status: 'failed', reason: 'node-lost' });
        expect(view.subtasks.find((s) => s.nodeId === 'n01')).toMatchObject({ nodeName: 'sim-n01', status: 'succeeded' });
      }
    });
  });
});
