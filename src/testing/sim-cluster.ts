// A whole chorus cluster in one process: real ChorusNodes (membership, replication,
// leader, worker) on a MemoryNetwork with a FakeClock and one seeded Rng, so a run is
// replayed exactly from its seed (DESIGN.md, "Sans-IO core"). Commands run on a fake
// executor in virtual time; each node keeps a real journal file in a temp directory.
import { createHash, type Hash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../core/clock.js';
import { defaultConfig, type ChorusConfig } from '../core/config.js';
import { silentLogger } from '../core/log.js';
import type { MemberState } from '../cluster/view.js';
import { ChorusNode } from '../daemon/node.js';
import type { ExecutionRequest, ExecutionResult, runCommand } from '../executor/executor.js';
import { canonicalJson } from '../records/canonical.js';
import { HybridClock } from '../records/hlc.js';
import { recordKey } from '../records/merge.js';
import type { InstanceProgress } from '../records/status.js';
import type { AnyRecord, InstanceRecord, JobRecord, JobSpec, MemberRecord } from '../records/types.js';
import { liveSpec } from '../records/types.js';
import { Journal } from '../store/journal.js';
import { RecordStore } from '../store/record-store.js';
import { FakeClock } from './fake-clock.js';
import { MemoryNetwork, type MemoryTransport, type NetworkConditions, type NetworkStats, type TraceEvent } from './memory-network.js';
import { Rng } from './random.js';

/** The test file every scenario lives in; printed in replay hints. */
export const SIM_TEST_FILE = 'src/cluster/cluster.sim.test.ts';

/** A fixed, realistic epoch so stamps and schedules look like production ones. */
const DEFAULT_START_MS = Date.UTC(2030, 0, 1);
/** Virtual time a sim operation (a run request, a leave) may take before it is a failure. */
const OPERATION_TIMEOUT_MS = 30_000;

export interface SimClusterOptions {
  seed: number;
  /** Nodes created by the constructor: n01..nNN. */
  size: number;
  /** Overrides of defaultConfig; by default the real production timings. */
  config?: Partial<ChorusConfig>;
  network?: Partial<NetworkConditions>;
  startMs?: number;
  /** Each node's clock is off by a seeded amount in [-clockSkewMs, clockSkewMs] (kept across restarts). */
  clockSkewMs?: number;
  /** Tags of each node (all get `sim=1`). */
  tagsOf?: (nodeId: string) => Record<string, string>;
}

export type SimNodeStatus = 'running' | 'frozen' | 'crashed' | 'left';

/** One start of a command by the fake executor (every node, every incarnation). */
export interface Execution {
  nodeId: string;
  incarnation: number;
  instanceId: string;
  attempt: number;
  cmd: string;
  /** Set when this was a job's --pre or --post step, not a subtask. */
  step: 'pre' | 'post' | null;
  atMs: number;
}

/** A `node-lost` verdict, as committed by the node that gave it. */
export interface Verdict {
  atMs: number;
  reporter: string;
  nodeId: string;
  instanceId: string;
  attempt: number;
}

interface SimMember {
  id: string;
  status: SimNodeStatus;
  node: ChorusNode;
  transport: MemoryTransport;
  store: RecordStore;
  journal: Journal;
  incarnation: number;
  /** What state.json held when the process died (flushed within ms in reality). */
  persisted: AnyRecord[];
  /** digestOf cache, dropped on every change (and on a size change: retention removes records silently). */
  digest: string | null;
  digestSize: number;
}

export interface SimStats {
  seed: number;
  virtualMs: number;
  network: NetworkStats;
  traceEvents: number;
  heartbeatsSent: number;
  malformedHeartbeats: number;
  deadVerdicts: number;
  stallsDetected: number;
  deltasSent: number;
  recordsRejected: number;
  syncsCompleted: number;
  syncsFailed: number;
  executions: number;
}

export function nodeIdOf(index: number): string {
  return `n${String(index).padStart(2, '0')}`;
}

export function replayHint(seed: number, file = SIM_TEST_FILE): string {
  return `replay with: CHORUS_SIM_SEED=${seed} npx vitest run ${file}`;
}

export class SimCluster {
  readonly seed: number;
  readonly clock: FakeClock;
  readonly net: MemoryNetwork;
  readonly config: ChorusConfig;
  /** Every command start, in order: the ground truth for guarantees 2 and 3. */
  readonly executions: Execution[] = [];
  /** Every node-lost verdict any node gave, when it gave it (later merges may hide it). */
  readonly verdicts: Verdict[] = [];
  /** Nodes that crashed, froze, left or were partitioned: the only fair targets of a verdict. */
  readonly disrupted = new Set<string>();
  private readonly rng: Rng;
  private readonly members = new Map<string, SimMember>();
  private readonly dir: string;
  private readonly trace: Hash = createHash('sha256');
  private traceEvents = 0;
  private traceBuffer = '';
  private instanceCounter = 0;
  private nextIndex = 1;
  private readonly tagsOf: (nodeId: string) => Record<string, string>;
  private readonly clockSkewMs: number;
  private disposed = false;
  private readonly startMs: number;

  constructor(options: SimClusterOptions) {
    this.seed = options.seed;
    this.rng = new Rng(options.seed);
    this.config = { ...defaultConfig, ...options.config };
    this.tagsOf = options.tagsOf ?? (() => ({}));
    this.clockSkewMs = options.clockSkewMs ?? 0;
    this.startMs = options.startMs ?? DEFAULT_START_MS;
    this.clock = new FakeClock(this.startMs);
    this.net = new MemoryNetwork({
      clock: this.clock,
      rng: this.rng.fork(),
      onTrace: (event) => this.record(event),
      ...options.network,
    });
    // Journals fsync every start; on tmpfs that costs nothing and the files are still real.
    this.dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'chorus-sim-'));
    for (let i = 0; i < options.size; i++) this.create(nodeIdOf(this.nextIndex++));
  }

  // ---- lifecycle -------------------------------------------------------------------

  /**
   * Starts every node. `seed`: each dials only the first node, as `--join` does, and
   * finds the rest through gossip of member records. `all`: a full mesh at once.
   */
  start(connect: 'seed' | 'all' = 'seed'): void {
    const ids = this.ids();
    for (const id of ids) this.member(id).node.start();
    if (connect === 'all') return this.net.connectAll();
    const seedId = ids[0] as string;
    for (const id of ids.slice(1)) this.joinThrough(id, seedId);
  }

  /** A new node (next id) that joins through `seedId` (default: the first running node). */
  addNode(seedId?: string): string {
    const id = nodeIdOf(this.nextIndex++);
    const m = this.create(id);
    m.node.start();
    this.joinThrough(id, seedId ?? this.firstRunningOtherThan(id));
    return id;
  }

  /** kill -9: connections close, timers stop; state.json and the journal survive. */
  crash(id: string): void {
    const m = this.member(id);
    if (m.status === 'crashed' || m.status === 'left') throw new Error(`${id} is not running (${m.status})`);
    m.persisted = structuredClone(m.store.all());
    this.net.crash(id);
    m.journal.close();
    m.status = 'crashed';
    this.disrupted.add(id);
  }

  /** A new process with the same id and data: a new incarnation that joins through a running node. */
  restart(id: string, seedId?: string): void {
    const old = this.member(id);
    if (old.status === 'running' || old.status === 'frozen') this.crash(id);
    const persisted = old.persisted;
    const previous = persisted.find((r): r is Extract<AnyRecord, { kind: 'member' }> => r.kind === 'member' && r.record.nodeId === id);
    const m = this.create(id, persisted, (previous?.record.incarnation ?? 0) + 1);
    m.node.start();
    this.joinThrough(id, seedId ?? this.firstRunningOtherThan(id));
  }

  /** Graceful stop (SIGTERM): leave, then the process exits and its connections close. */
  async leave(id: string): Promise<void> {
    const m = this.member(id);
    if (m.status !== 'running') throw new Error(`${id} cannot leave while ${m.status}`);
    this.disrupted.add(id);
    await this.drive(m.node.leave(), `${id} leaving`);
    m.persisted = structuredClone(m.store.all());
    this.net.crash(id);
    m.journal.close();
    m.status = 'left';
  }

  freeze(id: string): void {
    this.net.freeze(id);
    this.member(id).status = 'frozen';
    this.disrupted.add(id);
  }

  thaw(id: string): void {
    this.net.thaw(id);
    this.member(id).status = 'running';
  }

  partition(groupA: string[], groupB: string[]): void {
    this.net.partition(groupA, groupB);
    for (const id of [...groupA, ...groupB]) this.disrupted.add(id);
  }

  heal(): void {
    this.net.heal();
  }

  /** Closes journals and removes the temp directory. Call in afterEach / finally. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const m of this.members.values()) {
      if (m.status === 'running' || m.status === 'frozen') this.net.crash(m.id);
      m.journal.close();
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  // ---- time --------------------------------------------------------------------------

  now(): number {
    return this.clock.now();
  }

  /**
   * Runs virtual time until `predicate` holds; returns the virtual ms it took. The
   * predicate is checked once per virtual instant at which timers fire (after all of
   * them have fired and settled), not after every fire: cluster-wide predicates are costly.
   */
  async until(predicate: () => boolean, timeoutMs: number, what: string): Promise<number> {
    const startMs = this.clock.now();
    const deadlineMs = startMs + timeoutMs;
    await this.clock.settle();
    while (!predicate()) {
      if (this.clock.now() >= deadlineMs) {
        throw new Error(`${what} not met within ${timeoutMs} ms of virtual time [seed ${this.seed}]\n${this.describe()}\n${replayHint(this.seed)}`);
      }
      await this.clock.runUntilAsync(Math.min(deadlineMs, this.clock.nextDueMs() ?? deadlineMs));
    }
    return this.clock.now() - startMs;
  }

  async run(ms: number): Promise<void> {
    await this.clock.advanceAsync(ms);
  }

  /** Awaits a promise whose settling needs virtual time (network round trips, timers). */
  async drive<T>(promise: Promise<T>, what: string, timeoutMs = OPERATION_TIMEOUT_MS): Promise<T> {
    let outcome: { ok: true; value: T } | { ok: false; error: unknown } | null = null;
    promise.then(
      (value) => (outcome = { ok: true, value }),
      (error: unknown) => (outcome = { ok: false, error }),
    );
    await this.until(() => outcome !== null, timeoutMs, `${what} to finish`);
    const settled = outcome as unknown as { ok: true; value: T } | { ok: false; error: unknown };
    if (!settled.ok) throw settled.error;
    return settled.value;
  }

  // ---- jobs --------------------------------------------------------------------------

  /** Stores a job through node `onId`, as `chorus job add` on that node does (acknowledged write). */
  async addJob(onId: string, name: string, spec: Partial<JobSpec> = {}): Promise<JobRecord> {
    const m = this.running(onId);
    const job: JobRecord = {
      name,
      spec: { ...DEFAULT_SPEC, ...spec },
      enabled: true,
      deleted: false,
      createdAtMs: m.transport.clock.now(),
      stamp: m.node.hlc.tick(),
    };
    const records: AnyRecord[] = [{ kind: 'job', record: job }];
    m.node.commit(records);
    await this.drive(m.node.acknowledge(records), `acknowledging job ${name} on ${onId}`);
    return job;
  }

  /** `chorus job run NAME` on node `onId`: the request goes to the leader that node knows. */
  async runJob(onId: string, jobName: string): Promise<InstanceRecord> {
    const m = this.running(onId);
    const job = m.store.job(jobName);
    if (!job || job.deleted) throw new Error(`${onId} knows no job named ${jobName}`);
    return this.drive(m.node.requestInstance(job.name, liveSpec(job), 'manual'), `run of ${jobName} from ${onId}`);
  }

  /** `chorus instance cancel ID` on node `onId` (acknowledged write, as the daemon does it). */
  async cancel(onId: string, instanceId: string): Promise<void> {
    const m = this.running(onId);
    const instance = m.store.instance(instanceId);
    if (!instance) throw new Error(`${onId} knows no instance ${instanceId}`);
    if (instance.cancelRequestedAtMs !== null) return;
    const records: AnyRecord[] = [{ kind: 'instance', record: { ...instance, cancelRequestedAtMs: m.transport.clock.now() } }];
    m.node.commit(records);
    await this.drive(m.node.acknowledge(records), `acknowledging the cancel of ${instanceId} on ${onId}`);
  }

  /** Status of an instance as node `id` derives it from its own records. */
  progressSeenBy(id: string, instanceId: string): InstanceProgress | null {
    const store = this.member(id).store;
    const instance = store.instance(instanceId);
    return instance ? store.progressOf(instance) : null;
  }

  /** Verdicts against nodes that never crashed, froze, left or were cut off: always a bug. */
  unjustifiedVerdicts(): Verdict[] {
    return this.verdicts.filter((v) => !this.disrupted.has(v.nodeId));
  }

  // ---- views -------------------------------------------------------------------------

  /** Every node id ever created, sorted. */
  ids(): string[] {
    return [...this.members.keys()].sort();
  }

  /** Nodes whose process runs and is not frozen. */
  liveIds(): string[] {
    return this.ids().filter((id) => this.member(id).status === 'running');
  }

  statusOf(id: string): SimNodeStatus {
    return this.member(id).status;
  }

  node(id: string): ChorusNode {
    return this.member(id).node;
  }

  store(id: string): RecordStore {
    return this.member(id).store;
  }

  transport(id: string): MemoryTransport {
    return this.member(id).transport;
  }

  membersSeenBy(id: string): Record<string, MemberState> {
    const out: Record<string, MemberState> = {};
    for (const m of this.sortedMembers(id)) out[m.nodeId] = m.state;
    return out;
  }

  private sortedMembers(id: string): { nodeId: string; state: MemberState }[] {
    return this.member(id)
      .node.membership.members()
      .sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  }

  /** membersSeenBy as one comparable string (agreed() runs after every virtual instant). */
  private viewKey(id: string): string {
    let key = '';
    for (const m of this.sortedMembers(id)) key += `${m.nodeId}=${m.state};`;
    return key;
  }

  leaderSeenBy(id: string): string | null {
    return this.member(id).node.membership.leaderId();
  }

  /** The leader every node of `ids` reports, or null if they disagree or have none. */
  agreedLeader(ids = this.liveIds()): string | null {
    const leaders = new Set(ids.map((id) => this.leaderSeenBy(id)));
    const [leader] = [...leaders];
    return leaders.size === 1 && leader !== undefined ? leader : null;
  }

  /** All of `ids` report the same members, in the same states, and the same (non-null) leader. */
  agreed(ids = this.liveIds()): boolean {
    if (ids.length === 0 || this.agreedLeader(ids) === null) return false;
    const first = this.viewKey(ids[0] as string);
    return ids.every((id) => this.viewKey(id) === first);
  }

  /** Sorted key=version list of a node's records: equal digests mean identical records. */
  digestOf(id: string): string {
    const m = this.member(id);
    if (m.digest !== null && m.digestSize === m.store.size()) return m.digest;
    const store = m.store;
    m.digest = store
      .all()
      .map((r) => `${recordKey(r)}=${store.versionOf(recordKey(r))}`)
      .sort()
      .join('\n');
    m.digestSize = store.size();
    return m.digest;
  }

  /** All of `ids` hold identical records. */
  converged(ids = this.liveIds()): boolean {
    if (ids.length === 0) return true;
    const first = this.digestOf(ids[0] as string);
    return ids.every((id) => this.digestOf(id) === first);
  }

  /** Hash of every network event so far and of every node's records: equal runs, equal hash. */
  fingerprint(): string {
    this.flushTrace();
    const hash = this.trace.copy();
    for (const id of this.ids()) {
      const store = this.member(id).store;
      const records = store.all().sort((a, b) => recordKey(a).localeCompare(recordKey(b)));
      hash.update(`${id}:${this.member(id).status}:${canonicalJson(records)}\n`);
    }
    return hash.digest('hex');
  }

  stats(): SimStats {
    const stats: SimStats = {
      seed: this.seed,
      virtualMs: this.clock.now() - this.startMs,
      network: this.net.stats,
      traceEvents: this.traceEvents,
      heartbeatsSent: 0,
      malformedHeartbeats: 0,
      deadVerdicts: 0,
      stallsDetected: 0,
      deltasSent: 0,
      recordsRejected: 0,
      syncsCompleted: 0,
      syncsFailed: 0,
      executions: this.executions.length,
    };
    for (const m of this.members.values()) {
      const mc = m.node.membership.counters;
      const rc = m.node.replicator.counters;
      stats.heartbeatsSent += mc.heartbeatsSent;
      stats.malformedHeartbeats += mc.malformedHeartbeats;
      stats.deadVerdicts += mc.deadVerdicts;
      stats.stallsDetected += mc.stallsDetected;
      stats.deltasSent += rc.deltasSent;
      stats.recordsRejected += rc.recordsRejected;
      stats.syncsCompleted += rc.syncsCompleted;
      stats.syncsFailed += rc.syncsFailed;
    }
    return stats;
  }

  /** A short picture of the cluster for failure messages. */
  describe(): string {
    const lines = [`virtual time +${this.clock.now() - this.startMs} ms`];
    for (const id of this.ids()) {
      const m = this.member(id);
      if (m.status === 'crashed' || m.status === 'left') {
        lines.push(`  ${id} [${m.status}]`);
        continue;
      }
      const states = Object.entries(this.membersSeenBy(id))
        .filter(([, s]) => s !== 'alive')
        .map(([peer, s]) => `${peer}:${s}`);
      lines.push(
        `  ${id} [${m.status}] leader=${this.leaderSeenBy(id)} records=${m.store.size()} members=${m.store.members().length}` +
          ` not-alive={${states.join(' ')}}`,
      );
    }
    return lines.join('\n');
  }

  // ---- internals ---------------------------------------------------------------------

  private create(id: string, persisted: AnyRecord[] = [], incarnation = 1): SimMember {
    const isNew = !this.members.has(id);
    const skewMs = isNew && this.clockSkewMs > 0 ? this.rng.int(-this.clockSkewMs, this.clockSkewMs) : undefined;
    const transport = this.net.endpoint(id, skewMs === undefined ? {} : { clockOffsetMs: skewMs });
    const clock = transport.clock;
    const store = new RecordStore({ dataDir: null, flushDelayMs: this.config.storeFlushDelayMs });
    store.apply(persisted);
    const journal = new Journal(join(this.dir, `${id}.journal`));
    journal.open();
    const hlc = new HybridClock(clock, id);
    for (const r of store.all()) hlc.observe(r.record.stamp);
    const self: MemberRecord = {
      nodeId: id,
      name: `sim-${id}`,
      tags: { sim: '1', ...this.tagsOf(id) },
      addrs: transport.addresses(),
      incarnation,
      left: false,
      stamp: hlc.tick(),
    };
    const random = this.rng.fork();
    const node = new ChorusNode({
      transport,
      clock,
      config: this.config,
      store,
      journal,
      hlc,
      self,
      dataDir: null,
      log: silentLogger,
      random: () => random.next(),
      runCommand: this.executorFor(id, incarnation, clock),
      newInstanceId: () => `sim${String(++this.instanceCounter).padStart(5, '0')}`,
    });
    store.onChange((records) => {
      m.digest = null;
      for (const r of records) {
        if (r.kind !== 'subtask' || r.record.reason !== 'node-lost' || r.record.reporter !== id || r.record.stamp.nodeId !== id) continue;
        const { instanceId, nodeId, attempt } = r.record;
        this.verdicts.push({ atMs: clock.now(), reporter: id, nodeId, instanceId, attempt });
      }
    });
    const m: SimMember = { id, status: 'running', node, transport, store, journal, incarnation, persisted: [], digest: null, digestSize: 0 };
    this.members.set(id, m);
    return m;
  }

  private executorFor(nodeId: string, incarnation: number, clock: Clock): typeof runCommand {
    return (req) => {
      this.executions.push({
        nodeId,
        incarnation,
        instanceId: req.env.CHORUS_INSTANCE_ID ?? '?',
        attempt: Number(req.env.CHORUS_ATTEMPT),
        cmd: req.cmd,
        step: (req.env.CHORUS_STEP as 'pre' | 'post' | undefined) ?? null,
        atMs: clock.now(),
      });
      return fakeRun(clock, req);
    };
  }

  private joinThrough(id: string, seedId: string): void {
    const seed = this.member(seedId);
    this.member(id)
      .node.join(seedId, seed.transport.addresses())
      .catch(() => undefined); // the seed is down: gossip of member records cannot help, the test will say so
  }

  private firstRunningOtherThan(id: string): string {
    const seed = this.liveIds().find((other) => other !== id);
    if (!seed) throw new Error('no running node to join through');
    return seed;
  }

  private member(id: string): SimMember {
    const m = this.members.get(id);
    if (!m) throw new Error(`no node ${id} in this simulation`);
    return m;
  }

  private running(id: string): SimMember {
    const m = this.member(id);
    if (m.status !== 'running') throw new Error(`${id} is ${m.status}`);
    return m;
  }

  private record(event: TraceEvent): void {
    this.traceEvents += 1;
    this.traceBuffer += `${event.atMs}|${event.msgId}|${event.kind}|${event.from}|${event.to}|${event.topic ?? ''}|${event.bytes}|${event.outcome}|${event.reason ?? ''}\n`;
    if (this.traceBuffer.length > 64 * 1024) this.flushTrace();
  }

  /** Hashing in batches: one hash update per network event is a large share of a run. */
  private flushTrace(): void {
    this.trace.update(this.traceBuffer);
    this.traceBuffer = '';
  }
}

