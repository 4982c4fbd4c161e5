// An in-memory network of chorus nodes for one-process simulations: lossy, delayed,
// duplicating gossip; reliable requests; partitions, frozen and crashed nodes. Every
// delivery is a FakeClock timer and every coin flip comes from one Rng, so a seed
// replays the same run.

import type { Transport, TransportEvents } from '../core/transport.js';
import type { ClockView, FakeClock } from './fake-clock.js';
import type { Rng } from './random.js';

/** Knobs that can change mid-run (`configure`), e.g. a lossy phase then a clean one. */
export interface NetworkConditions {
  /** Chance a published copy to one peer is lost. Requests are never lost this way. */
  lossRate: number;
  /** Chance a published copy to one peer arrives twice (each copy with its own delay). */
  duplicateRate: number;
  /** One-way delay of every message is uniform in [minDelayMs, maxDelayMs]. */
  minDelayMs: number;
  maxDelayMs: number;
  /** Larger payloads are a bug in the caller: publish throws, request rejects. */
  maxMessageBytes: number;
  /**
   * What reaches a frozen node waits in its socket buffers, as a SIGSTOPped process's
   * kernel keeps it, and is read at thaw (before its overdue timers fire); false: lost.
   */
  frozenReceiversBuffer: boolean;
}

export interface MemoryNetworkOptions extends Partial<NetworkConditions> {
  clock: FakeClock;
  rng: Rng;
  /**
   * Gossip is relayed as gossipsub relays it: the publisher sends to every connection
   * (floodPublish), and each node that sees a message for the first time forwards it to up
   * to this many of its other connections (gossipsub's mesh degree D). 0: no relaying
   * (a message reaches only the publisher's direct peers).
   */
  relayFanout?: number;
  /** Sees every send, duplicate, delivery and drop; collect it to compare runs. */
  onTrace?: (event: TraceEvent) => void;
}

const DEFAULT_CONDITIONS: NetworkConditions = {
  lossRate: 0,
  duplicateRate: 0,
  minDelayMs: 1,
  maxDelayMs: 10,
  // chorus's own limit (config.maxMessageBytes): no message of any kind is bigger.
  maxMessageBytes: 1024 * 1024,
  frozenReceiversBuffer: false,
};

export type MessageKind = 'publish' | 'request' | 'response' | 'ping' | 'pong';

export type DropReason =
  | 'loss' // the lossRate coin came up
  | 'partition' // sender and receiver are on opposite sides
  | 'sender-frozen'
  | 'receiver-frozen'
  | 'closed' // the connection closed (crash, disconnect) while the message was in flight
  | 'no-handler' // the receiver never called setHandlers
  | 'seen' // a relayed copy of a message the receiver already had (gossipsub's seen cache)
  | 'late'; // a reply arrived after its request had timed out or failed

export interface TraceEvent {
  atMs: number;
  msgId: number;
  kind: MessageKind;
  from: string;
  to: string;
  topic: string | null;
  bytes: number;
  outcome: 'sent' | 'duplicated' | 'delivered' | 'dropped';
  reason?: DropReason;
}

/** Counts of message copies; once nothing is in flight, sent + duplicated = delivered + dropped. */
export interface NetworkStats {
  sent: number;
  /** Payload bytes of every message sent (gossip, requests, replies, pings). */
  sentBytes: number;
  duplicated: number;
  delivered: number;
  dropped: number;
}

export type TransportErrorCode = 'timeout' | 'not-connected' | 'unreachable' | 'closed' | 'remote' | 'too-large';

export class MemoryTransportError extends Error {
  constructor(
    readonly code: TransportErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'MemoryTransportError';
  }
}

/** One open connection between two node incarnations. */
interface Link {
  id: number;
  open: boolean;
  /** Fails every request/ping waiting on this link, as a reset stream does. */
  inflight: Set<(err: MemoryTransportError) => void>;
}

