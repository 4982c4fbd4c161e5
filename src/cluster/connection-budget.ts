// The connection budget: how many members a node keeps a connection to. Below half of
// maxPeerConnections it dials known members it has no connection to (with a backoff per
// member); above the budget it closes random ones, telling each peer first so that the
// close is not taken for a failure. What the membership probes, it probes over these.
import type { Clock } from '../core/clock.js';
import type { ChorusConfig } from '../core/config.js';
import { shuffle } from '../core/shuffle.js';
import type { Transport } from '../core/transport.js';
import type { MemberRecord } from '../records/types.js';
import type { RecordStore } from '../store/record-store.js';
import type { Rpc } from './rpc.js';
import type { MemberState } from './view.js';

export const SWIM_TRIM = 'swim-trim';

export interface ConnectionBudgetDeps {
  transport: Transport;
  clock: Clock;
  config: Pick<ChorusConfig, 'maxPeerConnections' | 'trimBackoffMs' | 'probeIntervalMs' | 'probeTimeoutMs' | 'peerRedialBaseMs' | 'peerRedialMaxMs'>;
  store: RecordStore;
  rpc: Rpc;
  random: () => number;
  /** What the membership holds of a member now (undefined: not known). */
  stateOf: (nodeId: string) => MemberState | undefined;
  /** The membership learns of a member it is about to dial (known from its record). */
  known: (member: MemberRecord) => void;
  /** Kept whatever the budget: the leader's connection, one a probe is using. */
  keep: (peer: string) => boolean;
  /** This node is leaving: it neither dials nor closes. */
  leaving: () => boolean;
  /** Connections this node closed to stay within the budget are counted here. */
  onTrim: () => void;
}

export class ConnectionBudget {
  /** Members that closed our connection on purpose (their budget), and when: not a failure, not redialled for a while. */
  private readonly trimmedBy = new Map<string, number>();
  /** Connections this node is closing on purpose. */
  private readonly closing = new Set<string>();
  /** Connections opened for one ping (a check of a dead or unverified member, an indirect probe): the first to go when over budget. */
  private readonly transient = new Set<string>();
  /** When each current connection opened: a young one is not trimmed (it was opened for a reason, likely a request in flight). */
  private readonly connectedAtMs = new Map<string, number>();
  /** Members whose dials failed: not dialled again before `nextDialMs`, doubling up to peerRedialMaxMs. */
  private readonly redial = new Map<string, { nextDialMs: number; failures: number }>();

  constructor(private readonly deps: ConnectionBudgetDeps) {
    deps.rpc.handle(SWIM_TRIM, async (from) => {
      this.trimmedBy.set(from, this.deps.clock.now());
      return { ok: true };
    });
  }

  /** Below this many connections a node dials more: half its budget, so that dials and trims do not chase each other. */
  lowWater(): number {
    return Math.max(1, Math.ceil(this.deps.config.maxPeerConnections / 2));
  }

  connected(peer: string): void {
    this.connectedAtMs.set(peer, this.deps.clock.now());
    this.trim();
  }

  /** A connection closed; true when it was closed on purpose (by us or by the peer's budget), not news of a failure. */
  disconnected(peer: string): boolean {
    this.transient.delete(peer);
    this.connectedAtMs.delete(peer);
    return this.closing.delete(peer) || this.trimmedRecently(peer);
  }

  /** A connection opened for one ping: the first to close when over budget. */
  openedForOnePing(peer: string): void {
    this.transient.add(peer);
  }

  /** The member spoke to us: its dials are not held back any more. */
  heardFrom(nodeId: string): void {
    const backoff = this.redial.get(nodeId);
    if (backoff) backoff.failures = 0;
  }

  /** Closes a connection on purpose (to a member held dead): its close is not news of a failure. */
  hangUp(peer: string): void {
    this.closing.add(peer);
    this.deps.transport.hangUp(peer).catch(() => this.closing.delete(peer));
  }

  /** Forgets a member altogether (reaped). */
  forget(nodeId: string): void {
    this.trimmedBy.delete(nodeId);
    this.redial.delete(nodeId);
  }

  /** Connects to known members we have no connection to, up to the low water mark, with backoff for those that fail. */
  dialMore(): void {
    if (this.deps.leaving()) return;
    const nowMs = this.deps.clock.now();
    const connected = new Set(this.deps.transport.connectedPeers());
    const wanted = this.lowWater() - connected.size;
    if (wanted <= 0) return;
    const candidates = this.deps.store.members().filter((m) => {
      if (m.nodeId === this.deps.transport.localId || m.left || m.addrs.length === 0 || connected.has(m.nodeId) || this.trimmedRecently(m.nodeId)) return false;
      return this.deps.stateOf(m.nodeId) !== 'dead' && nowMs >= (this.redial.get(m.nodeId)?.nextDialMs ?? 0);
    });
    for (const member of shuffle(candidates, this.deps.random).slice(0, wanted)) this.dial(member, nowMs);
  }

  /** A member record arrived: dialled when this node has fewer connections than it wants. */
  offered(member: MemberRecord): void {
    if (this.deps.transport.connectedPeers().length < this.lowWater()) this.dial(member, this.deps.clock.now());
  }

  /** Above the budget: closes random connections (not kept ones, not young ones), telling each peer first. */
  trim(): void {
    const peers = this.deps.transport.connectedPeers().filter((p) => !this.closing.has(p));
    const excess = peers.length - this.deps.config.maxPeerConnections;
    if (excess <= 0 || this.deps.leaving()) return;
    const nowMs = this.deps.clock.now();
    // A connection whose opening this node has not been told of yet is the youngest of all.
    const young = (p: string) => nowMs - (this.connectedAtMs.get(p) ?? nowMs) < this.deps.config.probeIntervalMs;
    const spare = shuffle(
      peers.filter((p) => !this.deps.keep(p) && !young(p)),
      this.deps.random,
    );
    spare.sort((a, b) => Number(this.transient.has(b)) - Number(this.transient.has(a)));
    for (const peer of spare.slice(0, excess)) {
      this.closing.add(peer);
      this.deps.onTrim();
      this.deps.rpc
        .call(peer, SWIM_TRIM, {}, this.deps.config.probeTimeoutMs)
        .catch(() => undefined)
        .then(() => this.deps.transport.hangUp(peer))
        .catch(() => this.closing.delete(peer));
    }
  }

  private trimmedRecently(peer: string): boolean {
    const atMs = this.trimmedBy.get(peer);
    if (atMs === undefined) return false;
    if (this.deps.clock.now() - atMs < this.deps.config.trimBackoffMs) return true;
    this.trimmedBy.delete(peer);
    return false;
  }

  /** Dials one known member we are not connected to, unless its backoff says not yet. */
  private dial(member: MemberRecord, nowMs: number): void {
    if (member.nodeId === this.deps.transport.localId || member.left || member.addrs.length === 0 || this.deps.leaving()) return;
    this.deps.known(member);
    const backoff = this.redial.get(member.nodeId) ?? { nextDialMs: 0, failures: 0 };
    if (nowMs < backoff.nextDialMs || this.deps.transport.connectedPeers().includes(member.nodeId)) return;
    backoff.nextDialMs = nowMs + Math.min(this.deps.config.peerRedialBaseMs * 2 ** backoff.failures, this.deps.config.peerRedialMaxMs);
    this.redial.set(member.nodeId, backoff);
    this.deps.transport.dial(member.nodeId, member.addrs).then(
      () => undefined,
      () => {
        backoff.failures += 1;
      },
    );
  }
}
