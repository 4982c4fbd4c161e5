// Replication of records. Local changes go out at once as gossip deltas; because
// gossip is lossy, every node also runs anti-entropy with one peer on connect and
// periodically: it sends a digest of what it holds and both sides exchange what the
// other lacks. Records from the network are validated, and their writer's signature and
// authority checked (records/signature.ts), before they are merged, whoever relayed
// them; a bad one is dropped and counted, never a crash.
//
// Keepers (DESIGN.md, guarantee 6; records/scope.ts): a member that is not a keeper holds
// the shared records and its own work only, and drops another member's subtasks and steps
// before it checks them. Members hand their results to the leader, which passes them to
// the other keepers, not to everybody. Two keepers compare every record in anti-entropy;
// any other two compare the shared records only, and a member compares its own work with
// a keeper (syncOwnWork).
import type { Clock, TimerHandle } from '../core/clock.js';
import { every } from '../core/clock.js';
import type { ChorusConfig } from '../core/config.js';
import type { Logger } from '../core/log.js';
import type { Transport } from '../core/transport.js';
import { instanceIdOfKey, mergeRecord, recordKey } from '../records/merge.js';
import { isTerminal, type AnyRecord, type InstanceRecord } from '../records/types.js';
import { authorityProblem, authorityProblems, type RecordKeys } from '../records/signature.js';
import { parseRecord } from '../records/validate.js';
import { sortedHas, type RecordStore, type SyncScope } from '../store/record-store.js';
import { holderOfRaw } from '../records/scope.js';
import { isInstanceFinished } from '../records/status.js';
import { impliesSubtasks } from '../records/rollout.js';
import { RpcError, type Rpc } from './rpc.js';
import { InvariantError } from '../core/assert.js';
import { shuffle } from '../core/shuffle.js';
import { bucketOf, SYNC_BUCKETS } from '../store/sync-index.js';

export const RECORDS_TOPIC = 'chorus/records/1';
/** A member hands records it wrote to the leader, which gossips them (Replicator.publish). */
export const RELAY = 'relay';
/**
 * Steps records take towards the leader: at most this many in all (a bound that also ends
 * any loop between members that disagree on the leader for a moment), and of them at most
 * MAX_RELAY_HOPS - 1 through neighbours that have no connection to it either. Past that they
 * are gossiped.
 */
const MAX_RELAY_HOPS = 3;
/** Anti-entropy: a page of records in some buckets (Replicator.syncWith). */
export const SYNC_PULL = 'sync-pull';
/** Anti-entropy of one member's own work with a keeper (Replicator.syncOwnWork). */
export const SYNC_WORK = 'sync-work';
/** A node that stopped being a keeper asks a keeper to take every record it holds (Replicator.handOver). */
export const TAKE_OVER = 'take-over';
/** Peers whose last pull is remembered (a node has at most maxPeerConnections of them). */
export const MAX_PULLERS = 1024;
/** Pages of a pull being checked at once while the next one is fetched. */
const PAGES_IN_FLIGHT = 2;
/**
 * Batches at least this big have their signatures checked by RecordKeys.verifyMany (a
 * worker thread in the daemon): pages of anti-entropy (about 1,300 records). A smaller
 * batch is checked at once (a broadcast's instance and its subtasks: 51 records, 6 ms),
 * which on a busy host costs less than handing it to a thread.
 */
const VERIFY_BATCH_MIN = 256;
/** Members an acknowledged write is pushed to at once; the next ones only if none confirmed. */
const ACK_FANOUT = 3;
/** About the most one subtask or step record costs in JSON, for paging a member's own work. */
const WORK_RECORD_BYTES = 4096;
/** Pruned instance ids taken from one page of anti-entropy (a peer cannot make this node drop more at once). */
const MAX_PRUNED_PER_PAGE = 1000;
/** About what one digest entry (a record key and its version) costs in JSON. */
const DIGEST_ENTRY_BYTES = 110;

export interface ReplicatorDeps {
  transport: Transport;
  clock: Clock;
  config: ChorusConfig;
  store: RecordStore;
  rpc: Rpc;
  log: Logger;
  random: () => number;
  /** Checks the signature of every record that arrives. */
  keys: RecordKeys;
  /** The leader as this node sees it, to which it hands the records it writes. */
  leaderId: () => string | null;
  /** The keepers as this node sees them, the leader first (cluster/leadership.ts). */
  keepers: () => readonly string[];
  /** Connected members with a connection to the leader: a member without one hands its records to one of them. */
  neighboursLinkedToLeader: () => string[];
  /** Connected members that are keepers or have a connection to one: the next best way when none leads to the leader. */
  neighboursLinkedToKeeper?: () => string[];
  /** Told of a broken invariant found in work that runs in the background (the node stops). */
  onInvariant: (err: InvariantError) => void;
  /** Called for every message that proves a peer is alive. */
  heardFrom: (peer: string) => void;
  /** Instances this node pruned because a peer had (their logs and journal entries go too). */
  onPruned?: (instanceIds: string[]) => void;
  /** Instances whose implied subtask of this node's may start now (mayStartImplied turned true). */
  onImpliedConfirmed?: (instanceIds: string[]) => void;
  /**
   * Whether this node has just been stalled (frozen, starved): what it reads now may have
   * waited in its sockets since before a verdict on it, so it is not taken as live.
   */
  stalledRecently?: () => boolean;
}

export interface ReplicationCounters {
  deltasSent: number;
  deltasReceived: number;
  /** Malformed records and records whose signature or writer was wrong. */
  recordsRejected: number;
  /** Of those, records whose signature or writer was wrong (forged or altered). */
  recordsForged: number;
  /** Records that arrived again, identical to what this node holds: not checked again. */
  recordsDuplicate: number;
  /** Records written here that were handed to the leader to gossip. */
  relayedToLeader: number;
  /** Records handed to a leader that did not answer (killed, frozen, gone) and were gossiped from here instead. */
  relaysUnanswered: number;
  /** Records this node took from members and passed on to the leader (it was their neighbour with a connection to it). */
  relaysForwarded: number;
  syncsCompleted: number;
  syncsFailed: number;
  /** Exchanges started because a probe or an ack carried a different fingerprint. */
  syncsOnProbe: number;
  /** Exchanges not started because the peer was pulling from this node at the time. */
  syncsSkipped: number;
  /** Pages of records moved by anti-entropy, either way. */
  syncPages: number;
  /** The largest page of records this node sent to a peer, in bytes of JSON (it must stay under maxMessageBytes). */
  largestSyncPageBytes: number;
  /** Bytes of gossip deltas this node published, and received. */
  deltaBytesSent: number;
  deltaBytesReceived: number;
  /** Bytes of anti-entropy pages this node sent to peers (as JSON). */
  syncBytesSent: number;
  /** Records whose signature and writer this node checked (those new here: a duplicate is not checked again). */
  recordsChecked: number;
  /** Other members' subtasks and steps that arrived here and were dropped unchecked (this node is not a keeper). */
  recordsNotHeld: number;
  /** Members' results this node, as the leader, passed to the other keepers. */
  resultsToKeepers: number;
  /** Exchanges of this node's own work with a keeper, and those that found a difference. */
  workSyncs: number;
  workSyncsRepaired: number;
  /** Instances this node pruned because a peer had (retention, learned in anti-entropy). */
  prunedByPeers: number;
}

