// Reading a node's output of an instance from a position, for `instance logs --follow`.
// A node's output of an instance is a sequence of parts (the pre step, attempts 1, 2...,
// the post step: they run one after the other), each with two byte streams. A position
// is a part and a byte offset in each of its streams; offsets count every byte the
// command wrote, kept or not, so a running attempt (its live buffer) and an ended one
// (its saved log: the tail and how many bytes were dropped before it) are read the same
// way, and a follower gets each byte once, whichever it was read from.
import { z } from 'zod';
import { MAX_FOLLOW_WAIT_MS } from '../core/config.js';
import type { OutputStream } from '../executor/executor.js';
import type { StepName } from '../records/types.js';
import type { SubtaskLog } from '../store/output-store.js';

export const STREAMS: readonly OutputStream[] = ['stdout', 'stderr'];

/** Part numbers: the pre step first, then attempt N is part N, the post step last (attempts stay far below it: at most 101). */
export const PRE_PART = 0;
export const POST_PART = 1000;

export function partOf(step: StepName | null, attempt: number): number {
  return step === 'pre' ? PRE_PART : step === 'post' ? POST_PART : attempt;
}

/** Where a follower is in a node's output: everything before it was delivered. */
export interface FollowPosition {
  part: number;
  stdout: number;
  stderr: number;
}

export const START: FollowPosition = { part: PRE_PART, stdout: 0, stderr: 0 };

/** The bytes of a stream a node still holds, and the stream offset of the first. */
export interface HeldBytes {
  bytes: Buffer;
  startOffset: number;
}

/** What a node holds of one part of its output. */
export interface PartOutput {
  part: number;
  step: StepName | null;
  attempt: number;
  /** No more bytes will come: the attempt ended. */
  ended: boolean;
  stdout: HeldBytes;
  stderr: HeldBytes;
}

export interface FollowChunk {
  step: StepName | null;
  attempt: number;
  stream: OutputStream;
  text: string;
  /** Bytes before `text` that the node no longer held when they were asked for (its buffer keeps the newest). */
  skippedBytes: number;
}

/** A part the follower has now read to its end. */
export interface EndedPart {
  step: StepName | null;
  attempt: number;
}

export interface FollowRead {
  chunks: FollowChunk[];
  ended: EndedPart[];
  position: FollowPosition;
}

export interface StreamSlice {
  text: string;
  skippedBytes: number;
  /** Bytes of output in `text`. */
  sentBytes: number;
  nextOffset: number;
}

/** The offset just after the last byte held. */
export const endOf = (held: HeldBytes): number => held.startOffset + held.bytes.length;

/**
 * The bytes of a stream from `offset`, at most `maxBytes`, as text. It never ends inside a
 * character unless the stream has ended (the rest of it comes with the next read), and
 * when the bytes at `offset` are no longer held it starts at the first whole character
 * held and says how many bytes were skipped.
 */
export function sliceStream(held: HeldBytes, offset: number, maxBytes: number, ended: boolean): StreamSlice {
  const end = endOf(held);
  if (offset >= end) return { text: '', skippedBytes: 0, sentBytes: 0, nextOffset: offset };
  let from = offset;
  if (from < held.startOffset) from = held.startOffset + Math.min(continuationPrefix(held.bytes), held.bytes.length);
  let to = Math.min(end, from + Math.max(0, maxBytes));
  const bytes = held.bytes.subarray(from - held.startOffset, to - held.startOffset);
  if (!(ended && to === end)) to = from + wholeCharactersLength(bytes);
  return {
    text: held.bytes.subarray(from - held.startOffset, to - held.startOffset).toString('utf8'),
    skippedBytes: from - offset,
    sentBytes: to - from,
    nextOffset: to,
  };
}

/**
 * What follows `position` in a node's parts, at most `maxBytes` of output: the chunks in
 * order (a part's stdout, then its stderr), the parts read to their end, and the new
 * position. A part that is still running, or that the budget cut, keeps the position in it.
 */