/** One incarnation of a node: a restart makes a new one with the same id. */
interface NodeState {
  id: string;
  incarnation: number;
  transport: MemoryTransport;
  clock: ClockView;
  handlers: TransportEvents | null;
  alive: boolean;
  frozen: boolean;
  links: Map<string, Link>;
  /** The ids of `links`, sorted; null after a change (rebuilt at the next connectedPeers). */
  sortedPeers: string[] | null;
  /** Connection events that happened while frozen; delivered at thaw, as the kernel would. */
  deferred: Array<(h: TransportEvents) => void>;
  /** Gossip ids this incarnation has seen (bounded, oldest forgotten first). */
  seen: Set<number>;
}

/** Gossip ids a node remembers, as gossipsub's seen cache does (by time there; by count here). */
const SEEN_CACHE_SIZE = 65_536;

interface Message {
  msgId: number;
  /** The published message this copy carries (relayed copies share it); 0 for requests. */
  gossipId: number;
  /** A copy forwarded by a node other than the publisher. */
  relayed: boolean;
  /** Who published it: what the receiver sees as its sender (gossipsub's signed `from`), relayed or not. */
  origin: string;
  /** The network itself sent this message twice (duplicateRate): both copies reach the application. */
  duplicated: boolean;
  kind: MessageKind;
  link: Link;
  from: NodeState;
  to: NodeState;
  topic: string | null;
  data: Uint8Array;
}

export class MemoryNetwork {
  private readonly clock: FakeClock;
  private readonly rng: Rng;
  private readonly onTrace: ((event: TraceEvent) => void) | undefined;
  private readonly relayFanout: number;
  private nextGossipId = 1;
  private conditions: NetworkConditions;
  private readonly nodes = new Map<string, NodeState>();
  private readonly blockedPairs = new Set<string>();
  private readonly counts: NetworkStats = { sent: 0, sentBytes: 0, duplicated: 0, delivered: 0, dropped: 0 };
  /** Exceptions a node's event handler threw (core/transport.ts: reported, counted, delivery goes on); the simulator fails a run that has any. */
  readonly handlerErrors: { nodeId: string; peer: string; event: keyof TransportEvents; error: unknown }[] = [];
  private nextLinkId = 1;
  private nextMsgId = 1;

  constructor(options: MemoryNetworkOptions) {
    const { clock, rng, onTrace, relayFanout, ...conditions } = options;
    this.clock = clock;
    this.rng = rng;
    this.onTrace = onTrace;
    this.relayFanout = relayFanout ?? 0;
    this.conditions = checkConditions({ ...DEFAULT_CONDITIONS, ...conditions });
  }

  configure(changes: Partial<NetworkConditions>): void {
    this.conditions = checkConditions({ ...this.conditions, ...changes });
  }

  get stats(): NetworkStats {
    return { ...this.counts };
  }

  /** Ids of every node ever created, sorted. */
  nodeIds(): string[] {
    return [...this.nodes.keys()].sort();
  }

  /** The current incarnation's transport for `nodeId`, if any. */
  get(nodeId: string): MemoryTransport | undefined {
    return this.nodes.get(nodeId)?.transport;
  }

  /**
   * A new node on the network, unconnected. Its `clock` is a view on the shared
   * clock with `clockOffsetMs` of skew; build the node on that view so freeze and
   * crash stop its timers too.
   */
  endpoint(nodeId: string, options: { clockOffsetMs?: number } = {}): MemoryTransport {
    const previous = this.nodes.get(nodeId);
    if (previous?.alive) throw new Error(`node ${nodeId} already exists; crash or restart it first`);
    const offsetMs = options.clockOffsetMs ?? previous?.clock.offsetMs ?? 0;
    const node = this.createNode(nodeId, (previous?.incarnation ?? -1) + 1, offsetMs);
    this.nodes.set(nodeId, node);
    return node.transport;
  }