export class WriteNotReplicatedError extends Error {}

export class Replicator {
  private timer: TimerHandle | null = null;
  /** Records written here since the last flush, by key (the latest is sent). */
  private readonly own = new Map<string, AnyRecord>();
  /** Records members handed to this node to gossip, by key. */
  private readonly relayed = new Map<string, AnyRecord>();
  /** Members waiting for the records they handed over to be gossiped. */
  private relayWaiters: Array<(delivered: boolean) => void> = [];
  /** The most steps any of the records handed over in this batch has taken towards the leader. */
  private relayHops = 0;
  /** Peers an exchange is running with. */
  private readonly syncing = new Set<string>();
  /** When each peer last pulled a page from this node. */
  private readonly pulledBy = new Map<string, number>();
  private readonly ownFlush: Batcher;
  private readonly relayFlush: Batcher;
  readonly counters: ReplicationCounters = { deltasSent: 0, deltasReceived: 0, recordsRejected: 0, recordsForged: 0, recordsDuplicate: 0, relayedToLeader: 0, relaysUnanswered: 0, relaysForwarded: 0, syncsCompleted: 0, syncsFailed: 0, syncsOnProbe: 0, syncsSkipped: 0, syncPages: 0, largestSyncPageBytes: 0, deltaBytesSent: 0, deltaBytesReceived: 0, syncBytesSent: 0, recordsChecked: 0, recordsNotHeld: 0, resultsToKeepers: 0, workSyncs: 0, workSyncsRepaired: 0, prunedByPeers: 0 };

  constructor(private readonly deps: ReplicatorDeps) {
    this.ownFlush = new Batcher(deps.clock, () => this.flushOwn());
    this.relayFlush = new Batcher(deps.clock, () => void this.flushRelayed());
    deps.rpc.handle('sync', (from, body) => this.onSync(from, body));
    deps.rpc.handle('push', (from, body) => this.onPush(from, body));
    deps.rpc.handle(RELAY, (from, body) => this.onRelay(from, body));
    deps.rpc.handle(SYNC_PULL, (from, body) => this.onSyncPull(from, body));
    deps.rpc.handle(SYNC_WORK, (from, body) => this.onSyncWork(from, body));
    deps.rpc.handle(TAKE_OVER, async (from) => {
      this.deps.heardFrom(from);
      // Pulls everything the former keeper holds that this one lacks (it answers before the pull ends).
      void this.syncWith(from, { dial: true, scope: 'all' }).catch((err: unknown) => this.onBackgroundError(err));
      return { ok: true };
    });
    deps.store.onChange((changes) => {
      this.lastChangeMs = deps.clock.now();
      // An instance that implies its subtasks (records/rollout.ts) brings this node's with it.
      if (changes.some((r) => r.kind === 'instance' && !impliesSubtasks(r.record) && sortedHas(r.record.targets, this.selfId))) this.expectOwnWork();
    });
  }

  private get selfId(): string {
    return this.deps.transport.localId;
  }

  /** Whether this node keeps every record (DESIGN.md, guarantee 6). */
  isKeeper(): boolean {
    const keepers = this.deps.keepers();
    // None known yet (a start): this node holds everything it is given, as a keeper does.
    return keepers.length === 0 || keepers.includes(this.selfId);
  }

  /** Whether this node is one of the keepers it knows of (not merely holding everything for want of knowing them, at a start). */
  private isKeeperKnown(): boolean {
    return this.deps.keepers().includes(this.selfId);
  }

  /** Whether this node holds a record held by `holder` besides the keepers (null: everyone). */
  private holdsWorkOf(holder: string | null): boolean {
    return holder === null || holder === this.selfId || this.isKeeper();
  }

  /** Peers remembered as pulling from this node (at most MAX_PULLERS). */
  pullers(): number {
    return this.pulledBy.size;
  }

  start(): void {
    // A verdict on an implied subtask of this node's may have been given while it was down.
    this.holdImplied(this.deps.store.instances().map((record): AnyRecord => ({ kind: 'instance', record })));
    this.timer = every(this.deps.clock, this.deps.config.antiEntropyIntervalMs, () => this.syncWithRandomPeer());
    this.keeperTimer = every(this.deps.clock, this.deps.config.rootSyncGapMs, () => this.syncWithNextKeeper());
  }

  private keeperTimer: TimerHandle | null = null;
  private lastKeeperSyncMs = Number.NEGATIVE_INFINITY;
  private keeperTurn = 0;

  /**
   * A keeper compares every record with the other keepers in turn, one every rootSyncGapMs
   * (once records stopped arriving for rootSyncQuietMs, or 5 periods after the last one):
   * one fingerprint each when they
   * agree. Records reach the leader by many paths (members' hand-overs, their own-work
   * exchanges, a former keeper's hand-over); this is how the other keepers get them all.
   */
  private syncWithNextKeeper(): void {
    if (!this.isKeeper()) return;
    // While records keep arriving (a fleet churning), at least every 5 periods all the same.
    const nowMs = this.deps.clock.now();
    const quiet = nowMs - this.lastChangeMs >= this.deps.config.rootSyncQuietMs;
    if (!quiet && nowMs - this.lastKeeperSyncMs < 5 * this.deps.config.rootSyncGapMs) return;
    const others = this.deps.keepers().filter((id) => id !== this.selfId);
    if (others.length === 0) return;
    this.lastKeeperSyncMs = nowMs;
    const peer = others[this.keeperTurn++ % others.length] as string;
    this.syncWith(peer, { dial: true }).catch((err: unknown) => this.onBackgroundError(err));
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
    this.keeperTimer?.cancel();
    this.keeperTimer = null;
    this.ownFlush.cancel();
    this.relayFlush.cancel();
    this.expectTimer?.cancel();
    this.expectTimer = null;
    this.ownCheckTimer?.cancel();
    this.ownCheckTimer = null;
    this.answerRelays();
  }

  /**
   * Sends records written here to the cluster. A member hands them to the leader, which
   * gossips what it receives from everyone in a few batched messages; so a broadcast's
   * results cost every node a few messages rather than one (and gossipsub's duplicates)
   * per target. The records carry their writers' signatures, so the leader's relaying
   * needs no trust. Without a reachable leader, the records are gossiped directly; and
   * anti-entropy repairs what any of this loses.
   */
  publish(records: AnyRecord[]): void {
    for (const r of records) this.own.set(recordKey(r), r);
    this.ownFlush.arm(this.deps.config.deltaBatchMs);
  }

  /**
   * Sends records written here: a subtask's or step's state to the leader, which gathers a
   * broadcast's results into a few messages; anything else (a job, an instance, a cancel, a
   * member record: rare, and wanted everywhere at once) by gossip straight away. As the
   * leader, or without a leader, everything is gossiped.
   */
  private flushOwn(): void {
    const own = this.latest(this.own);
    if (own.length === 0) return;
    const leader = this.deps.leaderId();
    const handOver = leader !== null && leader !== this.deps.transport.localId;
    const results = handOver ? own.filter((r) => r.kind === 'subtask' || r.kind === 'step') : [];
    const direct = handOver ? own.filter((r) => r.kind !== 'subtask' && r.kind !== 'step') : own;
    if (direct.length > 0) this.gossip(direct);
    if (results.length > 0) this.handOver(results);
    // The leader's own work records (subtasks it releases, its node-lost verdicts) also go
    // straight to the other keepers: gossip is lossy, and a member asks a keeper for its own.
    const work = handOver ? [] : own.filter((r) => r.kind === 'subtask' || r.kind === 'step');
    if (work.length > 0 && leader === this.selfId) void this.passToKeepers(work);
  }

