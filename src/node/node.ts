// The heart of a chorus node without any I/O of its own: membership, replication,
// leader and worker over the components it is given (a transport, a clock, a journal,
// an output store, an executor...). The daemon gives it libp2p, the real clock and
// files; the simulator gives it an in-memory network, a fake clock and memory.
// `assembleNode()` (assemble.ts) builds it for both.
import { NO_OBSERVER, type NodeObserver } from '../records/observer.js';
import { every, type Clock, type TimerHandle } from '../core/clock.js';
import { InvariantError, invariant } from '../core/assert.js';
import { pruneFinishedInstances, pruneFires } from '../store/retention.js';
import type { ChorusConfig } from '../core/config.js';
import type { Logger } from '../core/log.js';
import type { Transport } from '../core/transport.js';
import { Membership } from '../cluster/membership.js';
import { MAX_PULLERS, Replicator, RECORDS_TOPIC } from '../cluster/replicator.js';
import { FreshView } from '../cluster/fresh-view.js';
import { MAX_QUEUED_UPDATES, MAX_STATE_ENTRIES } from '../cluster/swim.js';
import { Rpc, RpcError } from '../cluster/rpc.js';
import type { HybridClock } from '../records/hlc.js';
import type { AnyRecord, InstanceRecord, MemberRecord } from '../records/types.js';
import { instanceIdOf } from '../records/types.js';
import { ADHOC_JOB } from '../records/ids.js';
import { StorageWriteError } from '../store/durable-file.js';
import { signRecord, type RecordKeys } from '../records/signature.js';
import { Leader } from '../scheduler/leader.js';
import { Notifier, type NotifierDeps } from '../scheduler/notifier.js';
import { RunRequests } from '../scheduler/run-requests.js';
import { isInstanceFinished } from '../records/status.js';
import type { AttemptJournal } from '../store/journal.js';
import type { OutputStore } from '../store/output-store.js';
import { MAX_PRUNED_IDS, type RecordStore } from '../store/record-store.js';
import { Worker } from '../worker/worker.js';
import type { Executor } from '../executor/process-executor.js';
import { LiveOutputs } from '../output/live.js';
import { OutputServer } from '../output/output-server.js';

export const TOPICS = [RECORDS_TOPIC];

/** Everything a node is made of. Every part is required: a missing one fails at construction, by name. */
export interface NodeComponents {
  transport: Transport;
  clock: Clock;
  /** Uniform in [0, 1): peer choice in anti-entropy. Seeded in simulations. */
  random: () => number;
  config: ChorusConfig;
  store: RecordStore;
  journal: AttemptJournal;
  outputs: OutputStore;
  executor: Executor;
  hlc: HybridClock;
  /** Signs every record this node writes, and checks the signature of every record it receives. */
  keys: RecordKeys;
  /** This node's member record for this start (a new incarnation). */
  self: MemberRecord;
  log: Logger;
  /** Id of a manual or ad-hoc instance: random bytes in the daemon, a counter in the simulator. */
  newInstanceId: () => string;
  /** Told of a broken invariant: the daemon exits naming the guarantee; the simulator fails the run. */
  fatal: (err: InvariantError) => void;
  /** Told of what the node does (the daemon's metrics). Default: nobody. */
  observer?: NodeObserver;
  /**
   * How webhooks are POSTed, their secrets read and an ended instance told (the API's view of
   * it): HTTP and the file system in the daemon, fakes in the simulator.
   */
  webhooks: Pick<NotifierDeps, 'post' | 'readSecret'> & { body: (instance: InstanceRecord, store: RecordStore) => unknown };
}

const COMPONENTS: readonly (keyof NodeComponents)[] = [
  'transport',
  'clock',
  'random',
  'config',
  'store',
  'journal',
  'outputs',
  'executor',
  'hlc',
  'keys',
  'self',
  'log',
  'newInstanceId',
  'fatal',
  'webhooks',
];

/** Throws, naming every missing part, unless all of a node's components are there. */
export function checkComponents(components: Partial<NodeComponents>): asserts components is NodeComponents {
  const missing = COMPONENTS.filter((name) => components[name] === undefined || components[name] === null);
  if (missing.length > 0) throw new TypeError(`a chorus node cannot be built without its ${missing.map((m) => `"${m}"`).join(', ')} component${missing.length > 1 ? 's' : ''}`);
}

