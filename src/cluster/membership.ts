// Membership and failure detection. Combines three signals, because libp2p has none
// of its own: connection events (a killed process closes its TCP connections at once),
// heartbeats carrying an incarnation number (a restarted node is a new incarnation),
// and direct pings with a short timeout (a frozen host keeps its sockets open).
// A member is suspected first, then declared dead. If this node's own timers ran
// late (a busy machine, a paused process), silence is blamed on us, not on peers.
import type { Clock, TimerHandle } from '../core/clock.js';
import { every } from '../core/clock.js';
import { membershipTickMs, type ChorusConfig } from '../core/config.js';
import type { Logger } from '../core/log.js';
import type { Transport } from '../core/transport.js';
import type { MemberRecord } from '../records/types.js';
import { memberRecordSchema } from '../records/validate.js';
import type { RecordStore } from '../store/record-store.js';
import type { MemberInfo, MembershipView, MemberState } from './view.js';

export const HEARTBEAT_TOPIC = 'chorus/heartbeat/1';

interface Liveness {
  state: MemberState;
  incarnation: number;
  lastHeardMs: number | null;
  /** When we started watching it: silence of a member never heard from counts from here. */
  watchedSinceMs: number;
  /** Since when the member is continuously alive (leader choice wants a stable member). */
  aliveSinceMs: number | null;
  /** Earliest time we may try to dial it again. */
  nextDialMs: number;
  dialFailures: number;
}

interface Heartbeat {
  member: MemberRecord;
  leaving: boolean;
}

export interface MembershipDeps {
  transport: Transport;
  clock: Clock;
  config: ChorusConfig;
  store: RecordStore;
  /** The node's own member record (kept current by the daemon). */
  self: () => MemberRecord;
  log: Logger;
  onChange: () => void;
}

export interface MembershipCounters {
  heartbeatsSent: number;
  heartbeatsReceived: number;
  malformedHeartbeats: number;
  stallsDetected: number;
  deadVerdicts: number;
}

export class Membership implements MembershipView {
  private readonly liveness = new Map<string, Liveness>();
  private timer: TimerHandle | null = null;
  private lastTickMs: number;
  private lastHeartbeatMs = 0;
  /** Until then, silence of peers is not held against them: we were stalled ourselves. */
  private graceUntilMs = 0;
  private currentLeader: string | null = null;
  private startedAtMs = 0;
  /** Whether this node restarted into a cluster it already knew (its view starts stale). */
  private knewOthersAtStart = false;
  private leaving = false;
  readonly counters: MembershipCounters = { heartbeatsSent: 0, heartbeatsReceived: 0, malformedHeartbeats: 0, stallsDetected: 0, deadVerdicts: 0 };

  constructor(private readonly deps: MembershipDeps) {
    this.lastTickMs = deps.clock.now();
  }

  get selfId(): string {
    return this.deps.transport.localId;
  }

  start(): void {
    const nowMs = this.deps.clock.now();
    this.lastTickMs = nowMs;
    this.startedAtMs = nowMs;
    this.knewOthersAtStart = this.deps.store.members().some((m) => m.nodeId !== this.selfId && !m.left);
    // Members known from records are unverified, not dead: judged like any silent peer.
    for (const member of this.deps.store.members()) {
      if (member.nodeId !== this.selfId) this.entry(member.nodeId, member.left ? 'left' : 'suspect', member.incarnation);
    }
    this.timer = every(this.deps.clock, this.tickMs(), () => this.tick());
    this.sendHeartbeat(false);
    this.dialUnconnected();
    this.recompute();
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
  }

  /** Tells the others we are leaving on purpose: they mark us `left`, not dead. */
  leave(): void {
    this.leaving = true;
    this.sendHeartbeat(true);
  }

  private tickMs(): number {
    return membershipTickMs(this.deps.config);
  }

  // ---- inputs ----------------------------------------------------------------------

  onHeartbeat(from: string, data: Uint8Array): void {
    const heartbeat = decodeHeartbeat(data);
    if (!heartbeat || heartbeat.member.nodeId !== from) {
      this.counters.malformedHeartbeats += 1;
      return;
    }
    this.counters.heartbeatsReceived += 1;
    this.deps.store.apply([{ kind: 'member', record: heartbeat.member }]);
    this.heardFrom(from, heartbeat.member.incarnation, heartbeat.leaving);
  }