  /** kill -9: connections close at once (peers see onPeerDisconnected), timers never fire again. */
  crash(nodeId: string): void {
    const node = this.requireNode(nodeId);
    if (!node.alive) return;
    node.alive = false;
    node.frozen = false;
    node.deferred = [];
    node.clock.stop();
    for (const peerId of [...node.links.keys()].sort()) this.closeLink(node, peerId);
  }

  /**
   * Forgets a crashed node for good (a host rebuilt under a new id): a churn of thousands of
   * identities then costs no memory for those gone. Dials to it fail as to a crashed node.
   */
  remove(nodeId: string): void {
    if (this.requireNode(nodeId).alive) throw new Error(`node ${nodeId} is running; crash it first`);
    this.nodes.delete(nodeId);
  }

  /** A fresh process with the same id (and clock skew): new transport, new clock view, no connections. */
  restart(nodeId: string): MemoryTransport {
    this.crash(nodeId);
    return this.endpoint(nodeId);
  }

  /**
   * SIGSTOP: the node sends and receives nothing and its timers stop, but its
   * connections stay open, so peers only notice through timeouts.
   */
  freeze(nodeId: string): void {
    const node = this.requireAlive(nodeId);
    node.frozen = true;
    node.clock.freeze();
  }

  /** SIGCONT: overdue timers fire late, connection events that happened meanwhile arrive. */
  thaw(nodeId: string): void {
    const node = this.requireAlive(nodeId);
    if (!node.frozen) return;
    node.frozen = false;
    node.clock.thaw();
    const deferred = node.deferred;
    node.deferred = [];
    for (const event of deferred) this.emit(node, event);
  }

  /** Nothing passes between any node of `groupA` and any of `groupB`; connections stay open. */
  partition(groupA: string[], groupB: string[]): void {
    for (const a of groupA) {
      for (const b of groupB) {
        if (a !== b) this.blockedPairs.add(pairKey(a, b));
      }
    }
  }

  /** Removes every partition. */
  heal(): void {
    this.blockedPairs.clear();
  }

  isPartitioned(a: string, b: string): boolean {
    return this.blockedPairs.has(pairKey(a, b));
  }

  /** Closes the connection between two nodes (both see onPeerDisconnected). */
  disconnect(a: string, b: string): void {
    const node = this.requireNode(a);
    if (node.links.has(b)) this.closeLink(node, b);
  }

  /** Connects every pair of live, unfrozen, unpartitioned nodes that are not yet connected. */
  connectAll(): void {
    const ids = this.nodeIds();
    for (const [i, a] of ids.entries()) {
      for (const b of ids.slice(i + 1)) {
        const from = this.nodes.get(a) as NodeState;
        const to = this.nodes.get(b) as NodeState;
        if (!from.links.has(b) && this.canConnect(from, to)) this.openLink(from, to);
      }
    }
  }

  // ---- the Transport operations, reached through each node's NodePort ----

  private publish(from: NodeState, topic: string, data: Uint8Array): void {
    this.assertSize(data);
    if (!from.alive) return;
    const payload = data.slice();
    const gossipId = this.nextGossipId++;
    remember(from, gossipId);
    for (const peerId of [...from.links.keys()].sort()) {
      const to = this.nodes.get(peerId) as NodeState;
      const message = this.newMessage('publish', from.links.get(peerId) as Link, from, to, topic, payload);
      message.gossipId = gossipId;
      this.sendLossy(message);
    }
  }

  /** A node that sees a message for the first time forwards it to up to relayFanout other connections. */
  private relay(at: NodeState, original: Message): void {
    if (this.relayFanout === 0) return;
    const others = [...at.links.keys()].sort().filter((id) => id !== original.from.id);
    for (let i = others.length - 1; i > 0; i--) {
      const j = this.rng.int(0, i);
      [others[i], others[j]] = [others[j] as string, others[i] as string];
    }
    for (const peerId of others.slice(0, this.relayFanout)) {
      const to = this.nodes.get(peerId) as NodeState;
      const message = this.newMessage('publish', at.links.get(peerId) as Link, at, to, original.topic, original.data);
      message.gossipId = original.gossipId;
      message.relayed = true;
      message.origin = original.origin;
      this.sendLossy(message);
    }
  }

