// Churn of fresh identities (issue 21, point 6): 20 long-lived nodes, and thousands of
// nodes that each join with a new node id, stay a few seconds, and leave gracefully or are
// killed, a batch at a time, as a fleet whose hosts are rebuilt with fresh data directories
// does. Without reaping, every long-lived node's member table (its failure detector's and
// its store's member records) grows with every join, past what one push/pull may carry
// (MAX_STATE_ENTRIES) at 10,000; with it, the table stays bounded by what joined within
// about reapAfterMs.
// Broadcasts run through the churn and are checked (guarantees 1-5); no long-lived node is
// ever declared dead. `npm test` runs 500 joins, twice what a long-lived node may hold at
// once (HELD_BOUND), so an unbounded table would show (1,000 took 122-151 s alone here, the
// longest file of the suite); `npm run sim:churn` runs 10,000 (CHORUS_CHURN_JOINS=N for
// another count; CHORUS_SIM_SEED=N for another seed).
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import type { InstanceView } from '../api/views.js';
import { isInstanceFinished } from '../records/status.js';
import { checkBroadcasts } from '../testing/checker.js';
import { SimCluster, replayHint } from '../testing/sim-cluster.js';
import { MAX_STATE_ENTRIES } from './swim.js';

const JOINS = Number(process.env.CHORUS_CHURN_JOINS ?? 500);
const SEED = Number(process.env.CHORUS_SIM_SEED ?? 1);
const LONG_LIVED = 20;
/** Fresh nodes per round: with the long-lived ones, at most 40 nodes run at once. */
const BATCH = 20;
/** How long a batch stays once every long-lived node holds all of it alive. */
const STAY_MS = 2_000;
/**
 * Connections each node keeps: a quarter of the 40 running, as in a fleet much larger than
 * the budget, so that failures are found by neighbours and news travels through relays (and
 * each join costs a few syncs, not one with every member: half the wall time).
 */
const PEER_CONNECTIONS = 8;
/** A broadcast to every running node starts every this many rounds, and runs through the next ones. */
const BROADCAST_EVERY = 5;
/** Finished broadcasts kept: retention keeps the records a joiner catches up on bounded too. */
const RETAIN_INSTANCES = 2;
const REAP_AFTER_MS = 10_000;
/** Under reapAfterMs, as config.ts requires. */
const PUSH_PULL_MS = 2_000;
/**
 * What a long-lived node may hold: itself, the other long-lived ones, and the fresh nodes of
 * every round whose members may not be reaped yet. A fresh node is held from its join until
 * reapAfterMs after it was found gone, plus the reaping pass (deadProbeIntervalMs); a leave
 * is known at once, a kill within 10 s (its connections close, or a probe of the members
 * nobody is connected to finds it). A round lasts at least STAY_MS, so that spans at most
 * ceil((reapAfterMs + 10 s) / STAY_MS) + 1 rounds. The bound does not depend on how many
 * joined in all.
 */
const HELD_BOUND = LONG_LIVED + BATCH * (Math.ceil((REAP_AFTER_MS + 10_000) / STAY_MS) + 1);