  /** Any message or request from a peer proves it is alive. */
  heardFrom(nodeId: string, incarnation: number | null = null, leaving = false): void {
    if (nodeId === this.selfId) return;
    const nowMs = this.deps.clock.now();
    const entry = this.entry(nodeId, 'alive', incarnation ?? 0);
    const newer = incarnation !== null && incarnation > entry.incarnation;
    if (incarnation !== null && newer) entry.incarnation = incarnation;
    entry.lastHeardMs = nowMs;
    entry.dialFailures = 0;
    if (leaving) return this.setState(nodeId, entry, 'left');
    // A node that left comes back only as a new incarnation (a restart); a stray late
    // heartbeat of the old process must not resurrect it.
    if (entry.state === 'left' && !newer) return;
    if (entry.state !== 'alive') this.setState(nodeId, entry, 'alive');
  }

  onPeerConnected(peer: string): void {
    this.heardFrom(peer);
  }

  /** A closed connection is the fastest sign of a killed process: confirm by redialling at once. */
  onPeerDisconnected(peer: string): void {
    const entry = this.liveness.get(peer);
    if (!entry || entry.state === 'dead' || entry.state === 'left' || this.leaving) return;
    this.setState(peer, entry, 'suspect');
    const addrs = this.deps.store.member(peer)?.addrs ?? [];
    this.deps.transport.dial(peer, addrs).then(
      () => this.heardFrom(peer),
      () => {
        const current = this.liveness.get(peer);
        if (current && current.state === 'suspect' && !this.deps.transport.connectedPeers().includes(peer)) {
          this.declareDead(peer, current, 'connection closed and redial failed');
        }
      },
    );
  }

  // ---- periodic work ---------------------------------------------------------------

  private tick(): void {
    const nowMs = this.deps.clock.now();
    const lagMs = nowMs - this.lastTickMs - this.tickMs();
    this.lastTickMs = nowMs;
    if (lagMs > this.deps.config.stallThresholdMs) {
      // Our own timers were late: the silence we would judge is our own doing.
      this.counters.stallsDetected += 1;
      this.graceUntilMs = nowMs + this.deps.config.deadAfterMs;
      this.deps.log.warn({ lagMs }, 'this node was stalled; not judging peers for a while');
    }
    if (nowMs - this.lastHeartbeatMs >= this.deps.config.heartbeatIntervalMs) this.sendHeartbeat(this.leaving);
    this.noticeLeft();
    if (nowMs >= this.graceUntilMs) this.judge(nowMs);
    this.dialUnconnected();
    this.recompute();
  }

  private judge(nowMs: number): void {
    const { suspectAfterMs, deadAfterMs } = this.deps.config;
    for (const [nodeId, entry] of this.liveness) {
      if (entry.state !== 'alive' && entry.state !== 'suspect') continue;
      const lastMs = Math.max(entry.lastHeardMs ?? entry.watchedSinceMs, this.graceUntilMs - deadAfterMs);
      const silentMs = nowMs - lastMs;
      if (silentMs >= deadAfterMs) {
        this.declareDead(nodeId, entry, `silent for ${silentMs} ms`);
      } else if (silentMs >= suspectAfterMs) {
        if (entry.state === 'alive') this.setState(nodeId, entry, 'suspect');
        this.probe(nodeId);
      }
    }
  }

  /**
   * A member's own record saying it left is authoritative: its leaving heartbeat is
   * best effort and may be lost, or overtaken by the connection closing at its exit.
   */
  private noticeLeft(): void {
    for (const [nodeId, entry] of this.liveness) {
      if (entry.state === 'left') continue;
      const record = this.deps.store.member(nodeId);
      if (record?.left && record.incarnation >= entry.incarnation) this.setState(nodeId, entry, 'left');
    }
  }

  private probe(nodeId: string): void {
    this.deps.transport.ping(nodeId, this.deps.config.pingTimeoutMs).then(
      () => this.heardFrom(nodeId),
      () => undefined,
    );
  }

  private sendHeartbeat(leaving: boolean): void {
    this.lastHeartbeatMs = this.deps.clock.now();
    const heartbeat: Heartbeat = { member: this.deps.self(), leaving };
    try {
      this.deps.transport.publish(HEARTBEAT_TOPIC, new TextEncoder().encode(JSON.stringify(heartbeat)));
      this.counters.heartbeatsSent += 1;
    } catch (err) {
      this.deps.log.debug({ err }, 'heartbeat not sent');
    }
  }

