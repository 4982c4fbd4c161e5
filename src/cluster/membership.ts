// Membership and failure detection: SWIM with Lifeguard, after hashicorp/memberlist, over
// the RPC streams (no gossip topic of its own). Its cost per node does not grow with the
// cluster: each node probes one member per probe interval; a member that does not answer
// is probed indirectly through `indirectChecks` others, then suspected; a suspect that
// does not refute within a timeout that scales with log10(N) (and shrinks as others
// confirm) is declared dead. Changes ride on probes and acks and on a small periodic
// gossip to `gossipFanout` peers, each sent a bounded number of times.
//
// Dead and left members are reaped after reapAfterMs (memberlist's GossipToTheDeadTime,
// serf's reconnect and tombstone timeouts): forgotten here, left out of push/pulls, their
// member records removed from the store, which keeps a tombstone (nodeId, incarnation) so
// that news or records of the old incarnation from peers that have not reaped it yet are
// refused, while a newer incarnation (the host restarted, or a process cut off that long
// refutes its death) is a member again.
//
// Three chorus additions:
// - a closed connection whose redial fails (a killed process) is a dead verdict at once,
//   the fast path that libp2p's connection events give;
// - every ping and ack carries the sender's own incarnation and its view of the receiver,
//   so a member wrongly suspected or declared dead refutes at the first contact;
// - if this node's own timers ran late (a busy machine, a paused process), its probes and
//   suspicion clocks from before the stall are not held against anyone (Lifeguard's
//   "local health" as well: failed probes make this node slower to judge, not faster).
//
// Who leads is chosen from this view in leadership.ts; whom this node keeps a connection
// to, in connection-budget.ts.
import type { NodeObserver } from '../records/observer.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { membershipTickMs, type ChorusConfig } from '../core/config.js';
import { LogRepeats, type Logger } from '../core/log.js';
import type { Transport } from '../core/transport.js';
import type { MemberRecord } from '../records/types.js';
import type { RecordStore } from '../store/record-store.js';
import type { Rpc } from './rpc.js';
import {
  compareIncarnations,
  DisseminationQueue,
  parseEnvelope,
  parseStateMessage,
  parseProbeAnswer,
  MAX_STATE_ENTRIES,
  retransmitLimit,
  suspicionTimeoutMs,
  type Incarnation,
  type SwimEnvelope,
  type SwimStateMessage,
  type SwimUpdate,
} from './swim.js';
import { shuffle } from '../core/shuffle.js';
import { invariant } from '../core/assert.js';
import { ConnectionBudget } from './connection-budget.js';
import { Leadership } from './leadership.js';
import { isGone, type MemberInfo, type MembershipView, type MemberState, type MemberSuspicion } from './view.js';

/** Members known only from records that a node pings per probe round to learn whether they are up. */
/**
 * Members known only from records that a node pings per second to learn whether they are
 * up (paced per second, not per probe round: a fleet that joins at once must be verified
 * at the same pace whatever the probe interval).
 */
const VERIFICATIONS_PER_SECOND = 8;

/** About how many members probe a suspect themselves on hearing of the suspicion (see apply). */
const CONFIRMING_PROBERS = 3;

export const SWIM_PING = 'swim-ping';
export const SWIM_PROBE = 'swim-probe';
export const SWIM_GOSSIP = 'swim-gossip';
export const SWIM_STATE = 'swim-state';
export { SWIM_TRIM } from './connection-budget.js';

interface Suspicion {
  sinceMs: number;
  /** Members that suspect it too (this node included when it found it silent itself). */
  confirmations: Set<string>;
  /** Known only from records and never heard since this start: not announced to others. */
  unverified: boolean;
  /** A last direct ping before the verdict was sent (to a member we hold no connection to). */
  lastChance: boolean;
}

interface Liveness {
  state: MemberState;
  inc: Incarnation;
  lastHeardMs: number | null;
  /** Since when the member is continuously alive (leader choice wants a stable member). */
  aliveSinceMs: number | null;
  suspicion: Suspicion | null;
  /** A probe of it is in flight. */
  probing: boolean;
  /** Since when it is dead or left here (reaped reapAfterMs later); null while it is alive or suspect. */
  goneSinceMs: number | null;
}

export interface MembershipDeps {
  transport: Transport;
  clock: Clock;
  config: ChorusConfig;
  store: RecordStore;
  rpc: Rpc;
  /** The node's own member record (kept current by the daemon). */
  self: () => MemberRecord;
  random: () => number;
  log: Logger;
  onChange: () => void;
  /** The keepers changed. */
  onKeepersChange?: () => void;
  /** This node's fingerprint of its records, sent with every probe and ack. */
  stateRoot: () => string;
  /** A peer's fingerprint arrived with a probe or an ack (anti-entropy decides whether to sync). */
  onPeerRoot: (peer: string, root: string) => void;
  observer?: NodeObserver;
}

export interface MembershipCounters {
  probesSent: number;
  indirectProbes: number;
  pingsReceived: number;
  gossipSent: number;
  updatesReceived: number;
  malformedMessages: number;
  suspicions: number;
  refutations: number;
  stallsDetected: number;
  /** SWIM verdicts this node reached and announced. */
  deadVerdicts: number;
  /** Members known only from records that did not answer this node (held dead here, not announced). */
  unreachableUnverified: number;
  pushPulls: number;
  /** Connections this node closed to stay within maxPeerConnections. */
  trims: number;
  /** Lifeguard's local health score now: 0 is healthy; each step lengthens probe timeouts. */
  awareness: number;
  /** Members dead or left for reapAfterMs that this node forgot (and whose records it removed). */
  reaped: number;
}

