// The network as the cluster logic sees it: best-effort publish to everybody, and a
// reliable request/response to one peer. libp2p is one implementation
// (src/network/libp2p-transport.ts); an in-memory network is another (src/testing).

/**
 * What the node is told. Handlers should not throw; one that does is a bug, and both
 * implementations treat it alike: from onRequest the exception (or rejection) becomes an
 * error reply to the requester; from onMessage, onPeerConnected and onPeerDisconnected it
 * is reported with the peer and counted (`handlerErrors`: the daemon logs it, the
 * simulator fails the run at its end), and delivery goes on for every other event. A
 * broken guarantee (InvariantError) never reaches the transport: the node stops first.
 */
export interface TransportEvents {
  /** A best-effort message published by `from` on `topic`. */
  onMessage(topic: string, from: string, data: Uint8Array): void;
  /** A direct request from `from`; the returned bytes are the reply. */
  onRequest(from: string, data: Uint8Array): Promise<Uint8Array>;
  /** A connection to `peer` opened (first one) or closed (last one). */
  onPeerConnected(peer: string): void;
  onPeerDisconnected(peer: string): void;
}

export interface RequestOptions {
  /**
   * A large transfer (records, logs): it may take its own stream rather than queue on the
   * peer's request channel, where it would hold up the small requests behind it.
   */
  bulk?: boolean;
}

export interface Transport {
  /** This node's id (the libp2p peer id in production). */
  readonly localId: string;
  setHandlers(handlers: TransportEvents): void;
  /** Best effort: a message to a frozen or unsubscribed peer is simply lost. */
  publish(topic: string, data: Uint8Array): void;
  /** Reliable request to one peer; rejects on timeout or if the peer is unreachable. */
  request(peer: string, data: Uint8Array, timeoutMs: number, options?: RequestOptions): Promise<Uint8Array>;
  /** Peers with an open connection now. */
  connectedPeers(): string[];
  /** Ask the transport to connect to a peer it has learned addresses for. */
  dial(peer: string, addrs: string[]): Promise<void>;
  /** Closes every connection to the peer on purpose (the connection budget); both sides see onPeerDisconnected. */
  hangUp(peer: string): Promise<void>;
  /** Round trip time to the peer, or rejects after `timeoutMs`. */
  ping(peer: string, timeoutMs: number): Promise<number>;
  /** Addresses other nodes can reach this one at. */
  addresses(): string[];
}
