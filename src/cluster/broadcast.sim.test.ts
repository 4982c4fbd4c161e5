// Randomized broadcasts under failure (issue: broadcasts that survive failure). Each
// seed builds a small cluster in virtual time, runs broadcasts while it kills, restarts,
// freezes, partitions and drops, duplicates and delays messages, then lets it calm down
// and runs the broadcast checker (src/testing/checker.ts) over every command start the
// fake executor saw and the final records. A failing seed prints itself and replays
// exactly: CHORUS_SIM_SEED=N npx vitest run src/cluster/broadcast.sim.test.ts
// More seeds: CHORUS_SIM_SEEDS=10000 CHORUS_SIM_SEED_FROM=1 (see npm run sim:sweep); at 100
// nodes: npm run sim:sweep:100.
import { describe, expect, it } from 'vitest';
import { instanceView } from '../api/views.js';
import { recordKey } from '../records/merge.js';
import type { JobSpec } from '../records/types.js';
import { isTerminal, runnerOf } from '../records/types.js';
import { isInstanceFinished } from '../records/status.js';
import { checkBroadcasts, rolloutContested, type HistoryLine } from '../testing/checker.js';
import { Rng } from '../testing/random.js';
import { SimCluster, replayHint } from '../testing/sim-cluster.js';

const SIM_FILE = 'src/cluster/broadcast.sim.test.ts';

/** CHORUS_SIM_NODES=N runs every seed with N nodes instead of 2-6 (npm run sim:sweep:100). */
const FIXED_SIZE = process.env.CHORUS_SIM_NODES ? Number(process.env.CHORUS_SIM_NODES) : undefined;
if (FIXED_SIZE !== undefined && !(Number.isInteger(FIXED_SIZE) && FIXED_SIZE >= 2)) throw new Error(`CHORUS_SIM_NODES must be a whole number ≥ 2, got ${process.env.CHORUS_SIM_NODES}`);

function seedList(): number[] {
  const one = process.env.CHORUS_SIM_SEED;
  if (one !== undefined && one !== '') return [Number(one)];
  const count = Number(process.env.CHORUS_SIM_SEEDS ?? 200);
  const from = Number(process.env.CHORUS_SIM_SEED_FROM ?? 1);
  return Array.from({ length: count }, (_, i) => from + i);
}

interface Outcome {
  instances: number;
  /** Instances with rolling or quorum options, those the rollout checks applied to (no two leaders), and those aborted. */
  rolling: number;
  rollingChecked: number;
  aborted: number;
  executions: number;
  disruptions: number;
  virtualMs: number;
}

const outcomes: Outcome[] = [];

/** One randomized run; throws with the seed and the violations if a guarantee broke. */
async function runSeed(seed: number): Promise<Outcome> {
  const rng = new Rng(seed);
  const drawn = rng.int(2, 6);
  const size = FIXED_SIZE ?? drawn;
  const network = { lossRate: rng.int(0, 2) / 10, duplicateRate: rng.int(0, 2) / 10, minDelayMs: 1, maxDelayMs: rng.int(2, 40) };
  const clockSkewMs = rng.int(0, 200);
  const sim = new SimCluster({
    seed,
    size,
    network,
    clockSkewMs,
  });
  const chaos: Chaos = { created: [], disruptions: 0, partitioned: false };
  try {
    sim.start(rng.chance(0.5) ? 'seed' : 'all');
    await sim.until(() => sim.agreed() && sim.liveIds().every((v) => Object.values(sim.membersSeenBy(v)).filter((s) => s === 'alive').length === size), 15_000, 'the cluster forming');

    const jobs = rng.int(1, 3);
    for (let j = 0; j < jobs; j++) await sim.addJob(rng.pick(sim.liveIds()), `job-${j}`, randomSpec(rng, size));

    // Chaos: runs interleaved with failures.
    const steps = rng.int(4, 14);
    for (let step = 0; step < steps; step++) await chaosStep(sim, rng, jobs, chaos);
    await calmDown(sim, chaos.created);
    return checkedOutcome(sim, chaos, clockSkewMs);
  } catch (err) {
    const hint = `[seed ${seed}] ${replayHint(seed, SIM_FILE)}`;
    if (err instanceof Error) err.message = `${err.message}\n${hint}\n${sim.describe()}\n  disruptions: ${sim.disruptionLog.join(', ')}\n${differences(sim)}`;
    throw err;
  } finally {
    sim.dispose();
  }
}