  private request(from: NodeState, peerId: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (data.byteLength > this.conditions.maxMessageBytes) {
      return Promise.reject(new MemoryTransportError('too-large', `request of ${data.byteLength} bytes exceeds ${this.conditions.maxMessageBytes}`));
    }
    return this.roundTrip(from, peerId, 'request', data.slice(), timeoutMs);
  }

  private async ping(from: NodeState, peerId: string, timeoutMs: number): Promise<number> {
    const startMs = this.clock.now();
    await this.roundTrip(from, peerId, 'ping', new Uint8Array(0), timeoutMs);
    return this.clock.now() - startMs;
  }

  private dial(from: NodeState, peerId: string): Promise<void> {
    if (from.links.has(peerId)) return Promise.resolve();
    const to = this.nodes.get(peerId);
    if (!to || !this.canConnect(from, to)) {
      return Promise.reject(new MemoryTransportError('unreachable', `${from.id} cannot reach ${peerId}`));
    }
    this.openLink(from, to);
    return Promise.resolve();
  }

  // ---- internals ----

  private createNode(id: string, incarnation: number, offsetMs: number): NodeState {
    const node = {
      id,
      incarnation,
      clock: this.clock.view(offsetMs),
      handlers: null,
      alive: true,
      frozen: false,
      links: new Map(),
      sortedPeers: null,
      deferred: [],
      seen: new Set(),
    } as Omit<NodeState, 'transport'> as NodeState;
    node.transport = new MemoryTransport({
      node,
      setHandlers: (handlers) => void (node.handlers = handlers),
      publish: (topic, data) => this.publish(node, topic, data),
      request: (peerId, data, timeoutMs) => this.request(node, peerId, data, timeoutMs),
      dial: (peerId) => this.dial(node, peerId),
      hangUp: (peerId) => {
        if (node.alive && node.links.has(peerId)) this.closeLink(node, peerId);
        return Promise.resolve();
      },
      ping: (peerId, timeoutMs) => this.ping(node, peerId, timeoutMs),
    });
    return node;
  }

  private canConnect(from: NodeState, to: NodeState): boolean {
    if (from === to || !from.alive || !to.alive) return false;
    if (from.frozen || to.frozen) return false;
    return !this.isPartitioned(from.id, to.id);
  }

  private openLink(a: NodeState, b: NodeState): void {
    const link: Link = { id: this.nextLinkId++, open: true, inflight: new Set() };
    a.links.set(b.id, link);
    b.links.set(a.id, link);
    a.sortedPeers = b.sortedPeers = null;
    this.emit(a, (h) => this.handle(a, b.id, 'onPeerConnected', () => h.onPeerConnected(b.id)));
    this.emit(b, (h) => this.handle(b, a.id, 'onPeerConnected', () => h.onPeerConnected(a.id)));
  }

  private closeLink(node: NodeState, peerId: string): void {
    const link = node.links.get(peerId) as Link;
    const peer = this.nodes.get(peerId) as NodeState;
    link.open = false;
    node.links.delete(peerId);
    peer.links.delete(node.id);
    node.sortedPeers = peer.sortedPeers = null;
    const error = new MemoryTransportError('closed', `connection ${node.id} <-> ${peerId} closed`);
    for (const fail of [...link.inflight]) fail(error);
    this.emit(node, (h) => this.handle(node, peerId, 'onPeerDisconnected', () => h.onPeerDisconnected(peerId)));
    this.emit(peer, (h) => this.handle(peer, node.id, 'onPeerDisconnected', () => h.onPeerDisconnected(node.id)));
  }

