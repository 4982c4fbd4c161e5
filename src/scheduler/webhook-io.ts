// What the webhook notifier does outside the process: one POST, whose answer is read only
// up to a small cap and thrown away, and the secret file, read without blocking and only
// when it is a small private regular file. Both bounded, so a receiver or a path cannot
// take the leader's memory or hold its stop.
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import type { NotifierDeps } from './notifier.js';

/** Bytes of an answer's body read (and dropped) before the connection is closed: the status alone decides. */
export const MAX_ANSWER_BYTES = 64 * 1024;
/** Largest secret file taken: a key is 32 to 64 bytes; anything much larger is not one. */
export const MAX_SECRET_FILE_BYTES = 4096;

/** Which files serve as a secret, for every message that refuses one. */
export const ACCEPTED_SECRET_FILES = `a regular file of at most ${MAX_SECRET_FILE_BYTES} bytes, not empty, with no group or other permissions (mode 0600 or 0400, as ssh asks of a private key)`;

/** A --notify-secret-file that cannot serve as a key; the message names the file and what is wrong. */
export class SecretFileError extends Error {
  override readonly name = 'SecretFileError';
}

export interface WebhookClientOptions {
  /** A POST that has not answered after this is a failed try; an answer's body is not read past it either (config.webhookTimeoutMs). */
  timeoutMs: number;
  maxAnswerBytes: number;
}

/** The daemon's webhook client: one POST with a timeout, redirects not followed (a 3xx is a failed try). */
export function webhookClient(options: WebhookClientOptions): Pick<NotifierDeps, 'post' | 'readSecret'> {
  return {
    post: async (url, body, headers, stop) => {
      const signal = AbortSignal.any([stop, AbortSignal.timeout(options.timeoutMs)]);
      const res = await fetch(url, { method: 'POST', body, headers, redirect: 'manual', signal });
      return { status: res.status, answerBytes: await discardAnswer(res.body, options.maxAnswerBytes) };
    },
    readSecret: readSecretFile,
  };
}

/**
 * Reads an answer's body until it ends, passes `maxBytes` or the request's signal fires, keeping
 * none of it, then cancels the rest (the connection is closed rather than drained). Returns the
 * bytes read. A body that breaks off is no failure: the status came before it.
 */
async function discardAnswer(body: ReadableStream<Uint8Array> | null, maxBytes: number): Promise<number> {
  if (!body) return 0;
  const reader = body.getReader();
  let bytes = 0;
  try {
    while (bytes <= maxBytes) {
      const chunk = await reader.read();
      if (chunk.done) return bytes;
      bytes += chunk.value.byteLength;
    }
  } catch {
    // Timed out, stopped, or the receiver hung up: what was read is all there is.
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return bytes;
}

/**
 * The key in `path` (its trailing newline dropped), or a SecretFileError. Opened with
 * O_NONBLOCK, so a FIFO without a writer cannot hold a thread of the pool (which also holds the
 * process's exit); what the open fd is decides, not what the path was when looked at.
 */
export async function readSecretFile(path: string): Promise<string> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    throw refused(path, `cannot open it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    const problem = secretFileProblem(await handle.stat());
    if (problem !== null) throw refused(path, problem);
    // One byte more than allowed: a file that grew since fstat is still caught.
    const buffer = Buffer.alloc(MAX_SECRET_FILE_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > MAX_SECRET_FILE_BYTES) throw refused(path, `it is over ${MAX_SECRET_FILE_BYTES} bytes`);
    const key = buffer.subarray(0, length).toString('utf8').replace(/\r?\n$/, '');
    if (key.length === 0) throw refused(path, 'it is empty');
    return key;
  } catch (err) {
    if (err instanceof SecretFileError) throw err;
    throw refused(path, `cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** What makes an open file unfit as a key, or null. */
export function secretFileProblem(stats: Pick<Stats, 'mode' | 'size'> & { isFile(): boolean }): string | null {
  if (!stats.isFile()) return `it is not a regular file (${fileTypeOf(stats.mode)})`;
  if (stats.size > MAX_SECRET_FILE_BYTES) return `it is ${stats.size} bytes, over ${MAX_SECRET_FILE_BYTES}`;
  const loose = stats.mode & 0o077;
  if (loose !== 0) return `its mode ${octal(stats.mode & 0o777)} lets group or others in (chmod 600 it)`;
  return null;
}

function refused(path: string, problem: string): SecretFileError {
  return new SecretFileError(`--notify-secret-file ${path}: ${problem}. A secret file must be ${ACCEPTED_SECRET_FILES}.`);
}

function fileTypeOf(mode: number): string {
  switch (mode & constants.S_IFMT) {
    case constants.S_IFDIR:
      return 'a directory';
    case constants.S_IFIFO:
      return 'a FIFO';
    case constants.S_IFCHR:
      return 'a character device';
    case constants.S_IFBLK:
      return 'a block device';
    case constants.S_IFSOCK:
      return 'a socket';
    default:
      return `type ${octal(mode & constants.S_IFMT)}`;
  }
}

const octal = (n: number) => `0${n.toString(8)}`;