describe(`a churn of ${JOINS} fresh identities through ${LONG_LIVED} long-lived nodes`, () => {
  it('keeps every long-lived member table bounded, declares no long-lived node dead, and keeps the guarantees', async () => {
    expect(HELD_BOUND).toBeLessThan(MAX_STATE_ENTRIES);
    const wallStart = performance.now();
    const falseDead: string[] = [];
    const longLived = new Set<string>();
    const sim = new SimCluster({
      seed: SEED,
      size: LONG_LIVED,
      network: { lossRate: 0.01 },
      config: { reapAfterMs: REAP_AFTER_MS, pushPullIntervalMs: PUSH_PULL_MS, maxPeerConnections: PEER_CONNECTIONS, retainInstancesPerJob: RETAIN_INSTANCES, retentionIntervalMs: 10_000 },
      onMemberDead: (viewer, nodeId) => {
        if (longLived.has(nodeId)) falseDead.push(`${viewer} declared ${nodeId} dead at +${sim.now()}`);
      },
      maxTimerFiresPerRun: 10_000_000,
    });
    try {
      for (const id of sim.ids()) longLived.add(id);
      const anchors = [...longLived];
      sim.start();
      await sim.until(() => sim.agreed() && anchors.every((v) => anchors.every((s) => sim.node(v).membership.stateOf(s) === 'alive')), 20_000, 'the long-lived nodes forming');
      await sim.addJob(anchors[0] as string, 'churn-broadcast', { cmd: 'sleep:4000' });

      let maxHeld = 0;
      let maxRecords = 0;
      const measure = () => {
        for (const id of anchors) {
          maxHeld = Math.max(maxHeld, sim.node(id).membership.heldMembers() + 1);
          maxRecords = Math.max(maxRecords, sim.store(id).members().length);
        }
      };
      // Each broadcast is looked at as it ends (retention removes it later), and checked at the end with the others.
      const instances: string[] = [];
      const ended = new Map<string, InstanceView>();
      const collectEnded = () => {
        const leader = sim.agreedLeader(anchors);
        if (leader === null) return;
        for (const id of instances) {
          if (ended.has(id)) continue;
          const view = sim.service(leader).getInstance(id);
          if (isInstanceFinished(view.status)) ended.set(id, view);
        }
      };
      let joined = 0;
      for (let round = 0; joined < JOINS; round++) {
        const batch: string[] = [];
        for (let i = 0; i < BATCH && joined < JOINS; i++, joined++) batch.push(sim.addNode(anchors[(round * BATCH + i) % anchors.length]));
        await sim.until(() => batch.every((id) => anchors.every((v) => sim.node(v).membership.stateOf(id) === 'alive')), 20_000, `round ${round}: its ${batch.length} nodes alive for every long-lived node`);
        measure();
        if (round % BROADCAST_EVERY === 0) instances.push((await sim.runJob(anchors[round % anchors.length] as string, 'churn-broadcast')).id);
        await sim.run(STAY_MS);
        measure();
        // Half leave (SIGTERM), half are killed; the next batch joins at once.
        for (const [i, id] of batch.entries()) {
          if (i % 2 === 0) await sim.leave(id);
          else sim.crash(id);
          sim.discard(id); // a fresh identity never comes back
        }
        measure();
        collectEnded();
      }

      // Once the last ones are reaped, the long-lived nodes hold each other only, and agree.
      const settledMs = await sim.until(
        () => anchors.every((id) => sim.node(id).membership.heldMembers() === LONG_LIVED - 1 && sim.store(id).members().length === LONG_LIVED) && sim.agreed(anchors) && sim.converged(anchors),
        REAP_AFTER_MS + 30_000,
        'every fresh node reaped by every long-lived node',
      );
      await sim.until(() => (collectEnded(), ended.size === instances.length), 60_000, 'every broadcast ending');
      const views = instances.map((id) => ended.get(id) as InstanceView);
      const history = sim.executions.filter((e) => e.step === null).map((e) => ({ nodeId: e.nodeId, instanceId: e.instanceId, attempt: e.attempt }));
      const violations = checkBroadcasts({ history, instances: views, survivors: longLived, expectedInstances: instances, verdicts: sim.verdicts, releases: sim.deliveredReleases(), contested: sim.contested });
      const figures = {
        joins: joined,
        seed: SEED,
        maxHeldMembers: maxHeld,
        maxMemberRecords: maxRecords,
        heldBound: HELD_BOUND,
        reapedPerLongLivedNode: sim.node(anchors[0] as string).membership.counters.reaped,
        broadcasts: instances.length,
        falseDeadVerdicts: falseDead.length,
        virtualS: Math.round(sim.stats().virtualMs / 1000),
        settledAfterLastRoundMs: settledMs,
        wallS: Math.round((performance.now() - wallStart) / 1000),
      };
      console.log(`churn: ${JSON.stringify(figures)}`);

      expect(falseDead, 'long-lived nodes declared dead').toEqual([]);
      expect(sim.unjustifiedVerdicts(), 'node-lost verdicts against nodes that never failed').toEqual([]);
      expect(violations.slice(0, 20), 'guarantees 1-5 on the broadcasts through the churn').toEqual([]);
      expect(maxHeld, 'members a long-lived node held at once').toBeLessThanOrEqual(HELD_BOUND);
      expect(maxRecords, 'member records a long-lived node held at once').toBeLessThanOrEqual(HELD_BOUND);
      for (const id of anchors) expect(sim.node(id).membership.counters.reaped, `${id} reaped every fresh node`).toBeGreaterThanOrEqual(JOINS);
      // The broadcasts still held show the subtasks of the fresh nodes they targeted, their member records reaped (no name).
      const leader = sim.agreedLeader(anchors) as string;
      const held = instances.filter((id) => sim.store(leader).instance(id) !== undefined).map((id) => sim.service(leader).getInstance(id));
      const churned = held.flatMap((v) => v.subtasks.filter((s) => !longLived.has(s.nodeId)).map((s) => ({ instanceId: v.id, nodeId: s.nodeId, nodeName: s.nodeName })));
      expect(churned.length).toBeGreaterThan(0);
      for (const s of churned) expect(s).toMatchObject({ nodeName: null });
    } catch (err) {
      console.error(`churn simulation failed [seed ${SEED}] ${replayHint(SEED, 'src/cluster/churn.sim.test.ts')}\n${sim.describe().split('\n').filter((line) => !line.endsWith('[crashed]') && !line.endsWith('[left]')).join('\n')}`);
      throw err;
    } finally {
      sim.dispose();
    }
  }, Math.max(300_000, JOINS * 200));
});