  /** Connects to known members we have no connection to, with backoff for those that fail. */
  private dialUnconnected(): void {
    if (this.leaving) return;
    const nowMs = this.deps.clock.now();
    const connected = new Set(this.deps.transport.connectedPeers());
    for (const member of this.deps.store.members()) {
      if (member.nodeId === this.selfId || connected.has(member.nodeId) || member.addrs.length === 0) continue;
      const entry = this.entry(member.nodeId, member.left ? 'left' : 'suspect', member.incarnation);
      if (nowMs < entry.nextDialMs) continue;
      entry.nextDialMs = nowMs + Math.min(this.deps.config.peerRedialBaseMs * 2 ** entry.dialFailures, this.deps.config.peerRedialMaxMs);
      this.deps.transport.dial(member.nodeId, member.addrs).then(
        () => this.heardFrom(member.nodeId),
        () => {
          entry.dialFailures += 1;
        },
      );
    }
  }

  private entry(nodeId: string, initial: MemberState, incarnation: number): Liveness {
    let entry = this.liveness.get(nodeId);
    if (!entry) {
      const nowMs = this.deps.clock.now();
      entry = { state: initial, incarnation, lastHeardMs: null, watchedSinceMs: nowMs, aliveSinceMs: null, nextDialMs: 0, dialFailures: 0 };
      if (initial === 'alive') entry.aliveSinceMs = nowMs;
      this.liveness.set(nodeId, entry);
      this.deps.onChange();
    }
    return entry;
  }

  private declareDead(nodeId: string, entry: Liveness, why: string): void {
    this.counters.deadVerdicts += 1;
    this.deps.log.warn({ peer: nodeId, why }, 'member declared dead');
    this.setState(nodeId, entry, 'dead');
  }

  private setState(nodeId: string, entry: Liveness, state: MemberState): void {
    if (entry.state === state) return;
    entry.state = state;
    // A suspect that was never alive (known only from records) becomes stable from now.
    if (state === 'alive' && entry.aliveSinceMs === null) entry.aliveSinceMs = this.deps.clock.now();
    if (state === 'dead' || state === 'left') entry.aliveSinceMs = null;
    this.deps.log.info({ peer: nodeId, state }, 'member state');
    this.recompute();
    this.deps.onChange();
  }

  /**
   * The leader is the alive member with the smallest node id among those alive for at
   * least leaderStableMs (all confirmed-alive ones if none is stable yet). Every member computes
   * the same from the same view; a brief disagreement is harmless (guarantee 7).
   */
  private recompute(): void {
    const nowMs = this.deps.clock.now();
    const alive = this.members().filter((m) => m.state === 'alive' || m.state === 'suspect');
    const stable = alive.filter((m) => {
      if (m.nodeId === this.selfId) return this.selfSettled(nowMs);
      const since = this.liveness.get(m.nodeId)?.aliveSinceMs;
      return since != null && nowMs - since >= this.deps.config.leaderStableMs;
    });
    // Only members heard from since we started can lead: one known only from records (the
    // whole cluster stopped and this node came back first) may well be down.
    const candidates = alive.filter((m) =>
      m.nodeId === this.selfId ? this.selfSettled(nowMs) : this.liveness.get(m.nodeId)?.aliveSinceMs != null,
    );
    const pool = (stable.length > 0 ? stable : candidates).map((m) => m.nodeId).sort();
    const leader = this.leaving ? null : (pool[0] ?? null);
    if (leader !== this.currentLeader) {
      this.deps.log.info({ leader }, 'leader changed');
      this.currentLeader = leader;
      this.deps.onChange();
    }
  }

  /**
   * A restarted node first sees only itself alive; leading on that view would broadcast to
   * itself alone. So a node that knows other members leads only after a settling period,
   * in which heartbeats and the first anti-entropy bring its view up to date.
   */
  private selfSettled(nowMs: number): boolean {
    return !this.knewOthersAtStart || nowMs - this.startedAtMs >= this.deps.config.selfSettleMs;
  }


  // ---- MembershipView ----------------------------------------------------------------

  stateOf(nodeId: string): MemberState | undefined {
    if (nodeId === this.selfId) return this.leaving ? 'left' : 'alive';
    return this.liveness.get(nodeId)?.state;
  }

  leaderId(): string | null {
    return this.currentLeader;
  }

  members(): MemberInfo[] {
    const nowMs = this.deps.clock.now();
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
        leader: record.nodeId === this.currentLeader,
        lastSeenMs: self ? nowMs : (entry?.lastHeardMs ?? null),
      });
    }
    return out;
  }
}

function decodeHeartbeat(data: Uint8Array): Heartbeat | null {
  try {
    const value = JSON.parse(new TextDecoder().decode(data)) as { member?: unknown; leaving?: unknown };
    const member = memberRecordSchema.safeParse(value.member);
    if (!member.success || typeof value.leaving !== 'boolean') return null;
    return { member: member.data, leaving: value.leaving };
  } catch {
    return null;
  }
}