/** Instance ids remembered as counted by noticeFinished (oldest forgotten first). */
const FINISHED_REMEMBERED = 10_000;

/** A member asks another to drain or undrain itself (only a node writes its own member record). */
export const DRAIN = 'drain';

export class ChorusNode {
  readonly rpc: Rpc;
  readonly membership: Membership;
  readonly replicator: Replicator;
  readonly leader: Leader;
  readonly worker: Worker;
  readonly notifier: Notifier;
  /** Runs asked for here, made here as leader or forwarded to it. */
  readonly runs: RunRequests;
  /** This node's output of instances, for `instance logs` (and `--follow`) on any node. */
  readonly outputs: OutputServer;
  /** Output of the attempts running here, for followers (`instance logs --follow`). */
  readonly live: LiveOutputs;
  private readonly freshView: FreshView;
  private self: MemberRecord;
  private started = false;
  private retentionTimer: TimerHandle | null = null;

  get config(): ChorusConfig {
    return this.deps.config;
  }

  private readonly deps: NodeComponents;

  constructor(components: NodeComponents) {
    checkComponents(components);
    const deps = (this.deps = components);
    this.self = deps.self;
    const { transport, clock, config, store, hlc } = deps;
    this.rpc = new Rpc(transport, (peer) => transport.dial(peer, store.member(peer)?.addrs ?? []));
    this.membership = this.makeMembership();
    this.replicator = this.makeReplicator();
    this.live = new LiveOutputs(clock);
    this.freshView = new FreshView({
      clock,
      config,
      transport,
      syncWith: (peer) => this.replicator.syncWith(peer, { dial: this.membership.keepers().includes(peer) }),
      keepers: () => this.membership.keepers(),
      syncsCompleted: () => this.replicator.counters.syncsCompleted,
      members: () => this.membership.members(),
    });
    this.leader = this.makeLeader();
    this.notifier = this.makeNotifier();
    this.worker = this.makeWorker();
    // Later local stamps must order after every stamp we have seen.
    store.onChange((records) => {
      for (const r of records) hlc.observe(r.record.stamp);
    });
    store.onChange((records) => this.noticeFinished(records));
    this.outputs = new OutputServer({ clock, config, store, outputs: deps.outputs, live: this.live, rpc: this.rpc, selfId: transport.localId });
    this.runs = new RunRequests({
      clock,
      config,
      store,
      transport,
      rpc: this.rpc,
      membership: this.membership,
      replicator: this.replicator,
      leader: this.leader,
      log: deps.log,
      commitDurably: (records) => this.commitDurably(records),
      acknowledge: (records, flush) => this.acknowledge(records, flush),
    });
    this.rpc.handle(DRAIN, (from, body) => this.onDrainRequest(from, body));
  }

  // ---- the parts, each given what it needs (called once, by the constructor, in this order) ----

  /** What membership and replication both take: the network, the clocks, the config, the store, the log and the random source. */
  private networking(): { transport: Transport; clock: Clock; config: ChorusConfig; store: RecordStore; rpc: Rpc; log: Logger; random: () => number } {
    const { transport, clock, config, store, log, random } = this.deps;
    return { transport, clock, config, store, rpc: this.rpc, log, random };
  }

  private makeMembership(): Membership {
    return new Membership({
      ...this.networking(),
      self: () => this.self,
      onChange: () => this.onMembershipChange(),
      observer: this.deps.observer ?? NO_OBSERVER,
      stateRoot: () => this.replicator.fingerprint(),
      onKeepersChange: () => this.onKeepersChange(),
      onPeerRoot: (peer, root) => this.replicator.onPeerRoot(peer, root),
    });
  }

  private makeReplicator(): Replicator {
    return new Replicator({
      ...this.networking(),
      keys: this.deps.keys,
      leaderId: () => this.membership.leaderId(),
      keepers: () => this.membership.keepers(),
      neighboursLinkedToLeader: () => this.membership.neighboursLinkedToLeader(),
      neighboursLinkedToKeeper: () => this.membership.neighboursLinkedToKeeper(),
      onInvariant: (err) => this.deps.fatal(err),
      heardFrom: (peer) => this.membership.heardFrom(peer),
      onImpliedConfirmed: (ids) => this.worker.recheck(ids),
      stalledRecently: () => this.membership.stalledRecently(),
      onPruned: (ids) => {
        this.deps.log.info({ removed: ids.length }, 'old instances removed (retention, as a peer did)');
        this.forgetInstances(ids).catch((err: unknown) => this.deps.log.error({ err }, `cannot remove the logs of pruned instances: ${(err as Error).message}`));
      },
    });
  }