  /**
   * Connection events go out as microtasks, never inside the dial() or crash() call
   * that caused them, as libp2p's events do; a frozen node gets them at thaw.
   */
  /** Runs one of a node's event handlers; one that throws is recorded, as the libp2p transport logs and counts it. */
  private handle(node: NodeState, peer: string, event: keyof TransportEvents, call: () => void): void {
    try {
      call();
    } catch (error) {
      this.handlerErrors.push({ nodeId: node.id, peer, event, error });
    }
  }

  private emit(node: NodeState, event: (h: TransportEvents) => void): void {
    if (!node.alive) return;
    if (node.frozen) {
      node.deferred.push(event);
      return;
    }
    queueMicrotask(() => {
      if (!node.alive) return;
      if (node.frozen) node.deferred.push(event);
      else if (node.handlers) event(node.handlers);
    });
  }

  /**
   * Sends `kind` and waits for the answer on the same link. The timeout runs on the
   * caller's own clock, so a frozen caller times out late, as a paused process does.
   */
  private roundTrip(from: NodeState, peerId: string, kind: 'request' | 'ping', data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const link = from.links.get(peerId);
    if (!from.alive || !link) {
      return Promise.reject(new MemoryTransportError('not-connected', `${from.id} has no connection to ${peerId}`));
    }
    const to = this.nodes.get(peerId) as NodeState;
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (outcome: () => void): boolean => {
        if (done) return false;
        done = true;
        timer.cancel();
        link.inflight.delete(fail);
        // A crashed caller runs no more code: its promise just never settles.
        if (from.alive) outcome();
        return true;
      };
      const fail = (err: MemoryTransportError) => finish(() => reject(err));
      const timer = from.clock.setTimer(timeoutMs, () =>
        fail(new MemoryTransportError('timeout', `${kind} from ${from.id} to ${peerId} timed out after ${timeoutMs} ms`)),
      );
      link.inflight.add(fail);
      const answer = (reply: Reply) => finish(() => (reply.ok ? resolve(reply.data) : reject(reply.error)));
      this.sendReliable(this.newMessage(kind, link, from, to, null, data), (copy) => this.serve(kind, link, to, from, copy, answer));
    });
  }

  /** At the receiver: run its request handler (or answer a ping) and send the reply back. */
  private serve(kind: 'request' | 'ping', link: Link, server: NodeState, client: NodeState, data: Uint8Array, answer: (reply: Reply) => boolean): void {
    const replyKind: MessageKind = kind === 'ping' ? 'pong' : 'response';
    const sendReply = (reply: Reply) => {
      const bytes = reply.ok ? reply.data.slice() : new Uint8Array(0);
      const message = this.newMessage(replyKind, link, server, client, null, bytes);
      this.sendReliable(message, (copy) => {
        if (!answer(reply.ok ? { ok: true, data: copy } : reply)) this.drop(message, 'late');
      });
    };
    if (kind === 'ping') return sendReply({ ok: true, data: new Uint8Array(0) });
    runHandler(server, client.id, data).then(
      (reply) =>
        // As the libp2p transport does: a reply over the limit is refused, not sent.
        reply.byteLength > this.conditions.maxMessageBytes
          ? sendReply({ ok: false, error: new MemoryTransportError('too-large', `reply of ${reply.byteLength} bytes exceeds ${this.conditions.maxMessageBytes}`) })
          : sendReply({ ok: true, data: reply }),
      (err: unknown) => sendReply({ ok: false, error: new MemoryTransportError('remote', `${server.id} failed the request: ${errorMessage(err)}`) }),
    );
  }

  private newMessage(kind: MessageKind, link: Link, from: NodeState, to: NodeState, topic: string | null, data: Uint8Array): Message {
    return { msgId: this.nextMsgId++, gossipId: 0, relayed: false, origin: from.id, duplicated: false, kind, link, from, to, topic, data };
  }

  /** Gossip: may be lost or duplicated on top of the checks every message gets. */
  private sendLossy(message: Message): void {
    if (!this.leave(message)) return;
    if (this.rng.chance(this.conditions.lossRate)) return this.drop(message, 'loss');
    const copies = this.rng.chance(this.conditions.duplicateRate) ? 2 : 1;
    if (copies === 2) {
      this.count(message, 'duplicated');
      message.duplicated = true;
    }
    for (let i = 0; i < copies; i++) {
      this.schedule(message, (copy) => this.deliverGossip(message, copy));
    }
  }

  private sendReliable(message: Message, onArrive: (copy: Uint8Array) => void): void {
    if (this.leave(message)) this.schedule(message, onArrive);
  }

  /** Counts the send and applies the sender-side checks. False if the message is already lost. */
  private leave(message: Message): boolean {
    this.count(message, 'sent');
    const reason = this.departureProblem(message);
    if (reason) this.drop(message, reason);
    return reason === null;
  }

  private departureProblem(message: Message): DropReason | null {
    if (!message.from.alive || !message.link.open) return 'closed';
    if (message.from.frozen) return 'sender-frozen';
    if (this.isPartitioned(message.from.id, message.to.id)) return 'partition';
    return null;
  }

  /** Network delivery runs on the shared clock: a frozen receiver does not delay it, it loses it (or reads it at thaw: frozenReceiversBuffer). */
  private schedule(message: Message, onArrive: (copy: Uint8Array) => void): void {
    const delayMs = this.rng.int(this.conditions.minDelayMs, this.conditions.maxDelayMs);
    this.clock.setTimer(delayMs, () => {
      const reason = this.arrivalProblem(message);
      if (reason === 'receiver-frozen' && this.conditions.frozenReceiversBuffer) {
        message.to.deferred.push(() => {
          const late = this.arrivalProblem(message);
          if (late) return this.drop(message, late);
          this.count(message, 'delivered');
          onArrive(message.data.slice());
        });
        return;
      }
      if (reason) return this.drop(message, reason);
      this.count(message, 'delivered');
      onArrive(message.data.slice());
    });
  }

  private arrivalProblem(message: Message): DropReason | null {
    if (!message.link.open || !message.to.alive) return 'closed';
    if (message.to.frozen) return 'receiver-frozen';
    if (this.isPartitioned(message.from.id, message.to.id)) return 'partition';
    if (!message.to.handlers) return 'no-handler';
    // gossipsub hands a message to the application once; copies the network itself
    // duplicated (duplicateRate) still arrive twice, to keep merges honest about that.
    if (message.gossipId !== 0 && !message.duplicated && message.to.seen.has(message.gossipId)) return 'seen';
    return null;
  }

  private deliverGossip(message: Message, copy: Uint8Array): void {
    const to = message.to;
    const first = !to.seen.has(message.gossipId);
    remember(to, message.gossipId);
    const handlers = to.handlers as TransportEvents;
    this.handle(to, message.origin, 'onMessage', () => handlers.onMessage(message.topic as string, message.origin, copy));
    if (first) this.relay(to, message);
  }

  private drop(message: Message, reason: DropReason): void {
    this.count(message, 'dropped', reason);
  }

  private count(message: Message, outcome: TraceEvent['outcome'], reason?: DropReason): void {
    this.counts[outcome]++;
    if (outcome === 'sent') this.counts.sentBytes += message.data.byteLength;
    if (!this.onTrace) return;
    const event: TraceEvent = {
      atMs: this.clock.now(),
      msgId: message.msgId,
      kind: message.kind,
      from: message.from.id,
      to: message.to.id,
      topic: message.topic,
      bytes: message.data.byteLength,
      outcome,
    };
    if (reason) event.reason = reason;
    this.onTrace(event);
  }

  private assertSize(data: Uint8Array): void {
    if (data.byteLength > this.conditions.maxMessageBytes) {
      throw new Error(`message of ${data.byteLength} bytes exceeds maxMessageBytes ${this.conditions.maxMessageBytes}`);
    }
  }

  private requireNode(nodeId: string): NodeState {
    const node = this.nodes.get(nodeId);
    if (!node) throw new Error(`no node ${nodeId} on this network`);
    return node;
  }

  private requireAlive(nodeId: string): NodeState {
    const node = this.requireNode(nodeId);
    if (!node.alive) throw new Error(`node ${nodeId} has crashed; restart it first`);
    return node;
  }
}