  /**
   * Hands records towards the leader: to it when connected to it; otherwise to a neighbour
   * that said it is, which passes them on with everything else it was handed; failing that,
   * to any neighbour, which does the same (at most MAX_RELAY_HOPS such steps). With a
   * connection budget of 32, most members of a large fleet have no connection to the leader,
   * and a gossip message of its own from each of them was a thousand messages per broadcast
   * at every node of a thousand. Every step is a request that is answered, so a lost message
   * is noticed: when the one handed to does not answer, the records are gossiped from here.
   */
  private handOver(records: AnyRecord[]): void {
    const via = this.nextStepToLeader(0);
    if (via === null) {
      this.gossip(records);
      // Gossip is lossy: this member checks with a keeper soon.
      if (this.deps.leaderId() !== this.selfId) this.checkOwnWorkSoon();
      return;
    }
    this.counters.relayedToLeader += records.length;
    this.deps.rpc.call(via.peer, RELAY, { records, hops: via.hops }, this.deps.config.requestTimeoutMs).then(
      (reply) => {
        // Gossiped on the way (no route to the leader): lossy, so this member checks with a keeper soon.
        if ((reply as { delivered?: unknown } | null)?.delivered === false) this.checkOwnWorkSoon();
      },
      () => {
        this.counters.relaysUnanswered += records.length;
        this.gossipLatest(records);
        this.checkOwnWorkSoon();
      },
    );
  }

  private ownCheckTimer: TimerHandle | null = null;

  /** Compares this member's own work with a keeper in workSyncGraceMs (its results may have been lost on the way). */
  private checkOwnWorkSoon(turn = 0): void {
    if (this.ownCheckTimer !== null || this.isKeeper()) return;
    this.ownCheckTimer = this.deps.clock.setTimer(this.deps.config.workSyncGraceMs, () => {
      this.ownCheckTimer = null;
      this.syncOwnWork(turn).catch((err: unknown) => this.onBackgroundError(err));
    });
  }

  /** Where records go next on their way to the leader, and how many steps they will have taken; null: gossip them from here. */
  private nextStepToLeader(hops: number): { peer: string; hops: number } | null {
    const leader = this.deps.leaderId();
    if (leader === null || leader === this.deps.transport.localId) return null;
    if (hops >= MAX_RELAY_HOPS) return null;
    const connected = this.deps.transport.connectedPeers();
    if (connected.includes(leader)) return { peer: leader, hops: hops + 1 };
    const pick = (peers: string[]) => peers[Math.floor(this.deps.random() * peers.length)];
    const linked = pick(this.deps.neighboursLinkedToLeader());
    if (linked !== undefined) return { peer: linked, hops: hops + 1 };
    // A keeper takes them as well as the leader (it passes them to the leader and the other
    // keepers): three keepers are three times as many neighbours with a way there, and a
    // member of a large fleet that found none gossiped its results to every node.
    const keeper = pick(this.deps.keepers().filter((id) => id !== this.selfId && connected.includes(id)));
    if (keeper !== undefined) return { peer: keeper, hops: hops + 1 };
    const keeperLinked = pick(this.deps.neighboursLinkedToKeeper?.() ?? []);
    if (keeperLinked !== undefined) return { peer: keeperLinked, hops: hops + 1 };
    if (hops >= MAX_RELAY_HOPS - 2) return null;
    const any = pick(connected);
    return any === undefined ? null : { peer: any, hops: hops + 1 };
  }

  /**
   * What members handed to this node: as the leader (or with no way on to it), it gossips
   * them; otherwise it passes them on towards the leader in one request, and gossips them
   * itself if that is not answered. Either way the members get their answer after.
   */
  private async flushRelayed(): Promise<void> {
    const relayed = this.latest(this.relayed);
    const hops = this.relayHops;
    this.relayHops = 0;
    const waiters = this.relayWaiters;
    this.relayWaiters = [];
    // Whether the records reached the leader (and the keepers), or were only gossiped.
    let delivered = true;
    try {
      if (relayed.length === 0) return;
      // The leader, or another keeper: to the other keepers (the leader among them), not by gossip.
      if (this.isKeeperKnown() && (await this.passToKeepers(relayed))) return;
      const via = this.nextStepToLeader(hops);
      if (via !== null) {
        try {
          this.counters.relaysForwarded += relayed.length;
          const reply = await this.deps.rpc.call(via.peer, RELAY, { records: relayed, hops: via.hops }, this.deps.config.requestTimeoutMs);
          delivered = (reply as { delivered?: unknown } | null)?.delivered !== false;
          return;
        } catch {
          this.counters.relaysUnanswered += relayed.length;
        }
      }
      delivered = false;
      this.gossipLatest(relayed);
    } finally {
      for (const answer of waiters) answer(delivered);
    }
  }

  /**
   * As the leader: members' results go to the other keepers (on their disks before they
   * answer), not to everybody. True when at least one took them (or there is no other
   * keeper); false: none answered, and the caller gossips them (every keeper takes gossip).
   */
  private async passToKeepers(records: AnyRecord[]): Promise<boolean> {
    const others = this.deps.keepers().filter((id) => id !== this.selfId);
    if (others.length === 0) return true;
    const latest = records.map((r) => this.deps.store.get(recordKey(r)) ?? r);
    const results = await Promise.allSettled(others.map((peer) => this.pushPages(peer, latest, { ack: true, timeoutMs: this.deps.config.requestTimeoutMs, dial: true, fresh: true })));
    const taken = results.filter((r) => r.status === 'fulfilled').length;
    if (taken > 0) this.counters.resultsToKeepers += records.length;
    return taken > 0;
  }

  /** Answers every member waiting on a hand-over (the node is stopping). */
  private answerRelays(): void {
    const waiters = this.relayWaiters;
    this.relayWaiters = [];
    for (const answer of waiters) answer(false);
  }

  /** Gossips records in the version held now (a later one may have come since they were batched). */
  private gossipLatest(records: AnyRecord[]): void {
    this.gossip(records.map((r) => this.deps.store.get(recordKey(r)) ?? r));
  }

  /** The batch's records in their latest version (a record written twice in the window goes once), and the batch emptied. */
  private latest(batch: Map<string, AnyRecord>): AnyRecord[] {
    const out = [...batch].map(([key, r]) => this.deps.store.get(key) ?? r);
    batch.clear();
    return out;
  }

  private gossip(records: AnyRecord[]): void {
    for (const batch of batches(records, this.deps.config.maxDeltaBytes)) {
      try {
        const data = encode({ records: batch });
        this.deps.transport.publish(RECORDS_TOPIC, data);
        this.counters.deltasSent += 1;
        this.counters.deltaBytesSent += data.byteLength;
      } catch (err) {
        this.deps.log.warn({ err }, 'delta not published');
      }
    }
  }