  /** What the leader, the notifier and the worker all take: the clocks, the config, the store, the log, and how they commit. */
  private scheduling(): { clock: Clock; config: ChorusConfig; store: RecordStore; hlc: HybridClock; log: Logger; commit: (records: AnyRecord[]) => AnyRecord[] } {
    const { clock, config, store, hlc, log } = this.deps;
    return { clock, config, store, hlc, log, commit: (records) => this.commit(records) };
  }

  private makeLeader(): Leader {
    return new Leader({
      ...this.scheduling(),
      view: this.membership,
      mayAct: () => this.freshView.leaderMayAct(),
      newInstanceId: this.deps.newInstanceId,
      observer: this.deps.observer ?? NO_OBSERVER,
      selfId: this.id,
    });
  }

  private makeNotifier(): Notifier {
    const { store, webhooks } = this.deps;
    return new Notifier({
      ...this.scheduling(),
      view: this.membership,
      journal: this.deps.journal,
      mayLead: () => this.membership.leaderId() === this.id && this.freshView.leaderMayAct(),
      bodyOf: (instanceId) => {
        const instance = store.instance(instanceId);
        return instance ? webhooks.body(instance, store) : { id: instanceId };
      },
      post: webhooks.post,
      readSecret: webhooks.readSecret,
    });
  }

  private makeWorker(): Worker {
    return new Worker({
      ...this.scheduling(),
      journal: this.deps.journal,
      outputs: this.deps.outputs,
      executor: this.deps.executor,
      selfId: this.id,
      live: this.live,
      fatal: this.deps.fatal,
      stepsMayStart: () => this.freshView.stepsMayStart(),
      mayStartImplied: (instanceId) => this.replicator.mayStartImplied(instanceId),
      observer: this.deps.observer ?? NO_OBSERVER,
    });
  }

  get id(): string {
    return this.deps.transport.localId;
  }

  /** Instances seen ending while this node leads, logged and told to the observer once each (the newest FINISHED_REMEMBERED ids are kept). */
  private readonly finishedSeen = new Set<string>();

  private noticeFinished(records: AnyRecord[]): void {
    if (!this.started || this.membership.leaderId() !== this.id) return;
    const { store } = this.deps;
    for (const id of instanceIdsOf(records)) {
      if (this.finishedSeen.has(id)) continue;
      const instance = store.instance(id);
      if (!instance) continue;
      const status = store.statusOf(instance);
      if (status !== 'succeeded' && status !== 'failed' && status !== 'cancelled') continue;
      this.finishedSeen.add(id);
      if (this.finishedSeen.size > FINISHED_REMEMBERED) this.finishedSeen.delete(this.finishedSeen.values().next().value as string);
      this.deps.observer?.instanceFinished?.({ job: instance.job, status });
      this.deps.log.info({ job: instance.job, instanceId: id, nodeId: this.id, attempt: null, status }, `instance ${status}`);
    }
  }

  get hlc(): HybridClock {
    return this.deps.hlc;
  }

  get store(): RecordStore {
    return this.deps.store;
  }

  get transport(): Transport {
    return this.deps.transport;
  }

  get clock(): Clock {
    return this.deps.clock;
  }

  /** This node's member record as this process wrote it last. */
  get selfRecord(): MemberRecord {
    return this.self;
  }