export class Membership implements MembershipView {
  private readonly liveness = new Map<string, Liveness>();
  /** Members now dead or left, in the order they went (so the first ones are the first to reap). */
  private readonly gone = new Set<string>();
  /** Members now suspect (the only ones with a suspicion clock running). */
  private readonly suspects = new Set<string>();
  /** Members alive or suspect, this node excluded. */
  private active = 0;
  private readonly queue = new DisseminationQueue();
  /** The next tick: fast (membershipTickMs) while something is timed (a suspicion, a leader choice, a stall's grace), at the probe interval otherwise. */
  private tickTimer: TimerHandle | null = null;
  /** When the next tick was armed and with which delay: a tick that comes much later than that means this node was stalled. */
  private armedAtMs: number;
  private armedDelayMs = 0;
  /** Pending changes are gossiped every gossipIntervalMs; with none, no timer runs. */
  private gossipTimer: TimerHandle | null = null;
  private lastProbeMs = 0;
  private lastDeadProbeMs = 0;
  /** Until then, silence of peers is not held against them: we were stalled ourselves. */
  private graceUntilMs = 0;
  private probeOrder: string[] = [];
  /** Connected members that said, in their last probe or ack, that they have a connection to the leader. */
  private readonly leaderLinked = new Set<string>();
  /** Connected members that said they are keepers or have a connection to one. */
  private readonly keeperLinked = new Set<string>();
  private startedAtMs = 0;
  private selfInc: Incarnation = [0, 0];
  /** Whether this node restarted into a cluster it already knew (its view starts stale). */
  private knewOthersAtStart = false;
  private leaving = false;
  private running = false;
  private pushPulledOnJoin = false;
  private lastPushPullMs = 0;
  readonly counters: MembershipCounters = {
    probesSent: 0,
    indirectProbes: 0,
    pingsReceived: 0,
    gossipSent: 0,
    updatesReceived: 0,
    malformedMessages: 0,
    suspicions: 0,
    refutations: 0,
    stallsDetected: 0,
    deadVerdicts: 0,
    unreachableUnverified: 0,
    pushPulls: 0,
    trims: 0,
    awareness: 0,
    reaped: 0,
  };

  /** The stall warning, once a minute: a busy host stalls all the time (1,472 lines in a minute at 50 daemons on 2 slow cores). */
  private readonly repeats: LogRepeats;
  private readonly leadership: Leadership;
  private readonly budget: ConnectionBudget;

  constructor(private readonly deps: MembershipDeps) {
    this.repeats = new LogRepeats(deps.clock);
    this.armedAtMs = deps.clock.now();
    deps.rpc.handle(SWIM_PING, async (from, body) => this.onPing(from, body));
    deps.rpc.handle(SWIM_PROBE, (from, body) => this.onProbeRequest(from, body));
    deps.rpc.handle(SWIM_GOSSIP, async (from, body) => this.onGossip(from, body));
    deps.rpc.handle(SWIM_STATE, async (from, body) => this.onState(from, body));
    this.leadership = new Leadership({
      clock: deps.clock,
      config: deps.config,
      selfId: deps.transport.localId,
      candidates: () => this.liveness.entries(),
      hasRecord: (nodeId) => deps.store.member(nodeId) !== undefined,
      selfEligibleFromMs: () => (this.leaving ? null : this.knewOthersAtStart ? this.startedAtMs + deps.config.selfSettleMs : this.startedAtMs),
      hurry: () => this.hurry(),
      onChange: () => deps.onChange(),
      onKeepersChange: () => deps.onKeepersChange?.(),
      log: deps.log,
      ...(deps.observer ? { observer: deps.observer } : {}),
    });
    this.budget = new ConnectionBudget({
      transport: deps.transport,
      clock: deps.clock,
      config: deps.config,
      store: deps.store,
      rpc: deps.rpc,
      random: deps.random,
      stateOf: (nodeId) => this.liveness.get(nodeId)?.state,
      known: (member) => void this.entry(member.nodeId, [member.incarnation, 0]),
      // A keeper keeps its links to the other keepers: every result passes between them.
      keep: (peer) => peer === this.leadership.leaderId() || (this.leadership.isKeeper(this.selfId) && this.leadership.isKeeper(peer)) || this.liveness.get(peer)?.probing === true,
      leaving: () => this.leaving,
      onTrim: () => (this.counters.trims += 1),
    });
    deps.store.onChange((changes) => {
      for (const change of changes) if (change.kind === 'member' && this.running) this.onMemberRecord(change.record as MemberRecord);
    });
  }

  get selfId(): string {
    return this.deps.transport.localId;
  }

  start(): void {
    const nowMs = this.deps.clock.now();
    this.startedAtMs = nowMs;
    this.lastProbeMs = nowMs;
    this.lastDeadProbeMs = nowMs;
    this.lastPushPullMs = nowMs;
    this.selfInc = [this.deps.self().incarnation, 0];
    this.running = true;
    this.knewOthersAtStart = this.deps.store.members().some((m) => m.nodeId !== this.selfId && !m.left);
    // Members known from records are unverified, not dead: judged like any silent member.
    for (const member of this.deps.store.members()) if (member.nodeId !== this.selfId) this.onMemberRecord(member);
    // Others learn of this start (a new incarnation) from this, as from the member record.
    this.disseminate({ node: this.selfId, state: 'alive', inc: this.selfInc });
    this.armTick(membershipTickMs(this.deps.config));
    this.budget.dialMore();
    this.leadership.choose();
  }

  stop(): void {
    this.running = false;
    this.tickTimer?.cancel();
    this.tickTimer = null;
    this.gossipTimer?.cancel();
    this.gossipTimer = null;
  }

  /** Leaving on purpose: the member record (`left`) says so, and this node stops judging others. */
  leave(): void {
    this.leaving = true;
    this.leadership.choose();
  }

  // ---- inputs ----------------------------------------------------------------------

  /** A message from a peer through another protocol (records, sync): a silent or suspect peer is probed at once. */
  heardFrom(nodeId: string): void {
    if (nodeId !== this.selfId && this.running) this.contact(nodeId);
  }

  /** Traffic from a member: an alive one was heard; any other (not left) is probed to learn its state. */
  private contact(nodeId: string): void {
    const entry = this.liveness.get(nodeId);
    if (entry?.state === 'alive') entry.lastHeardMs = this.deps.clock.now();
    else if (entry?.state !== 'left') this.probeSoon(nodeId);
  }

  onPeerConnected(peer: string): void {
    if (!this.running) return;
    this.armGossip();
    this.contact(peer);
    // Joining: the first member reached tells us how it sees everyone (memberlist's push/pull on join).
    if (!this.pushPulledOnJoin) {
      this.pushPulledOnJoin = true;
      void this.pushPull(peer);
    }
    this.budget.connected(peer);
  }

  /** A closed connection is the fastest sign of a killed process: confirmed by a failed redial. */
  onPeerDisconnected(peer: string): void {
    this.leaderLinked.delete(peer);
    this.keeperLinked.delete(peer);
    if (this.budget.disconnected(peer)) return; // closed on purpose, by us or by it
    const entry = this.liveness.get(peer);
    if (!this.running || !entry || entry.state === 'dead' || entry.state === 'left' || this.leaving) return;
    const addrs = this.deps.store.member(peer)?.addrs ?? [];
    this.deps.transport.dial(peer, addrs).then(
      () => this.heardFrom(peer),
      () => {
        const current = this.liveness.get(peer);
        if (current && (current.state === 'alive' || current.state === 'suspect') && !this.deps.transport.connectedPeers().includes(peer)) {
          this.declareDead(peer, current, 'connection closed and redial failed');
        }
      },
    );
  }

