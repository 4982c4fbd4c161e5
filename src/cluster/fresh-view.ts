// Acting on a stale view could repeat what another node already did. A node that just
// became leader, or that was stalled (a frozen process, a busy machine), holds a view its
// peers' news reached only in part (gossip to a frozen peer is lost), and so does a node
// about to start a --pre/--post step it created as leader before a restart. Both first run
// a round of anti-entropy with their connected peers: these are the gates that say when.
import type { Clock } from '../core/clock.js';
import type { ChorusConfig } from '../core/config.js';
import type { Transport } from '../core/transport.js';
import type { MemberInfo } from './view.js';

export interface FreshViewDeps {
  clock: Clock;
  config: Pick<ChorusConfig, 'probeTimeoutMs' | 'suspicionMult' | 'probeIntervalMs' | 'leaderIdleTickMs'>;
  transport: Pick<Transport, 'localId' | 'connectedPeers'>;
  /** One round of anti-entropy with a peer. */
  syncWith: (peer: string) => Promise<void>;
  /** Rounds of anti-entropy completed with at least one peer, ever (one that failed everywhere proves nothing). */
  syncsCompleted: () => number;
  members: () => MemberInfo[];
  /** The keepers: a new leader syncs with them too, connected or not (it needs every record). */
  keepers: () => readonly string[];
}

export class FreshView {
  private readonly leaderGate = { leading: false, ready: false, lastCheckMs: 0, round: 0 };
  /** When the last round asked for by a step's start began (it completed with at least one peer), and whether one is running. */
  private readonly stepSync = { freshFromMs: Number.NEGATIVE_INFINITY, inFlight: false };
  private startedAtMs = 0;

  constructor(private readonly deps: FreshViewDeps) {}

  started(nowMs: number): void {
    this.startedAtMs = nowMs;
  }

  /** This node stopped leading: the next time it leads, it syncs first. */
  notLeading(): void {
    this.leaderGate.leading = false;
  }

  /**
   * Whether the leader may act now: after a round of anti-entropy with every connected peer
   * that began when it became leader, or when it found it had been stalled.
   */
  leaderMayAct(): boolean {
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
      const selfId = this.deps.transport.localId;
      const peers = new Set([...this.deps.transport.connectedPeers(), ...this.deps.keepers().filter((id) => id !== selfId)]);
      void Promise.allSettled([...peers].map((peer) => this.deps.syncWith(peer))).then(() => {
        if (gate.round === round) gate.ready = true;
      });
    }
    return gate.ready;
  }

  /**
   * A --pre/--post step starts only on a fresh view of the cluster: a round of anti-entropy
   * with the connected peers that began less than a probe interval ago. A step this node
   * created as leader may have been created and run by another leader while this node was
   * down (a restart) or stalled (a frozen process): running it before hearing of that would
   * run it twice (the randomized sweep found both). Steps are few (two per instance at
   * most), so the round costs little. A node that finds itself alone (no other member alive,
   * once a failure could have been detected) runs its steps without waiting.
   */
  stepsMayStart(): boolean {
    const nowMs = this.deps.clock.now();
    const { probeTimeoutMs, suspicionMult, probeIntervalMs } = this.deps.config;
    if (nowMs - this.stepSync.freshFromMs < probeIntervalMs) return true;
    const settled = nowMs - this.startedAtMs > probeTimeoutMs + suspicionMult * probeIntervalMs;
    const selfId = this.deps.transport.localId;
    if (settled && this.deps.members().every((m) => m.nodeId === selfId || m.state !== 'alive')) return true;
    if (!this.stepSync.inFlight) {
      this.stepSync.inFlight = true;
      const before = this.deps.syncsCompleted();
      const peers = this.deps.transport.connectedPeers();
      void Promise.allSettled(peers.map((peer) => this.deps.syncWith(peer))).then(() => {
        this.stepSync.inFlight = false;
        if (this.deps.syncsCompleted() > before) this.stepSync.freshFromMs = nowMs;
      });
    }
    return false;
  }
}