  /** Starts every part, in order: membership, replication, worker (after crash recovery), leader. */
  async start(): Promise<void> {
    const { transport } = this.deps;
    transport.setHandlers({
      onMessage: (topic, from, data) => {
        if (!this.started) return;
        try {
          if (topic === RECORDS_TOPIC) this.replicator.onGossip(from, data);
        } catch (err) {
          // A broken guarantee stops the node here; anything else is the transport's to report (core/transport.ts).
          if (!(err instanceof InvariantError)) throw err;
          this.deps.fatal(err);
        }
      },
      onRequest: (from, data) =>
        this.rpc.onRequest(from, data).catch((err: unknown) => {
          this.stopOnInvariant(err);
          throw err;
        }),
      onPeerConnected: (peer) => {
        if (!this.started) return;
        this.membership.onPeerConnected(peer);
        this.replicator.syncWith(peer).catch((err: unknown) => this.stopOnInvariant(err));
      },
      onPeerDisconnected: (peer) => {
        if (this.started) this.membership.onPeerDisconnected(peer);
      },
    });
    this.started = true;
    this.freshView.started(this.deps.clock.now());
    this.commit([{ kind: 'member', record: this.self }]);
    this.membership.start();
    this.replicator.start();
    this.worker.start();
    this.leader.start();
    this.notifier.start();
    this.retentionTimer = every(this.deps.clock, this.deps.config.retentionIntervalMs, () =>
      void this.applyRetention().catch((err: unknown) => this.deps.log.error({ err }, `retention pass failed: ${(err as Error).message}; tried again at the next one`)),
    );
  }

  /** A broken invariant that reached the network layer (which would turn it into an error reply) stops the node. */
  private stopOnInvariant(err: unknown): void {
    if (err instanceof InvariantError) this.deps.fatal(err);
  }

  /** The node's bounded stores and queues, for `chorus status`: what each holds and its limit. */
  bounds(): { name: string; used: number; limit: number; about: string }[] {
    const { store, config, transport } = this.deps;
    const finishedPerJob = new Map<string, number>();
    for (const instance of store.instances()) {
      if (isInstanceFinished(store.statusOf(instance))) finishedPerJob.set(instance.job, (finishedPerJob.get(instance.job) ?? 0) + 1);
    }
    return [
      { name: 'records', used: store.size(), limit: config.retainRecords, about: 'replicated records held; past it the oldest finished instances go (unfinished ones never)' },
      { name: 'finished instances of a job', used: Math.max(0, ...[...finishedPerJob].filter(([job]) => job !== ADHOC_JOB).map(([, n]) => n)), limit: config.retainInstancesPerJob, about: 'the most any job has; past it its oldest go, with their logs' },
      { name: 'unfinished instances of a job', used: store.mostUnfinishedOfAJob(), limit: config.maxUnfinishedPerJob, about: 'the most any job has; past it its scheduled fires are skipped (backlog)' },
      { name: 'finished ad-hoc runs', used: finishedPerJob.get(ADHOC_JOB) ?? 0, limit: config.retainAdhocInstances, about: 'chorus run, all together; past it the oldest go, with their logs' },
      { name: 'pruned instance ids', used: store.prunedCount(), limit: MAX_PRUNED_IDS, about: 'remembered so that no peer brings a pruned instance back; the oldest are forgotten first' },
      { name: 'members', used: store.members().length, limit: MAX_STATE_ENTRIES, about: `member records held, the most a membership push/pull carries; dead and left ones are reaped after reapAfterMs, ${store.reapedCount()} of them remembered so that no peer brings one back` },
      this.replicator.isKeeper()
        ? { name: 'members whose work is held', used: store.workHolders(), limit: MAX_STATE_ENTRIES, about: 'this node is a keeper: it holds every member\'s subtasks and steps (records, above, bounds them)' }
        : { name: 'members whose work is held', used: store.workHolders(), limit: 1, about: 'this node is not a keeper: it holds its own subtasks and steps only, and asks a keeper about the others' },
      { name: 'connections', used: transport.connectedPeers().length, limit: config.maxPeerConnections, about: 'members this node keeps a connection to; past it some are closed' },
      { name: 'membership updates queued', used: this.membership.pendingUpdates(), limit: MAX_QUEUED_UPDATES, about: 'changes waiting to be disseminated; past it the most-sent go first' },
      { name: 'peers pulling state', used: this.replicator.pullers(), limit: MAX_PULLERS, about: 'peers catching up from this node, remembered so as not to sync against them' },
      { name: 'live outputs', used: this.live.size, limit: config.maxConcurrentSubtasks, about: 'running attempts whose output followers read as it is written (maxOutputBytes per stream each)' },
    ];
  }