  // ---- messages ----------------------------------------------------------------------

  private envelopeFor(peer: string): SwimEnvelope {
    const leader = this.leadership.leaderId();
    const connected = this.deps.transport.connectedPeers();
    const leaderLink = leader !== null && (leader === this.selfId || connected.includes(leader));
    const keepers = this.keepers();
    const keeperLink = keepers.includes(this.selfId) || keepers.some((k) => connected.includes(k));
    return { self: this.selfInc, you: this.viewOf(peer), updates: this.queue.take(this.deps.config.maxPiggyback, this.retransmits()), root: this.deps.stateRoot(), leaderLink, keeperLink };
  }

  /** How this node sees `peer`, when that is news it must answer (a suspicion or a dead verdict). */
  private viewOf(peer: string): SwimEnvelope['you'] {
    const entry = this.liveness.get(peer);
    if (!entry) {
      // Reaped here, and speaking at the incarnation it was reaped at: it must refute to come back.
      const tomb = this.tombstoneOf(peer);
      return tomb === null ? null : { state: 'dead', inc: tomb };
    }
    if (entry.state === 'dead') return { state: 'dead', inc: entry.inc };
    if (entry.state === 'suspect' && entry.suspicion && !entry.suspicion.unverified) return { state: 'suspect', inc: entry.inc };
    return null;
  }

  /** Takes in what a peer said about itself, about us and about others. False if the message is malformed. */
  private receive(from: string, body: unknown): boolean {
    const envelope = parseEnvelope(body);
    if (!envelope) {
      this.counters.malformedMessages += 1;
      this.deps.log.debug({ from }, 'malformed membership message dropped');
      return false;
    }
    if (envelope.you && envelope.you.state !== 'alive') this.refute(envelope.you.inc);
    for (const update of envelope.updates) this.apply(update);
    this.heardDirectly(from, envelope.self);
    if (envelope.leaderLink === true) this.leaderLinked.add(from);
    else this.leaderLinked.delete(from);
    if (envelope.keeperLink === true) this.keeperLinked.add(from);
    else this.keeperLinked.delete(from);
    if (envelope.root !== undefined) this.deps.onPeerRoot(from, envelope.root);
    return true;
  }

  private onPing(from: string, body: unknown): SwimEnvelope {
    this.counters.pingsReceived += 1;
    if (!this.receive(from, body)) throw new Error('malformed ping');
    return this.envelopeFor(from);
  }

  private onGossip(from: string, body: unknown): { ok: true } {
    if (!this.receive(from, body)) throw new Error('malformed gossip');
    return { ok: true };
  }

  private stateMessage(): SwimStateMessage {
    const states: SwimUpdate[] = [];
    for (const [node, entry] of this.liveness) {
      // What we only know from records (never heard since our start) is no news to anyone.
      if (entry.state === 'left' || (entry.state === 'suspect' && entry.suspicion?.unverified !== false)) continue;
      // A receiver refuses a longer view whole; reaping keeps the table far below this.
      if (states.length === MAX_STATE_ENTRIES) break;
      states.push({ node, state: entry.state, inc: entry.inc });
    }
    return { self: this.selfInc, states };
  }

  /**
   * Takes in a peer's whole view: its states are news like any update, not re-announced (they
   * are not new). Returns what the peer is behind on: members it holds alive or suspect (itself
   * included) that this node reaped at that incarnation, as dead: a node that missed a death
   * learns it even once every other node has forgotten the member.
   */
  private takeStates(from: string, message: SwimStateMessage): SwimUpdate[] {
    const behind: SwimUpdate[] = [];
    const reapedHere = (node: string, inc: Incarnation) => {
      const tomb = node === this.selfId ? null : this.tombstoneOf(node);
      if (tomb !== null && compareIncarnations(inc, tomb) <= 0) behind.push({ node, state: 'dead', inc: tomb });
    };
    for (const update of message.states) {
      if (update.state !== 'dead') reapedHere(update.node, update.inc);
      if (update.state === 'suspect') update.by = from;
      // A member alive that we did not know (or knew at an older incarnation) is news to pass
      // on; apply relays only what changes here, so a settled cluster's push/pulls relay nothing.
      this.apply(update, update.state === 'alive');
    }
    reapedHere(from, message.self);
    this.heardDirectly(from, message.self);
    return behind;
  }

  private onState(from: string, body: unknown): SwimStateMessage {
    const message = parseStateMessage(body);
    if (!message) {
      this.counters.malformedMessages += 1;
      throw new Error('malformed membership state');
    }
    const behind = this.takeStates(from, message);
    const reply = this.stateMessage();
    reply.states.push(...behind.slice(0, MAX_STATE_ENTRIES - reply.states.length));
    return reply;
  }

  /** A full exchange of views with one member: repairs what dissemination missed. */
  private async pushPull(peer: string): Promise<void> {
    this.counters.pushPulls += 1;
    try {
      const reply = parseStateMessage(await this.deps.rpc.call(peer, SWIM_STATE, this.stateMessage(), this.deps.config.requestTimeoutMs));
      if (reply) this.takeStates(peer, reply);
      else this.counters.malformedMessages += 1;
    } catch (err) {
      this.deps.log.debug({ peer, err: (err as Error).message }, 'membership push/pull failed');
    }
  }

  /**
   * Pings `target` for a member that could not reach it: answers whether it acked (a nack tells
   * the asker that we at least are reachable), and, when it did not and we hold it dead, that
   * verdict: the asker may be the one member the news of the death has not reached (its
   * dissemination is random and bounded), and need not sit out a suspicion of its own.
   */
  private async onProbeRequest(from: string, body: unknown): Promise<{ ack: boolean; verdict?: SwimUpdate }> {
    const target = (body as { target?: unknown } | null)?.target;
    if (typeof target !== 'string' || target === this.selfId || !this.receive(from, (body as { envelope?: unknown }).envelope)) {
      if (typeof target !== 'string' || target === this.selfId) this.counters.malformedMessages += 1;
      throw new Error('malformed probe request');
    }
    const ack = await this.ping(target, this.deps.config.probeTimeoutMs, true);
    const entry = this.liveness.get(target);
    const deadAt = entry?.state === 'dead' ? entry.inc : entry === undefined ? this.tombstoneOf(target) : null;
    if (ack || deadAt === null) return { ack };
    return { ack, verdict: { node: target, state: 'dead', inc: deadAt } };
  }