/** What the chaos of one run did so far: the instances it created, its disruptions, whether it partitioned. */
interface Chaos {
  created: string[];
  disruptions: number;
  partitioned: boolean;
}

/** Some virtual time, then one thing drawn at random: a run (now and then a cancel), a crash, a restart, a freeze, a thaw, a partition, a heal or a leave. */
async function chaosStep(sim: SimCluster, rng: Rng, jobs: number, chaos: Chaos): Promise<void> {
  const { created } = chaos;
  await sim.run(rng.int(20, 900));
  const live = sim.liveIds().filter((id) => sim.statusOf(id) === 'running');
  const down = sim.ids().filter((id) => sim.statusOf(id) === 'crashed' || sim.statusOf(id) === 'left');
  const frozen = sim.ids().filter((id) => sim.statusOf(id) === 'frozen');
  const action = rng.int(0, 9);
  if (action <= 3 && live.length > 0) {
    const on = rng.pick(live);
    const job = `job-${rng.int(0, jobs - 1)}`;
    // A run may be refused (no leader during a failover, not replicated in a partition).
    const started = await sim.runJob(on, job).then((i) => i.id, () => null);
    if (started) created.push(started);
    // Now and then a cancel, of a rolling one too (the unreleased subtasks must end cancelled).
    if (created.length > 0 && rng.chance(0.1)) await sim.cancel(on, rng.pick(created)).catch(() => undefined);
  } else if (action === 4 && live.length > 1) {
    sim.crash(rng.pick(live));
    chaos.disruptions++;
  } else if (action === 5 && down.length > 0 && live.length > 0) {
    sim.restart(rng.pick(down), rng.pick(live));
  } else if (action === 6 && live.length > 1 && frozen.length === 0) {
    sim.freeze(rng.pick(live));
    chaos.disruptions++;
  } else if (action === 7 && frozen.length > 0) {
    sim.thaw(rng.pick(frozen));
  } else if (action === 8 && sim.ids().length > 1) {
    const cut = rng.shuffle([...sim.ids()]).slice(0, rng.int(1, sim.ids().length - 1));
    sim.partition(cut, sim.ids().filter((id) => !cut.includes(id)));
    chaos.partitioned = true;
    chaos.disruptions++;
  } else if (action === 9) {
    if (rng.chance(0.5)) sim.heal();
    else if (live.length > 1) {
      await sim.leave(rng.pick(live)).catch(() => undefined);
      chaos.disruptions++;
    }
  }
}

/** Calm: every node back, links clean; every instance must end everywhere. */
async function calmDown(sim: SimCluster, created: string[]): Promise<void> {
  sim.heal();
  sim.net.configure({ lossRate: 0, duplicateRate: 0, maxDelayMs: 10 });
  for (const id of sim.ids()) if (sim.statusOf(id) === 'frozen') sim.thaw(id);
  for (const id of sim.ids()) {
    const status = sim.statusOf(id);
    if (status === 'crashed' || status === 'left') sim.restart(id, sim.liveIds().find((l) => l !== id));
  }
  const viewer = () => sim.liveIds()[0] as string;
  await sim.until(
    () => sim.converged() && created.every((id) => isInstanceFinished(sim.progressSeenBy(viewer(), id)?.status ?? 'pending')),
    120_000,
    'every instance ending and the cluster converging',
  );
}

/** The checker over every command start and the final records; throws with the violations, else the run's figures. */
function checkedOutcome(sim: SimCluster, chaos: Chaos, clockSkewMs: number): Outcome {
  const { created } = chaos;
  const viewer = sim.liveIds()[0] as string;
  const store = sim.storeAnswering(viewer);
  const views = created.map((id) => {
    const instance = store.instance(id);
    if (!instance) throw new Error(`instance ${id} is missing at ${viewer}`);
    return instanceView(instance, store.factsOf(instance), () => null);
  });
  const history: HistoryLine[] = sim.executions.filter((e) => e.step === null).map((e) => ({ nodeId: e.nodeId, instanceId: e.instanceId, attempt: e.attempt }));
  const survivors = new Set(sim.ids().filter((id) => !sim.disrupted.has(id)));
  const rollout = { releases: sim.deliveredReleases(), verdicts: sim.verdicts, contested: [...sim.contested, ...sim.partitions], clockToleranceMs: 2 * clockSkewMs };
  const violations = checkBroadcasts({ history, instances: views, survivors, expectedInstances: created, ...rollout });
  const rolling = views.filter((v) => v.rollout !== null);
  const rollingChecked = rolling.filter((v) => !rolloutContested(v, rollout)).length;
  violations.push(...stepViolations(sim, chaos.partitioned, 2 * clockSkewMs));
  violations.push(...sim.unjustifiedVerdicts().map((v) => `node-lost verdict by ${v.reporter} against ${v.nodeId}, which never failed`));
  if (violations.length > 0) throw new Error(`${violations.length} violation(s):\n${violations.slice(0, 20).join('\n')}`);
  return { instances: created.length, rolling: rolling.length, rollingChecked, aborted: rolling.filter((v) => v.rollout?.aborted).length, executions: sim.executions.length, disruptions: chaos.disruptions, virtualMs: sim.now() - Date.UTC(2030, 0, 1) };
}