type Reply = { ok: true; data: Uint8Array } | { ok: false; error: MemoryTransportError };

/** What a MemoryTransport may ask of its network; MemoryNetwork builds one per node incarnation. */
interface NodePort {
  node: NodeState;
  setHandlers(handlers: TransportEvents): void;
  publish(topic: string, data: Uint8Array): void;
  request(peerId: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  dial(peerId: string): Promise<void>;
  hangUp(peerId: string): Promise<void>;
  ping(peerId: string, timeoutMs: number): Promise<number>;
}

/** One node's view of the MemoryNetwork; what the node under test is given as its Transport. */
export class MemoryTransport implements Transport {
  readonly localId: string;
  private readonly node: NodeState;

  /** Made by MemoryNetwork.endpoint / restart, not directly. */
  constructor(private readonly port: NodePort) {
    this.node = port.node;
    this.localId = port.node.id;
  }

  /** This incarnation's clock: skewed, and frozen/stopped with the node. */
  get clock(): ClockView {
    return this.node.clock;
  }

  /** 0 for the first process with this id, +1 on each restart. */
  get incarnation(): number {
    return this.node.incarnation;
  }

  get alive(): boolean {
    return this.node.alive;
  }

  get frozen(): boolean {
    return this.node.frozen;
  }

  setHandlers(handlers: TransportEvents): void {
    this.port.setHandlers(handlers);
  }