  /** Direct evidence: the member itself spoke, with its incarnation. */
  private heardDirectly(nodeId: string, inc: Incarnation): void {
    // A member reaped here speaking at its old incarnation is told it is dead (viewOf) and refutes.
    if (nodeId === this.selfId || this.isStale(nodeId, inc)) return;
    const entry = this.entry(nodeId, inc);
    entry.lastHeardMs = this.deps.clock.now();
    this.budget.heardFrom(nodeId);
    const order = compareIncarnations(inc, entry.inc);
    // A member suspected or declared dead at this incarnation must refute with a newer one;
    // what it says at the same incarnation does not clear the verdict (memberlist's rule).
    // News (a member first heard of, or back with a newer incarnation) is passed on, as
    // memberlist does: the member a joiner pushes its state to was the only one to know of it,
    // and without this the others learned of it from its record or the next push/pull (up to
    // 30 s: 24 daemons joining at once took 29 s to agree).
    const news = order > 0 || entry.state !== 'alive';
    if (order > 0 || (order === 0 && (entry.state === 'alive' || entry.suspicion?.unverified === true))) this.markAlive(nodeId, entry, inc, news);
  }

  /** One membership change from the network. */
  private apply(update: SwimUpdate, relay = true): void {
    this.counters.updatesReceived += 1;
    if (update.node === this.selfId) {
      if (update.state !== 'alive') this.refute(update.inc);
      return;
    }
    if (this.isStale(update.node, update.inc)) return;
    const entry = this.entry(update.node, update.inc);
    const order = compareIncarnations(update.inc, entry.inc);
    if (entry.state === 'left') {
      // Only a new process start brings back a member that left.
      if (update.state === 'alive' && update.inc[0] > entry.inc[0]) this.markAlive(update.node, entry, update.inc, relay);
      return;
    }
    switch (update.state) {
      case 'alive':
        if (order > 0 || (order === 0 && entry.suspicion?.unverified === true)) this.markAlive(update.node, entry, update.inc, relay);
        return;
      case 'suspect':
        if (order < 0 || entry.state === 'dead') return;
        if (order === 0 && entry.state === 'suspect' && entry.suspicion && !entry.suspicion.unverified) {
          if (update.by !== undefined && !entry.suspicion.confirmations.has(update.by)) {
            entry.suspicion.confirmations.add(update.by);
            if (relay) this.disseminate(update);
          }
          return;
        }
        entry.inc = update.inc;
        this.suspect(update.node, entry, update.by ?? null, true);
        // A few of those who hear of a new suspicion probe the suspect themselves: each
        // failed probe is a confirmation, and confirmations shorten the suspicion towards its
        // minimum (Lifeguard), so a frozen member is dead in about 3 s, not 5. Not everyone:
        // on a loaded host that turned one slow member into a storm of probes, timeouts and
        // more suspicions; about CONFIRMING_PROBERS members of any cluster size do it.
        if (this.deps.random() < CONFIRMING_PROBERS / Math.max(1, this.activeCount() - 2)) this.probeSoon(update.node);
        return;
      case 'dead':
        if (order < 0 || (entry.state === 'dead' && order === 0)) return;
        entry.inc = update.inc;
        if (relay) this.disseminate(update);
        this.setState(update.node, entry, 'dead');
        return;
    }
  }

  /** Someone thinks we are suspect or dead: announce a newer incarnation of ourselves. */
  private refute(inc: Incarnation): void {
    if (this.leaving || compareIncarnations(inc, this.selfInc) < 0) return;
    this.selfInc = [this.selfInc[0], Math.max(this.selfInc[1], inc[1]) + 1];
    this.counters.refutations += 1;
    this.adjustAwareness(1);
    this.disseminate({ node: this.selfId, state: 'alive', inc: this.selfInc });
    this.deps.log.info({ incarnation: this.selfInc }, 'refuting a suspicion about this node');
  }

  /** A member record arrived or changed: a new start is a new incarnation, `left` is final for it. */
  private onMemberRecord(record: MemberRecord): void {
    if (record.nodeId === this.selfId) return;
    const entry = this.entry(record.nodeId, [record.incarnation, 0]);
    this.budget.offered(record);
    this.leadership.memberChanged(record.nodeId); // a member without a record cannot lead: now it may
    if (record.left && record.incarnation >= entry.inc[0]) {
      entry.inc = [record.incarnation, entry.inc[1]];
      this.setState(record.nodeId, entry, 'left');
    } else if (!record.left && record.incarnation > entry.inc[0]) {
      // Written by the new process itself: it started, as its own alive message will say.
      this.markAlive(record.nodeId, entry, [record.incarnation, 0], false);
    }
  }

  // ---- probing ---------------------------------------------------------------------

  private timeoutScale(): number {
    return this.counters.awareness + 1;
  }

  private adjustAwareness(delta: number): void {
    this.counters.awareness = Math.min(this.deps.config.awarenessMax, Math.max(0, this.counters.awareness + delta));
  }

  /** Pings a member directly; true when it acked in time. `dial`: connect first if need be (a one-off connection). */
  private async ping(target: string, timeoutMs: number, dial = false): Promise<boolean> {
    try {
      if (dial && !(await this.connectForOnePing(target))) return false;
      this.counters.probesSent += 1;
      const reply = await this.deps.rpc.call(target, SWIM_PING, this.envelopeFor(target), timeoutMs);
      return this.receive(target, reply);
    } catch {
      return false;
    }
  }