/** Records on which live nodes disagree, for the failure message. */
function differences(sim: SimCluster): string {
  const live = sim.liveIds();
  const keys = new Set(live.flatMap((id) => sim.store(id).all().map((r) => recordKey(r))));
  const lines: string[] = [];
  for (const key of keys) {
    const versions = live.map((id) => sim.store(id).versionOf(key) ?? '-');
    if (new Set(versions).size > 1) {
      const holder = live.find((id) => sim.store(id).get(key)) as string;
      lines.push(`  ${key} differs (${live.map((id, i) => `${id}:${versions[i]?.slice(0, 6)}`).join(' ')}): ${JSON.stringify(sim.store(holder).get(key)?.record)}`);
    }
  }
  const viewer = live[0];
  if (viewer) {
    const store = sim.storeAnswering(viewer);
    for (const instance of store.instances()) {
      const status = store.progressOf(instance).status;
      if (isInstanceFinished(status)) continue;
      lines.push(`  unfinished at ${viewer}: ${instance.id} ${status} targets=${store.targetsOf(instance).join(',')} cancel=${store.cancelOf(instance.id)?.requestedAtMs ?? null}`);
      const held = store.subtasksOf(instance.id);
      const missing = store.targetsOf(instance).filter((n) => !held.has(n));
      if (missing.length > 0) lines.push(`    no subtask record (pending, unreleased) for ${missing.join(',')}; paused=${store.pausedOf(instance.id)} rollout=${JSON.stringify({ maxParallel: instance.spec.maxParallel, waves: instance.spec.waves, maxFailures: instance.spec.maxFailures })}`);
      // The unfinished ones first: a broadcast to 100 nodes would list 100 finished subtasks before them.
      const tasks = [...held.values(), ...Object.values(store.stepsOf(instance.id))].sort((a, b) => Number(a !== undefined && isTerminal(a.status)) - Number(b !== undefined && isTerminal(b.status)));
      for (const t of tasks) {
        if (t) lines.push(`    ${'step' in t ? `${t.step} step` : 'subtask'} ${runnerOf(t)} attempt ${t.attempt} ${t.status} ${t.reason ?? ''} by ${t.reporter}`);
      }
    }
  }
  return lines.slice(0, 30).join('\n');
}

function randomSpec(rng: Rng, size: number): Partial<JobSpec> {
  const words = [`sleep:${rng.int(10, 2500)}`];
  if (rng.chance(0.2)) words.push(`flaky:${rng.int(1, 2)}`);
  else if (rng.chance(0.1)) words.push('fail:3');
  const steps = rng.chance(0.25);
  return {
    ...randomRollout(rng, size),
    cmd: words.join(' '),
    retries: rng.int(0, 2),
    timeoutMs: rng.chance(0.15) ? rng.int(200, 1500) : null,
    pre: steps ? `sleep:${rng.int(5, 200)}` : null,
    post: steps && rng.chance(0.7) ? `sleep:${rng.int(5, 200)}` : null,
  };
}

/** Rolling and quorum options on about half the jobs (issue 11): the checker's rollout invariants apply to those. */
function randomRollout(rng: Rng, size: number): Partial<JobSpec> {
  if (rng.chance(0.5)) return {};
  // Counts grow with the cluster, so that a rollout of 100 nodes takes tens of rounds, not a hundred.
  const least = Math.max(1, Math.floor(size / 10));
  const amount = (min: number): JobSpec['maxParallel'] => (rng.chance(0.5) ? rng.int(Math.max(min, min === 0 ? 0 : least), Math.max(3, least * 3)) : `${rng.int(Math.max(min, 1) * 10, 90)}%`);
  const out: Partial<JobSpec> = {};
  if (rng.chance(0.6)) out.maxParallel = amount(1);
  if (rng.chance(0.5)) out.waves = rng.chance(0.5) ? [1, '50%', '100%'] : [1, rng.int(2, 3)];
  if (rng.chance(0.4)) out.maxFailures = amount(0);
  if (rng.chance(0.3)) out.minSuccess = amount(1);
  return out;
}

