// The production Transport: gossipsub for best-effort broadcast, a length-prefixed
// request/response stream protocol for reliable point-to-point calls, over libp2p.

import { createHash } from 'node:crypto';
import { gossipsub, StrictNoSign } from '@libp2p/gossipsub';
import type { GossipSub, GossipsubMessage } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import { mdns } from '@libp2p/mdns';
import { peerIdFromString } from '@libp2p/peer-id';
import { ping } from '@libp2p/ping';
import type { Ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { multiaddr } from '@multiformats/multiaddr';
import * as lp from 'it-length-prefixed';
import { createLibp2p } from 'libp2p';
import type { Identify } from '@libp2p/identify';
import type { Connection, Libp2p, PeerId, PrivateKey, Stream } from '@libp2p/interface';
import type { RequestOptions, Transport, TransportEvents } from '../core/transport.js';
import { swarmGuard } from './swarm-guard.js';
import { RemoteHandlerError, WireChannel } from './wire-channel.js';
import { droppedFrames, guardedYamux } from './muxer.js';
import { defaultConfig, type ChorusConfig } from '../core/config.js';


/** Parsed peer ids by their string, so that a request does not decode base58 each time (cleared when full). */
const parsedPeerIds = new Map<string, PeerId>();
const MAX_PARSED_PEER_IDS = 4096;

function peerIdOf(peer: string): PeerId {
  let id = parsedPeerIds.get(peer);
  if (id === undefined) {
    if (parsedPeerIds.size >= MAX_PARSED_PEER_IDS) parsedPeerIds.clear();
    id = peerIdFromString(peer);
    parsedPeerIds.set(peer, id);
  }
  return id;
}

export const RPC_PROTOCOL = '/chorus/rpc/1.0.0';
/** The long-lived request channel (wire-channel.ts); RPC_PROTOCOL is kept for large transfers. */
export const WIRE_PROTOCOL = '/chorus/wire/1.0.0';
/**
 * Requests larger than this, and those marked bulk, get a stream of their own, so that a
 * large transfer never holds up the small requests queued behind it on the channel.
 */
const CHANNEL_REQUEST_MAX_BYTES = 64 * 1024;
/** Channels per connection and direction: one is used; a second appears when both sides open one at once. */
const MAX_WIRE_STREAMS = 4;
const PING_PROTOCOL = '/ipfs/ping/1.0.0';
const PING_PAYLOAD_BYTES = 32;
const REPLY_OK = 0;
const REPLY_ERROR = 1;

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
}

export { RemoteHandlerError };

interface Services {
  identify: Identify;
  ping: Ping;
  pubsub: GossipSub;
  [key: string]: unknown;
}

type Node = Libp2p<Services>;

export class Libp2pTransport implements Transport {
  readonly localId: string;
  private handlers: TransportEvents | undefined;
  private started = false;
  private readonly repairing = new Set<string>();
  /** Open request channels by peer (usually one; two when both sides opened one at once). */
  private readonly channels = new Map<string, WireChannel[]>();
  /** Channels being opened, so that concurrent requests share one. */
  private readonly opening = new Map<string, Promise<WireChannel>>();
  private readonly counters: Omit<TransportStats, 'droppedFramesOnClosedConnections' | 'openChannels'> = {
    publishedToNobody: 0,
    publishFailures: 0,
    droppedBeforeHandlers: 0,
    staleConnectionRepairs: 0,
    refusedConnections: 0,
    dials: 0,
    channelsOpened: 0,
    requestStreamsOpened: 0,
    connectionsOpened: 0,
  };

  private constructor(
    private readonly node: Node,
    private readonly topics: readonly string[],
    private readonly config: Libp2pTransportConfig,
    private readonly refused: { count: number },
  ) {
    this.localId = node.peerId.toString();
  }

