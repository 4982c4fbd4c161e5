// The heart of a chorus node without any I/O of its own: membership, replication,
// leader and worker over the components it is given (a transport, a clock, a journal,
// an output store, an executor...). The daemon gives it libp2p, the real clock and
// files; the simulator gives it an in-memory network, a fake clock and memory.
// `assembleNode()` (assemble.ts) builds it for both.
import { NO_OBSERVER, type NodeObserver } from '../records/observer.js';
import { every, withTimeout, type Clock, type TimerHandle } from '../core/clock.js';
import { InvariantError, invariant } from '../core/assert.js';
import { pruneFinishedInstances, pruneFires } from '../store/retention.js';
import type { ChorusConfig } from '../core/config.js';
import type { Logger } from '../core/log.js';
import type { Transport } from '../core/transport.js';
import { Membership } from '../cluster/membership.js';
import { MAX_PULLERS, Replicator, RECORDS_TOPIC, WriteNotReplicatedError } from '../cluster/replicator.js';
import { MAX_QUEUED_UPDATES, MAX_STATE_ENTRIES } from '../cluster/swim.js';
import { Rpc, RpcError } from '../cluster/rpc.js';
import type { HybridClock } from '../records/hlc.js';
import type { AnyRecord, InstanceRecord, InstanceTrigger, JobSpec, MemberRecord, StepName } from '../records/types.js';
import { instanceIdOf, isTerminal, runnerOf } from '../records/types.js';
import { instanceRecordSchema, jobSpecSchema } from '../records/validate.js';
import { ADHOC_JOB, isRequestId, requestedInstanceId } from '../records/ids.js';
import { canonicalJson } from '../records/canonical.js';
import { StorageWriteError } from '../store/durable-file.js';
import { signRecord, type RecordKeys } from '../records/signature.js';
import { Leader } from '../scheduler/leader.js';
import { Notifier, type NotifierDeps } from '../scheduler/notifier.js';
import { isInstanceFinished } from '../records/status.js';
import type { AttemptJournal } from '../store/journal.js';
import type { OutputStore, SubtaskLog } from '../store/output-store.js';
import { MAX_PRUNED_IDS, type RecordStore } from '../store/record-store.js';
import { Worker } from '../worker/worker.js';
import type { Executor } from '../executor/process-executor.js';
import { LiveOutputs, liveParts } from '../output/live.js';
import {
  LOGS_FOLLOW,
  followRequestSchema,
  ownerFollowReplySchema,
  partOf,
  readFrom,
  savedPart,
  type FollowPosition,
  type FollowRequest,
  type OwnerFollowReply,
} from '../output/follow.js';

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

/** The leader did not answer a forwarded request: `leader-busy` (alive) or `leader-lost` (gone; another leads next). */
export class LeaderUnreachableError extends Error {
  constructor(
    message: string,
    readonly code: 'leader-busy' | 'leader-lost' = 'leader-busy',
  ) {
    super(message);
  }
}

/** A run's request id that names another run, or one whose instance retention removed. */
export class RequestIdReusedError extends Error {
  readonly code = 'request-id-reused';
}

/** Instance ids remembered as counted by noticeFinished (oldest forgotten first). */
const FINISHED_REMEMBERED = 10_000;

/** A member asks another to drain or undrain itself (only a node writes its own member record). */
export const DRAIN = 'drain';

export class NotLeaderError extends Error {
  readonly code = 'no-leader';
}

