// The production Transport over libp2p: gossipsub for best-effort broadcast, and request
// and reply for reliable point-to-point calls. Its parts, one job each: libp2p-build.ts
// builds the node, request-reply.ts carries requests (framing.ts: their frames),
// stale-repair.ts repairs connections a restarted or frozen peer left behind, and
// gossipsub-internals.ts holds what chorus reads of gossipsub's private state.
import type { Connection, PeerId, PrivateKey } from '@libp2p/interface';
import type { GossipsubMessage } from '@libp2p/gossipsub';
import { multiaddr } from '@multiformats/multiaddr';
import type { RequestOptions, Transport, TransportEvents } from '../core/transport.js';
import { defaultConfig, type ChorusConfig } from '../core/config.js';
import type { Logger } from '../core/log.js';
import { droppedFrames } from './muxer.js';
import { buildLibp2p, type ChorusLibp2p } from './libp2p-build.js';
import { peerIdOf, RequestReply } from './request-reply.js';
import { StaleConnectionRepair } from './stale-repair.js';
import { RemoteHandlerError } from './wire-channel.js';

export { RPC_PROTOCOL, WIRE_PROTOCOL } from './request-reply.js';

const TRANSPORT_KNOBS = [
  'maxMessageBytes',
  'maxPublishBytes',
  'dialTimeoutMs',
  'inboundReadTimeoutMs',
  'staleProbeTimeoutMs',
  'repairStaleConnections',
  'gossipStreamSettleMs',
  'swarmHandshakeTimeoutMs',
  'maxConnections',
  'maxConnectionsPerHostPerSecond',
  'maxPendingInboundConnections',
  'maxRpcStreamsPerConnection',
  'connectionPingIntervalMs',
] as const;

/**
 * The transport's own knobs, a part of ChorusConfig (core/config.ts says what each trades), so
 * a transport can be made without a whole config (tests).
 */
export type Libp2pTransportConfig = Pick<ChorusConfig, (typeof TRANSPORT_KNOBS)[number]>;

/** The transport's knobs out of a whole (validated) config. */
export function transportConfigOf(config: ChorusConfig): Libp2pTransportConfig {
  return Object.fromEntries(TRANSPORT_KNOBS.map((key) => [key, config[key]])) as unknown as Libp2pTransportConfig;
}

/** Every default is chosen for a small cluster on a LAN or one host. */
export const DEFAULT_TRANSPORT_CONFIG: Libp2pTransportConfig = transportConfigOf(defaultConfig);

export interface Libp2pTransportOptions {
  privateKey: PrivateKey;
  /** Multiaddrs to listen on; default `/ip4/127.0.0.1/tcp/0`. */
  listen?: string[];
  /** Find peers on the LAN by multicast DNS and dial them. */
  mdns?: boolean;
  /** Contents of the swarm key file: only nodes with the same key can connect. Required: a cluster is always closed. */
  swarmKey: Uint8Array;
  /** Told of every connection refused for want of the swarm key, with the peer's address. */
  onConnectionRefused?: (remoteAddr: string, why: string) => void;
  /** Gossip topics this node subscribes to at start. */
  topics: string[];
  config?: Partial<Libp2pTransportConfig>;
  /** Where a handler that throws is reported (see core/transport.ts). Default: nowhere, counted only. */
  log?: Logger;
}

/** Counters a daemon can expose; publish is best effort, so losses show up here rather than as errors. */
export interface TransportStats {
  publishedToNobody: number;
  publishFailures: number;
  droppedBeforeHandlers: number;
  staleConnectionRepairs: number;
  /** Connections refused because the other side did not prove the swarm key. */
  refusedConnections: number;
  /** Connections this node dialled (not counting ones that already existed), and request channels and streams it opened. */
  dials: number;
  channelsOpened: number;
  requestStreamsOpened: number;
  /** Connections opened, either way. */
  connectionsOpened: number;
  /** Muxer frames dropped because their connection had just closed (muxer.ts). */
  droppedFramesOnClosedConnections: number;
  /** Request channels open now (wire-channel.ts). */
  openChannels: number;
  /** Exceptions thrown by this node's own event handlers (a bug: each is logged with its peer). */
  handlerErrors: number;
}

export { RemoteHandlerError };

export class Libp2pTransport implements Transport {
  readonly localId: string;
  private handlers: TransportEvents | undefined;
  private started = false;
  private readonly requests: RequestReply;
  private readonly repair: StaleConnectionRepair;
  private readonly counters: Omit<TransportStats, 'droppedFramesOnClosedConnections' | 'openChannels' | 'refusedConnections'> = {
    publishedToNobody: 0,
    publishFailures: 0,
    droppedBeforeHandlers: 0,
    staleConnectionRepairs: 0,
    dials: 0,
    channelsOpened: 0,
    requestStreamsOpened: 0,
    connectionsOpened: 0,
    handlerErrors: 0,
  };