/**
 * Pre and post steps run at most once per node (the journal), and at most once in all
 * unless two nodes each believed themselves leader when the later run started: two sides
 * of a partition, or a node that came back from a freeze to find every member it knew dead
 * while another had become leader meanwhile (guarantee 7; only a quorum could prevent it:
 * see README, "Pre and post steps").
 */
function stepViolations(sim: SimCluster, partitioned: boolean, skewMs: number): string[] {
  const perNode = new Map<string, number>();
  const overall = new Map<string, number>();
  for (const e of sim.executions) {
    if (!e.step) continue;
    const key = `${e.instanceId}:${e.step}`;
    perNode.set(`${key}@${e.nodeId}`, (perNode.get(`${key}@${e.nodeId}`) ?? 0) + 1);
    overall.set(key, (overall.get(key) ?? 0) + 1);
  }
  const twiceOnOneNode = [...perNode].filter(([, n]) => n > 1).map(([key, n]) => `step ${key} ran ${n} times on one node`);
  const contestedAt = (atMs: number) => sim.contested.some((c) => c.fromMs - skewMs <= atMs && atMs <= c.toMs + skewMs);
  const twice = partitioned
    ? []
    : [...overall]
        .filter(([, n]) => n > 1)
        .flatMap(([key, n]) => {
          const runs = sim.executions.filter((e) => e.step && `${e.instanceId}:${e.step}` === key);
          if (runs.slice(1).every((e) => contestedAt(e.atMs))) return [];
          return [`step ${key} ran ${n} times without a partition or two leaders: ${runs.map((e) => `${e.nodeId}#${e.incarnation}@+${e.atMs - Date.UTC(2030, 0, 1)}`).join(', ')}`];
        });
  return [...twiceOnOneNode, ...twice];
}

describe('randomized broadcasts under failure: the checker finds no violation', () => {
  it.each(seedList())('seed %i', async (seed) => {
    outcomes.push(await runSeed(seed));
  });

  it('exercised real work (not an empty run)', () => {
    if (outcomes.length < 20) return; // a single replayed seed proves nothing in aggregate
    const total = (k: keyof Outcome) => outcomes.reduce((a, o) => a + o[k], 0);
    console.log(
      `broadcast simulation: ${outcomes.length} seeds, ${total('instances')} instances (${total('rolling')} rolling, ${total('rollingChecked')} of them under the rollout checks, ${total('aborted')} aborted), ${total('executions')} command starts, ` +
        `${total('disruptions')} disruptions, ${Math.round(total('virtualMs') / 1000)} s of virtual time`,
    );
    expect(total('instances')).toBeGreaterThan(outcomes.length);
    expect(total('disruptions')).toBeGreaterThan(outcomes.length / 2);
    expect(total('rollingChecked')).toBeGreaterThan(outcomes.length / 2);
    expect(total('aborted')).toBeGreaterThan(0);
  });
});

describe('concurrency forbid', () => {
  it('refuses a second manual run while one is unfinished, from the leader and from a member, and allows it afterwards', async () => {
    const sim = new SimCluster({ seed: 7, size: 3 });
    try {
      sim.start('all');
      await sim.until(() => sim.agreed() && sim.agreedLeader() !== null, 10_000, 'a leader');
      const leader = sim.agreedLeader() as string;
      const member = sim.liveIds().find((id) => id !== leader) as string;
      await sim.addJob(leader, 'only-one', { cmd: 'sleep:2000', concurrency: 'forbid' });
      await sim.until(() => sim.store(member).job('only-one') !== undefined, 5_000, 'the job reaching the member');
      const first = await sim.runJob(member, 'only-one');
      for (const on of [leader, member]) {
        const refused = await sim.runJob(on, 'only-one').then(() => null, (err: { code?: string }) => err);
        expect(refused?.code, `second run from ${on === leader ? 'the leader' : 'a member'}`).toBe('concurrency-forbid');
      }
      await sim.until(() => isInstanceFinished(sim.progressSeenBy(leader, first.id)?.status ?? 'pending'), 10_000, 'the first run ending');
      const second = await sim.runJob(member, 'only-one');
      expect(second.id).not.toBe(first.id);
    } finally {
      sim.dispose();
    }
  });
});
