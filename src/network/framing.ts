// How a request and its reply travel on a stream of their own (RPC_PROTOCOL): one
// length-prefixed frame each way; a reply starts with a status byte (ok or error).
import * as lp from 'it-length-prefixed';
import type { Stream } from '@libp2p/interface';
import { RemoteHandlerError } from './wire-channel.js';

const REPLY_OK = 0;
const REPLY_ERROR = 1;

/** Writes one length-prefixed frame, waiting for the stream to drain when its buffer is full. */
export async function writeFrame(stream: Stream, payload: Uint8Array, signal: AbortSignal): Promise<void> {
  // Callers enforce the limit; lift the encoder's own 4 MiB default out of the way.
  const frame = lp.encode.single(payload, { maxDataLength: payload.byteLength });
  if (!stream.send(frame)) await stream.onDrain({ signal });
}

/** Reads exactly one length-prefixed frame; a larger declared length fails before it is buffered. */
export async function readFrame(stream: Stream, maxBytes: number): Promise<Uint8Array> {
  for await (const frame of lp.decode(stream, { maxDataLength: maxBytes })) {
    return frame.subarray();
  }
  throw new Error('stream closed before a complete frame arrived');
}

/** Reads until `byteCount` bytes arrived (a ping's echo), or fails when the stream ends first or `signal` aborts. */
export async function readBytes(stream: Stream, byteCount: number, signal: AbortSignal): Promise<void> {
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

/** A reply frame: the status byte, then the handler's answer. */
export function okReply(payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(payload.byteLength + 1);
  frame[0] = REPLY_OK;
  frame.set(payload, 1);
  return frame;
}

/** An error reply frame: the status byte, then the message the requester's error carries. */
export function errorReply(message: string): Uint8Array {
  const text = new TextEncoder().encode(message);
  const frame = new Uint8Array(text.byteLength + 1);
  frame[0] = REPLY_ERROR;
  frame.set(text, 1);
  return frame;
}

/** The answer in a reply frame; an error reply is thrown as a RemoteHandlerError. */
export function decodeReply(frame: Uint8Array): Uint8Array {
  const status = frame[0];
  if (status === REPLY_OK) return frame.subarray(1);
  if (status === REPLY_ERROR) throw new RemoteHandlerError(new TextDecoder().decode(frame.subarray(1)));
  throw new Error(`malformed reply (status byte ${String(status)})`);
}

/** What went wrong reading a frame, in words: too large, or why it could not be read. */
export function describeReadError(err: unknown, maxBytes: number, what: string): string {
  if (err instanceof Error && err.name === 'InvalidDataLengthError') {
    return `${what} exceeds the limit of ${maxBytes} bytes`;
  }
  return `could not read ${what}: ${err instanceof Error ? err.message : String(err)}`;
}