  private constructor(
    private readonly node: ChorusLibp2p,
    private readonly topics: readonly string[],
    private readonly config: Libp2pTransportConfig,
    private readonly refused: { count: number },
    private readonly log: Logger | undefined,
  ) {
    this.localId = node.peerId.toString();
    this.requests = new RequestReply({
      node,
      config,
      counters: this.counters,
      handlers: () => this.handlers,
      isStarted: () => this.started,
    });
    this.repair = new StaleConnectionRepair({ node, config, isStarted: () => this.started, onRepair: () => this.counters.staleConnectionRepairs++ });
  }

  static async create(opts: Libp2pTransportOptions): Promise<Libp2pTransport> {
    const config = { ...DEFAULT_TRANSPORT_CONFIG, ...opts.config };
    if (!(opts.swarmKey instanceof Uint8Array) || opts.swarmKey.byteLength === 0) throw new TypeError('a swarm key is required: a chorus cluster is always closed');
    // Counted before the transport object exists: the protector is built with the node.
    const refused = { count: 0 };
    const node = await buildLibp2p({
      privateKey: opts.privateKey,
      listen: opts.listen ?? ['/ip4/127.0.0.1/tcp/0'],
      mdns: opts.mdns === true,
      swarmKey: opts.swarmKey,
      config,
      onRefused: (remoteAddr, why) => {
        refused.count++;
        opts.onConnectionRefused?.(remoteAddr, why);
      },
    });
    return new Libp2pTransport(node, [...opts.topics], config, refused, opts.log);
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.addEventListeners();
    await this.requests.register();
    await this.node.start();
    for (const topic of this.topics) this.node.services.pubsub.subscribe(topic);
    this.started = true;
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.removeEventListeners();
    this.requests.closeAll();
    await this.node.stop();
  }

  setHandlers(handlers: TransportEvents): void {
    this.handlers = handlers;
  }

  stats(): TransportStats {
    return { ...this.counters, refusedConnections: this.refused.count, droppedFramesOnClosedConnections: droppedFrames.count, openChannels: this.requests.openChannels() };
  }

  publish(topic: string, data: Uint8Array): void {
    if (data.byteLength > this.config.maxPublishBytes) {
      throw new RangeError(
        `gossip message of ${data.byteLength} bytes on ${topic} exceeds the limit of ${this.config.maxPublishBytes} bytes`,
      );
    }
    if (!this.started) {
      this.counters.publishFailures++;
      return;
    }
    this.node.services.pubsub.publish(topic, data).then(
      (result) => {
        if (result.recipients.length === 0) this.counters.publishedToNobody++;
      },
      () => {
        this.counters.publishFailures++;
      },
    );
  }

  request(peer: string, data: Uint8Array, timeoutMs: number, options: RequestOptions = {}): Promise<Uint8Array> {
    return this.requests.request(peer, data, timeoutMs, options);
  }

  /** Request channels open now (to all peers). */
  openChannels(): number {
    return this.requests.openChannels();
  }

  /** Closes the request channels to `peer` (the next request opens a new one). */
  closeChannels(peer: string): void {
    this.requests.closeChannels(peer);
  }

  /**
   * Ids of the peers with an open connection. Not libp2p's getPeers(): it goes through a
   * PeerSet, which decodes every id from base58 into a new PeerId that is encoded again;
   * called on every probe, ack and relay, that was a tenth of a busy member's CPU at 50
   * daemons. A connection's remotePeer caches its string.
   */
  connectedPeers(): string[] {
    const peers = new Set<string>();
    for (const connection of this.node.getConnections()) peers.add(connection.remotePeer.toString());
    return [...peers];
  }

  async dial(peer: string, addrs: string[]): Promise<void> {
    const peerId = peerIdOf(peer);
    if (addrs.length > 0) {
      await this.node.peerStore.merge(peerId, { multiaddrs: addrs.map((a) => multiaddr(a)) });
    }
    if (this.node.getConnections(peerId).length > 0) {
      // Already "connected" may mean a connection that died silently; check before trusting it.
      await this.repair.repairIfStale(peerId, this.node.getConnections(peerId));
      return;
    }
    this.counters.dials++;
    await this.node.dial(peerId, { signal: AbortSignal.timeout(this.config.dialTimeoutMs) });
  }

  /** Dials a `--join` style address, with or without a `/p2p/<id>` suffix; returns the peer id. */
  async dialAddr(address: string): Promise<string> {
    const peer = multiaddr(address)
      .getComponents()
      .find((c) => c.name === 'p2p')?.value;
    if (peer !== undefined) {
      await this.dial(peer, [address]);
      return peer;
    }
    const connection = await this.node.dial(multiaddr(address), {
      signal: AbortSignal.timeout(this.config.dialTimeoutMs),
    });
    return connection.remotePeer.toString();
  }