  /**
   * Records a member handed over (to this node as the leader, or as its neighbour with a
   * connection to the leader): checked, merged and passed on. The answer comes once they
   * have been gossiped or taken by the leader, so a node killed in between leaves the member
   * without one, and the member gossips them itself.
   */
  private async onRelay(from: string, body: unknown): Promise<unknown> {
    this.deps.heardFrom(from);
    // Records already held are passed on too (they were checked when they first came): a
    // neighbour often has a member's result from anti-entropy before the member's hand-over.
    const held: AnyRecord[] = [];
    // Another member's work is passed on without being checked or kept here (this node is not
    // a keeper); the leader checks it.
    const notHeld: AnyRecord[] = [];
    const accepted = [...this.acceptRecords(from, (body as { records?: unknown } | null)?.records, held, notHeld), ...held, ...notHeld];
    // Merged with what was handed over before: a record this node does not hold has no newer version in the store.
    for (const r of accepted) {
      const key = recordKey(r);
      const before = this.relayed.get(key);
      this.relayed.set(key, before === undefined ? r : mergeRecord(before, r));
    }
    const hops = (body as { hops?: unknown } | null)?.hops;
    if (accepted.length > 0) this.relayHops = Math.max(this.relayHops, typeof hops === 'number' && Number.isSafeInteger(hops) && hops >= 0 ? Math.min(hops, MAX_RELAY_HOPS) : MAX_RELAY_HOPS);
    if (this.relayed.size === 0) return { ok: true };
    // The window pays off when many members report at once: a few milliseconds per
    // neighbour, up to relayBatchMs (a broadcast on 5 daemons waited 100 ms for nothing).
    this.relayFlush.arm(Math.min(this.deps.config.relayBatchMs, this.deps.config.relayBatchPerPeerMs * this.deps.transport.connectedPeers().length));
    const delivered = await new Promise<boolean>((resolve) => this.relayWaiters.push(resolve));
    return { ok: true, delivered };
  }

  onGossip(from: string, data: Uint8Array): void {
    this.deps.heardFrom(from);
    const body = decode(data) as { records?: unknown } | null;
    this.counters.deltasReceived += 1;
    this.counters.deltaBytesReceived += data.byteLength;
    this.acceptRecords(from, body?.records);
  }

  /**
   * Validates, checks and merges records that `from` sent (written by anyone: it may only
   * relay them). A record identical to the one held is skipped before its signature is
   * checked again: gossip and anti-entropy deliver most records more than once.
   */
  acceptRecords(from: string, raw: unknown, held?: AnyRecord[], notHeld?: AnyRecord[]): AnyRecord[] {
    const fresh = this.freshRecords(from, raw, held, notHeld);
    const accepted = fresh.filter((r) => this.authorised(from, r, authorityProblem(r, this.deps.keys)));
    // Read just after a stall (a thawed process reads what its sockets kept): not live.
    if (this.deps.stalledRecently?.() === true) this.holdImplied(accepted);
    return this.deps.store.apply(accepted);
  }

  /**
   * Validates and checks records as acceptRecords does, without merging them (the caller
   * writes them durably first). Those held already as they are (checked when they came) are
   * returned too.
   */
  verifyRecords(from: string, raw: unknown): AnyRecord[] {
    const held: AnyRecord[] = [];
    return [...this.freshRecords(from, raw, held).filter((r) => this.authorised(from, r, authorityProblem(r, this.deps.keys))), ...held];
  }

  /** The same for a large batch (a page of anti-entropy, a push): the signatures are checked off the event loop where the keys can. */
  async acceptMany(from: string, raw: unknown, options: { catchUp: boolean }): Promise<AnyRecord[]> {
    const fresh = this.freshRecords(from, raw);
    const problems = fresh.length < VERIFY_BATCH_MIN ? fresh.map((r) => authorityProblem(r, this.deps.keys)) : await authorityProblems(fresh, this.deps.keys);
    const accepted = fresh.filter((r, i) => this.authorised(from, r, problems[i] ?? null));
    // Before they are merged: the worker looks at them as soon as they are.
    if (options.catchUp) this.holdImplied(accepted);
    const applied = this.deps.store.apply(accepted);
    // A member's own record, new here and taken from that member itself, is passed on: a
    // daemon's record, written at its start before it had a connection, reaches its first
    // peer only by this exchange, and the rest of the cluster would otherwise learn of the new
    // member at its next anti-entropy round (24 daemons joining at once agreed after 29 s).
    const joined = applied.filter((r) => r.kind === 'member' && r.record.nodeId === from);
    if (joined.length > 0) this.gossipLatest(joined);
    return applied;
  }

  /**
   * The well-formed records of `raw` that this node does not hold as they are (those it holds
   * go to `held`); the rest counted. Another member's work is dropped before it is parsed,
   * unless this node is a keeper (or, well-formed, goes to `notHeld` to be passed on).
   */
  private freshRecords(from: string, raw: unknown, held?: AnyRecord[], notHeld?: AnyRecord[]): AnyRecord[] {
    if (!Array.isArray(raw)) {
      this.counters.recordsRejected += 1;
      return [];
    }
    const fresh: AnyRecord[] = [];
    const keeper = this.isKeeper();
    for (const item of raw) {
      const holder = keeper ? null : holderOfRaw(item);
      if (typeof holder === 'string' && holder !== this.selfId && notHeld === undefined) {
        this.counters.recordsNotHeld += 1;
        continue;
      }
      const parsed = parseRecord(item);
      if (parsed.ok && typeof holder === 'string' && holder !== this.selfId) {
        this.counters.recordsNotHeld += 1;
        notHeld?.push(parsed.record);
        continue;
      }
      if (!parsed.ok) {
        this.counters.recordsRejected += 1;
        this.deps.log.debug({ from, error: parsed.error }, 'record rejected');
      } else if (this.deps.store.holds(parsed.record)) {
        this.counters.recordsDuplicate += 1;
        held?.push(parsed.record);
      } else fresh.push(parsed.record);
    }
    return fresh;
  }

  private authorised(from: string, record: AnyRecord, problem: string | null): boolean {
    this.counters.recordsChecked += 1;
    if (problem === null) return true;
    this.counters.recordsRejected += 1;
    this.counters.recordsForged += 1;
    this.deps.log.warn({ from, record: recordKey(record), problem }, 'record refused: not signed by a writer allowed to write it');
    return false;
  }

  // ---- anti-entropy -----------------------------------------------------------------

  /**
   * Pull-and-push exchange with one peer: afterwards each side holds the other's records.
   * It compares one root, then the bucket hashes, then lists the entries of differing
   * buckets only, and moves records in pages of at most syncPageBytes: no message grows
   * with the whole state, and a node that was away for a day (or a new one joining a
   * cluster of 200,000 records) catches up in bounded steps (sync-index.ts).
   */
  async syncWith(peer: string, options: { dial?: boolean; scope?: SyncScope } = {}): Promise<void> {
    if (this.syncing.has(peer)) return; // one exchange per peer at a time
    const scope = options.scope ?? this.scopeWith(peer);
    // The peer is pulling from this node right now (it is catching up): an exchange the
    // other way would send it digests and pages it is already getting. Not between two
    // keepers: each must get what the other holds, and they sync with each other all the time.
    if (scope === 'shared' && this.deps.clock.now() - (this.pulledBy.get(peer) ?? -Infinity) < this.deps.config.pullingWindowMs) {
      this.counters.syncsSkipped += 1;
      return;
    }
    this.syncing.add(peer);
    // A keeper's word: two keepers compare every record, this node's work included.
    const waiting = scope === 'all' && this.deps.keepers().includes(peer) ? [...this.unconfirmed] : [];
    try {
      // Most exchanges find nothing to do: one fingerprint, and the bucket hashes only if it differs.
      const first = (await this.deps.rpc.call(peer, 'sync', { root: this.deps.store.rootVersion(scope), scope }, this.deps.config.requestTimeoutMs, { dial: options.dial === true })) as { same?: unknown; buckets?: unknown };
      if (first?.same !== true) {
        const differing = typeof first?.buckets === 'string' ? this.deps.store.syncOf(scope).differingBuckets(first.buckets) : null;
        if (differing === null) throw new Error('malformed bucket hashes');
        const wanted: string[] = [];
        for (const chunk of this.bucketChunks(differing, scope)) wanted.push(...(await this.exchangeBuckets(peer, chunk, scope)));
        await this.pushWanted(peer, wanted);
      }
      this.counters.syncsCompleted += 1;
      this.confirmImplied(waiting);
    } catch (err) {
      if (err instanceof InvariantError) throw err; // a bug in merging what arrived, not a failed exchange
      this.counters.syncsFailed += 1;
      this.deps.log.debug({ peer, err: (err as Error).message }, 'anti-entropy failed');
    } finally {
      this.syncing.delete(peer);
    }
  }