export class ChorusNode {
  readonly rpc: Rpc;
  readonly membership: Membership;
  readonly replicator: Replicator;
  readonly leader: Leader;
  readonly worker: Worker;
  readonly notifier: Notifier;
  /** Output of the attempts running here, for followers (`instance logs --follow`). */
  readonly live: LiveOutputs;
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
    const { transport, clock, config, store, hlc, log } = deps;
    this.rpc = new Rpc(transport, (peer) => transport.dial(peer, store.member(peer)?.addrs ?? []));
    this.membership = new Membership({
      transport,
      clock,
      config,
      store,
      rpc: this.rpc,
      self: () => this.self,
      random: deps.random,
      log,
      onChange: () => this.onMembershipChange(),
      observer: deps.observer ?? NO_OBSERVER,
      stateRoot: () => store.rootVersion(),
      onPeerRoot: (peer, root) => this.replicator.onPeerRoot(peer, root),
    });
    this.replicator = new Replicator({
      transport,
      clock,
      config,
      store,
      rpc: this.rpc,
      log,
      random: deps.random,
      keys: deps.keys,
      leaderId: () => this.membership.leaderId(),
      neighboursLinkedToLeader: () => this.membership.neighboursLinkedToLeader(),
      onInvariant: (err) => this.deps.fatal(err),
      heardFrom: (peer) => this.membership.heardFrom(peer),
    });
    const commit = (records: AnyRecord[]) => this.commit(records);
    this.live = new LiveOutputs(clock);
    this.leader = new Leader({ clock, config, store, hlc, view: this.membership, commit, log, mayAct: () => this.leaderMayAct(), newInstanceId: deps.newInstanceId, observer: deps.observer ?? NO_OBSERVER, selfId: transport.localId });
    this.notifier = new Notifier({
      clock,
      config,
      store,
      hlc,
      view: this.membership,
      journal: deps.journal,
      commit,
      log,
      mayLead: () => this.membership.leaderId() === this.id && this.leaderMayAct(),
      bodyOf: (instanceId) => {
        const instance = store.instance(instanceId);
        return instance ? deps.webhooks.body(instance, store) : { id: instanceId };
      },
      post: deps.webhooks.post,
      readSecret: deps.webhooks.readSecret,
    });
    this.worker = new Worker({
      clock,
      config,
      store,
      journal: deps.journal,
      outputs: deps.outputs,
      executor: deps.executor,
      hlc,
      selfId: transport.localId,
      commit,
      live: this.live,
      log,
      fatal: deps.fatal,
      stepsMayStart: () => this.stepsMayStart(),
      observer: deps.observer ?? NO_OBSERVER,
    });
    // Later local stamps must order after every stamp we have seen.
    store.onChange((records) => {
      for (const r of records) hlc.observe(r.record.stamp);
    });
    store.onChange((records) => this.noticeFinished(records));
    // A follower waiting here for an instance's output also waits for this node's work in it
    // to change (a retry, a step) and for the instance's end; not for every other node's news.
    store.onChange((records) => {
      if (this.live.waiters.size === 0) return;
      for (const r of records) {
        const id = instanceIdOf(r);
        if (id === null) continue;
        const mine = (r.kind === 'subtask' || r.kind === 'step') && runnerOf(r.record) === this.id;
        if (mine || r.kind === 'instance' || this.isFinished(id)) this.live.waiters.wake(id);
      }
    });
    this.rpc.handle('run', (from, body) => this.onRunRequest(from, body));
    this.rpc.handle(DRAIN, (from, body) => this.onDrainRequest(from, body));
    this.rpc.handle(LOGS_FOLLOW, (_from, body) => this.followOwnOutput(followRequestSchema.parse(body)));
    this.rpc.handle('logs', async (_from, body) => boundedLogs(await this.deps.outputs.read(String((body as { instanceId?: unknown })?.instanceId)), this.deps.config.syncPageBytes));
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
          this.stopOnInvariant(err);
          throw err;
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
    this.startedAtMs = this.deps.clock.now();
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
      { name: 'members', used: store.members().length, limit: MAX_STATE_ENTRIES, about: 'member records; the most a membership push/pull carries' },
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
    for (const id of removed) await this.deps.outputs.delete(id);
    if (removed.length > 0) {
      const gone = new Set(removed);
      this.deps.log.info({ removed: removed.length }, 'old instances removed (retention)');
      try {
        await this.deps.journal.compact((journalId) => !gone.has(journalId.split(':')[0] as string));
      } catch (err) {
        // The journal keeps its old entries (all of them still true); the next pass tries again.
        this.deps.log.error({ err, journal: this.deps.journal.path }, `cannot compact the journal: ${(err as Error).message}; tried again at the next retention pass`);
      }
    }
    return removed.length;
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
      const subtask = store.subtask(instance.id, nodeId);
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
    const connected = new Set(this.deps.transport.connectedPeers());
    await this.replicator.replicateTo(
      others.filter((id) => connected.has(id)),
      records,
    );
  }

  /**
   * Creates an instance on the leader (here, or by asking it) and returns it once known here.
   * `requestId` (the CLI sends one per run, the same on each of its retries) derives the
   * instance's id, so a request tried again, even on another leader, makes one instance.
   * A leader that does not answer in time is told apart: alive (busy), or gone (the next
   * leader takes the request); the client tries again with the same id until its deadline.
   */
  async requestInstance(job: string, spec: JobSpec, trigger: InstanceTrigger, requestId: string | null = null, leaderWaitMs = this.deps.config.leaderTryMs): Promise<InstanceRecord> {
    const leaderId = this.membership.leaderId();
    if (leaderId === null) throw new NotLeaderError('no leader yet: no member is confirmed alive to lead (a node back after a full stop waits to hear from the others); try again in a moment');
    if (leaderId === this.id) {
      const instance = await this.createOnce(job, spec, trigger, requestId);
      await this.acknowledge(this.recordsOf(instance), false); // on disk here; and on one other member (guarantee 8)
      return instance;
    }
    let reply: { records?: unknown };
    const waitMs = leaderWaitMs;
    const replaced = this.watchLeader(leaderId);
    try {
      // A leader busy making the run (its own acknowledged write waits for another member)
      // answers late: the client is told so and tries again with the same request id, which
      // joins the run in flight on the leader rather than making another.
      // A leader declared dead meanwhile is not waited for: the client asks again at once, and
      // the next leader makes the same instance (its id comes from the request id; the old
      // leader, if it was only frozen, makes that same one).
      const asked = this.rpc.call(leaderId, 'run', { job, spec, trigger, requestId }, waitMs, { dial: true });
      reply = (await withTimeout(this.deps.clock, Promise.race([asked, replaced.promise]), waitMs, `request to ${leaderId} timed out after ${waitMs} ms`)) as { records?: unknown };
    } catch (err) {
      if (err instanceof RpcError) throw err; // the leader answered with an error (it carries a code)
      throw this.leaderSilence(leaderId, waitMs, err as Error);
    } finally {
      this.leaderWatchers.delete(replaced);
    }
    const parsed = instanceRecordSchema.safeParse((reply.records as { record?: unknown }[] | undefined)?.[0]?.record);
    if (!parsed.success) throw new Error(`the leader ${leaderId} answered without an instance`);
    // Checked like any record from the network: the leader's own signature on what it created.
    const records = this.replicator.verifyRecords(leaderId, reply.records);
    if (!records.some((r) => r.kind === 'instance' && r.record.id === parsed.data.id)) throw new Error(`the leader ${leaderId} answered with an instance it did not sign`);
    // Guarantee 8: on the leader's disk, and on this node's before the client hears of it: two nodes.
    try {
      await this.deps.store.applyDurably(records);
    } catch (err) {
      if (!(err instanceof StorageWriteError)) throw err;
      // This disk refused it, but the leader made the run (it may be running): another member must hold it instead.
      this.deps.store.apply(records);
      const others = this.membership.members().filter((m) => m.nodeId !== this.id && m.nodeId !== leaderId && m.state === 'alive').map((m) => m.nodeId);
      const connected = new Set(this.deps.transport.connectedPeers());
      await this.replicator.replicateTo(others.filter((id) => connected.has(id)), records).catch((notReplicated: unknown) => {
        throw new WriteNotReplicatedError(`the leader ${leaderId} made the run and holds it on its disk, but this node ${err.message} and no other member confirmed it: ${(notReplicated as Error).message}`);
      });
    }
    return this.deps.store.instance(parsed.data.id) as InstanceRecord;
  }

  /** Why the leader did not answer a forwarded request: gone (another will lead), or alive and busy. */
  private leaderSilence(leaderId: string, waitMs: number, err: Error): LeaderUnreachableError {
    const now = this.membership.leaderId();
    const state = this.membership.stateOf(leaderId);
    const gone = state === 'dead' || state === 'left' || state === undefined;
    if (now !== leaderId || gone) {
      return new LeaderUnreachableError(`the leader ${leaderId} did not answer (${err.message}) and is ${state ?? 'unknown'} now${now !== null && now !== leaderId ? `; ${now} leads` : ''}: the next leader takes the request`, 'leader-lost');
    }
    return new LeaderUnreachableError(`the leader ${leaderId} is ${state} but did not answer within ${waitMs} ms (busy): ${err.message}`, 'leader-busy');
  }

  /** Runs being made here for a request id: a retry that arrives meanwhile waits for the same instance. */
  private readonly runsInFlight = new Map<string, Promise<InstanceRecord>>();

  /**
   * Creates the run once (on disk here, applied, sent), or finds it: a request id asked again
   * finds the instance it made, and one asked while it is being made waits for it.
   */
  private createOnce(job: string, spec: JobSpec, trigger: InstanceTrigger, requestId: string | null): Promise<InstanceRecord> {
    if (requestId === null) return this.createRun(job, spec, trigger, undefined);
    const id = requestedInstanceId(job, requestId);
    const inFlight = this.runsInFlight.get(id);
    if (inFlight) return inFlight;
    const created = this.createRun(job, spec, trigger, id).finally(() => this.runsInFlight.delete(id));
    this.runsInFlight.set(id, created);
    return created;
  }

  private async createRun(job: string, spec: JobSpec, trigger: InstanceTrigger, id: string | undefined): Promise<InstanceRecord> {
    const { store } = this.deps;
    const earlier = id === undefined ? undefined : store.instance(id);
    if (earlier) {
      // The same request again (the answer was lost, or the client timed out): the instance it made, acknowledged anew.
      if (earlier.job !== job || canonicalJson(earlier.spec) !== canonicalJson(spec)) throw new RequestIdReusedError(`the request id was used for another run (instance ${earlier.id} of ${earlier.job}); use a new one`);
      return earlier;
    }
    if (id !== undefined && store.wasPruned(id)) throw new RequestIdReusedError(`the request id was already run (instance ${id}), and its instance removed since by retention; use a new one`);
    // `forbid` is checked here, where the instance is created, for local and forwarded runs alike.
    const storedJob = store.job(job);
    if (storedJob && !storedJob.deleted && trigger === 'manual') this.leader.assertMayStart(storedJob);
    const planned = this.leader.planInstance(job, spec, trigger, undefined, id);
    this.leader.releasing(planned);
    await this.commitDurably(planned.records); // nothing is applied or sent when the disk refuses it
    this.leader.instanceCreated(planned);
    return planned.instance;
  }

  private async onRunRequest(from: string, body: unknown): Promise<unknown> {
    const { job, spec, trigger, requestId } = (body ?? {}) as { job?: unknown; spec?: unknown; trigger?: unknown; requestId?: unknown };
    const parsedSpec = jobSpecSchema.safeParse(spec);
    if (typeof job !== 'string' || !parsedSpec.success || (trigger !== 'manual' && trigger !== 'adhoc') || (requestId !== undefined && requestId !== null && !isRequestId(requestId))) {
      throw new Error('malformed run request');
    }
    if (this.membership.leaderId() !== this.id) throw new NotLeaderError(`not the leader (${this.membership.leaderId() ?? 'none'} is)`);
    let instance: InstanceRecord;
    try {
      // On disk here; the member that asked writes it to its own disk before its client hears
      // of it: two nodes (guarantee 8), with no third one to wait for on a busy cluster.
      instance = await this.createOnce(job, parsedSpec.data as JobSpec, trigger, typeof requestId === 'string' ? requestId : null);
    } catch (err) {
      if (err instanceof StorageWriteError) throw new RpcError(`the leader ${this.id} ${err.message}; nothing was done`, 'storage-failed');
      throw err;
    }
    this.deps.log.debug({ from, instance: instance.id }, 'run requested by a member');
    // The instance alone (its subtasks follow by gossip): a reply that stays small however many targets it has.
    return { records: [this.deps.store.get(`instance:${instance.id}`)] };
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

  /** An instance with its subtasks and steps, as records. */
  private recordsOf(instance: InstanceRecord): AnyRecord[] {
    const records: AnyRecord[] = [{ kind: 'instance', record: instance }];
    for (const subtask of this.deps.store.subtasksOf(instance.id).values()) records.push({ kind: 'subtask', record: subtask });
    for (const step of Object.values(this.deps.store.stepsOf(instance.id))) if (step) records.push({ kind: 'step', record: step });
    return records;
  }

  /** Output of a subtask, read on the node that ran it. */
  async logsFrom(nodeId: string, instanceId: string): Promise<SubtaskLog[]> {
    if (nodeId === this.id) return this.deps.outputs.read(instanceId);
    return (await this.rpc.call(nodeId, 'logs', { instanceId }, this.deps.config.requestTimeoutMs, { dial: true, bulk: true })) as SubtaskLog[];
  }

  /** What follows `position` in a node's output of an instance (this one's, or asked of it), waiting up to `waitMs` for some. */
  async followFrom(nodeId: string, instanceId: string, position: FollowPosition, waitMs: number): Promise<OwnerFollowReply> {
    const request: FollowRequest = { instanceId, position, waitMs };
    if (nodeId === this.id) return this.followOwnOutput(request);
    const reply = await this.rpc.call(nodeId, LOGS_FOLLOW, request, waitMs + this.deps.config.requestTimeoutMs, { dial: true });
    return ownerFollowReplySchema.parse(reply);
  }

  /**
   * This node's output of an instance after `position`. Answers at once when there is some,
   * when a part ended, or when nothing more can come (the instance ended and nothing of it
   * runs here); else waits for output or a change of the instance, up to `waitMs`.
   */
  async followOwnOutput({ instanceId, position, waitMs }: FollowRequest): Promise<OwnerFollowReply> {
    const { clock, config } = this.deps;
    const deadline = clock.now() + waitMs;
    for (;;) {
      const reply = await this.ownOutputFrom(instanceId, position);
      const leftMs = deadline - clock.now();
      if (reply.chunks.length > 0 || reply.ended.length > 0 || (reply.complete && this.isFinished(instanceId)) || leftMs <= 0) return reply;
      await this.live.waiters.wait([instanceId], leftMs);
      // Lines written together travel together.
      const batchMs = Math.min(config.followBatchMs, deadline - clock.now());
      if (batchMs > 0) await new Promise<void>((resolve) => clock.setTimer(batchMs, resolve));
    }
  }

  private async ownOutputFrom(instanceId: string, position: FollowPosition): Promise<OwnerFollowReply> {
    const running = this.live.of(instanceId);
    const runningParts = new Set(running.map((l) => partOf(l.step, l.attempt)));
    // The saved logs are read only when the follower is not in the running attempt.
    const saved = runningParts.has(position.part) ? [] : (await this.deps.outputs.read(instanceId)).filter((log) => !runningParts.has(partOf(log.step ?? null, log.attempt)));
    const parts = [...liveParts(running), ...saved.map(savedPart)];
    const read = readFrom(parts, position, this.deps.config.followReplyBytes);
    const { store } = this.deps;
    const instance = store.instance(instanceId);
    const subtask = store.subtask(instanceId, this.id);
    const steps = Object.values(store.stepsOf(instanceId)).filter((step) => step?.runnerNodeId === this.id);
    // A target whose subtask is not there yet has all of it to come.
    const target = instance !== undefined && store.targetsOf(instance).includes(this.id);
    const tasksEnded = (subtask ? isTerminal(subtask.status) : !target) && steps.every((step) => step && isTerminal(step.status));
    const readAll = parts.every((p) => p.part < read.position.part);
    return { ...read, complete: this.live.of(instanceId).length === 0 && readAll && tasksEnded, steps: steps.map((step) => step?.step as StepName) };
  }

  private isFinished(instanceId: string): boolean {
    const instance = this.deps.store.instance(instanceId);
    return instance !== undefined && isInstanceFinished(this.deps.store.statusOf(instance));
  }

  /**
   * A node that just became leader, or that was stalled (a frozen process, a busy
   * machine), may hold a stale view: what its peers did meanwhile reached it only in part,
   * since gossip to a frozen peer is lost. Acting on it could repeat a step another leader
   * already ran. So it first runs anti-entropy with every connected peer.
   */
  private leaderMayAct(): boolean {
    const gate = this.leaderGate;
    const nowMs = this.deps.clock.now();
    // Only a stall long enough for the others to have declared this node dead (a probe
    // timeout plus the shortest suspicion) can have let another leader act meanwhile. A
    // shorter one is a busy host: re-syncing with every peer at each of those (20 daemons
    // on 2 cores stall for 0.5-1 s all the time) kept a leader from ever acting.
    // The leader is asked at least every leaderIdleTickMs (its slowest tick), so a longer gap is a stall.
    const { probeTimeoutMs, suspicionMult, probeIntervalMs, leaderIdleTickMs } = this.deps.config;
    const stalled = gate.lastCheckMs !== 0 && nowMs - gate.lastCheckMs > leaderIdleTickMs + probeTimeoutMs + suspicionMult * probeIntervalMs;
    gate.lastCheckMs = nowMs;
    if (!gate.leading || stalled) {
      gate.leading = true;
      gate.ready = false;
      const round = ++gate.round;
      const peers = this.deps.transport.connectedPeers();
      void Promise.allSettled(peers.map((peer) => this.replicator.syncWith(peer))).then(() => {
        if (gate.round === round) gate.ready = true;
      });
    }
    return gate.ready;
  }

  private readonly leaderGate = { leading: false, ready: false, lastCheckMs: 0, round: 0 };

  private startedAtMs = 0;
  /** When the last anti-entropy round asked for by a step's start began (it completed with at least one peer), and whether one is running. */
  private stepSync = { freshFromMs: Number.NEGATIVE_INFINITY, inFlight: false };

  /**
   * A --pre/--post step starts only on a fresh view of the cluster: a round of anti-entropy
   * with the connected peers that began less than a probe interval ago. A step this node
   * created as leader may have been created and run by another leader while this node was
   * down (a restart) or stalled (a frozen process): running it before hearing of that would
   * run it twice (the randomized sweep found both). Steps are few (two per instance at
   * most), so the round costs little. A node that finds itself alone (no other member alive,
   * once a failure could have been detected) runs its steps without waiting.
   */
  private stepsMayStart(): boolean {
    const nowMs = this.deps.clock.now();
    const { probeTimeoutMs, suspicionMult, probeIntervalMs } = this.deps.config;
    if (nowMs - this.stepSync.freshFromMs < probeIntervalMs) return true;
    const settled = nowMs - this.startedAtMs > probeTimeoutMs + suspicionMult * probeIntervalMs;
    if (settled && this.membership.members().every((m) => m.nodeId === this.id || m.state !== 'alive')) return true;
    if (!this.stepSync.inFlight) {
      this.stepSync.inFlight = true;
      const before = this.replicator.counters.syncsCompleted;
      const peers = this.deps.transport.connectedPeers();
      void Promise.allSettled(peers.map((peer) => this.replicator.syncWith(peer))).then(() => {
        this.stepSync.inFlight = false;
        if (this.replicator.counters.syncsCompleted > before) this.stepSync.freshFromMs = nowMs;
      });
    }
    return false;
  }

  private readonly membersListeners: (() => void)[] = [];
  /** Forwarded runs waiting on a leader, each told when that leader stops leading; one entry per run in flight, removed when it ends. */
  private readonly leaderWatchers = new Set<{ leaderId: string; promise: Promise<never>; reject: (err: Error) => void }>();

  /** A promise that rejects once `leaderId` is no longer the leader (declared dead, left, or another leads); the caller removes the watcher when done. */
  private watchLeader(leaderId: string): { leaderId: string; promise: Promise<never>; reject: (err: Error) => void } {
    let reject: (err: Error) => void = () => {};
    const promise = new Promise<never>((_, rej) => (reject = rej));
    promise.catch(() => {}); // raced by its caller, which may have its answer first
    const watcher = { leaderId, promise, reject };
    this.leaderWatchers.add(watcher);
    return watcher;
  }

  /** Calls `listener` whenever a member's state, or the leader, changes (the dashboard's live view). */
  onMembersChanged(listener: () => void): void {
    this.membersListeners.push(listener);
  }

  private onMembershipChange(): void {
    if (this.membership.leaderId() !== this.id) this.leaderGate.leading = false;
    this.leader.membershipChanged();
    this.notifier.membershipChanged();
    for (const listener of this.membersListeners) listener();
    const leader = this.membership.leaderId();
    for (const watcher of this.leaderWatchers) {
      if (watcher.leaderId === leader) continue;
      this.leaderWatchers.delete(watcher);
      watcher.reject(new Error(`${watcher.leaderId} is no longer the leader`));
    }
    if (this.started) this.leader.tick();
  }
}

/** The instances records are about. */
function instanceIdsOf(records: AnyRecord[]): Set<string> {
  return new Set(records.map(instanceIdOf).filter((id): id is string => id !== null));
}

/**
 * The logs of an instance on this node, newest attempts first to fit `maxBytes` (a reply
 * must stay under the message limit however many retries there were); an attempt left
 * out is listed with no output and a note that says so.
 */
export function boundedLogs(logs: SubtaskLog[], maxBytes: number): SubtaskLog[] {
  let size = 0;
  const kept = new Set<SubtaskLog>();
  for (const log of [...logs].reverse()) {
    const bytes = JSON.stringify(log).length;
    if (size + bytes > maxBytes) break;
    kept.add(log);
    size += bytes;
  }
  return logs.map((log) =>
    kept.has(log)
      ? log
      : {
          ...log,
          stdout: '',
          stderr: `(output of attempt ${log.step ?? log.attempt} not sent: with the later attempts it exceeds the ${maxBytes}-byte reply limit)`,
          stdoutDroppedBytes: log.stdoutDroppedBytes + Buffer.byteLength(log.stdout),
          stderrDroppedBytes: log.stderrDroppedBytes + Buffer.byteLength(log.stderr),
        },
  );
}
