// Request and reply between two peers. Small requests share one long-lived channel per
// connection (wire-channel.ts), so a probe never waits for a stream to open; a large
// transfer, or one marked bulk, gets a stream of its own (RPC_PROTOCOL, one frame each
// way: framing.ts), so it never holds up the small requests queued behind it.
import type { Connection, PeerId, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import type { ChorusConfig } from '../core/config.js';
import type { RequestOptions, TransportEvents } from '../core/transport.js';
import { decodeReply, describeReadError, errorReply, okReply, readFrame, writeFrame } from './framing.js';
import type { ChorusLibp2p } from './libp2p-build.js';
import { ChannelTimeoutError, RemoteHandlerError, WireChannel } from './wire-channel.js';

export const RPC_PROTOCOL = '/chorus/rpc/1.0.0';
/** The long-lived request channel (wire-channel.ts); RPC_PROTOCOL is kept for large transfers. */
export const WIRE_PROTOCOL = '/chorus/wire/1.0.0';
/** Requests larger than this, and those marked bulk, get a stream of their own. */
const CHANNEL_REQUEST_MAX_BYTES = 64 * 1024;
/** Channels per connection and direction: one is used; a second appears when both sides open one at once. */
const MAX_WIRE_STREAMS = 4;

/** Parsed peer ids by their string, so that a request does not decode base58 each time (cleared when full). */
const parsedPeerIds = new Map<string, PeerId>();
const MAX_PARSED_PEER_IDS = 4096;

export function peerIdOf(peer: string): PeerId {
  let id = parsedPeerIds.get(peer);
  if (id === undefined) {
    if (parsedPeerIds.size >= MAX_PARSED_PEER_IDS) parsedPeerIds.clear();
    id = peerIdFromString(peer);
    parsedPeerIds.set(peer, id);
  }
  return id;
}

export interface RequestCounters {
  channelsOpened: number;
  requestStreamsOpened: number;
  droppedBeforeHandlers: number;
}

export interface RequestReplyDeps {
  node: ChorusLibp2p;
  config: Pick<ChorusConfig, 'maxMessageBytes' | 'maxRpcStreamsPerConnection' | 'inboundReadTimeoutMs'>;
  counters: RequestCounters;
  /** The node's handlers; undefined while the node is starting (its requests are refused). */
  handlers: () => TransportEvents | undefined;
  isStarted: () => boolean;
}

export class RequestReply {
  /** Open request channels by peer (usually one; two when both sides opened one at once). */
  private readonly channels = new Map<string, WireChannel[]>();
  /** Channels being opened, so that concurrent requests share one. */
  private readonly opening = new Map<string, Promise<WireChannel>>();

  constructor(private readonly deps: RequestReplyDeps) {}

  /** Takes requests on both protocols (before the node starts). */
  async register(): Promise<void> {
    const { node, config } = this.deps;
    await node.handle(RPC_PROTOCOL, (stream, connection) => this.onRpcStream(stream, connection), {
      maxInboundStreams: config.maxRpcStreamsPerConnection,
      maxOutboundStreams: config.maxRpcStreamsPerConnection,
    });
    await node.handle(WIRE_PROTOCOL, (stream, connection) => void this.attachChannel(connection.remotePeer.toString(), stream), {
      maxInboundStreams: MAX_WIRE_STREAMS,
      maxOutboundStreams: MAX_WIRE_STREAMS,
    });
  }

  async request(peer: string, data: Uint8Array, timeoutMs: number, options: RequestOptions = {}): Promise<Uint8Array> {
    const { maxMessageBytes } = this.deps.config;
    if (data.byteLength > maxMessageBytes) throw new RangeError(`request of ${data.byteLength} bytes exceeds the limit of ${maxMessageBytes} bytes`);
    // Only over a connection that exists: dialling is the caller's decision (the membership
    // keeps a budget of connections; an implicit dial would reopen one it just closed).
    if (this.deps.node.getConnections(peerIdOf(peer)).length === 0) throw new Error(`request to ${peer} failed: not connected`);
    if (options.bulk === true || data.byteLength > CHANNEL_REQUEST_MAX_BYTES) return this.requestOnOwnStream(peer, data, timeoutMs);
    const startedMs = Date.now();
    try {
      const channel = await this.channelTo(peer, timeoutMs);
      return await channel.request(data, Math.max(1, timeoutMs - (Date.now() - startedMs)));
    } catch (err) {
      if (err instanceof RemoteHandlerError) throw err;
      // The channel's timer had what was left of timeoutMs (it may fire a millisecond before Date.now() says the whole wait is over).
      if (err instanceof ChannelTimeoutError || Date.now() - startedMs >= timeoutMs) throw new Error(`request to ${peer} timed out after ${timeoutMs} ms`, { cause: err });
      throw new Error(`request to ${peer} failed: ${(err as Error).message}`, { cause: err });
    }
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

  /** Closes every channel (the transport stops). */
  closeAll(): void {
    for (const channels of this.channels.values()) for (const channel of [...channels]) channel.close(new Error('transport stopped'));
    this.channels.clear();
  }

  /** The open channel to `peer`, or a new one (shared by requests made while it opens). */
  private async channelTo(peer: string, timeoutMs: number): Promise<WireChannel> {
    const open = this.channels.get(peer)?.find((c) => c.isOpen);
    if (open) return open;
    let opening = this.opening.get(peer);
    if (!opening) {
      this.deps.counters.channelsOpened++;
      opening = this.deps.node
        .dialProtocol(peerIdOf(peer), WIRE_PROTOCOL, { signal: AbortSignal.timeout(timeoutMs) })
        .then((stream) => this.attachChannel(peer, stream))
        .finally(() => this.opening.delete(peer));
      this.opening.set(peer, opening);
    }
    return opening;
  }

  private attachChannel(peer: string, stream: Stream): WireChannel {
    const channel = new WireChannel(stream, {
      maxMessageBytes: this.deps.config.maxMessageBytes,
      maxInFlight: this.deps.config.maxRpcStreamsPerConnection,
      onRequest: (data) => this.answer(peer, data),
      onClose: (closed) => {
        const remaining = (this.channels.get(peer) ?? []).filter((c) => c !== closed);
        if (remaining.length > 0) this.channels.set(peer, remaining);
        else this.channels.delete(peer);
      },
    });
    if (!this.deps.isStarted()) {
      channel.close(new Error('transport stopped'));
      return channel;
    }
    this.channels.set(peer, [...(this.channels.get(peer) ?? []), channel]);
    return channel;
  }

  /** The node's answer to a request (on a channel or a stream of its own); a throw becomes an error reply. */
  private async answer(from: string, data: Uint8Array): Promise<Uint8Array> {
    const handlers = this.deps.handlers();
    if (handlers === undefined) {
      this.deps.counters.droppedBeforeHandlers++;
      throw new Error('node is starting and not yet accepting requests');
    }
    return handlers.onRequest(from, data);
  }

  /** A request on a stream of its own (a large transfer). */
  private async requestOnOwnStream(peer: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const signal = AbortSignal.timeout(timeoutMs);
    let stream: Stream | undefined;
    try {
      this.deps.counters.requestStreamsOpened++;
      stream = await this.deps.node.dialProtocol(peerIdOf(peer), RPC_PROTOCOL, { signal });
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
    const { maxMessageBytes } = this.deps.config;
    const stopOnAbort = () => stream.abort(new Error('request timed out'));
    signal.addEventListener('abort', stopOnAbort, { once: true });
    try {
      stream.maxReadBufferLength = maxMessageBytes + 16;
      // +1: the reply carries a status byte in front of up to maxMessageBytes of payload.
      const reply = readFrame(stream, maxMessageBytes + 1);
      let writeDone = false;
      writeFrame(stream, data, signal)
        .then(() => stream.close({ signal }))
        .then(() => (writeDone = true))
        .catch(() => {}); // A refused request shows up as an error reply or a failed read.
      const frame = await reply.catch((err: unknown) => {
        throw new Error(describeReadError(err, maxMessageBytes, 'reply'), { cause: err });
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
    const { maxMessageBytes, inboundReadTimeoutMs } = this.deps.config;
    const signal = AbortSignal.timeout(inboundReadTimeoutMs);
    const stopOnAbort = () => stream.abort(new Error('request did not arrive in time'));
    signal.addEventListener('abort', stopOnAbort, { once: true });
    try {
      stream.maxReadBufferLength = maxMessageBytes + 16;
      let request: Uint8Array;
      try {
        request = await readFrame(stream, maxMessageBytes);
      } catch (err) {
        await this.sendReply(stream, errorReply(describeReadError(err, maxMessageBytes, 'request')));
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
    const { maxMessageBytes } = this.deps.config;
    try {
      const result = await this.answer(from, request);
      if (result.byteLength > maxMessageBytes) return errorReply(`reply of ${result.byteLength} bytes exceeds the limit of ${maxMessageBytes} bytes`);
      return okReply(result);
    } catch (err) {
      return errorReply(err instanceof Error ? err.message : String(err));
    }
  }

  private async sendReply(stream: Stream, reply: Uint8Array): Promise<void> {
    if (stream.writeStatus !== 'writable') return;
    const signal = AbortSignal.timeout(this.deps.config.inboundReadTimeoutMs);
    await writeFrame(stream, reply, signal);
    await stream.close({ signal });
  }
}