  /**
   * Pulls the peer's records of some buckets, page by page, then pushes it what it lacks.
   * The next page is asked for before this one is checked and merged, so that the peer
   * builds it while this node works (catching up is bounded by the slower side, not both).
   */
  private async exchangeBuckets(peer: string, buckets: number[], scope: SyncScope): Promise<string[]> {
    const digest = this.digestOf(buckets, scope);
    type Page = { records?: unknown; want?: unknown; next?: unknown; pruned?: unknown };
    const pull = (after: string | null) => this.deps.rpc.call(peer, SYNC_PULL, { buckets, digest, after, scope }, this.deps.config.requestTimeoutMs, { bulk: true }) as Promise<Page>;
    let pending: Promise<Page> | null = pull(null);
    let want: string[] = [];
    let first = true;
    // Pages being checked (on the signature worker) while the next arrives and is parsed.
    const checking: Promise<unknown>[] = [];
    let pullFailed: unknown = null;
    try {
      while (pending !== null) {
        const page: Page = await pending;
        const next = typeof page?.next === 'string' ? page.next : null;
        pending = next === null ? null : pull(next);
        pending?.catch(() => undefined); // awaited at the next turn of the loop; handled if this one throws first
        checking.push(this.acceptMany(peer, page?.records, { catchUp: true }));
        if (checking.length >= PAGES_IN_FLIGHT) await checking.shift();
        this.counters.syncPages += 1;
        if (first && Array.isArray(page?.want)) want = page.want.filter((k): k is string => typeof k === 'string');
        // A keeper holds every record and prunes by its own retention: a peer's word (a member's
        // may be wrong) would make it drop the history of an instance still running elsewhere.
        if (first && Array.isArray(page?.pruned) && !this.isKeeper()) this.applyPruned(page.pruned);
        first = false;
      }
    } catch (err) {
      pullFailed = err;
    }
    // Whatever happened, every page taken is merged before the exchange ends (or fails);
    // a broken invariant in a merge comes first.
    const failed = (await Promise.allSettled(checking)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    if (pullFailed !== null) throw pullFailed;
    return want;
  }

  /**
   * One page of what the peer lacks goes back with an exchange (a small difference is
   * repaired both ways at once); more, the peer pulls itself when it syncs with this node.
   * Pushing all of it too would send the same records twice when both sides sync at once.
   */
  private async pushWanted(peer: string, want: string[]): Promise<void> {
    const missing = want.map((k) => this.deps.store.get(k)).filter((r): r is AnyRecord => r !== undefined);
    const [page] = batches(missing, this.deps.config.syncPageBytes);
    if (page !== undefined) {
      // Acknowledged: a busy peer refuses an unacknowledged push, and the exchange would end with the difference still there.
      await this.deps.rpc.call(peer, 'push', { records: page, ack: true }, this.deps.config.requestTimeoutMs, { bulk: true });
      this.counters.syncPages += 1;
    }
  }

  /**
   * A peer pruned these instances (retention: they ended, and are past the history bound).
   * Every node prunes by the same rule, but only one that holds every record (a keeper) can
   * tell when an instance ended: so this member prunes them too, unless one of them is still
   * unfinished here as far as its own part goes (a peer with a partial view would be wrong).
   * A keeper takes no such word (exchangeBuckets).
   */
  private applyPruned(ids: unknown[]): void {
    const { store } = this.deps;
    const removed: string[] = [];
    for (const id of ids.slice(0, MAX_PRUNED_PER_PAGE)) {
      if (typeof id !== 'string' || store.instance(id) === undefined || store.wasPruned(id)) continue;
      const own = store.subtask(id, this.selfId);
      const ownSteps = [store.step(id, 'pre'), store.step(id, 'post')].filter((s) => s?.runnerNodeId === this.selfId);
      if ((own && !isTerminal(own.status)) || ownSteps.some((s) => s && !isTerminal(s.status))) continue;
      if (!own && sortedHas(store.instance(id)?.targets ?? [], this.selfId) && !isInstanceFinished(store.statusOf(store.instance(id) as InstanceRecord))) continue;
      store.removeInstance(id);
      removed.push(id);
    }
    this.counters.prunedByPeers += removed.length;
    if (removed.length > 0) this.deps.onPruned?.(removed);
  }

  /** Differing buckets in groups whose digest (about 100 bytes an entry) stays within half a page. */
  private bucketChunks(buckets: number[], scope: SyncScope): number[][] {
    return chunksOf(buckets, (bucket) => this.deps.store.syncOf(scope).keysIn(bucket).size * DIGEST_ENTRY_BYTES, this.deps.config.syncPageBytes / 2);
  }

  private digestOf(buckets: number[], scope: SyncScope): Record<string, string> {
    const digest: Record<string, string> = {};
    for (const bucket of buckets) for (const key of this.deps.store.syncOf(scope).keysIn(bucket)) digest[key] = this.deps.store.versionOf(key) as string;
    return digest;
  }

  /** What this node compares with `peer`: every record between two keepers, the shared ones otherwise. */
  private scopeWith(peer: string): SyncScope {
    const keepers = this.deps.keepers();
    return keepers.includes(this.selfId) && keepers.includes(peer) ? 'all' : 'shared';
  }

  /**
   * This node's fingerprint, sent with every probe and ack: its shared records' root, and
   * for a keeper, after a dot, every record's (onPeerRoot compares what two nodes share).
   */
  fingerprint(): string {
    const shared = this.deps.store.rootVersion('shared');
    return this.isKeeper() ? `${shared}.${this.deps.store.rootVersion('all')}` : shared;
  }

  /**
   * A peer's fingerprint came with a probe or an ack (every node probes one neighbour a
   * second): when it differs from this node's, an exchange with that peer starts, at most
   * one at a time, not sooner than config.rootSyncGapMs after the last, and not while records
   * are still arriving (config.rootSyncQuietMs). So anti-entropy costs
   * no message of its own while the cluster agrees; the timer is only a safety net.
   */
  onPeerRoot(peer: string, root: string): void {
    const [shared, all] = root.split('.');
    const same = this.scopeWith(peer) === 'all' && all !== undefined ? all === this.deps.store.rootVersion('all') : shared === this.deps.store.rootVersion('shared');
    if (same || this.rootSyncRunning) return;
    const nowMs = this.deps.clock.now();
    const { rootSyncGapMs, rootSyncQuietMs } = this.deps.config;
    if (nowMs - this.lastRootSyncMs < rootSyncGapMs) return;
    if (nowMs - this.lastChangeMs < rootSyncQuietMs) return;
    this.lastRootSyncMs = nowMs;
    this.rootSyncRunning = true;
    this.counters.syncsOnProbe += 1;
    this.syncWith(peer).finally(() => {
      this.rootSyncRunning = false;
      this.lastRootSyncMs = this.deps.clock.now();
    }).catch((err: unknown) => {
      if (err instanceof InvariantError) this.deps.onInvariant(err);
    });
  }

  private rootSyncRunning = false;
  private lastRootSyncMs = -Infinity;
  /** When a record last changed here (from anywhere). */
  private lastChangeMs = -Infinity;

  private syncWithRandomPeer(): void {
    const peers = this.deps.transport.connectedPeers();
    // The safety net for a member's own work, only when it has some (at a fleet's formation
    // every member dialling a keeper churned the keepers' connections): with a keeper it is
    // connected to, else a keeper is dialled (one fingerprint when they agree).
    if (!this.isKeeper() && this.hasOwnWork()) {
      const connected = new Set(peers);
      const keepers = this.deps.keepers();
      const linked = keepers.findIndex((id) => connected.has(id) && id !== this.selfId);
      const turn = linked >= 0 ? linked : Math.floor(this.deps.random() * keepers.length);
      void this.syncOwnWork(turn).catch((err: unknown) => this.onBackgroundError(err));
    }
    if (peers.length === 0) return;
    const peer = peers[Math.floor(this.deps.random() * peers.length)] as string;
    void this.syncWith(peer);
  }

  private onBackgroundError(err: unknown): void {
    if (err instanceof InvariantError) this.deps.onInvariant(err);
  }

  /** The first step of an exchange: equal roots, or this node's bucket hashes. */
  private async onSync(from: string, body: unknown): Promise<unknown> {
    this.deps.heardFrom(from);
    const { root, scope } = (body ?? {}) as { root?: unknown; scope?: unknown };
    if (typeof root !== 'string') throw new Error('malformed sync request (expected {root})');
    const index = this.deps.store.syncOf(parseScope(scope));
    if (root === index.root()) return { same: true };
    return { same: false, buckets: index.bucketHashes() };
  }

  /**
   * This node stopped being a keeper: it asks the keepers to pull every record it holds (a
   * partition healed, and this side's results were reported to it) before it forgets them.
   */
  async handOverToKeepers(): Promise<void> {
    const keepers = this.deps.keepers().filter((id) => id !== this.selfId);
    await Promise.allSettled(keepers.map((keeper) => this.deps.rpc.call(keeper, TAKE_OVER, {}, this.deps.config.requestTimeoutMs, { dial: true })));
  }

  // ---- a member's own work, with a keeper ---------------------------------------------

  private expectTimer: TimerHandle | null = null;
  private workSyncRunning = false;

  /**
   * An instance that targets this node arrived: its subtask comes by gossip too, and is
   * asked of a keeper if it has not come within workSyncGraceMs (a lost message).
   */
  private expectOwnWork(attempt = 0): void {
    if (this.expectTimer !== null || this.isKeeper()) return;
    // Asked again, later each time (up to antiEntropyIntervalMs), while it is missing: the
    // keeper asked may lack it too for a while (it went to the others first).
    const waitMs = Math.min(this.deps.config.workSyncGraceMs * 2 ** attempt, this.deps.config.antiEntropyIntervalMs);
    this.expectTimer = this.deps.clock.setTimer(waitMs, () => {
      this.expectTimer = null;
      if (!this.missingOwnWork()) return;
      this.syncOwnWork(attempt)
        .then(() => this.expectOwnWork(attempt + 1))
        .catch((err: unknown) => this.onBackgroundError(err));
    });
  }

  /** Whether this member has work of its own to compare with a keeper: records of it, or a subtask it lacks. */
  hasOwnWork(): boolean {
    return this.deps.store.workOf(this.selfId).keys.size > 0 || this.missingOwnWork();
  }

  /** An instance targets this node, and its subtask has not come (or the one it implies waits for a keeper's word). */
  private missingOwnWork(): boolean {
    const { store } = this.deps;
    if (this.unconfirmed.size > 0) return true;
    return store.instances().some((i) => i.failure === null && !impliesSubtasks(i) && store.subtask(i.id, this.selfId) === undefined && sortedHas(i.targets, this.selfId) && !isInstanceFinished(store.statusOf(i)));
  }

  // ---- the pending subtasks an instance implies ----------------------------------------

  /**
   * Instances whose implied pending subtask of this node's (records/rollout.ts) waits for a
   * keeper's word before it may start: they came by anti-entropy, or were on disk when this
   * node started, so a verdict on that subtask (node-lost, given while this node was held
   * dead) may exist that has not reached it. An instance that came live (gossip, a
   * hand-over, a push of new writes) is not held back: a verdict takes a death to be
   * declared, seconds after the instance first travelled.
   */
  private readonly unconfirmed = new Set<string>();

  /** Whether this node may start the subtask the instance implies for it without a record of it. */
  mayStartImplied(instanceId: string): boolean {
    return !this.unconfirmed.has(instanceId);
  }

  /** Instances among `records` that imply a subtask of this node's it holds no record of wait for a keeper's word. */
  private holdImplied(records: readonly AnyRecord[]): void {
    const { store } = this.deps;
    let held = false;
    for (const r of records) {
      if (r.kind !== 'instance' || !impliesSubtasks(r.record) || !sortedHas(r.record.targets, this.selfId) || store.subtask(r.record.id, this.selfId) !== undefined) continue;
      this.unconfirmed.add(r.record.id);
      held = true;
    }
    if (held) this.askForWordSoon();
  }

  /**
   * Asks for a keeper's word at once: a member compares its own work with a keeper (retried
   * with back-off while some are waiting); a keeper compares everything with the leader (or
   * the next keeper); the only keeper there is needs no one's word.
   */
  private askForWordSoon(): void {
    const keepers = this.deps.keepers();
    if (keepers.length === 0) return; // not known yet (a start): keepersChanged() asks
    const others = keepers.filter((id) => id !== this.selfId);
    if (others.length === 0) {
      queueMicrotask(() => this.confirmImplied([...this.unconfirmed]));
      return;
    }
    if (this.isKeeper()) {
      this.syncWith(others[0] as string, { dial: true, scope: 'all' }).catch((err: unknown) => this.onBackgroundError(err));
      return;
    }
    this.syncOwnWork().catch((err: unknown) => this.onBackgroundError(err));
    this.expectOwnWork();
  }

  /** The keepers changed (or became known): instances waiting for a word ask the new ones. */
  keepersChanged(): void {
    if (this.unconfirmed.size > 0) this.askForWordSoon();
  }

  /** A keeper's word came after these instances did: the subtasks they imply may start. */
  private confirmImplied(ids: readonly string[]): void {
    const confirmed = ids.filter((id) => this.unconfirmed.delete(id));
    if (confirmed.length > 0) this.deps.onImpliedConfirmed?.(confirmed);
  }

  /**
   * Compares this member's own work (its subtasks and the steps it runs) with a keeper's
   * copy of it and repairs both ways: one fingerprint when they agree; else the keeper's
   * (key, version) list of it, then what differs is pulled and pushed, in pages. A keeper
   * without a connection is dialled: a member of a large fleet often has none.
   */
  async syncOwnWork(turn = 0): Promise<void> {
    const keepers = this.deps.keepers().filter((id) => id !== this.selfId);
    if (keepers.length === 0 || this.workSyncRunning) return;
    // The leader first (it released the subtasks), then the others in turn.
    const keeper = keepers[turn % keepers.length] as string;
    this.workSyncRunning = true;
    this.counters.workSyncs += 1;
    let failed = false;
    const { store, config } = this.deps;
    // What the keeper holds of this node's work, once compared, says no verdict is on its way for these.
    const waiting = [...this.unconfirmed];
    try {
      const mine = store.workOf(this.selfId);
      type Answer = { same?: unknown; entries?: unknown; records?: unknown; next?: unknown };
      const ask = (body: unknown) => this.deps.rpc.call(keeper, SYNC_WORK, body, config.requestTimeoutMs, { dial: true, bulk: true }) as Promise<Answer>;
      let answer = await ask({ root: mine.root, after: null });
      if (answer?.same === true) {
        this.confirmImplied(waiting);
        return;
      }
      this.counters.workSyncsRepaired += 1;
      const theirs = new Map<string, string>();
      for (;;) {
        if (!Array.isArray(answer?.entries)) throw new Error('malformed sync-work answer');
        for (const entry of answer.entries) if (Array.isArray(entry) && typeof entry[0] === 'string' && typeof entry[1] === 'string') theirs.set(entry[0], entry[1]);
        if (typeof answer.next !== 'string') break;
        answer = await ask({ root: mine.root, after: answer.next });
      }
      const pull = [...theirs].filter(([key, version]) => store.versionOf(key) !== version).map(([key]) => key);
      // A record is at most a few KB: pages of keys whose records fit in a page.
      for (const keys of chunksOf(pull, () => WORK_RECORD_BYTES, config.syncPageBytes)) {
        const page = await ask({ keys });
        await this.acceptMany(keeper, page?.records, { catchUp: true });
      }
      const push = [...store.workOf(this.selfId).keys].filter((key) => theirs.get(key) !== store.versionOf(key)).map((key) => store.get(key)).filter((r): r is AnyRecord => r !== undefined);
      // Acknowledged: on the keeper's disk before it answers (a busy keeper refuses an unacknowledged push).
      if (push.length > 0) await this.pushPages(keeper, push, { ack: true, timeoutMs: config.requestTimeoutMs, dial: true, fresh: false });
      this.confirmImplied(waiting);
    } catch (err) {
      if (err instanceof InvariantError) throw err;
      this.deps.log.debug({ keeper, err: (err as Error).message }, 'own work not compared with a keeper; the next one is asked soon');
      failed = true;
    } finally {
      this.workSyncRunning = false;
    }
    if (failed) this.checkOwnWorkSoon(turn + 1);
  }

  /**
   * A member asks about its own work: equal fingerprints; or a page of the (key, version)
   * pairs held for it, from the cursor `after`; or the records of some of those keys.
   */
  private async onSyncWork(from: string, body: unknown): Promise<unknown> {
    this.deps.heardFrom(from);
    const { root, after, keys } = (body ?? {}) as { root?: unknown; after?: unknown; keys?: unknown };
    const work = this.deps.store.workOf(from);
    if (Array.isArray(keys)) {
      const records = keys.filter((k): k is string => typeof k === 'string' && work.keys.has(k)).map((k) => this.deps.store.get(k)).filter((r): r is AnyRecord => r !== undefined);
      return { records: (batches(records, this.deps.config.syncPageBytes)[0] ?? []) };
    }
    if (typeof root !== 'string' || (after !== null && typeof after !== 'string')) throw new Error('malformed sync-work request (expected {root, after} or {keys})');
    if (after === null && root === work.root) return { same: true };
    const sorted = [...work.keys].filter((k) => after === null || k > after).sort();
    const entries: [string, string][] = [];
    let size = 0;
    for (const key of sorted) {
      if (size > this.deps.config.syncPageBytes / 2) return { same: false, entries, next: entries[entries.length - 1]?.[0] ?? null };
      const version = this.deps.store.versionOf(key) as string;
      entries.push([key, version]);
      size += key.length + version.length + 8;
    }
    return { same: false, entries, next: null };
  }

  /**
   * One page of this node's records in the given buckets that differ from the asker's
   * digest, bucket by bucket and in key order within a bucket, from the cursor `after`
   * ("BUCKET:KEY"); on the first page, also the keys of the digest this node lacks or
   * holds in another version (the asker pushes those). A page costs the records it holds
   * and the sorting of one bucket, whatever the size of the state.
   */
  private async onSyncPull(from: string, body: unknown): Promise<unknown> {
    this.deps.heardFrom(from);
    this.pulledBy.set(from, this.deps.clock.now());
    if (this.pulledBy.size > MAX_PULLERS) this.pulledBy.delete(this.pulledBy.keys().next().value as string);
    const { buckets, digest, after, scope } = (body ?? {}) as { buckets?: unknown; digest?: unknown; after?: unknown; scope?: unknown };
    const index = this.deps.store.syncOf(parseScope(scope));
    const valid = Array.isArray(buckets) && buckets.length <= SYNC_BUCKETS && buckets.every((b) => Number.isInteger(b) && b >= 0 && b < SYNC_BUCKETS);
    if (!valid || typeof digest !== 'object' || digest === null || (after !== null && typeof after !== 'string')) throw new Error('malformed sync-pull request');
    const theirs = digest as Record<string, unknown>;
    const { store } = this.deps;
    const cursor = parseCursor(after);
    const records: AnyRecord[] = [];
    let size = 0;
    let next: string | null = null;
    const ordered = [...new Set(buckets as number[])].sort((a, b) => a - b).filter((b) => cursor === null || b >= cursor.bucket);
    fill: for (const bucket of ordered) {
      const keys = [...index.keysIn(bucket)].filter((key) => theirs[key] !== store.versionOf(key) && (cursor === null || bucket > cursor.bucket || key > cursor.key));
      keys.sort();
      for (const key of keys) {
        const record = store.get(key) as AnyRecord;
        const bytes = JSON.stringify(record).length;
        if (records.length > 0 && size + bytes > this.deps.config.syncPageBytes) {
          // The last record taken may be in an earlier bucket than this one.
          const last = records[records.length - 1] as AnyRecord;
          next = `${bucketOf(recordKey(last))}:${recordKey(last)}`;
          break fill;
        }
        records.push(record);
        size += bytes;
      }
    }
    const differ = after === null ? Object.entries(theirs).filter(([key, version]) => store.versionOf(key) !== version).map(([key]) => key) : [];
    // Records of instances this node pruned are not wanted: the asker is told they were
    // pruned, and prunes them too (a member that is not a keeper cannot tell when an
    // instance ended, so it learns its history bound this way: see Replicator.applyPruned).
    const prunedHere = (key: string) => {
      const id = instanceIdOfKey(key);
      return id !== null && store.wasPruned(id);
    };
    const want = differ.filter((key) => !prunedHere(key));
    const pruned = [...new Set(differ.filter(prunedHere).map((key) => instanceIdOfKey(key) as string))];
    // The page's size as sent: its records, their commas and the envelope (the want list goes on the first page only, and is bounded by the asker's digest).
    const wantBytes = [...want, ...pruned].reduce((n, key) => n + key.length + 3, 0);
    const pageBytes = size + records.length + wantBytes + 64;
    this.counters.largestSyncPageBytes = Math.max(this.counters.largestSyncPageBytes, pageBytes);
    this.counters.syncBytesSent += pageBytes;
    return { records, want, next, ...(pruned.length > 0 ? { pruned } : {}) };
  }

  /**
   * Records a peer pushes. An acknowledged push (guarantee 8) is answered once they are
   * merged and on disk. Any other is taken in the background, at most PAGES_IN_FLIGHT at a
   * time: beyond that the push is refused as busy (the sender tries again later), so a peer
   * cannot pile up work here faster than this node checks it.
   */
  private async onPush(from: string, body: unknown): Promise<unknown> {
    this.deps.heardFrom(from);
    const { records, ack, fresh } = (body ?? {}) as { records?: unknown; ack?: unknown; fresh?: unknown };
    // A push of new writes (a run's instance, results, a leave) is as live as gossip; any other repairs a difference.
    const catchUp = fresh !== true;
    if (ack === true) {
      await this.acceptMany(from, records, { catchUp });
      await this.deps.store.flush();
      return { ok: true };
    }
    if (this.pushesInFlight >= PAGES_IN_FLIGHT) throw new RpcError(`busy: ${this.pushesInFlight} pushed pages are being checked already; try again later`, 'busy');
    this.pushesInFlight += 1;
    this.acceptMany(from, records, { catchUp })
      .catch((err: unknown) => {
        if (err instanceof InvariantError) this.deps.onInvariant(err);
      })
      .finally(() => (this.pushesInFlight -= 1));
    return { ok: true };
  }

  private pushesInFlight = 0;

  /** Sends records straight to every connected peer and every keeper at once (a leave must not wait for gossip). */
  async pushToAll(records: AnyRecord[], timeoutMs: number): Promise<number> {
    const connected = this.deps.transport.connectedPeers();
    const keepers = this.deps.keepers().filter((id) => id !== this.selfId && !connected.includes(id));
    const results = await Promise.allSettled([...connected.map((peer) => this.pushPages(peer, records, { ack: false, timeoutMs, fresh: true })), ...keepers.map((peer) => this.pushPages(peer, records, { ack: false, timeoutMs, dial: true, fresh: true }))]);
    return results.filter((r) => r.status === 'fulfilled').length;
  }

  /**
   * Pushes records to one peer in pages of at most syncPageBytes; `ack`: each page on its
   * disk before it answers; `dial`: connect first if need be; `fresh`: new writes, not a
   * repair (the peer may start the subtask a new instance implies at once: mayStartImplied).
   */
  private async pushPages(peer: string, records: AnyRecord[], options: { ack: boolean; timeoutMs: number; dial?: boolean; fresh: boolean }): Promise<void> {
    for (const page of batches(records, this.deps.config.syncPageBytes)) {
      await this.deps.rpc.call(peer, 'push', { records: page, ack: options.ack, ...(options.fresh ? { fresh: true } : {}) }, options.timeoutMs, { bulk: true, dial: options.dial === true });
    }
  }

  /**
   * Guarantee 8: returns once the records are on disk on at least one other alive member
   * (when there is one). Tries the given peers at once; the first to confirm every page wins.
   */
  async replicateTo(peers: string[], records: AnyRecord[], options: { dial?: boolean } = {}): Promise<string | null> {
    if (peers.length === 0) throw new WriteNotReplicatedError(options.dial ? 'no keeper is alive' : 'no other alive member is connected');
    // A few at once, first confirmation wins: one slow or dead peer must not hold up the
    // answer, and one confirmation is all it takes (asking all 31 neighbours of a node in
    // a fleet had each of them check and fsync the same records, for one answer).
    const shuffled = shuffle([...peers], this.deps.random);
    const reasons: string[] = [];
    // Two rounds at most: a client waits for this (a forwarded run is told after leaderTryMs that the leader is busy, and asks again).
    for (let at = 0; at < Math.min(shuffled.length, 2 * ACK_FANOUT); at += ACK_FANOUT) {
      const attempts = shuffled.slice(at, at + ACK_FANOUT).map((peer) =>
        this.pushPages(peer, records, { ack: true, timeoutMs: this.deps.config.requestTimeoutMs, dial: options.dial === true, fresh: true }).then(
          () => peer,
          (err: Error) => Promise.reject(new Error(`${peer.slice(-8)}: ${err.message}`)),
        ),
      );
      try {
        return await Promise.any(attempts);
      } catch (err) {
        reasons.push(...(err as AggregateError).errors.map((e: Error) => e.message));
      }
    }
    throw new WriteNotReplicatedError(`no other member confirmed the write (${reasons.join('; ')})`);
  }
}

/** The scope a peer asked to compare; a peer that names none compares everything. */
function parseScope(scope: unknown): SyncScope {
  if (scope === undefined || scope === 'all') return 'all';
  if (scope === 'shared') return 'shared';
  throw new Error(`malformed sync scope ${JSON.stringify(scope)} (expected "all" or "shared")`);
}

/** A sync-pull cursor, "BUCKET:KEY": the last record of the previous page. */
function parseCursor(after: string | null): { bucket: number; key: string } | null {
  if (after === null) return null;
  const colon = after.indexOf(':');
  const bucket = Number(after.slice(0, colon));
  if (colon < 1 || !Number.isInteger(bucket) || bucket < 0 || bucket >= SYNC_BUCKETS) throw new Error('malformed sync-pull cursor');
  return { bucket, key: after.slice(colon + 1) };
}

/** Runs `flush` once, `windowMs` after the first of any number of arm() calls (0: at the end of the turn). */
class Batcher {
  private timer: TimerHandle | null = null;
  private queued = false;