  /** Removes old finished instances, their logs and their journal entries. */
  async applyRetention(): Promise<number> {
    pruneFires(this.deps.store, this.deps.config.retainInstancesPerJob);
    const { retainInstancesPerJob, retainRecords, retainAdhocInstances } = this.deps.config;
    const removed = pruneFinishedInstances(this.deps.store, retainInstancesPerJob, retainRecords, retainAdhocInstances);
    if (removed.length > 0) this.deps.log.info({ removed: removed.length }, 'old instances removed (retention)');
    await this.forgetInstances(removed);
    return removed.length;
  }

  /** The logs and journal entries of instances removed by retention (here, or learned from a peer). */
  private async forgetInstances(removed: string[]): Promise<void> {
    for (const id of removed) await this.deps.outputs.delete(id);
    if (removed.length > 0) {
      const gone = new Set(removed);
      try {
        await this.deps.journal.compact((journalId) => !gone.has(journalId.split(':')[0] as string));
      } catch (err) {
        // The journal keeps its old entries (all of them still true); the next pass tries again.
        this.deps.log.error({ err, journal: this.deps.journal.path }, `cannot compact the journal: ${(err as Error).message}; tried again at the next retention pass`);
      }
    }
  }

  /** New tags for this node (SIGHUP after the config file changed them): a new version of its member record, everywhere. */
  setTags(tags: Record<string, string>): void {
    if (!this.started) return;
    this.self = { ...this.self, tags: { ...tags }, stamp: this.deps.hlc.tick() };
    this.commit([{ kind: 'member', record: this.self }]);
  }

  /**
   * Takes no new work, or takes it again: a new version of this node's member record (a
   * drain outlives a restart), on disk before it is applied or sent (a drain answered as
   * failed has no effect).
   */
  async setDraining(draining: boolean): Promise<MemberRecord> {
    if ((this.self.draining === true) === draining) return this.self;
    const next: MemberRecord = { ...this.self, draining, stamp: this.deps.hlc.tick() };
    await this.commitDurably([{ kind: 'member', record: next }]);
    this.self = next;
    this.deps.log.info({ draining }, draining ? 'draining: this node takes no new work' : 'undrained: this node takes new work again');
    return next;
  }

  /**
   * Drains (or undrains) a member: only the member writes its own record, so another one is
   * asked to (over a connection made for it if need be); its signed record comes back and is
   * taken here at once.
   */
  async drain(nodeId: string, draining: boolean): Promise<MemberRecord> {
    if (nodeId === this.id) return this.setDraining(draining);
    const reply = (await this.rpc.call(nodeId, DRAIN, { draining }, this.deps.config.requestTimeoutMs, { dial: true })) as { records?: unknown };
    this.replicator.acceptRecords(nodeId, reply?.records);
    const record = this.deps.store.member(nodeId);
    if (!record || (record.draining === true) !== draining) throw new Error(`node ${nodeId} answered without its ${draining ? 'drained' : 'undrained'} member record`);
    return record;
  }

  private async onDrainRequest(from: string, body: unknown): Promise<unknown> {
    const draining = (body as { draining?: unknown } | null)?.draining;
    if (typeof draining !== 'boolean') throw new Error('malformed drain request (expected {draining: boolean})');
    let record: MemberRecord;
    try {
      record = await this.setDraining(draining);
    } catch (err) {
      if (err instanceof StorageWriteError) throw new RpcError(`node ${this.id} ${err.message}; nothing was done`, 'storage-failed');
      throw err;
    }
    this.deps.log.info({ from, draining }, `${draining ? 'drain' : 'undrain'} requested by a member`);
    return { records: [{ kind: 'member', record }] };
  }

  /** Subtasks and steps of this node's, or another's, that are pending or running (what a drain waits for). */
  unfinishedWorkOf(nodeId: string): number {
    const { store } = this.deps;
    let count = 0;
    for (const instance of store.instances()) {
      if (isInstanceFinished(store.statusOf(instance))) continue;
      const subtask = store.subtaskOrImplied(instance, nodeId);
      if (subtask && (subtask.status === 'pending' || subtask.status === 'running')) count += 1;
      for (const step of Object.values(store.stepsOf(instance.id))) if (step?.runnerNodeId === nodeId && (step.status === 'pending' || step.status === 'running')) count += 1;
    }
    return count;
  }

  /** Connects to a member through one of its addresses (`--join`). */
  async join(peer: string, addrs: string[]): Promise<void> {
    await this.deps.transport.dial(peer, addrs);
  }

