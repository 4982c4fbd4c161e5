// A whole chorus cluster in one process: real ChorusNodes (membership, replication,
// leader, worker) on a MemoryNetwork with a FakeClock and one seeded Rng, so a run is
// replayed exactly from its seed (DESIGN.md, "Sans-IO core"). Each node is built by the
// daemon's own assembleNode(): commands run on a fake executor in virtual time, journals,
// output and state live in memory (a crash keeps the journal, as a disk keeps an fsynced
// file), and job add, run and cancel go through the same ControlService as the HTTP API.
import { SimKeyring } from './sim-keys.js';
import { createHash, type Hash } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { InvariantError } from '../core/assert.js';
import { configFrom, type ChorusConfig } from '../core/config.js';
import { silentLogger } from '../core/log.js';
import type { MemberState } from '../cluster/view.js';
import { ControlService } from '../api/service.js';
import { KeeperQueries } from '../api/keeper-queries.js';
import { holderOf } from '../records/scope.js';
import { webhookBody } from '../api/views.js';
import { assembleNode } from '../node/assemble.js';
import type { ChorusNode, NodeComponents } from '../node/node.js';
import type { ExecutionRequest, ExecutionResult } from '../executor/executor.js';
import type { Executor } from '../executor/process-executor.js';
import { canonicalJson } from '../records/canonical.js';
import { recordKey } from '../records/merge.js';
import type { InstanceProgress } from '../records/status.js';
import type { AnyRecord, InstanceRecord, JobRecord, JobSpec } from '../records/types.js';
import { MemoryJournal } from '../store/journal.js';
import { MemoryOutputStore } from '../store/output-store.js';
import { RecordStore } from '../store/record-store.js';
import { FakeClock } from './fake-clock.js';
import { MemoryNetwork, type MemoryTransport, type NetworkConditions, type NetworkStats, type TraceEvent } from './memory-network.js';
import { Rng } from './random.js';
import { jobSpec } from './fixtures.js';

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
  /** The fake clock's guard against timer loops (default 1,000,000 fires per run); large clusters need more. */
  maxTimerFiresPerRun?: number;
  /** The fake clock's leak guard: timers queued at once (each node holds a few; messages in flight one each). Default 100,000. */
  maxTimersQueued?: number;
  /** Webhook POSTs and secrets of each node (default: none may be made: a POST fails). */
  webhooks?: (nodeId: string, clock: Clock) => Pick<NodeComponents['webhooks'], 'post' | 'readSecret'>;
  /** Told of every dead verdict a node reaches about a member (announced or not): false verdicts are found by whom they are about. */
  onMemberDead?: (viewer: string, nodeId: string) => void;
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
  service: ControlService;
  /** What its HTTP API answers: the service, with the questions about the cluster's work asked of a keeper. */
  plane: KeeperQueries;
  transport: MemoryTransport;
  store: RecordStore;
  journal: MemoryJournal;
  outputs: MemoryOutputStore;
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
  probesSent: number;
  malformedMessages: number;
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
  /** Every subtask release a leader wrote (its first record of the subtask, with releasedAtMs). */
  readonly releases: { atMs: number; by: string; instanceId: string; nodeId: string }[] = [];
  private readonly releaseKeys = new Set<string>();
  /** What the test did to the nodes, with times (crash, restart, leave, freeze, thaw, partition, heal): for failure messages. */
  readonly disruptionLog: string[] = [];
  private note(what: string): void {
    this.disruptionLog.push(`+${this.now() - this.startMs} ${what}`);
  }
  /** Per release (instance/node/releasedAtMs): the nodes whose store held it. */
  private readonly releaseHolders = new Map<string, Set<string>>();

  private releaseSeenBy(key: string, nodeId: string): void {
    let holders = this.releaseHolders.get(key);
    if (!holders) this.releaseHolders.set(key, (holders = new Set()));
    holders.add(nodeId);
  }

  /** The releases that reached their owner: one that died with its leader (or never got through) released nothing. */
  deliveredReleases(): { atMs: number; by: string; instanceId: string; nodeId: string }[] {
    return this.releases.filter((r) => this.releaseHolders.get(`${r.instanceId}/${r.nodeId}/${r.atMs}`)?.has(r.nodeId) === true);
  }
  /** Times when more than one running node believed itself the leader (toMs Infinity while it lasts): guarantee 7 allows it. */
  readonly contested: { fromMs: number; toMs: number }[] = [];
  private readonly selfLeaders = new Set<string>();
  /** Partitions, from their start to their heal (toMs Infinity while one lasts): each side may have its own leader. */
  readonly partitions: { fromMs: number; toMs: number }[] = [];
  /**
   * Every node any creation of an instance targeted (two leaders may create one instance
   * with different targets; the merge keeps one creation): guarantee 4's ground truth.
   */
  readonly createdTargets = new Map<string, Set<string>>();
  /** Nodes that crashed, froze, left or were partitioned: the only fair targets of a verdict. */
  readonly disrupted = new Set<string>();
  private readonly rng: Rng;
  /** Every node's record keys (see sim-keys.ts). */
  readonly keyring: SimKeyring;
  private readonly members = new Map<string, SimMember>();
  /** Broken invariants any node reported: the next wait fails with the first. */
  readonly invariantErrors: InvariantError[] = [];
  private readonly trace: Hash = createHash('sha256');
  private traceEvents = 0;
  private traceBuffer = '';
  private instanceCounter = 0;
  private nextIndex = 1;
  private readonly tagsOf: (nodeId: string) => Record<string, string>;
  private readonly clockSkewMs: number;
  private disposed = false;
  private readonly startMs: number;

  private readonly webhooksOf: SimClusterOptions['webhooks'];
  private readonly onMemberDead: SimClusterOptions['onMemberDead'];

  constructor(options: SimClusterOptions) {
    this.webhooksOf = options.webhooks;
    this.onMemberDead = options.onMemberDead;
    this.seed = options.seed;
    this.keyring = new SimKeyring(`sim-${options.seed}`);
    this.rng = new Rng(options.seed);
    this.config = configFrom(options.config ?? {});
    this.tagsOf = options.tagsOf ?? (() => ({}));
    this.clockSkewMs = options.clockSkewMs ?? 0;
    this.startMs = options.startMs ?? DEFAULT_START_MS;
    this.clock = new FakeClock(this.startMs, {
      ...(options.maxTimerFiresPerRun === undefined ? {} : { maxFiresPerRun: options.maxTimerFiresPerRun }),
      ...(options.maxTimersQueued === undefined ? {} : { maxTimers: options.maxTimersQueued }),
    });
    this.net = new MemoryNetwork({
      clock: this.clock,
      rng: this.rng.fork(),
      onTrace: (event) => this.record(event),
      // gossipsub's mesh degree: records reach members the publisher has no connection to.
      relayFanout: 6,
      ...options.network,
    });
    for (let i = 0; i < options.size; i++) this.create(nodeIdOf(this.nextIndex++));
  }

  // ---- lifecycle -------------------------------------------------------------------

  /**
   * Starts every node. `seed`: each dials only the first node, as `--join` does, and
   * finds the rest through gossip of member records. `all`: a full mesh at once.
   */
  start(connect: 'seed' | 'all' = 'seed'): void {
    const ids = this.ids();
    for (const id of ids) this.startNode(this.member(id));
    if (connect === 'all') return this.net.connectAll();
    const seedId = ids[0] as string;
    for (const id of ids.slice(1)) this.joinThrough(id, seedId);
  }

  /** A new node (next id) that joins through `seedId` (default: the first running node). */
  addNode(seedId?: string): string {
    const id = nodeIdOf(this.nextIndex++);
    const m = this.create(id);
    this.startNode(m);
    this.joinThrough(id, seedId ?? this.firstRunningOtherThan(id));
    return id;
  }

  /** kill -9: connections close, timers stop; state.json and the journal survive. */
  crash(id: string): void {
    this.note(`crash ${id}`);
    const m = this.member(id);
    if (m.status === 'crashed' || m.status === 'left') throw new Error(`${id} is not running (${m.status})`);
    m.persisted = structuredClone(m.store.all());
    this.net.crash(id);
    m.journal.close();
    m.status = 'crashed';
    this.disrupted.add(id);
    this.selfLeader(id, false);
  }

  /** A new process with the same id and data: a new incarnation that joins through a running node. */
  restart(id: string, seedId?: string): void {
    this.note(`restart ${id}`);
    const old = this.member(id);
    if (old.status === 'running' || old.status === 'frozen') this.crash(id);
    const persisted = old.persisted;
    const m = this.create(id, persisted, old);
    this.startNode(m);
    this.joinThrough(id, seedId ?? this.firstRunningOtherThan(id));
  }

  /** Graceful stop (SIGTERM): leave, then the process exits and its connections close. */
  async leave(id: string): Promise<void> {
    this.note(`leave ${id}`);
    const m = this.member(id);
    if (m.status !== 'running') throw new Error(`${id} cannot leave while ${m.status}`);
    this.disrupted.add(id);
    await this.drive(m.node.leave(), `${id} leaving`);
    m.persisted = structuredClone(m.store.all());
    this.net.crash(id);
    m.journal.close();
    m.status = 'left';
    this.selfLeader(id, false);
  }

  /**
   * Drops a crashed or departed node from the simulation for good (its process, its disk, its
   * place on the network), so that a churn of thousands of identities stays within memory.
   * What it did stays in the ground truth (executions, verdicts, disrupted); its counters
   * leave stats().
   */
  discard(id: string): void {
    const m = this.member(id);
    if (m.status !== 'crashed' && m.status !== 'left') throw new Error(`${id} cannot be discarded while ${m.status}`);
    this.net.remove(id);
    this.members.delete(id);
  }

  freeze(id: string): void {
    this.note(`freeze ${id}`);
    this.net.freeze(id);
    this.member(id).status = 'frozen';
    this.disrupted.add(id);
  }

  thaw(id: string): void {
    this.note(`thaw ${id}`);
    this.net.thaw(id);
    this.member(id).status = 'running';
  }

  partition(groupA: string[], groupB: string[]): void {
    this.note(`partition ${groupA.join(',')} | ${groupB.join(',')}`);
    this.net.partition(groupA, groupB);
    for (const id of [...groupA, ...groupB]) this.disrupted.add(id);
    if (this.partitions.at(-1)?.toMs !== Number.POSITIVE_INFINITY) this.partitions.push({ fromMs: this.now(), toMs: Number.POSITIVE_INFINITY });
  }

  heal(): void {
    this.note(`heal`);
    this.net.heal();
    const last = this.partitions.at(-1);
    if (last && last.toMs === Number.POSITIVE_INFINITY) last.toMs = this.now();
  }

  /** Keeps `contested` up to date as a node's view of the leader changes or the node stops. */
  private selfLeader(id: string, leading: boolean): void {
    if (leading) this.selfLeaders.add(id);
    else this.selfLeaders.delete(id);
    const last = this.contested.at(-1);
    const open = last !== undefined && last.toMs === Number.POSITIVE_INFINITY;
    if (this.selfLeaders.size > 1 && !open) this.contested.push({ fromMs: this.now(), toMs: Number.POSITIVE_INFINITY });
    if (this.selfLeaders.size <= 1 && open) last.toMs = this.now();
  }

  /** Crashes what still runs and closes the journals. Call in afterEach / finally. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const m of this.members.values()) {
      if (m.status === 'running' || m.status === 'frozen') this.net.crash(m.id);
      m.journal.close();
    }
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
    this.throwInvariantErrors();
    while (!predicate()) {
      if (this.clock.now() >= deadlineMs) {
        throw new Error(`${what} not met within ${timeoutMs} ms of virtual time [seed ${this.seed}]\n${this.describe()}\n${replayHint(this.seed)}`);
      }
      await this.clock.runUntilAsync(Math.min(deadlineMs, this.clock.nextDueMs() ?? deadlineMs));
      this.throwInvariantErrors();
    }
    return this.clock.now() - startMs;
  }

  async run(ms: number): Promise<void> {
    await this.clock.advanceAsync(ms);
    this.throwInvariantErrors();
  }

  private throwInvariantErrors(): void {
    const [first] = this.invariantErrors;
    if (first) throw new Error(`${first.message} [seed ${this.seed}]\n${replayHint(this.seed)}`, { cause: first });
    // A handler that threw is a bug the daemon would only log: here it fails the run.
    const [thrown] = this.net.handlerErrors;
    if (thrown) throw new Error(`${thrown.nodeId}'s ${thrown.event} handler threw on an event from ${thrown.peer}: ${(thrown.error as Error)?.message ?? String(thrown.error)} [seed ${this.seed}]\n${replayHint(this.seed)}`, { cause: thrown.error });
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

  /** `chorus job add NAME` on node `onId`: the API's own putJob (an acknowledged write). */
  async addJob(onId: string, name: string, spec: Partial<JobSpec> = {}): Promise<JobRecord> {
    const m = this.running(onId);
    await this.drive(m.service.putJob(name, { ...DEFAULT_SPEC, ...spec }, false), `acknowledging job ${name} on ${onId}`);
    return m.store.job(name) as JobRecord;
  }

  /** `chorus job run NAME` on node `onId`: the request goes to the leader that node knows. */
  async runJob(onId: string, jobName: string): Promise<InstanceRecord> {
    const m = this.running(onId);
    const view = await this.drive(m.service.runJob(jobName), `run of ${jobName} from ${onId}`);
    return m.store.instance(view.id) as InstanceRecord;
  }

  /** `chorus instance cancel ID` on node `onId` (an acknowledged write, through the API's service). */
  async cancel(onId: string, instanceId: string): Promise<void> {
    const m = this.running(onId);
    await this.drive(m.service.cancelInstance(instanceId), `acknowledging the cancel of ${instanceId} on ${onId}`);
  }

  /** The control-plane service of node `id`, answering from its own records (all of them on a keeper). */
  service(id: string): ControlService {
    return this.member(id).service;
  }

  /** What the HTTP API of node `id` answers: a member that is not a keeper asks a keeper about the cluster's work. */
  plane(id: string): KeeperQueries {
    return this.member(id).plane;
  }

  /** Status of an instance as node `id` derives it from its own records. */
  progressSeenBy(id: string, instanceId: string): InstanceProgress | null {
    const store = this.storeAnswering(id);
    const instance = store.instance(instanceId);
    return instance ? store.progressOf(instance) : null;
  }

  /**
   * The records node `id`'s API answers from: its own on a keeper; a member that is not one
   * answers what its first running keeper answers (api/keeper-queries.ts).
   */
  storeAnswering(id: string): RecordStore {
    const node = this.node(id);
    if (node.replicator.isKeeper()) return this.member(id).store;
    const keeper = node.membership.keepers().find((k) => this.members.has(k) && this.member(k).status === 'running');
    return this.member(keeper ?? id).store;
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
    m.digest = this.digestWhere(id, () => true);
    m.digestSize = m.store.size();
    return m.digest;
  }

  /** The same for the records of node `id` that `keep` keeps. */
  private digestWhere(id: string, keep: (r: AnyRecord) => boolean): string {
    const store = this.member(id).store;
    return store
      .all()
      .filter(keep)
      .map((r) => `${recordKey(r)}=${store.versionOf(recordKey(r))}`)
      .sort()
      .join('\n');
  }

  /**
   * All of `ids` agree (DESIGN.md, guarantee 6): they name the same keepers, the keepers among
   * them hold identical records, and every other one holds what a keeper holds of the shared
   * records and of its own work (records/scope.ts; others' work it held as a keeper before may
   * linger until it forgets it).
   */
  converged(ids = this.liveIds()): boolean {
    return this.divergence(ids) === null;
  }

  /** Why `ids` have not converged (see converged), or null when they have. */
  divergence(ids = this.liveIds()): string | null {
    if (ids.length === 0) return null;
    const keepers = this.node(ids[0] as string).membership.keepers();
    const named = ids.find((id) => !sameList(this.node(id).membership.keepers(), keepers));
    if (named !== undefined) return `${named} names the keepers ${this.node(named).membership.keepers().join(',')}, ${ids[0]} ${keepers.join(',')}`;
    const keeping = ids.filter((id) => keepers.includes(id));
    const apart = keeping.find((id) => this.digestOf(id) !== this.digestOf(keeping[0] as string));
    if (apart !== undefined) return `keepers ${keeping[0]} and ${apart} hold different records`;
    const reference = keeping[0] ?? (ids[0] as string);
    const behind = ids.find((id) => {
      if (keepers.includes(id)) return false;
      const mine = (r: AnyRecord) => {
        const holder = holderOf(r);
        return holder === null || holder === id;
      };
      const shared = (r: AnyRecord) => holderOf(r) === null;
      // Without a keeper among them, two members share only the shared records.
      const keep = keeping.length > 0 ? mine : shared;
      return this.digestWhere(id, keep) !== this.digestWhere(reference, keep);
    });
    if (behind === undefined) return null;
    const mineOf = (id: string) => this.digestWhere(id, (r) => holderOf(r) === null || holderOf(r) === behind).split('\n');
    const theirs = new Set(mineOf(reference));
    const ours = new Set(mineOf(behind));
    return `${behind} and ${reference} differ: only at ${behind}: ${[...ours].filter((x) => !theirs.has(x)).slice(0, 3).join(' ')}; only at ${reference}: ${[...theirs].filter((x) => !ours.has(x)).slice(0, 3).join(' ')}`;
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
      probesSent: 0,
      malformedMessages: 0,
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
      stats.probesSent += mc.probesSent;
      stats.malformedMessages += mc.malformedMessages;
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
    const live = this.liveIds().filter((id) => this.member(id).status === 'running');
    lines.push(`  convergence: ${this.divergence(live) ?? 'yes'}`);
    return lines.join('\n');
  }

  // ---- internals ---------------------------------------------------------------------

  /** A node process: on a first start an empty disk; on a restart what `previous` left on it. */
  private create(id: string, persisted: AnyRecord[] = [], previous?: SimMember): SimMember {
    const isNew = !this.members.has(id);
    const skewMs = isNew && this.clockSkewMs > 0 ? this.rng.int(-this.clockSkewMs, this.clockSkewMs) : undefined;
    const transport = this.net.endpoint(id, skewMs === undefined ? {} : { clockOffsetMs: skewMs });
    const clock = transport.clock;
    const store = RecordStore.inMemory(clock, this.config.storeFlushDelayMs);
    store.apply(persisted);
    const journal = previous ? MemoryJournal.reopen(previous.journal) : new MemoryJournal(`(memory)/${id}/journal.log`);
    const outputs = previous?.outputs ?? new MemoryOutputStore();
    const random = this.rng.fork();
    const incarnation = (store.member(id)?.incarnation ?? 0) + 1;
    const node = assembleNode({
      transport,
      clock,
      random: () => random.next(),
      config: this.config,
      store,
      keys: this.keyring.keysFor(id),
      journal,
      outputs,
      executor: this.executorFor(id, incarnation, clock),
      log: silentLogger,
      fatal: (err) => this.invariantErrors.push(err),
      name: `sim-${id}`,
      tags: { sim: '1', ...this.tagsOf(id) },
      newInstanceId: () => `sim${String(++this.instanceCounter).padStart(5, '0')}`,
      observer: { leaderChanged: (leader) => this.selfLeader(id, leader === id), memberDead: (e) => this.onMemberDead?.(id, e.nodeId) },
      webhooks: {
        ...(this.webhooksOf?.(id, clock) ?? { post: () => Promise.reject(new Error('no webhooks in this simulation')), readSecret: () => Promise.reject(new Error('no secrets in this simulation')) }),
        body: webhookBody,
      },
    });
    const service = new ControlService({ node, clock, log: silentLogger, host: { api: () => `sim://${id}`, dataDir: null, memory: () => ({ rssBytes: 0, heapUsedBytes: 0, heapTotalBytes: 0, externalBytes: 0 }), networkCounters: () => ({}), containment: { kind: 'environment', detail: 'simulated' } } });
    store.onChange((records) => {
      m.digest = null;
      for (const r of records) {
        if (r.kind === 'instance') {
          const targets = this.createdTargets.get(r.record.id) ?? new Set<string>();
          for (const nodeId of r.record.targets) targets.add(nodeId);
          this.createdTargets.set(r.record.id, targets);
        }
        if (r.kind === 'subtask' && r.record.releasedAtMs !== undefined) this.releaseSeenBy(`${r.record.instanceId}/${r.record.nodeId}/${r.record.releasedAtMs}`, id);
        if (r.kind === 'subtask' && r.record.status === 'pending' && r.record.attempt === 1 && r.record.releasedAtMs !== undefined && r.record.reporter === id && r.record.stamp.nodeId === id) {
          // The same release may come back to its writer after a restart that lost it from disk: one release still.
          const key = `${r.record.instanceId}/${r.record.nodeId}/${r.record.releasedAtMs}/${id}`;
          if (!this.releaseKeys.has(key)) {
            this.releaseKeys.add(key);
            this.releases.push({ atMs: r.record.releasedAtMs, by: id, instanceId: r.record.instanceId, nodeId: r.record.nodeId });
          }
        }
        if (r.kind !== 'subtask' || r.record.reason !== 'node-lost' || r.record.reporter !== id || r.record.stamp.nodeId !== id) continue;
        const { instanceId, nodeId, attempt } = r.record;
        this.verdicts.push({ atMs: clock.now(), reporter: id, nodeId, instanceId, attempt });
      }
    });
    const plane = new KeeperQueries(service, node);
    const m: SimMember = { id, status: 'running', node, service, plane, transport, store, journal, outputs, incarnation, persisted: [], digest: null, digestSize: 0 };
    this.members.set(id, m);
    return m;
  }

  private startNode(m: SimMember): void {
    m.node.start().catch((err: unknown) => {
      if (err instanceof InvariantError) this.invariantErrors.push(err);
      else throw err;
    });
  }

  private executorFor(nodeId: string, incarnation: number, clock: Clock): Executor {
    return {
      run: (req) => {
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
      },
      // A fake command ends with its simulated process: nothing outlives a crash.
      killLeftover: () => [],
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

const DEFAULT_SPEC: JobSpec = jobSpec({ cmd: 'sleep:100' });

/**
 * What a fake command does, from its text alone (space-separated words):
 * `sleep:MS` takes MS of virtual time (default 10); `fail:CODE` exits with CODE;
 * `flaky:N` exits 1 on attempts 1..N and 0 afterwards; `failon:n02,n05` exits 1 on those
 * nodes. Anything else exits 127.
 */
export function planOf(cmd: string, attempt: number, nodeId = ''): { durationMs: number; exitCode: number } {
  let durationMs = 10;
  let exitCode = 0;
  for (const word of cmd.trim().split(/\s+/)) {
    const [verb, arg] = word.split(':');
    const n = Number(arg);
    if (verb === 'sleep' && Number.isInteger(n) && n >= 0) durationMs = n;
    else if (verb === 'fail' && Number.isInteger(n)) exitCode = n;
    else if (verb === 'flaky' && Number.isInteger(n)) exitCode = attempt <= n ? 1 : 0;
    else if (verb === 'failon' && arg !== undefined) exitCode = arg.split(',').includes(nodeId) ? 1 : exitCode;
    else exitCode = 127;
  }
  return { durationMs, exitCode };
}

/** The fake executor: completes after virtual time, honours `timeoutMs` and `signal` like runCommand. */
export function fakeRun(clock: Clock, req: ExecutionRequest): Promise<ExecutionResult> {
  const startedAtMs = clock.now();
  const plan = planOf(req.cmd, Number(req.env.CHORUS_ATTEMPT ?? '1'), req.env.CHORUS_NODE_ID ?? '');
  // Written as the command starts, so a follower sees it while the command runs.
  const stdout = `${req.cmd} on ${req.env.CHORUS_NODE_ID} attempt ${req.env.CHORUS_ATTEMPT}\n`;
  req.output?.push('stdout', Buffer.from(stdout));
  const result = (status: ExecutionResult['status'], reason: ExecutionResult['reason'], exitCode: number | null): ExecutionResult => ({
    status,
    reason,
    exitCode,
    signal: reason === 'timeout' || reason === 'cancelled' ? 'SIGTERM' : null,
    stdout,
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

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
