// The webhook client against a real HTTP server on 127.0.0.1 (an answer that never ends, one
// that trickles, one that never comes) and the secret-file rules against real files: a FIFO,
// /dev/zero, a large file, loose modes, a good key.
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../testing/wait.js';
import { signatureOf } from './notifier.js';
import { MAX_ANSWER_BYTES, MAX_SECRET_FILE_BYTES, readSecretFile, SecretFileError, webhookClient } from './webhook-io.js';

/** libuv reads a socket 64 KiB at a time: the read that passes the cap may bring up to this much past it. */
const ONE_READ_BYTES = 64 * 1024;

let server: Server | null = null;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = null;
});

/** A receiver that reads each POST, then answers with `answer`; counts the POSTs read, the answers whose connection went away and the bytes written. */
async function receiver(answer: (res: ServerResponse) => void): Promise<{ url: string; received: () => number; closed: () => number; sentBytes: () => number }> {
  let received = 0;
  let closed = 0;
  let sentBytes = 0;
  server = createServer((req, res) => {
    res.on('close', () => (closed += 1));
    const write = res.write.bind(res);
    res.write = ((chunk: Buffer, ...rest: never[]) => {
      sentBytes += chunk.length;
      return write(chunk, ...rest);
    }) as typeof res.write;
    req.resume();
    req.on('end', () => {
      received += 1;
      answer(res);
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received: () => received, closed: () => closed, sentBytes: () => sentBytes };
}

/** Writes 16 KiB pieces for as long as the client reads them. */
function endless(res: ServerResponse): void {
  const piece = Buffer.alloc(16 * 1024, 'x');
  res.writeHead(200, { 'content-type': 'text/plain' });
  const pump = () => {
    while (!res.destroyed && res.write(piece));
    if (!res.destroyed) res.once('drain', pump);
  };
  pump();
}

describe('webhook POST', () => {
  const never = new AbortController().signal;

  it('an answer whose body never ends is a delivery: at most the cap is read, then the connection is closed', async () => {
    const rx = await receiver(endless);
    const client = webhookClient({ timeoutMs: 30_000, maxAnswerBytes: MAX_ANSWER_BYTES });
    const answer = await client.post(rx.url, '{}', { 'content-type': 'application/json' }, never);
    expect(answer.status).toBe(200);
    expect(answer.answerBytes).toBeGreaterThan(MAX_ANSWER_BYTES);
    expect(answer.answerBytes).toBeLessThanOrEqual(MAX_ANSWER_BYTES + ONE_READ_BYTES);
    await waitFor(() => rx.closed() === 1, { timeoutMs: 10_000, what: 'the receiver seeing the connection closed' });
    // What the receiver got out before it noticed: socket buffers, not the body's worth.
    expect(rx.sentBytes()).toBeLessThan(64 * 1024 * 1024);
  });

  it('a body that trickles on without end does not hold the delivery past the timeout; the status still decides', async () => {
    const rx = await receiver((res) => {
      res.writeHead(200);
      const timer = setInterval(() => (res.destroyed ? clearInterval(timer) : res.write('.')), 20);
    });
    const client = webhookClient({ timeoutMs: 500, maxAnswerBytes: MAX_ANSWER_BYTES });
    const startedMs = performance.now();
    const answer = await client.post(rx.url, '{}', {}, never);
    expect(answer.status).toBe(200);
    expect(answer.answerBytes).toBeLessThan(MAX_ANSWER_BYTES);
    expect(performance.now() - startedMs).toBeGreaterThanOrEqual(450);
    expect(performance.now() - startedMs).toBeLessThan(5_000);
    await waitFor(() => rx.closed() === 1, { timeoutMs: 10_000, what: 'the receiver seeing the connection closed' });
  });

  it('a stop aborts a POST that is waiting for its answer', async () => {
    const rx = await receiver(() => undefined); // never answers
    const stop = new AbortController();
    const client = webhookClient({ timeoutMs: 30_000, maxAnswerBytes: MAX_ANSWER_BYTES });
    const post = client.post(rx.url, '{}', {}, stop.signal);
    await waitFor(() => rx.received() === 1, { timeoutMs: 10_000, what: 'the POST received' });
    stop.abort(new Error('the notifier stopped'));
    await expect(post).rejects.toThrow(/the notifier stopped/);
  });
});

describe('--notify-secret-file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chorus-secret-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const file = async (name: string, content: string | Buffer, mode: number) => {
    const path = join(dir, name);
    await writeFile(path, content);
    await chmod(path, mode);
    return path;
  };
  const refusal = async (path: string): Promise<string> => {
    const err = await readSecretFile(path).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SecretFileError);
    const message = (err as Error).message;
    expect(message).toContain(`--notify-secret-file ${path}: `);
    expect(message).toContain('mode 0600 or 0400'); // says which files are taken
    return message;
  };

  it('a good key (mode 0600): its content without the trailing newline, and the HMAC a receiver checks', async () => {
    const path = await file('hook.key', 'sesame\n', 0o600);
    const key = await readSecretFile(path);
    expect(key).toBe('sesame');
    expect(signatureOf(key, '{"a":1}')).toBe(`sha256=${createHmac('sha256', 'sesame').update('{"a":1}').digest('hex')}`);
    // Read-only for its owner, through a symlink (as a mounted secret is), and at the size limit: taken too.
    const readOnly = await file('ro.key', 'k', 0o400);
    await symlink(readOnly, join(dir, 'link.key'));
    expect(await readSecretFile(join(dir, 'link.key'))).toBe('k');
    expect(await readSecretFile(await file('full.key', 'k'.repeat(MAX_SECRET_FILE_BYTES), 0o600))).toHaveLength(MAX_SECRET_FILE_BYTES);
  });

  it('a FIFO is refused at once, without a writer, and leaves no read behind', async () => {
    const path = join(dir, 'fifo');
    execFileSync('mkfifo', ['-m', '600', path]);
    expect(await refusal(path)).toMatch(/it is not a regular file \(a FIFO\)/);
    // A blocking open would still be waiting on the thread pool for a writer.
    expect(process.getActiveResourcesInfo().filter((r) => r.startsWith('FSReq'))).toEqual([]);
  });

  it('refuses /dev/zero, a directory, a large file, an empty one and ones others may read', async () => {
    expect(await refusal('/dev/zero')).toMatch(/not a regular file \(a character device\)/);
    expect(await refusal(dir)).toMatch(/not a regular file \(a directory\)/);
    expect(await refusal(await file('big.key', Buffer.alloc(1024 * 1024, 'k'), 0o600))).toMatch(/it is 1048576 bytes, over 4096/);
    expect(await refusal(await file('over.key', 'k'.repeat(MAX_SECRET_FILE_BYTES + 1), 0o600))).toMatch(/over 4096/);
    expect(await refusal(await file('empty.key', '\n', 0o600))).toMatch(/it is empty/);
    expect(await refusal(await file('open.key', 'sesame', 0o644))).toMatch(/its mode 0644 lets group or others in \(chmod 600 it\)/);
    expect(await refusal(await file('group.key', 'sesame', 0o640))).toMatch(/its mode 0640/);
    expect(await refusal(join(dir, 'missing.key'))).toMatch(/cannot open it \(ENOENT\)/);
  });

  it.runIf(existsSync('/etc/shadow'))('refuses /etc/shadow, whoever the daemon runs as (0640 root:shadow, or not readable at all)', async () => {
    expect(await refusal('/etc/shadow')).toMatch(/its mode 06[04]0|cannot open it \(EACCES\)/);
  });
});