  publish(topic: string, data: Uint8Array): void {
    this.port.publish(topic, data);
  }

  request(peer: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return this.port.request(peer, data, timeoutMs);
  }

  connectedPeers(): string[] {
    this.node.sortedPeers ??= [...this.node.links.keys()].sort();
    return this.node.sortedPeers.slice();
  }

  dial(peer: string, _addrs: string[] = []): Promise<void> {
    return this.port.dial(peer);
  }

  hangUp(peer: string): Promise<void> {
    return this.port.hangUp(peer);
  }

  ping(peer: string, timeoutMs: number): Promise<number> {
    return this.port.ping(peer, timeoutMs);
  }

  addresses(): string[] {
    return [`/memory/${this.localId}`];
  }
}

/** The handler may throw synchronously or return a rejected promise; both become a failed reply. */
function runHandler(server: NodeState, from: string, data: Uint8Array): Promise<Uint8Array> {
  const handlers = server.handlers;
  if (!handlers) return Promise.reject(new Error('no request handler'));
  try {
    return Promise.resolve(handlers.onRequest(from, data));
  } catch (err) {
    return Promise.reject(err);
  }
}

function remember(node: NodeState, gossipId: number): void {
  node.seen.add(gossipId);
  if (node.seen.size > SEEN_CACHE_SIZE) node.seen.delete(node.seen.values().next().value as number);
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function checkConditions(c: NetworkConditions): NetworkConditions {
  const rate = (x: number) => x >= 0 && x <= 1;
  if (!rate(c.lossRate) || !rate(c.duplicateRate)) throw new Error('lossRate and duplicateRate must be in [0, 1]');
  if (!Number.isInteger(c.minDelayMs) || !Number.isInteger(c.maxDelayMs) || c.minDelayMs < 0 || c.maxDelayMs < c.minDelayMs) {
    throw new Error(`need integers 0 <= minDelayMs <= maxDelayMs, got ${c.minDelayMs}, ${c.maxDelayMs}`);
  }
  if (!(c.maxMessageBytes > 0)) throw new Error('maxMessageBytes must be > 0');
  return c;
}