  /** Leaves gracefully: others see `left` at once; running subtasks are cancelled. */
  async leave(): Promise<void> {
    this.leader.stop();
    this.notifier.stop();
    this.self = { ...this.self, left: true, stamp: this.deps.hlc.tick() };
    this.commit([{ kind: 'member', record: this.self }]);
    this.membership.leave();
    await this.worker.stop(true);
    // Gossip is lossy and the process is about to exit: tell every peer directly.
    await this.replicator.pushToAll([{ kind: 'member', record: this.self }, ...this.ownOpenWork()], this.deps.config.requestTimeoutMs);
    await this.deps.store.flush();
    await this.stop();
  }

  /** Stops every part, in the reverse order of start; attempts still running are left to end by themselves. */
  async stop(): Promise<void> {
    this.started = false;
    this.retentionTimer?.cancel();
    this.forgetTimer?.cancel();
    this.leader.stop();
    this.notifier.stop();
    await this.worker.stop(false);
    this.replicator.stop();
    this.membership.stop();
  }

  /** Signs records written here, applies them and sends them to the cluster. */
  commit(records: AnyRecord[]): AnyRecord[] {
    this.signOwn(records);
    const changed = this.deps.store.apply(records);
    if (changed.length > 0 && this.started) this.replicator.publish(changed);
    return changed;
  }

  /**
   * Signs records a client asked for, writes them to disk and only then applies and sends
   * them (guarantee 8: a write answered as failed has no effect). Rejects with a
   * StorageWriteError naming the file when the disk refuses them: nothing was applied.
   */
  async commitDurably(records: AnyRecord[]): Promise<AnyRecord[]> {
    this.signOwn(records);
    const changed = await this.deps.store.applyDurably(records);
    if (changed.length > 0 && this.started) this.replicator.publish(changed);
    return changed;
  }

  /** Signs records this node writes; a record stamped by another node is a bug. */
  private signOwn(records: AnyRecord[]): void {
    for (const r of records) {
      invariant(r.record.stamp.nodeId === this.id, null, () => `a ${r.kind} record stamped by ${r.record.stamp.nodeId} cannot be written (signed) by ${this.id}`);
      signRecord(r, this.deps.keys);
    }
  }

  /**
   * Guarantee 8: resolves once the records are on disk here and on at least one other
   * alive member, when there is one.
   */
  async acknowledge(records: AnyRecord[], flush = true): Promise<void> {
    // Records written by commitDurably are on disk already; a flush would only wait on others' news.
    if (flush) await this.deps.store.flush();
    const others = this.membership
      .members()
      .filter((m) => m.nodeId !== this.id && m.state === 'alive')
      .map((m) => m.nodeId);
    if (others.length === 0) return; // a cluster of one: on disk here is all there is
    // One of the two copies must be a keeper's: a member that is not one asks the keepers
    // (dialled if need be), a keeper any connected member.
    if (!this.replicator.isKeeper()) {
      const alive = new Set(others);
      await this.replicator.replicateTo(this.membership.keepers().filter((id) => alive.has(id)), records, { dial: true });
      return;
    }
    const connected = new Set(this.deps.transport.connectedPeers());
    await this.replicator.replicateTo(
      others.filter((id) => connected.has(id)),
      records,
    );
  }

  /** This node's recent and unfinished subtasks and steps: its last word before leaving. */
  private ownOpenWork(): AnyRecord[] {
    const { store } = this.deps;
    const out: AnyRecord[] = [];
    const recentMs = this.deps.clock.now() - this.deps.config.leaveRecentMs;
    const recent = (t: { finishedAtMs: number | null }) => t.finishedAtMs === null || t.finishedAtMs >= recentMs;
    for (const instance of store.instances()) {
      if (isInstanceFinished(store.statusOf(instance)) && instance.createdAtMs < recentMs) continue;
      const subtask = store.subtask(instance.id, this.id);
      if (subtask && recent(subtask)) out.push({ kind: 'subtask', record: subtask });
      for (const step of Object.values(store.stepsOf(instance.id))) if (step?.runnerNodeId === this.id && recent(step)) out.push({ kind: 'step', record: step });
    }
    return out;
  }