const DEFAULT_SPEC: JobSpec = {
  cmd: 'sleep:100',
  type: 'broadcast',
  schedule: null,
  tags: {},
  timeoutMs: null,
  retries: 0,
  concurrency: 'allow',
  pre: null,
  post: null,
};

/**
 * What a fake command does, from its text alone (space-separated words):
 * `sleep:MS` takes MS of virtual time (default 10); `fail:CODE` exits with CODE;
 * `flaky:N` exits 1 on attempts 1..N and 0 afterwards. Anything else exits 127.
 */
export function planOf(cmd: string, attempt: number): { durationMs: number; exitCode: number } {
  let durationMs = 10;
  let exitCode = 0;
  for (const word of cmd.trim().split(/\s+/)) {
    const [verb, arg] = word.split(':');
    const n = Number(arg);
    if (verb === 'sleep' && Number.isInteger(n) && n >= 0) durationMs = n;
    else if (verb === 'fail' && Number.isInteger(n)) exitCode = n;
    else if (verb === 'flaky' && Number.isInteger(n)) exitCode = attempt <= n ? 1 : 0;
    else exitCode = 127;
  }
  return { durationMs, exitCode };
}

/** The fake executor: completes after virtual time, honours `timeoutMs` and `signal` like runCommand. */
export function fakeRun(clock: Clock, req: ExecutionRequest): Promise<ExecutionResult> {
  const startedAtMs = clock.now();
  const plan = planOf(req.cmd, Number(req.env.CHORUS_ATTEMPT ?? '1'));
  const result = (status: ExecutionResult['status'], reason: ExecutionResult['reason'], exitCode: number | null): ExecutionResult => ({
    status,
    reason,
    exitCode,
    signal: reason === 'timeout' || reason === 'cancelled' ? 'SIGTERM' : null,
    stdout: `${req.cmd} on ${req.env.CHORUS_NODE_ID} attempt ${req.env.CHORUS_ATTEMPT}\n`,
    stderr: '',
    stdoutDroppedBytes: 0,
    stderrDroppedBytes: 0,
    startedAtMs,
    finishedAtMs: clock.now(),
    spawnError: null,
  });
  if (req.signal?.aborted) return Promise.resolve(result('cancelled', 'cancelled', null));
  return new Promise((resolve) => {
    const timedOut = req.timeoutMs !== null && req.timeoutMs < plan.durationMs;
    const finish = (r: () => ExecutionResult) => {
      timer.cancel();
      req.signal?.removeEventListener('abort', onAbort);
      resolve(r());
    };
    const onAbort = () => finish(() => result('cancelled', 'cancelled', null));
    const timer = clock.setTimer(timedOut ? (req.timeoutMs as number) : plan.durationMs, () =>
      finish(() =>
        timedOut
          ? result('failed', 'timeout', null)
          : plan.exitCode === 0
            ? result('succeeded', null, 0)
            : result('failed', 'exit-code', plan.exitCode),
      ),
    );
    req.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
