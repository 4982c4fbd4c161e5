// Stale-connection repair. A peer that restarted with the same id, or froze, can leave a
// connection that is dead but not closed; gossipsub keeps its stream on it and never
// sends our subscriptions on a new one, so that peer would never hear from us again.
// When a second connection to a peer opens, or one of several closes, the older ones are
// probed and, if any is dead, every connection is closed and the peer dialled afresh.
import type { Connection, PeerId, Stream } from '@libp2p/interface';
import type { ChorusConfig } from '../core/config.js';
import { readBytes } from './framing.js';
import { hasGossipStream } from './gossipsub-internals.js';
import type { ChorusLibp2p } from './libp2p-build.js';

const PING_PROTOCOL = '/ipfs/ping/1.0.0';
const PING_PAYLOAD_BYTES = 32;

export interface StaleRepairDeps {
  node: ChorusLibp2p;
  config: Pick<ChorusConfig, 'repairStaleConnections' | 'staleProbeTimeoutMs' | 'dialTimeoutMs' | 'gossipStreamSettleMs'>;
  isStarted: () => boolean;
  /** A repair began (counted in the transport's stats). */
  onRepair: () => void;
}

export class StaleConnectionRepair {
  private readonly repairing = new Set<string>();

  constructor(private readonly deps: StaleRepairDeps) {}

  /**
   * A second connection to a peer we are already connected to: either both sides dialled at
   * once (both connections are fine) or the peer restarted with the same id and the old
   * connection is dead but not yet closed. Probe the older connections and start clean if
   * any is dead.
   */
  connectionOpened(opened: Connection): void {
    if (this.repairing.has(opened.remotePeer.toString())) return;
    const older = this.deps.node.getConnections(opened.remotePeer).filter((c) => c.id !== opened.id && c.status === 'open');
    if (older.length === 0) return;
    void this.repairIfStale(opened.remotePeer, older);
  }

  /**
   * One of several connections to a peer closed (e.g. the connection monitor aborted a dead
   * one). If gossipsub's outbound stream lived on it, gossipsub will not open another while
   * the peer stays connected, so our messages would silently stop reaching that peer.
   */
  connectionClosed(peerId: PeerId): void {
    if (!this.deps.config.repairStaleConnections || this.repairing.has(peerId.toString())) return;
    // A connection that is still being identified gets its gossip stream soon; only a peer
    // that still has none after the settle delay is stuck.
    setTimeout(() => {
      if (!this.deps.isStarted() || this.repairing.has(peerId.toString())) return;
      const remaining = this.deps.node.getConnections(peerId).filter((c) => c.status === 'open');
      if (remaining.length === 0 || hasGossipStream(this.deps.node.services.pubsub, peerId.toString())) return;
      void this.repairPeer(peerId);
    }, this.deps.config.gossipStreamSettleMs).unref();
  }

  /** Probes the connections ("already connected" may mean one that died silently); repairs the peer if any is dead. */
  async repairIfStale(peerId: PeerId, connections: Connection[]): Promise<void> {
    if (!this.deps.config.repairStaleConnections) return;
    const alive = await Promise.all(connections.map((c) => this.probe(c)));
    if (alive.every(Boolean)) return;
    for (const [i, conn] of connections.entries()) {
      if (alive[i] === false) conn.abort(new Error('connection did not answer a ping; peer restarted or froze'));
    }
    await this.repairPeer(peerId);
  }

  /** True if the connection answers a ping within `staleProbeTimeoutMs`. */
  private async probe(connection: Connection): Promise<boolean> {
    const signal = AbortSignal.timeout(this.deps.config.staleProbeTimeoutMs);
    let stream: Stream | undefined;
    try {
      stream = await connection.newStream(PING_PROTOCOL, { signal, runOnLimitedConnection: true });
      const payload = crypto.getRandomValues(new Uint8Array(PING_PAYLOAD_BYTES));
      const echo = readBytes(stream, PING_PAYLOAD_BYTES, signal);
      // send() throws at once if the stream was already closed or reset (e.g. the duplicate
      // connection of a simultaneous dial was just closed); the catch below then aborts the
      // stream and `echo` rejects with nobody awaiting it. An unhandled rejection kills the
      // daemon, so mark it handled here; it is still awaited (and its error caught) below.
      echo.catch(() => undefined);
      stream.send(payload);
      await echo;
      await stream.close({ signal });
      return true;
    } catch {
      stream?.abort(new Error('stale connection probe failed'));
      // Any answer other than silence (e.g. "protocol not supported") proves the peer is there.
      return !signal.aborted && connection.status === 'open';
    }
  }

  /** Closes every connection to the peer and dials it again, so gossipsub starts from scratch. */
  private async repairPeer(peerId: PeerId): Promise<void> {
    const id = peerId.toString();
    if (this.repairing.has(id) || !this.deps.isStarted()) return;
    this.repairing.add(id);
    this.deps.onRepair();
    const { node, config } = this.deps;
    try {
      await node.hangUp(peerId, { signal: AbortSignal.timeout(config.dialTimeoutMs) });
      if (!this.deps.isStarted()) return;
      await node.dial(peerId, { signal: AbortSignal.timeout(config.dialTimeoutMs) });
    } catch {
      // The peer may simply be gone; membership notices through the disconnect event.
    } finally {
      this.repairing.delete(id);
    }
  }
}