  private readonly membersListeners: (() => void)[] = [];
  /** Calls `listener` whenever a member's state, or the leader, changes (the dashboard's live view). */
  onMembersChanged(listener: () => void): void {
    this.membersListeners.push(listener);
  }

  /** Whether this node was a keeper at the last change of the keepers. */
  private wasKeeper = false;
  private lastKeepers: string[] = [];
  private forgetTimer: TimerHandle | null = null;

  /**
   * The keepers changed. A node that became one catches up with every other keeper at once
   * (until then the leader's fresh-view gate and the other keepers answer for it); a node
   * that stopped being one forgets the other members' work once it has stayed so for
   * keeperHandoverMs (a view that flaps for a moment must not make it pull the state again).
   * While no keeper is known (a start), nothing is forgotten.
   */
  private onKeepersChange(): void {
    const keepers = this.membership.keepers();
    this.replicator.keepersChanged();
    const keeper = keepers.includes(this.id);
    const syncAll = (peer: string) => this.replicator.syncWith(peer, { dial: true, scope: 'all' }).catch((err: unknown) => this.stopOnInvariant(err));
    // A node that becomes a keeper syncs every record with the other keepers; until then it is
    // not ready: it does not answer questions from its own records (they may be behind).
    if (keeper && !this.wasKeeper && this.started) {
      this.caughtUp = false;
      const others = keepers.filter((peer) => peer !== this.id);
      void Promise.allSettled(others.map(syncAll)).then(() => {
        if (this.replicator.isKeeper()) this.caughtUp = true;
      });
    }
    if (!keeper) this.caughtUp = false;
    // A node that stopped being a keeper while it holds other members' work (after a
    // partition healed, the other side's keepers hold the results its members reported
    // there) asks the keepers to take it all, before it forgets it (keeperHandoverMs). A node
    // that kept nothing (it was its own keeper for a moment at its start) asks nothing.
    if (!keeper && this.wasKeeper && this.started && keepers.length > 0 && this.holdsOthersWork()) void this.replicator.handOverToKeepers();
    // New keepers may lack this member's results (reported to the other side of a partition,
    // or to a keeper that died): it compares its own work with one, each member at its own
    // moment within workSyncGraceMs.
    const changed = keepers.length !== this.lastKeepers.length || keepers.some((id, i) => id !== this.lastKeepers[i]);
    if (!keeper && changed && this.started && keepers.length > 0 && this.replicator.hasOwnWork()) {
      this.deps.clock.setTimer(Math.floor(this.deps.random() * this.deps.config.workSyncGraceMs), () => {
        if (this.started) this.replicator.syncOwnWork().catch((err: unknown) => this.stopOnInvariant(err));
      });
    }
    this.lastKeepers = [...keepers];
    this.wasKeeper = keeper;
    this.forgetTimer?.cancel();
    this.forgetTimer = null;
    if (keeper || keepers.length === 0) return;
    this.forgetTimer = this.deps.clock.setTimer(this.deps.config.keeperHandoverMs, () => {
      this.forgetTimer = null;
      if (!this.started || this.replicator.isKeeper()) return;
      const removed = this.deps.store.forgetWorkOfOthers(this.id);
      if (removed > 0) this.deps.log.info({ removed, keepers: this.membership.keepers() }, 'not a keeper: other members\' subtasks and steps forgotten (the keepers hold them)');
    });
  }

  /** Whether this node keeps, with every record (it caught up with the other keepers since it became one). */
  keeperReady(): boolean {
    return this.replicator.isKeeper() && (this.caughtUp || this.membership.keepers().length <= 1);
  }

  private caughtUp = true;

  private holdsOthersWork(): boolean {
    const { store } = this.deps;
    return store.workHolders() > (store.workOf(this.id).keys.size > 0 ? 1 : 0);
  }

  private onMembershipChange(): void {
    if (this.membership.leaderId() !== this.id) this.freshView.notLeading();
    this.leader.membershipChanged();
    this.notifier.membershipChanged();
    for (const listener of this.membersListeners) listener();
    this.runs.leaderChanged(this.membership.leaderId());
    if (this.started) this.leader.tick();
  }
}

/** The instances records are about. */
function instanceIdsOf(records: AnyRecord[]): Set<string> {
  return new Set(records.map(instanceIdOf).filter((id): id is string => id !== null));
}