  async hangUp(peer: string): Promise<void> {
    await this.node.hangUp(peerIdOf(peer));
  }

  async ping(peer: string, timeoutMs: number): Promise<number> {
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      return await this.node.services.ping.ping(peerIdOf(peer), { signal });
    } catch (err) {
      if (signal.aborted) throw new Error(`ping to ${peer} timed out after ${timeoutMs} ms`, { cause: err });
      throw err;
    }
  }

  addresses(): string[] {
    return this.node.getMultiaddrs().map((a) => a.toString());
  }

  /** Peers whose subscription to `topic` this node has received. */
  subscribers(topic: string): string[] {
    return this.node.services.pubsub.getSubscribers(topic).map((p) => p.toString());
  }

  /**
   * Resolves once `peer` has told us it subscribes to `topic`. Until then a publish does not
   * reach it, so callers that must not lose the first message after a dial wait here.
   */
  async waitForSubscriber(peer: string, topic: string, timeoutMs: number): Promise<void> {
    const pubsub = this.node.services.pubsub;
    const isSubscribed = () => pubsub.getSubscribers(topic).some((p) => p.toString() === peer);
    if (isSubscribed()) return;
    await new Promise<void>((resolve, reject) => {
      const onChange = () => {
        if (!isSubscribed()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`peer ${peer} did not subscribe to ${topic} within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        pubsub.removeEventListener('subscription-change', onChange);
      };
      pubsub.addEventListener('subscription-change', onChange);
    });
  }

  // ---- libp2p events -------------------------------------------------------------------

  private readonly onPeerConnect = (evt: CustomEvent<PeerId>): void => {
    const peer = evt.detail.toString();
    this.notify(peer, 'onPeerConnected', (h) => h.onPeerConnected(peer));
  };

  private readonly onPeerDisconnect = (evt: CustomEvent<PeerId>): void => {
    const peer = evt.detail.toString();
    this.notify(peer, 'onPeerDisconnected', (h) => h.onPeerDisconnected(peer));
  };

  /** `from` is the neighbour that passed the message on (the writer is named, and its signature checked, inside every record). */
  private readonly onGossip = (evt: CustomEvent<GossipsubMessage>): void => {
    const { msg, propagationSource } = evt.detail;
    const from = propagationSource.toString();
    if (from === this.localId) return;
    this.notify(from, 'onMessage', (h) => h.onMessage(msg.topic, from, msg.data));
  };

  private readonly onConnectionOpen = (evt: CustomEvent<Connection>): void => {
    this.counters.connectionsOpened++;
    this.repair.connectionOpened(evt.detail);
  };

  private readonly onConnectionClose = (evt: CustomEvent<Connection>): void => {
    this.repair.connectionClosed(evt.detail.remotePeer);
  };

  private readonly onDiscovery = (evt: CustomEvent<{ id: PeerId }>): void => {
    const peerId = evt.detail.id;
    if (this.node.getConnections(peerId).length > 0) return;
    this.node.dial(peerId, { signal: AbortSignal.timeout(this.config.dialTimeoutMs) }).catch(() => {
      // A discovered peer that cannot be reached is retried on its next announcement.
    });
  };

  private addEventListeners(): void {
    this.node.addEventListener('peer:connect', this.onPeerConnect);
    this.node.addEventListener('peer:disconnect', this.onPeerDisconnect);
    this.node.addEventListener('connection:open', this.onConnectionOpen);
    this.node.addEventListener('connection:close', this.onConnectionClose);
    this.node.addEventListener('peer:discovery', this.onDiscovery);
    this.node.services.pubsub.addEventListener('gossipsub:message', this.onGossip);
  }

  private removeEventListeners(): void {
    this.node.removeEventListener('peer:connect', this.onPeerConnect);
    this.node.removeEventListener('peer:disconnect', this.onPeerDisconnect);
    this.node.removeEventListener('connection:open', this.onConnectionOpen);
    this.node.removeEventListener('connection:close', this.onConnectionClose);
    this.node.removeEventListener('peer:discovery', this.onDiscovery);
    this.node.services.pubsub.removeEventListener('gossipsub:message', this.onGossip);
  }

  /**
   * Hands an event to the node's handler. A handler that throws is a bug in the cluster
   * logic (core/transport.ts): logged with the peer and counted, and libp2p's event dispatch
   * goes on for everyone else. A broken guarantee never gets here: the node stops first.
   */
  private notify(peer: string, event: keyof TransportEvents, call: (handlers: TransportEvents) => void): void {
    if (this.handlers === undefined) {
      this.counters.droppedBeforeHandlers++;
      return;
    }
    try {
      call(this.handlers);
    } catch (err) {
      this.counters.handlerErrors++;
      this.log?.error({ err, peer, event }, `the ${event} handler threw (a bug): ${(err as Error).message}`);
    }
  }
}