  static async create(opts: Libp2pTransportOptions): Promise<Libp2pTransport> {
    const config = { ...DEFAULT_TRANSPORT_CONFIG, ...opts.config };
    if (!(opts.swarmKey instanceof Uint8Array) || opts.swarmKey.byteLength === 0) throw new TypeError('a swarm key is required: a chorus cluster is always closed');
    // Counted before the transport object exists: the protector is built with the node.
    const refused = { count: 0 };
    const node = await createLibp2p<Services>({
      start: false,
      privateKey: opts.privateKey,
      addresses: { listen: opts.listen ?? ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      // No keep-alive pings per connection (one every 30 s each): SWIM's probes find dead members.
      streamMuxers: [guardedYamux({ enableKeepAlive: false })],
      peerDiscovery: opts.mdns === true ? [mdns()] : [],
      connectionProtector: swarmGuard({
        psk: opts.swarmKey,
        handshakeTimeoutMs: config.swarmHandshakeTimeoutMs,
        onRefused: (remoteAddr, why) => {
          refused.count++;
          opts.onConnectionRefused?.(remoteAddr, why);
        },
      }),
      connectionManager: {
        // Many daemons share one host in tests and small deployments: the default
        // per-host rate limit (5 connections/s) and caps would refuse their dials.
        maxConnections: config.maxConnections,
        inboundConnectionThreshold: config.maxConnectionsPerHostPerSecond,
        maxIncomingPendingConnections: config.maxPendingInboundConnections,
        allow: ['/ip4/127.0.0.0/ipcidr/8', '/ip6/::1/ipcidr/128'],
        dialTimeout: config.dialTimeoutMs,
      },
      // libp2p pings every connection to find dead ones; SWIM's probes already find dead
      // members, so this only needs to clear half-open connections, and rarely.
      connectionMonitor: config.connectionPingIntervalMs > 0 ? { pingInterval: config.connectionPingIntervalMs } : { enabled: false },
      services: {
        identify: identify(),
        ping: ping(),
        pubsub: gossipsub({
          // Unsigned messages: every record inside carries its writer's signature, checked
          // by the receiver whoever relayed it (records/signature.ts). Signing each gossip
          // message as well cost a signature check per copy received, duplicates included
          // (gossipsub checks before it drops a duplicate): about 450 ed25519 checks per
          // node for one broadcast on 20 daemons, most of their CPU (BENCHMARKS.md).
          globalSignaturePolicy: StrictNoSign,
          // Without a sender and sequence number, a message is known by its content.
          msgIdFn: (msg) => createHash('sha256').update(msg.data).digest(),
          fastMsgIdFn: (msg) => createHash('sha1').update(msg.data ?? new Uint8Array()).digest('base64'),
          emitSelf: false,
          // Own messages go to the mesh (gossipsub's D peers), not to every connected peer:
          // a node's gossip costs the same whatever the cluster's size. Zero subscribers is
          // normal while starting.
          floodPublish: false,
          allowPublishToZeroTopicPeers: true,
          ignoreDuplicatePublishError: true,
          fallbackToFloodsub: false,
          // Peer scoring defends public networks against sybils; in a cluster of trusted
          // nodes it only hurts: colocated nodes (all on 127.0.0.1) and restarted nodes
          // re-grafting inside a backoff window would be scored down and graylisted.
          // Records are repaired by anti-entropy, so gossipsub's own mesh upkeep and lazy
          // repair can run at half its usual pace, and scores (unused: weights are 0) decay
          // rarely: fewer wake-ups of every idle node.
          heartbeatInterval: 2000,
          scoreParams: {
            decayInterval: 10_000,
            IPColocationFactorWeight: 0,
            IPColocationFactorWhitelist: new Set(['127.0.0.1', '::1']),
            behaviourPenaltyWeight: 0,
          },
        }),
      },
    });
    return new Libp2pTransport(node, [...opts.topics], config, refused);
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.addEventListeners();
    await this.node.handle(RPC_PROTOCOL, (stream, connection) => this.onRpcStream(stream, connection), {
      maxInboundStreams: this.config.maxRpcStreamsPerConnection,
      maxOutboundStreams: this.config.maxRpcStreamsPerConnection,
    });
    await this.node.handle(WIRE_PROTOCOL, (stream, connection) => void this.attachChannel(connection.remotePeer.toString(), stream), {
      maxInboundStreams: MAX_WIRE_STREAMS,
      maxOutboundStreams: MAX_WIRE_STREAMS,
    });
    await this.node.start();
    for (const topic of this.topics) this.node.services.pubsub.subscribe(topic);
    this.started = true;
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.removeEventListeners();
    for (const channels of this.channels.values()) for (const channel of [...channels]) channel.close(new Error('transport stopped'));
    this.channels.clear();
    await this.node.stop();
  }

  setHandlers(handlers: TransportEvents): void {
    this.handlers = handlers;
  }

  stats(): TransportStats {
    return { ...this.counters, refusedConnections: this.refused.count, droppedFramesOnClosedConnections: droppedFrames.count, openChannels: this.openChannels() };
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

  async request(peer: string, data: Uint8Array, timeoutMs: number, options: RequestOptions = {}): Promise<Uint8Array> {
    if (data.byteLength > this.config.maxMessageBytes) {
      throw new RangeError(
        `request of ${data.byteLength} bytes exceeds the limit of ${this.config.maxMessageBytes} bytes`,
      );
    }
    // Only over a connection that exists: dialling is the caller's decision (the membership
    // keeps a budget of connections; an implicit dial would reopen one it just closed).
    if (this.node.getConnections(peerIdOf(peer)).length === 0) throw new Error(`request to ${peer} failed: not connected`);
    if (options.bulk === true || data.byteLength > CHANNEL_REQUEST_MAX_BYTES) return this.requestOnOwnStream(peer, data, timeoutMs);
    const startedMs = Date.now();
    try {
      const channel = await this.channelTo(peer, timeoutMs);
      return await channel.request(data, Math.max(1, timeoutMs - (Date.now() - startedMs)));
    } catch (err) {
      if (err instanceof RemoteHandlerError) throw err;
      if (Date.now() - startedMs >= timeoutMs) throw new Error(`request to ${peer} timed out after ${timeoutMs} ms`, { cause: err });
      throw new Error(`request to ${peer} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The open channel to `peer`, or a new one (shared by requests made while it opens). */
  private async channelTo(peer: string, timeoutMs: number): Promise<WireChannel> {
    const open = this.channels.get(peer)?.find((c) => c.isOpen);
    if (open) return open;
    let opening = this.opening.get(peer);
    if (!opening) {
      this.counters.channelsOpened++;
      opening = this.node
        .dialProtocol(peerIdOf(peer), WIRE_PROTOCOL, { signal: AbortSignal.timeout(timeoutMs) })
        .then((stream) => this.attachChannel(peer, stream))
        .finally(() => this.opening.delete(peer));
      this.opening.set(peer, opening);
    }
    return opening;
  }

  private attachChannel(peer: string, stream: Stream): WireChannel {
    const channel = new WireChannel(stream, {
      maxMessageBytes: this.config.maxMessageBytes,
      maxInFlight: this.config.maxRpcStreamsPerConnection,
      onRequest: (data) => this.handleRequest(peer, data),
      onClose: (closed) => {
        const remaining = (this.channels.get(peer) ?? []).filter((c) => c !== closed);
        if (remaining.length > 0) this.channels.set(peer, remaining);
        else this.channels.delete(peer);
      },
    });
    if (!this.started) {
      channel.close(new Error('transport stopped'));
      return channel;
    }
    this.channels.set(peer, [...(this.channels.get(peer) ?? []), channel]);
    return channel;
  }

  /** Request channels open now (to all peers). */
  openChannels(): number {
    let count = 0;
    for (const channels of this.channels.values()) count += channels.length;
    return count;
  }

  /** Closes the request channels to `peer` (the next request opens a new one). */
  closeChannels(peer: string): void {
    for (const channel of [...(this.channels.get(peer) ?? [])]) channel.close(new Error('closed on purpose'));
  }

  /** A request that came on a channel: the handler's reply, or a throw that becomes an error reply. */
  private async handleRequest(from: string, data: Uint8Array): Promise<Uint8Array> {
    if (this.handlers === undefined) {
      this.counters.droppedBeforeHandlers++;
      throw new Error('node is starting and not yet accepting requests');
    }
    return this.handlers.onRequest(from, data);
  }

  /** A request on a stream of its own (a large transfer). */
  private async requestOnOwnStream(peer: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const signal = AbortSignal.timeout(timeoutMs);
    let stream: Stream | undefined;
    try {
      this.counters.requestStreamsOpened++;
      stream = await this.node.dialProtocol(peerIdOf(peer), RPC_PROTOCOL, { signal });
      return await this.exchange(stream, data, signal);
    } catch (err) {
      stream?.abort(err instanceof Error ? err : new Error(String(err)));
      if (err instanceof RemoteHandlerError) throw err;
      if (signal.aborted) throw new Error(`request to ${peer} timed out after ${timeoutMs} ms`, { cause: err });
      throw new Error(`request to ${peer} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Sends one request frame and reads one reply frame; the reply is read while the request is
   * still being written, so a peer that refuses a big request can say why. */
  private async exchange(stream: Stream, data: Uint8Array, signal: AbortSignal): Promise<Uint8Array> {
    const stopOnAbort = () => stream.abort(new Error('request timed out'));
    signal.addEventListener('abort', stopOnAbort, { once: true });
    try {
      stream.maxReadBufferLength = this.config.maxMessageBytes + 16;
      // +1: the reply carries a status byte in front of up to maxMessageBytes of payload.
      const reply = readFrame(stream, this.config.maxMessageBytes + 1);
      let writeDone = false;
      writeFrame(stream, data, signal)
        .then(() => stream.close({ signal }))
        .then(() => (writeDone = true))
        .catch(() => {}); // A refused request shows up as an error reply or a failed read.
      const frame = await reply.catch((err: unknown) => {
        throw new Error(describeReadError(err, this.config.maxMessageBytes, 'reply'), { cause: err });
      });
      // The peer may have answered before taking all of the request (it refused it); then
      // there is nothing to wait for.
      if (!writeDone) stream.abort(new Error('reply arrived before the request was fully sent'));
      return decodeReply(frame);
    } finally {
      signal.removeEventListener('abort', stopOnAbort);
    }
  }

  private async onRpcStream(stream: Stream, connection: Connection): Promise<void> {
    const from = connection.remotePeer.toString();
    const signal = AbortSignal.timeout(this.config.inboundReadTimeoutMs);
    const stopOnAbort = () => stream.abort(new Error('request did not arrive in time'));
    signal.addEventListener('abort', stopOnAbort, { once: true });
    try {
      stream.maxReadBufferLength = this.config.maxMessageBytes + 16;
      let request: Uint8Array;
      try {
        request = await readFrame(stream, this.config.maxMessageBytes);
      } catch (err) {
        await this.sendReply(stream, errorReply(describeReadError(err, this.config.maxMessageBytes, 'request')));
        return;
      } finally {
        signal.removeEventListener('abort', stopOnAbort);
      }
      await this.sendReply(stream, await this.runHandler(from, request));
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private async runHandler(from: string, request: Uint8Array): Promise<Uint8Array> {
    if (this.handlers === undefined) {
      this.counters.droppedBeforeHandlers++;
      return errorReply('node is starting and not yet accepting requests');
    }
    try {
      const result = await this.handlers.onRequest(from, request);
      if (result.byteLength > this.config.maxMessageBytes) {
        return errorReply(`reply of ${result.byteLength} bytes exceeds the limit of ${this.config.maxMessageBytes} bytes`);
      }
      return okReply(result);
    } catch (err) {
      return errorReply(err instanceof Error ? err.message : String(err));
    }
  }

  private async sendReply(stream: Stream, reply: Uint8Array): Promise<void> {
    if (stream.writeStatus !== 'writable') return;
    const signal = AbortSignal.timeout(this.config.inboundReadTimeoutMs);
    await writeFrame(stream, reply, signal);
    await stream.close({ signal });
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
      await this.repairIfStale(peerId, this.node.getConnections(peerId));
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
    this.notify((h) => h.onPeerConnected(evt.detail.toString()));
  };

  private readonly onPeerDisconnect = (evt: CustomEvent<PeerId>): void => {
    this.notify((h) => h.onPeerDisconnected(evt.detail.toString()));
  };

  /** `from` is the neighbour that passed the message on (the writer is named, and its signature checked, inside every record). */
  private readonly onGossip = (evt: CustomEvent<GossipsubMessage>): void => {
    const { msg, propagationSource } = evt.detail;
    const from = propagationSource.toString();
    if (from === this.localId) return;
    this.notify((h) => h.onMessage(msg.topic, from, msg.data));
  };

  /**
   * A second connection to a peer we are already connected to: either both sides dialled at
   * once (both connections are fine) or the peer restarted with the same id and the old
   * connection is dead but not yet closed. gossipsub keeps using its stream on the old
   * connection and never sends our subscriptions on the new one, so the restarted peer would
   * never hear from us. Probe the older connections and start clean if any is dead.
   */
  private readonly onConnectionOpen = (evt: CustomEvent<Connection>): void => {
    const opened = evt.detail;
    this.counters.connectionsOpened++;
    if (this.repairing.has(opened.remotePeer.toString())) return;
    const older = this.node
      .getConnections(opened.remotePeer)
      .filter((c) => c.id !== opened.id && c.status === 'open');
    if (older.length === 0) return;
    void this.repairIfStale(opened.remotePeer, older);
  };

  /**
   * One of several connections to a peer closed (e.g. the connection monitor aborted a dead
   * one). If gossipsub's outbound stream lived on it, gossipsub will not open another while
   * the peer stays connected, so our messages would silently stop reaching that peer.
   */
  private readonly onConnectionClose = (evt: CustomEvent<Connection>): void => {
    const peerId = evt.detail.remotePeer;
    if (!this.config.repairStaleConnections || this.repairing.has(peerId.toString())) return;
    // A connection that is still being identified gets its gossip stream soon; only a peer
    // that still has none after the settle delay is stuck.
    setTimeout(() => {
      if (!this.started || this.repairing.has(peerId.toString())) return;
      const remaining = this.node.getConnections(peerId).filter((c) => c.status === 'open');
      if (remaining.length === 0 || this.hasGossipStream(peerId)) return;
      void this.repairPeer(peerId);
    }, this.config.gossipStreamSettleMs).unref();
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

  private notify(call: (handlers: TransportEvents) => void): void {
    if (this.handlers === undefined) {
      this.counters.droppedBeforeHandlers++;
      return;
    }
    try {
      call(this.handlers);
    } catch {
      // A throwing handler is a bug in the cluster logic; it must not break libp2p's
      // event dispatch for everyone else.
    }
  }

  // ---- stale connection repair ----------------------------------------------------------

  private async repairIfStale(peerId: PeerId, connections: Connection[]): Promise<void> {
    if (!this.config.repairStaleConnections) return;
    const alive = await Promise.all(connections.map((c) => this.probe(c)));
    if (alive.every(Boolean)) return;
    for (const [i, conn] of connections.entries()) {
      if (alive[i] === false) conn.abort(new Error('connection did not answer a ping; peer restarted or froze'));
    }
    await this.repairPeer(peerId);
  }

  /** True if the connection answers a ping within `staleProbeTimeoutMs`. */
  private async probe(connection: Connection): Promise<boolean> {
    const signal = AbortSignal.timeout(this.config.staleProbeTimeoutMs);
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
    if (this.repairing.has(id) || !this.started) return;
    this.repairing.add(id);
    this.counters.staleConnectionRepairs++;
    try {
      await this.node.hangUp(peerId, { signal: AbortSignal.timeout(this.config.dialTimeoutMs) });
      if (!this.started) return;
      await this.node.dial(peerId, { signal: AbortSignal.timeout(this.config.dialTimeoutMs) });
    } catch {
      // The peer may simply be gone; membership notices through the disconnect event.
    } finally {
      this.repairing.delete(id);
    }
  }

  /** Whether gossipsub has a live outbound stream to the peer; true if that cannot be known. */
  private hasGossipStream(peerId: PeerId): boolean {
    // gossipsub (v17) keeps its per-peer outbound streams in a private map; there is no public
    // accessor. If a future version renames it, assume the stream is fine rather than flap.
    const internals = this.node.services.pubsub as unknown as { streamsOutbound?: Map<string, unknown> };
    if (!(internals.streamsOutbound instanceof Map)) return true;
    return internals.streamsOutbound.has(peerId.toString());
  }
}

// ---- framing ------------------------------------------------------------------------------

async function writeFrame(stream: Stream, payload: Uint8Array, signal: AbortSignal): Promise<void> {
  // Callers enforce the limit; lift the encoder's own 4 MiB default out of the way.
  const frame = lp.encode.single(payload, { maxDataLength: payload.byteLength });
  if (!stream.send(frame)) await stream.onDrain({ signal });
}

/** Reads exactly one length-prefixed frame; a larger declared length fails before it is buffered. */
async function readFrame(stream: Stream, maxBytes: number): Promise<Uint8Array> {
  for await (const frame of lp.decode(stream, { maxDataLength: maxBytes })) {
    return frame.subarray();
  }
  throw new Error('stream closed before a complete frame arrived');
}

async function readBytes(stream: Stream, byteCount: number, signal: AbortSignal): Promise<void> {
  const onAbort = () => stream.abort(new Error('read timed out'));
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    let received = 0;
    for await (const chunk of stream) {
      received += chunk.byteLength;
      if (received >= byteCount) return;
    }
    throw new Error('stream closed early');
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

function okReply(payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(payload.byteLength + 1);
  frame[0] = REPLY_OK;
  frame.set(payload, 1);
  return frame;
}

function errorReply(message: string): Uint8Array {
  const text = new TextEncoder().encode(message);
  const frame = new Uint8Array(text.byteLength + 1);
  frame[0] = REPLY_ERROR;
  frame.set(text, 1);
  return frame;
}

function decodeReply(frame: Uint8Array): Uint8Array {
  const status = frame[0];
  if (status === REPLY_OK) return frame.subarray(1);
  if (status === REPLY_ERROR) throw new RemoteHandlerError(new TextDecoder().decode(frame.subarray(1)));
  throw new Error(`malformed reply (status byte ${String(status)})`);
}

function describeReadError(err: unknown, maxBytes: number, what: string): string {
  if (err instanceof Error && err.name === 'InvalidDataLengthError') {
    return `${what} exceeds the limit of ${maxBytes} bytes`;
  }
  return `could not read ${what}: ${err instanceof Error ? err.message : String(err)}`;
}