  constructor(
    private readonly clock: Clock,
    private readonly flush: () => void,
  ) {}

  arm(windowMs: number): void {
    if (this.timer !== null || this.queued) return;
    const run = () => {
      if (this.timer === null && !this.queued) return; // cancelled meanwhile
      this.timer = null;
      this.queued = false;
      this.flush();
    };
    if (windowMs > 0) this.timer = this.clock.setTimer(windowMs, run);
    else {
      this.queued = true;
      queueMicrotask(run);
    }
  }

  cancel(): void {
    this.timer?.cancel();
    this.timer = null;
    this.queued = false;
  }
}

/** Splits records into deltas of at most maxBytes of JSON (config.maxDeltaBytes, under the gossip limit); a bigger record goes alone. */
function batches(records: AnyRecord[], maxBytes: number): AnyRecord[][] {
  return chunksOf(records, (record) => JSON.stringify(record).length, maxBytes);
}

/** Consecutive chunks of `items` whose bytes (by `bytesOf`) add up to at most maxBytes; an item bigger than that goes alone. */
function chunksOf<T>(items: T[], bytesOf: (item: T) => number, maxBytes: number): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let size = 0;
  for (const item of items) {
    const bytes = bytesOf(item);
    if (current.length > 0 && size + bytes > maxBytes) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(item);
    size += bytes;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

export function encode(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

export function decode(data: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(data));
  } catch {
    return null;
  }
}