export function readFrom(parts: readonly PartOutput[], position: FollowPosition, maxBytes: number): FollowRead {
  const chunks: FollowChunk[] = [];
  const ended: EndedPart[] = [];
  let budget = maxBytes;
  let at = position;
  for (const part of [...parts].sort((a, b) => a.part - b.part)) {
    if (part.part < at.part) continue;
    const from = part.part === at.part ? at : { part: part.part, stdout: 0, stderr: 0 };
    const next = { ...from };
    for (const stream of STREAMS) {
      const slice = sliceStream(part[stream], from[stream], budget, part.ended);
      budget -= slice.sentBytes;
      next[stream] = slice.nextOffset;
      if (slice.text !== '' || slice.skippedBytes > 0) chunks.push({ step: part.step, attempt: part.attempt, stream, text: slice.text, skippedBytes: slice.skippedBytes });
    }
    const readToEnd = part.ended && STREAMS.every((s) => next[s] >= endOf(part[s]));
    if (!readToEnd) return { chunks, ended, position: next };
    ended.push({ step: part.step, attempt: part.attempt });
    at = { part: part.part + 1, stdout: 0, stderr: 0 };
    if (budget <= 0) break;
  }
  return { chunks, ended, position: at };
}

/** Leading utf8 continuation bytes (the rest of a character cut off in front), at most 3. */
function continuationPrefix(buf: Buffer): number {
  let n = 0;
  while (n < 3 && n < buf.length && (buf[n]! & 0xc0) === 0x80) n++;
  return n;
}

/** The length of `buf` without a character whose last bytes are not there yet. */
export function wholeCharactersLength(buf: Buffer): number {
  // The last lead byte within the last 4 bytes decides: is its sequence complete?
  for (let i = buf.length - 1; i >= Math.max(0, buf.length - 4); i--) {
    const byte = buf[i]!;
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte
    const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return i + length > buf.length ? i : buf.length;
  }
  return buf.length; // only continuation bytes: not utf8; sent as they are
}

/** A saved log as a part: ended, its tail held from the bytes dropped before it. */
export function savedPart(log: Pick<SubtaskLog, 'step' | 'attempt' | 'stdout' | 'stderr' | 'stdoutDroppedBytes' | 'stderrDroppedBytes'>): PartOutput {
  const step = log.step ?? null;
  return {
    part: partOf(step, log.attempt),
    step,
    attempt: log.attempt,
    ended: true,
    stdout: { bytes: Buffer.from(log.stdout), startOffset: log.stdoutDroppedBytes },
    stderr: { bytes: Buffer.from(log.stderr), startOffset: log.stderrDroppedBytes },
  };
}

// ---- the request a follower sends to the node that ran the output, and its answer -----------

/** The RPC type. */
export const LOGS_FOLLOW = 'logs-follow';

const position = z.object({
  part: z.number().int().min(PRE_PART).max(POST_PART + 1),
  stdout: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  stderr: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
});

export const followRequestSchema = z.object({
  instanceId: z.string().min(1).max(200),
  position,
  waitMs: z.number().int().min(0).max(MAX_FOLLOW_WAIT_MS),
});

export type FollowRequest = z.infer<typeof followRequestSchema>;

const step = z.enum(['pre', 'post']).nullable();

export const ownerFollowReplySchema = z.object({
  chunks: z.array(z.object({ step, attempt: z.number().int().min(0), stream: z.enum(['stdout', 'stderr']), text: z.string(), skippedBytes: z.number().int().min(0) })).max(4 * (POST_PART + 2)),
  ended: z.array(z.object({ step, attempt: z.number().int().min(0) })).max(2 * (POST_PART + 2)),
  position,
  complete: z.boolean(),
  steps: z.array(z.enum(['pre', 'post'])).max(2),
});

/** What the node that ran the output answers: what follows the position, and whether anything more can come. */
export interface OwnerFollowReply extends FollowRead {
  /** Nothing runs here for the instance and everything was read: all this node's tasks of it have ended. */
  complete: boolean;
  /** The steps of the instance this node runs (a post step is created after the subtasks ended). */
  steps: StepName[];
}
