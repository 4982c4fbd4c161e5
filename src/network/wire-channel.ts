// One long-lived stream to a peer that carries many requests and replies, each tagged
// with an id. Opening a libp2p stream per request costs a yamux stream set-up, a
// protocol negotiation and a close, several encrypted frames each way; for the small,
// frequent requests of the membership protocol (a probe every 500 ms) that was most of
// an idle node's CPU. Large transfers still get a stream of their own (see
// Libp2pTransport.request), so that they never hold up a probe behind them.
//
// Frame (inside a varint length prefix): kind (1 byte), id (4 bytes, big-endian), payload.
// Either side may send requests on a channel, whoever opened it; a reply goes back on the
// channel its request came on, with the request's id.
import type { Stream } from '@libp2p/interface';
import { LengthPrefixedDecoder } from '@libp2p/utils';
import type { Uint8ArrayList } from 'uint8arraylist';

const KIND_REQUEST = 0;
const KIND_REPLY_OK = 1;
const KIND_REPLY_ERROR = 2;
const HEADER_BYTES = 5;

/** The remote handler threw (or refused the request); `message` says why. */
export class RemoteHandlerError extends Error {
  override readonly name = 'RemoteHandlerError';
}

export interface WireChannelOptions {
  /** Largest payload read or written, either way; a bigger frame from the peer closes the channel. */
  maxMessageBytes: number;
  /** Requests from the peer being handled at once; more are refused with an error reply. */
  maxInFlight: number;
  /** Handles one request from the peer; a throw becomes an error reply. */
  onRequest: (data: Uint8Array) => Promise<Uint8Array>;
  /** Told once, when the channel can no longer be used. */
  onClose: (channel: WireChannel) => void;
}

interface Pending {
  resolve: (reply: Uint8Array) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** A request on a channel got no reply in time. */
export class ChannelTimeoutError extends Error {}

export class WireChannel {
  private readonly pending = new Map<number, Pending>();
  private readonly decoder: LengthPrefixedDecoder;
  private nextId = 1;
  private inFlight = 0;
  private closedWith: Error | null = null;

  constructor(
    readonly stream: Stream,
    private readonly options: WireChannelOptions,
  ) {
    const maxFrame = options.maxMessageBytes + HEADER_BYTES;
    this.decoder = new LengthPrefixedDecoder({ maxDataLength: maxFrame, maxBufferSize: maxFrame + 16 });
    stream.maxReadBufferLength = maxFrame + 16;
    stream.addEventListener('message', (evt) => this.onData(evt.data));
    stream.addEventListener('close', (evt) => this.close((evt as { error?: Error }).error ?? new Error('channel closed')));
    stream.addEventListener('remoteCloseWrite', () => this.close(new Error('peer closed the channel')));
  }

  get isOpen(): boolean {
    return this.closedWith === null;
  }

  /** Sends one request and resolves with its reply; rejects on timeout, an error reply or a closed channel. */
  request(data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffff_ffff ? 1 : this.nextId + 1;
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ChannelTimeoutError(`timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      try {
        this.send(KIND_REQUEST, id, data);
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** Stops the channel: every request waiting on it fails with `reason`. */
  close(reason: Error): void {
    if (this.closedWith) return;
    this.closedWith = reason;
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(reason);
      this.pending.delete(id);
    }
    if (this.stream.status === 'open') this.stream.abort(reason);
    this.options.onClose(this);
  }

  private send(kind: number, id: number, payload: Uint8Array): void {
    if (payload.byteLength > this.options.maxMessageBytes) {
      throw new RangeError(`${kind === KIND_REQUEST ? 'request' : 'reply'} of ${payload.byteLength} bytes exceeds the limit of ${this.options.maxMessageBytes} bytes`);
    }
    const frameLength = HEADER_BYTES + payload.byteLength;
    const prefix = varintOf(frameLength);
    const prefixBytes = prefix.byteLength;
    const frame = new Uint8Array(prefixBytes + frameLength);
    frame.set(prefix, 0);
    frame[prefixBytes] = kind;
    new DataView(frame.buffer).setUint32(prefixBytes + 1, id);
    frame.set(payload, prefixBytes + HEADER_BYTES);
    // send() queues the whole frame even when it returns false (the buffer is over its high
    // water mark); frames never interleave, and the muxer's window paces the peer.
    this.stream.send(frame);
  }

  private onData(data: Uint8Array | Uint8ArrayList): void {
    try {
      for (const frame of this.decoder.decode(data)) this.onFrame(frame.subarray());
    } catch (err) {
      const tooBig = err instanceof Error && /length/i.test(err.message);
      this.close(new Error(tooBig ? `a frame exceeds the limit of ${this.options.maxMessageBytes} bytes` : `malformed frame: ${(err as Error).message}`));
    }
  }

  private onFrame(frame: Uint8Array): void {
    if (frame.byteLength < HEADER_BYTES) throw new Error(`a frame of ${frame.byteLength} bytes has no header`);
    const kind = frame[0];
    const id = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(1);
    const payload = frame.subarray(HEADER_BYTES);
    if (kind === KIND_REQUEST) {
      this.onRequestFrame(id, payload);
      return;
    }
    if (kind !== KIND_REPLY_OK && kind !== KIND_REPLY_ERROR) throw new Error(`unknown frame kind ${String(kind)}`);
    const pending = this.pending.get(id);
    if (!pending) return; // it timed out meanwhile
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if (kind === KIND_REPLY_OK) pending.resolve(payload);
    else pending.reject(new RemoteHandlerError(new TextDecoder().decode(payload)));
  }

  private onRequestFrame(id: number, payload: Uint8Array): void {
    if (this.inFlight >= this.options.maxInFlight) {
      this.reply(KIND_REPLY_ERROR, id, new TextEncoder().encode(`busy: ${this.inFlight} requests from this peer are being handled already`));
      return;
    }
    this.inFlight += 1;
    // The payload is a view into the decoder's buffer: copy it before the next frame arrives.
    this.options.onRequest(payload.slice()).then(
      (reply) => {
        this.inFlight -= 1;
        if (reply.byteLength > this.options.maxMessageBytes) {
          this.reply(KIND_REPLY_ERROR, id, new TextEncoder().encode(`reply of ${reply.byteLength} bytes exceeds the limit of ${this.options.maxMessageBytes} bytes`));
        } else this.reply(KIND_REPLY_OK, id, reply);
      },
      (err: unknown) => {
        this.inFlight -= 1;
        this.reply(KIND_REPLY_ERROR, id, new TextEncoder().encode(err instanceof Error ? err.message : String(err)));
      },
    );
  }

  private reply(kind: number, id: number, payload: Uint8Array): void {
    if (this.closedWith || this.stream.writeStatus !== 'writable') return;
    try {
      this.send(kind, id, payload);
    } catch (err) {
      this.close(err instanceof Error ? err : new Error(String(err)));
    }
  }
}

/** The unsigned LEB128 varint that length-prefixes a frame (what LengthPrefixedDecoder reads). */
function varintOf(value: number): Uint8Array {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Uint8Array.from(bytes);
}