  /** Connects to a member for one ping (a one-off connection, the first to close when over budget); false when the dial fails. */
  private async connectForOnePing(target: string): Promise<boolean> {
    if (this.deps.transport.connectedPeers().includes(target)) return true;
    this.budget.openedForOnePing(target);
    try {
      await this.deps.transport.dial(target, this.deps.store.member(target)?.addrs ?? []);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * SWIM's probe: direct, then indirect through others, then suspicion. `dial`: of a member
   * this node has no connection to, dialled first; a failed dial is a failed direct ping, and
   * the dial's own time (up to dialTimeoutMs) is not taken for a stall of this node.
   */
  private async probe(target: string, dial = false): Promise<void> {
    const entry = this.liveness.get(target);
    if (!entry || entry.probing) return;
    entry.probing = true;
    const probedInc = entry.inc;
    try {
      const reachable = !dial || (await this.connectForOnePing(target));
      const startMs = this.deps.clock.now();
      const directMs = this.deps.config.probeTimeoutMs * this.timeoutScale();
      if (reachable && (await this.ping(target, directMs))) {
        this.adjustAwareness(-1);
        return;
      }
      if (this.stalledSince(startMs, directMs)) return;
      const helpers = this.pickConnected(this.deps.config.indirectChecks, (id, e) => id !== target && e.state === 'alive');
      this.counters.indirectProbes += helpers.length;
      // The indirect probes get the rest of the probe interval (memberlist's choice), at least a probe timeout.
      const { probeIntervalMs, probeTimeoutMs } = this.deps.config;
      const indirectMs = Math.max(probeTimeoutMs, probeIntervalMs - probeTimeoutMs) * this.timeoutScale();
      const replies = await Promise.allSettled(
        helpers.map((helper) => this.deps.rpc.call(helper, SWIM_PROBE, { target, envelope: this.envelopeFor(helper) }, indirectMs) as Promise<{ ack?: unknown }>),
      );
      const answers = replies.map((r) => (r.status === 'fulfilled' ? parseProbeAnswer(r.value) : null));
      if (answers.some((a) => a?.ack === true)) return;
      // Lifeguard: helpers that did not even nack point at this node's own trouble.
      const nacks = answers.filter((a) => a !== null).length;
      if (helpers.length > 0) this.adjustAwareness(helpers.length - nacks);
      if (this.stalledSince(startMs, directMs + indirectMs)) return;
      // It may have refuted (a newer incarnation) while we waited: this probe was about the old one.
      if ((entry.state === 'alive' || entry.state === 'suspect') && compareIncarnations(entry.inc, probedInc) === 0) {
        // A helper that holds it dead (at this incarnation or a newer one) says so: taken as
        // the news it is, as from gossip, rather than suspected all over again.
        const verdict = answers.find((a) => a?.verdict && compareIncarnations(a.verdict.inc, probedInc) >= 0)?.verdict;
        if (verdict) this.apply(verdict, false);
        else this.suspect(target, entry, this.selfId, false);
      }
    } finally {
      entry.probing = false;
    }
  }

  /**
   * Whether this node found itself stalled within the last probe interval (its timers came
   * late), or is stalled right now: its tick is overdue. A thawed process may read its
   * sockets before its overdue timers run (both are ready when it wakes).
   */
  stalledRecently(): boolean {
    const nowMs = this.deps.clock.now();
    return nowMs < this.graceUntilMs || (this.running && nowMs - this.armedAtMs - this.armedDelayMs > this.deps.config.stallThresholdMs);
  }

  /** Whether this node's own clock jumped during a wait that started at `startMs` (it was stalled): its outcome proves nothing. */
  private stalledSince(startMs: number, waitedMs: number): boolean {
    const nowMs = this.deps.clock.now();
    return nowMs - startMs > waitedMs + this.deps.config.stallThresholdMs || nowMs < this.graceUntilMs;
  }

  /** Probes a connected member now rather than at its turn (members this node has no connection to are its neighbours' to probe). */
  private probeSoon(nodeId: string): void {
    if (!this.deps.transport.connectedPeers().includes(nodeId)) return;
    // Reaped here: not a member again until it speaks at a newer incarnation (its own probes bring our answer that it is dead).
    if (!this.liveness.has(nodeId) && this.tombstoneOf(nodeId) !== null) return;
    const entry = this.entry(nodeId, [this.deps.store.member(nodeId)?.incarnation ?? 0, 0]);
    if (!entry.probing && !this.leaving) void this.probe(nodeId);
  }

  /**
   * The next connected member in a shuffled round robin over the alive and suspect ones (each
   * is probed within a round). With the connection budget a node probes its neighbours; every
   * member is someone's neighbour, and what they find is spread to all.
   */
  private nextProbeTarget(): string | null {
    const connected = new Set(this.deps.transport.connectedPeers());
    const probeable = (id: string) => {
      const entry = this.liveness.get(id);
      return entry !== undefined && (entry.state === 'alive' || entry.state === 'suspect') && !entry.probing && connected.has(id);
    };
    for (let tries = 0; tries < 2; tries++) {
      while (this.probeOrder.length > 0) {
        const id = this.probeOrder.pop() as string;
        if (probeable(id)) return id;
      }
      this.probeOrder = this.shuffled([...connected].filter(probeable));
    }
    return null;
  }

  private suspect(nodeId: string, entry: Liveness, by: string | null, announced: boolean): void {
    const nowMs = this.deps.clock.now();
    const confirmations = new Set<string>(by === null ? [] : [by]);
    if (entry.state === 'suspect' && entry.suspicion && !entry.suspicion.unverified) {
      if (by !== null) entry.suspicion.confirmations.add(by);
    } else {
      entry.suspicion = { sinceMs: nowMs, confirmations, unverified: false, lastChance: false };
      this.counters.suspicions += 1;
    }
    this.disseminate({ node: nodeId, state: 'suspect', inc: entry.inc, by: by ?? this.selfId });
    if (!announced) this.deps.log.info({ peer: nodeId }, 'member suspected: no direct or indirect ack');
    this.setState(nodeId, entry, 'suspect');
  }

  private markAlive(nodeId: string, entry: Liveness, inc: Incarnation, relay: boolean): void {
    entry.inc = inc;
    entry.suspicion = null;
    if (relay) this.disseminate({ node: nodeId, state: 'alive', inc });
    this.setState(nodeId, entry, 'alive');
  }

  // ---- periodic work ---------------------------------------------------------------

  /**
   * Arms the next tick. An idle node (nobody suspect, no leader choice pending) ticks once
   * per probe interval; one with something timed ticks every membershipTickMs, so that a
   * suspicion expires on time and a stall is noticed within a tick of its end.
   */
  private armTick(delayMs: number): void {
    this.tickTimer?.cancel();
    this.armedAtMs = this.deps.clock.now();
    this.armedDelayMs = delayMs;
    this.tickTimer = this.deps.clock.setTimer(delayMs, () => {
      this.tickTimer = null;
      try {
        this.tick();
      } finally {
        if (this.running) this.armTick(this.needsFastTicks() ? membershipTickMs(this.deps.config) : this.deps.config.probeIntervalMs);
      }
    });
  }

  private needsFastTicks(): boolean {
    return this.suspects.size > 0 || this.leadership.timed || this.deps.clock.now() < this.graceUntilMs;
  }

  /** Something timed began (a suspicion, a leader choice to make later): tick at the fast rate from now on. */
  private hurry(): void {
    if (!this.running || this.tickTimer === null) return;
    const fastMs = membershipTickMs(this.deps.config);
    const dueMs = this.armedAtMs + this.armedDelayMs;
    if (dueMs - this.deps.clock.now() <= fastMs) return;
    this.armTick(fastMs);
  }

  /** Queues a membership change for dissemination (piggybacked on pings and acks, and gossiped while any is pending). */
  private disseminate(update: SwimUpdate): void {
    this.queue.push(update);
    this.armGossip();
  }

  /** Gossip rounds run while changes are pending and someone is connected to take them; a lone node keeps them for its first peer. */
  private armGossip(): void {
    if (this.gossipTimer !== null || !this.running || this.queue.size === 0 || this.deps.transport.connectedPeers().length === 0) return;
    this.gossipTimer = this.deps.clock.setTimer(this.deps.config.gossipIntervalMs, () => {
      this.gossipTimer = null;
      this.gossip();
      this.armGossip();
    });
  }

  private tick(): void {
    const nowMs = this.deps.clock.now();
    const lagMs = nowMs - this.armedAtMs - this.armedDelayMs;
    if (lagMs > this.deps.config.stallThresholdMs) {
      // Our own timers were late: what we did not hear meanwhile is our own doing.
      this.counters.stallsDetected += 1;
      this.graceUntilMs = nowMs + this.deps.config.probeIntervalMs;
      for (const entry of this.liveness.values()) if (entry.suspicion) entry.suspicion.sinceMs = nowMs;
      this.adjustAwareness(1);
      this.repeats.log(this.deps.log, 'warn', 'stalled', { lagMs }, 'this node was stalled; not judging peers for a while');
    }
    if (this.leaving) return;
    if (nowMs >= this.graceUntilMs) this.expireSuspicions(nowMs);
    if (nowMs - this.lastProbeMs >= this.deps.config.probeIntervalMs) {
      this.lastProbeMs = nowMs;
      const target = this.nextProbeTarget();
      if (target !== null) void this.probe(target);
      this.verifySome(nowMs);
    }
    if (nowMs - this.lastDeadProbeMs >= this.deps.config.deadProbeIntervalMs) {
      // A member declared dead may be back (a thawed process, a healed partition): it refutes when reached.
      this.lastDeadProbeMs = nowMs;
      this.reapGone(nowMs);
      const [dead] = this.pick(1, (_, e) => e.state === 'dead' && !e.probing);
      if (dead !== undefined) void this.ping(dead, this.deps.config.probeTimeoutMs * this.timeoutScale(), true);
      this.budget.dialMore();
      this.budget.trim();
    }
    if (nowMs - this.lastPushPullMs >= this.pushPullIntervalMs()) {
      this.lastPushPullMs = nowMs;
      const [peer] = this.pickConnected(1, (_, e) => e.state === 'alive');
      if (peer !== undefined) void this.pushPull(peer);
      this.probeUnconnected();
    }
    this.leadership.tick(nowMs);
  }

  /**
   * Probes one member held alive that this node has no connection to, dialling it. Members are
   * probed by their neighbours; one whose neighbours all went with it (a batch of hosts
   * replaced at once) would otherwise stay alive in every view forever: never reaped, and a
   * target of every broadcast, which would never end. Once per push/pull period, so that every
   * member is looked at by someone about that often, for one dial per node per period.
   */
  private probeUnconnected(): void {
    const connected = new Set(this.deps.transport.connectedPeers());
    const [target] = this.pick(1, (id, e) => e.state === 'alive' && !e.probing && !connected.has(id));
    if (target !== undefined) void this.probe(target, true);
  }

  /**
   * A member known only from its record, and that nobody told us about since (the news of its
   * start missed us, and it is not among our connections): ask it directly, a few per round.
   */
  private verifySome(nowMs: number): void {
    let budget = Math.max(1, Math.round((VERIFICATIONS_PER_SECOND * this.deps.config.probeIntervalMs) / 1000));
    for (const nodeId of this.suspects) {
      if (budget === 0) return;
      const entry = this.liveness.get(nodeId) as Liveness;
      if (!entry.suspicion?.unverified || entry.probing || nowMs - entry.suspicion.sinceMs < this.deps.config.probeIntervalMs) continue;
      if (!this.deps.store.member(nodeId)?.addrs.length) continue;
      entry.probing = true;
      void this.ping(nodeId, this.deps.config.probeTimeoutMs * this.timeoutScale(), true).then((acked) => {
        entry.probing = false;
        // Still nobody vouches for it and it does not answer: down, as far as we know (not
        // announced: we never knew it up; the dead-member check asks it again later).
        if (!acked && entry.suspicion?.unverified === true && !this.stalledSince(nowMs, 2 * this.deps.config.probeTimeoutMs * this.timeoutScale())) {
          this.declareDead(nodeId, entry, 'known from records only, and does not answer', false);
        }
      });
      budget -= 1;
    }
  }

  /** Confirmations that bring a suspicion's timeout to its least: the indirect probers (none for an unverified member). */
  private expectedConfirmations(suspicion: Suspicion, members: number): number {
    return suspicion.unverified ? 0 : Math.min(this.deps.config.indirectChecks, Math.max(0, members - 2));
  }

  /** How long a suspicion lasts before the verdict, with the confirmations it has now (Lifeguard). */
  private suspicionWaitMs(suspicion: Suspicion, members: number): number {
    const timeoutMs = suspicionTimeoutMs({
      suspicionMult: this.deps.config.suspicionMult,
      maxMult: this.deps.config.suspicionMaxMult,
      members,
      probeIntervalMs: this.deps.config.probeIntervalMs,
      confirmations: Math.max(0, suspicion.confirmations.size - 1),
      expected: this.expectedConfirmations(suspicion, members),
    });
    // Known from records only: the longest wait, since nobody else vouches either way.
    return suspicion.unverified ? timeoutMs * this.deps.config.suspicionMaxMult : timeoutMs;
  }

  private expireSuspicions(nowMs: number): void {
    const members = this.activeCount();
    for (const nodeId of [...this.suspects]) {
      const entry = this.liveness.get(nodeId) as Liveness;
      const suspicion = entry.suspicion;
      if (entry.state !== 'suspect' || !suspicion) continue;
      if (nowMs - suspicion.sinceMs < this.suspicionWaitMs(suspicion, members)) continue;
      if (suspicion.unverified && entry.probing) continue; // its verification ping decides
      if (suspicion.unverified) {
        // One that has addresses is asked (verifySome), and only that answer decides: a
        // fleet joining at once has more to verify than the timer allows.
        if (this.deps.store.member(nodeId)?.addrs.length) continue;
        this.declareDead(nodeId, entry, `known from records only and not heard from in ${nowMs - suspicion.sinceMs} ms`, false);
      } else if (!suspicion.lastChance && !this.deps.transport.connectedPeers().includes(nodeId)) {
        // Its refutation may have missed us (we are not its neighbour): ask it once ourselves.
        suspicion.lastChance = true;
        entry.probing = true;
        void this.ping(nodeId, this.deps.config.probeTimeoutMs * this.timeoutScale(), true).then((acked) => {
          entry.probing = false;
          const current = this.liveness.get(nodeId);
          if (!acked && current?.state === 'suspect' && current.suspicion === suspicion) this.declareDead(nodeId, current, `suspected for ${this.deps.clock.now() - suspicion.sinceMs} ms without refuting`);
        });
      } else {
        this.declareDead(nodeId, entry, `suspected for ${nowMs - suspicion.sinceMs} ms without refuting`);
      }
    }
  }

  /** Sends pending changes to a few random connected members (memberlist's gossip). */
  private gossip(): void {
    if (this.queue.size === 0 || this.leaving) return;
    for (const peer of this.pickConnected(this.deps.config.gossipFanout, (_, e) => e.state === 'alive' || e.state === 'suspect')) {
      const envelope = this.envelopeFor(peer);
      if (envelope.updates.length === 0) break;
      this.counters.gossipSent += 1;
      // A member that does not take our gossip may be down: probe it now rather than at its turn.
      this.deps.rpc.call(peer, SWIM_GOSSIP, envelope, this.deps.config.probeTimeoutMs * this.timeoutScale()).catch(() => this.probeSoon(peer));
    }
  }

  /** memberlist's push/pull scale: the base interval up to 32 members, then one more step per doubling. */
  private pushPullIntervalMs(): number {
    const n = this.activeCount();
    const factor = n <= 32 ? 1 : Math.ceil(Math.log2(n) - Math.log2(32)) + 1;
    return this.deps.config.pushPullIntervalMs * factor;
  }

  // ---- state -----------------------------------------------------------------------

  /** Members not known to be gone, this node included: the N of the timeouts. */
  private activeCount(): number {
    return this.active + 1;
  }

  private retransmits(): number {
    return retransmitLimit(this.deps.config.retransmitMult, this.activeCount());
  }

  /** Up to `count` random members that satisfy `accept`. */
  private pick(count: number, accept: (id: string, entry: Liveness) => boolean): string[] {
    const pool = [...this.liveness.entries()].filter(([id, e]) => accept(id, e)).map(([id]) => id);
    return this.shuffled(pool).slice(0, count);
  }

  /** Up to `count` random connected members that satisfy `accept` (O(connections), not O(members)). */
  private pickConnected(count: number, accept: (id: string, entry: Liveness) => boolean): string[] {
    const pool = this.deps.transport.connectedPeers().filter((id) => {
      const entry = this.liveness.get(id);
      return entry !== undefined && accept(id, entry);
    });
    return this.shuffled(pool).slice(0, count);
  }

  private shuffled<T>(ids: T[]): T[] {
    return shuffle(ids, this.deps.random);
  }

  /** The entry of a member; a new one is unverified (suspect, never heard since this start). */
  private entry(nodeId: string, inc: Incarnation): Liveness {
    let entry = this.liveness.get(nodeId);
    if (!entry) {
      entry = {
        state: 'suspect',
        inc,
        lastHeardMs: null,
        aliveSinceMs: null,
        suspicion: { sinceMs: this.deps.clock.now(), confirmations: new Set(), unverified: true, lastChance: false },
        probing: false,
        goneSinceMs: null,
      };
      this.liveness.set(nodeId, entry);
      this.suspects.add(nodeId);
      this.hurry();
      this.active += 1;
      this.deps.onChange();
    }
    return entry;
  }

  private declareDead(nodeId: string, entry: Liveness, why: string, announce = true): void {
    if (announce) this.counters.deadVerdicts += 1;
    else this.counters.unreachableUnverified += 1;
    this.deps.log.warn({ peer: nodeId, why }, 'member declared dead');
    this.deps.observer?.memberDead?.({ nodeId, silentForMs: entry.lastHeardMs === null ? null : this.deps.clock.now() - entry.lastHeardMs });
    if (announce) this.disseminate({ node: nodeId, state: 'dead', inc: entry.inc });
    this.setState(nodeId, entry, 'dead');
    // A connection to a member held dead is a frozen or vanished host's, half-open at best:
    // it would keep its place in the connection budget. The member is dialled again if it
    // comes back (it refutes when the dead-member check reaches it).
    if (this.deps.transport.connectedPeers().includes(nodeId)) this.budget.hangUp(nodeId);
  }

  private setState(nodeId: string, entry: Liveness, state: MemberState): void {
    if (state !== 'suspect') entry.suspicion = null;
    if (entry.state === state) return;
    const before = entry.state;
    const isActive = (s: MemberState) => s === 'alive' || s === 'suspect';
    this.active += (isActive(state) ? 1 : 0) - (isActive(entry.state) ? 1 : 0);
    if (state === 'suspect') {
      this.suspects.add(nodeId);
      this.hurry();
    } else this.suspects.delete(nodeId);
    entry.state = state;
    // Dead then left is one departure: its clock runs from the first.
    if (isGone(state) && !isGone(before)) {
      entry.goneSinceMs = this.deps.clock.now();
      this.gone.add(nodeId);
    } else if (!isGone(state)) {
      entry.goneSinceMs = null;
      this.gone.delete(nodeId);
    }
    if (state === 'alive' && entry.aliveSinceMs === null) entry.aliveSinceMs = this.deps.clock.now();
    if (state === 'dead' || state === 'left') entry.aliveSinceMs = null;
    // Suspicions come and go by the hundred on a busy fleet (every member logs every one it hears of): debug; joins, deaths and leaves stay in the log.
    this.deps.log[isActive(state) && isActive(before) ? 'debug' : 'info']({ peer: nodeId, state }, 'member state');
    this.leadership.memberChanged(nodeId);
    this.deps.onChange();
  }

  // ---- reaping ----------------------------------------------------------------------

  /**
   * Reaps the members dead or left for reapAfterMs, oldest first (the gone set is in the order
   * they went, so this looks at those due and one more). One whose work the leader has yet to
   * give a verdict on waits: the leader finds lost work through the members it holds gone.
   */
  private reapGone(nowMs: number): void {
    const due = new Set<string>();
    for (const nodeId of this.gone) {
      const goneSinceMs = (this.liveness.get(nodeId) as Liveness).goneSinceMs as number;
      if (nowMs - goneSinceMs < this.deps.config.reapAfterMs) break;
      due.add(nodeId);
    }
    if (due.size === 0) return;
    // Only a node that holds every record knows whose work is open (a keeper: the leader is
    // one). Another holds no other member's work: it reaps at reapAfterMs, and the keepers
    // keep the member until the leader settled its work.
    const holdsAll = this.leadership.keepers().length === 0 || this.leadership.isKeeper(this.selfId);
    const busy = holdsAll ? this.deps.store.nodesWithOpenWork(due) : new Set<string>();
    for (const nodeId of due) if (!busy.has(nodeId)) this.reap(nodeId, nowMs);
  }

  /** Forgets a member gone for reapAfterMs: its liveness, its pending news, its dial backoff and its record (with a tombstone). */
  private reap(nodeId: string, nowMs: number): void {
    const entry = this.liveness.get(nodeId) as Liveness;
    invariant(isGone(entry.state) && entry.goneSinceMs !== null, null, `member ${nodeId} reaped while ${entry.state}`);
    this.liveness.delete(nodeId);
    this.gone.delete(nodeId);
    this.leaderLinked.delete(nodeId);
    this.keeperLinked.delete(nodeId);
    this.queue.forget(nodeId);
    this.budget.forget(nodeId);
    this.deps.store.removeMember(nodeId, { incarnation: entry.inc[0], refutes: entry.inc[1] });
    this.counters.reaped += 1;
    this.deps.log.info({ peer: nodeId, state: entry.state, goneForMs: nowMs - entry.goneSinceMs }, 'member reaped');
    this.deps.onChange();
  }

  /** The incarnation a member was reaped at here, while it is remembered and the member has not been heard of since. */
  private tombstoneOf(nodeId: string): Incarnation | null {
    if (this.liveness.has(nodeId)) return null;
    const tomb = this.deps.store.reapedAt(nodeId);
    return tomb === undefined ? null : [tomb.incarnation, tomb.refutes];
  }

  /**
   * Whether news of a member at `inc` is about one reaped here, at that incarnation or an older
   * one: stale (a peer that has not reaped it yet), ignored. A newer incarnation brings it back:
   * a new start with its new record; a refutation in the same start (a process frozen or cut
   * off longer than reapAfterMs) needs its old record taken again, so the tombstone goes.
   */
  private isStale(nodeId: string, inc: Incarnation): boolean {
    const tomb = this.tombstoneOf(nodeId);
    if (tomb === null) return false;
    if (compareIncarnations(inc, tomb) <= 0) return true;
    if (inc[0] === tomb[0]) this.deps.store.unreap(nodeId);
    return false;
  }

  // ---- MembershipView ----------------------------------------------------------------

  stateOf(nodeId: string): MemberState | undefined {
    if (nodeId === this.selfId) return this.leaving ? 'left' : 'alive';
    // Reaped: gone, for whatever still names it (a step, a webhook delivery it ran).
    return this.liveness.get(nodeId)?.state ?? (this.deps.store.reapedAt(nodeId) === undefined ? undefined : 'dead');
  }

  leaderId(): string | null {
    return this.leadership.leaderId();
  }

  keepers(): readonly string[] {
    return this.leadership.keepers();
  }

  isKeeper(nodeId: string = this.selfId): boolean {
    return this.leadership.isKeeper(nodeId);
  }

  goneMembers(): ReadonlySet<string> {
    return this.gone;
  }

  /** Connected members that have a connection to the leader, as they last said: where a member without one hands its records. */
  neighboursLinkedToLeader(): string[] {
    const connected = new Set(this.deps.transport.connectedPeers());
    return [...this.leaderLinked].filter((peer) => connected.has(peer));
  }

  /** Connected members that are keepers or have a connection to one, as they last said. */
  neighboursLinkedToKeeper(): string[] {
    const connected = new Set(this.deps.transport.connectedPeers());
    return [...this.keeperLinked].filter((peer) => connected.has(peer));
  }

  /** Members this node's failure detector holds, in any state, itself excluded: what its push/pulls carry at most (reaping bounds it). */
  heldMembers(): number {
    return this.liveness.size;
  }

  /** Membership changes waiting to be disseminated (the queue keeps at most MAX_QUEUED_UPDATES). */
  pendingUpdates(): number {
    return this.queue.size;
  }

  members(): MemberInfo[] {
    const nowMs = this.deps.clock.now();
    const active = this.activeCount();
    const suspicionOf = (entry: Liveness | undefined): MemberSuspicion | null => {
      const s = entry?.state === 'suspect' ? entry.suspicion : null;
      if (!s) return null;
      return { sinceMs: s.sinceMs, confirmations: Math.max(0, s.confirmations.size - 1), expectedConfirmations: this.expectedConfirmations(s, active), deadAtMs: s.sinceMs + this.suspicionWaitMs(s, active), verified: !s.unverified };
    };
    const out: MemberInfo[] = [];
    for (const record of this.deps.store.members()) {
      const self = record.nodeId === this.selfId;
      const entry = this.liveness.get(record.nodeId);
      const state: MemberState = self ? (this.leaving ? 'left' : 'alive') : (entry?.state ?? (record.left ? 'left' : 'dead'));
      out.push({
        nodeId: record.nodeId,
        name: record.name,
        tags: record.tags,
        addrs: record.addrs,
        incarnation: record.incarnation,
        state,
        leader: record.nodeId === this.leadership.leaderId(),
        keeper: this.leadership.isKeeper(record.nodeId),
        draining: record.draining === true,
        lastSeenMs: self ? nowMs : (entry?.lastHeardMs ?? null),
        suspicion: self ? null : suspicionOf(entry),
      });
    }
    return out;
  }
}

