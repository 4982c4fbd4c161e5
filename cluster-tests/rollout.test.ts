// Issue 11 through the CLI, on real daemons: rolling broadcasts (--max-parallel, --waves,
// --max-failures), a quorum, pause and resume, plans, fire history and a webhook received
// by a local HTTP server (127.0.0.1, port 0), signed with the secret file's key; and the
// webhooks' bounds (issue 27): secret files that are refused, a receiver whose answer never
// ends, and a stop while deliveries are out.
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { FireView, InstanceView } from '../src/api/views.js';
import type { PlanView } from '../src/scheduler/plan.js';
import { peakRunning } from '../src/testing/checker.js';
import { EXIT, expectExit, startCluster, startDaemon, tempDir, useProcessCleanup, waitFor, waitForAgreement, type Daemon } from './support/index.js';

useProcessCleanup();

const TEST_TIMEOUT_MS = 240_000;

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

const servers: { close: () => void }[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function webhookServer(): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push({ close: () => server.close() });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received };
}

/**
 * A receiver that answers every POST with 200 and a body that never ends (`endless`), or never
 * answers at all (`silent`); counts the POSTs, the bytes it wrote and the answers whose
 * connection went away.
 */
async function badReceiver(kind: 'endless' | 'silent'): Promise<{ url: string; received: () => number; closed: () => number; sentBytes: () => number }> {
  let received = 0;
  let closed = 0;
  let sentBytes = 0;
  const piece = Buffer.alloc(64 * 1024, 'x');
  const pump = (res: ServerResponse) => {
    while (!res.destroyed) {
      sentBytes += piece.length;
      if (!res.write(piece)) return void res.once('drain', () => pump(res));
    }
  };
  const server = createServer((req, res) => {
    res.on('close', () => (closed += 1));
    req.resume();
    req.on('end', () => {
      received += 1;
      if (kind === 'silent') return;
      res.writeHead(200, { 'content-type': 'text/plain' });
      pump(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push({ close: () => (server.closeAllConnections(), server.close()) });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received: () => received, closed: () => closed, sentBytes: () => sentBytes };
}

async function runWait(d: Daemon, args: string[], exit: number = EXIT.ok): Promise<InstanceView> {
  const r = await d.cli(['run', '--wait', '--json', '--timeout', '60s', ...args], { timeoutMs: 90_000 });
  expectExit(r, exit);
  return r.json<InstanceView>();
}

describe('rolling broadcasts, plans, history and webhooks through the CLI', () => {
  it('steers a broadcast across four daemons', { timeout: TEST_TIMEOUT_MS }, async () => {
    const daemons = await startCluster({ prefix: 'roll-', count: 4, tags: [['role=web'], ['role=web'], ['role=web'], ['role=db']] });
    const [a, b] = daemons as [Daemon, Daemon, Daemon, Daemon];
    await waitForAgreement({ alive: daemons, stableMs: 1000, what: 'four daemons agreeing' });

    // --max-parallel 2: never more than two at once.
    const parallel = await runWait(a, ['--max-parallel', '2', '--', 'sleep 1']);
    expect(parallel.status).toBe('succeeded');
    expect(peakRunning(parallel)).toBe(2);
    expect(parallel.rollout).toMatchObject({ parallelLimit: 2, released: 4 });

    // --waves 1,50%,100%: the first node alone, then one more, then the last two.
    const waves = await runWait(b, ['--waves', '1,50%,100%', '--', 'sleep 0.3']);
    expect(waves.rollout?.waveSizes).toEqual([1, 1, 2]);
    const byWave = (w: number) => waves.subtasks.filter((s) => s.wave === w);
    const lastEnd = (w: number) => Math.max(...byWave(w).map((s) => Date.parse(s.finishedAt as string)));
    const firstStart = (w: number) => Math.min(...byWave(w).map((s) => Date.parse(s.startedAt as string)));
    expect(firstStart(2)).toBeGreaterThanOrEqual(lastEnd(1));
    expect(firstStart(3)).toBeGreaterThanOrEqual(lastEnd(2));

    // --max-failures 1, one at a time, failing on the first two targets: the rest end aborted, exit 1.
    const aborted = await runWait(a, ['--max-parallel', '1', '--max-failures', '1', '--', 'test "$CHORUS_SHARD_INDEX" -ge 2'], EXIT.failed);
    expect(aborted.status).toBe('failed');
    expect(aborted.subtasks.map((s) => [s.status, s.reason])).toEqual([['failed', 'exit-code'], ['failed', 'exit-code'], ['cancelled', 'aborted'], ['cancelled', 'aborted']]);
    const shown = await a.cli(['instance', 'show', aborted.id]);
    expect(shown.stdout).toMatch(/ABORTED: more failed than --max-failures allows/);

    // --min-success 3: one failure of four is still a success.
    const quorum = await runWait(b, ['--min-success', '3', '--', 'test "$CHORUS_SHARD_INDEX" -ne 1']);
    expect(quorum.status).toBe('succeeded');
    expect(quorum.counts).toMatchObject({ succeeded: 3, failed: 1 });

    // pause holds back releases; resume lets the rest go.
    const started = await a.cli(['run', '--json', '--max-parallel', '1', '--', 'sleep 1']);
    expectExit(started, EXIT.ok);
    const id = started.json<InstanceView>().id;
    const paused = await b.cli(['instance', 'pause', id, '--json']);
    expectExit(paused, EXIT.ok);
    expect(paused.json<InstanceView>().paused).toBe(true);
    await waitFor(async () => (await a.json<InstanceView>(['instance', 'show', id])).counts.succeeded >= 1, { timeoutMs: 20_000, what: 'the released subtask ending' });
    const held = (await a.json<InstanceView>(['instance', 'show', id])).subtasks.filter((s) => s.released).length;
    expect(held).toBeLessThan(4);
    const still = await a.json<InstanceView>(['instance', 'show', id]);
    expect(still.status).toBe('running');
    expect(still.subtasks.filter((s) => s.released)).toHaveLength(held);
    expect(still.subtasks.find((s) => !s.released)).toMatchObject({ status: 'pending', released: false });
    expectExit(await b.cli(['instance', 'resume', id]), EXIT.ok);
    const resumed = await a.cli(['instance', 'wait', id, '--json', '--timeout', '60s'], { timeoutMs: 90_000 });
    expectExit(resumed, EXIT.ok);
    expect(resumed.json<InstanceView>().paused).toBe(false);
    // Nothing left to hold back: pause says so.
    const late = await b.cli(['instance', 'pause', id]);
    expectExit(late, EXIT.failed);
    expect(late.stderr).toMatch(/has ended: there is nothing to pause/);

    // A plan: the web nodes, the db one left out by its tag.
    const add = await a.cli(['job', 'add', 'restart-web', '--cmd', 'true', '--tag', 'role=web', '--waves', '1,100%', '--max-parallel', '1']);
    expectExit(add, EXIT.ok);
    const plan = await b.json<PlanView>(['job', 'plan', 'restart-web']);
    expect(plan.targets.map((t) => t.name).sort()).toEqual(['roll-1', 'roll-2', 'roll-3']);
    expect(plan.targets.map((t) => t.wave)).toEqual([1, 2, 2]);
    expect(plan.leftOut).toMatchObject([{ name: 'roll-4', reason: 'tag-mismatch', detail: 'lacks role=web' }]);
    const runPlan = await a.cli(['run', '--plan', '--tag', 'role=db', '--', 'uptime']);
    expectExit(runPlan, EXIT.ok);
    expect(runPlan.stdout).toMatch(/^plan for run of uptime: 1 node\(s\) \(nothing was run\)/);
    expect(runPlan.stdout).toMatch(/left out \(3\):/);

    // A webhook, signed, for a failed run of a job; none for a succeeded one (--notify-on failure).
    const hook = await webhookServer();
    const dir = await tempDir('chorus-hook-');
    const keyFile = join(dir, 'hook.key');
    await writeFile(keyFile, 'sesame\n', { mode: 0o600 });
    expectExit(await a.cli(['job', 'add', 'flaky', '--cmd', 'test "$CHORUS_SHARD_INDEX" -ne 0', '--notify', hook.url, '--notify-secret-file', keyFile]), EXIT.ok);
    const run = await b.cli(['job', 'run', 'flaky', '--wait', '--json', '--timeout', '60s'], { timeoutMs: 90_000 });
    expectExit(run, EXIT.failed);
    const failedId = run.json<InstanceView>().id;
    await waitFor(() => hook.received.length >= 1, { timeoutMs: 30_000, what: 'the webhook' });
    const [got] = hook.received as [Received];
    expect(JSON.parse(got.body)).toMatchObject({ id: failedId, job: 'flaky', status: 'failed' });
    expect(got.headers['x-chorus-signature']).toBe(`sha256=${createHmac('sha256', 'sesame').update(got.body).digest('hex')}`);
    await waitFor(async () => (await a.json<InstanceView>(['instance', 'show', failedId])).notifications[0]?.status === 'delivered', { timeoutMs: 20_000, what: 'the delivery recorded' });
    const ok = await runWait(a, ['--notify', hook.url, '--', 'true']);
    expect(ok.status).toBe('succeeded');

    // Fire history: a job every second, then disabled: created fires, then skipped ones, the same from every node.
    expectExit(await a.cli(['job', 'add', 'tick', '--cmd', 'true', '--every', '1s', '--tag', 'role=db']), EXIT.ok);
    await waitFor(async () => (await b.json<FireView[]>(['job', 'history', 'tick'])).filter((f) => f.outcome === 'created').length >= 2, { timeoutMs: 30_000, what: 'two created fires' });
    expectExit(await a.cli(['job', 'disable', 'tick']), EXIT.ok);
    await waitFor(async () => (await b.json<FireView[]>(['job', 'history', 'tick'])).some((f) => f.outcome === 'skipped' && f.reason === 'disabled'), { timeoutMs: 30_000, what: 'a skipped fire' });
    const fromA = await a.json<FireView[]>(['job', 'history', 'tick']);
    // The disabled job still has a skipped fire every second, so the two nodes are compared
    // up to the newest fire a had listed (two reads on a loaded machine are seconds apart).
    const cutoff = fromA[0]?.scheduledAt ?? '';
    const upTo = (fires: FireView[]) => JSON.stringify(fires.filter((f) => f.scheduledAt <= cutoff));
    await waitFor(async () => upTo(await b.json<FireView[]>(['job', 'history', 'tick'])) === upTo(await a.json<FireView[]>(['job', 'history', 'tick'])), { timeoutMs: 20_000, what: 'the same history on a and b' });
    expect(fromA[0]?.leader).toBeTruthy();
    const table = await b.cli(['job', 'history', 'tick']);
    expect(table.stdout).toMatch(/DUE \(UTC\).*OUTCOME.*REASON.*INSTANCE.*LEADER/);
    expect(table.stdout).toMatch(/skipped +│ disabled/);
    expect(hook.received).toHaveLength(1); // the succeeded run called nobody
  });
});

describe('webhook bounds through the CLI (issue 27)', () => {
  it('refuses secret files that are no key, delivers past an endless answer, and stops at once with deliveries out', { timeout: TEST_TIMEOUT_MS }, async () => {
    const d = await startDaemon({ name: 'hooks-1' });
    const dir = await tempDir('chorus-hook-');
    const fifo = join(dir, 'fifo.key');
    execFileSync('mkfifo', ['-m', '600', fifo]);
    const loose = join(dir, 'loose.key');
    await writeFile(loose, 'sesame\n', { mode: 0o644 });
    const key = join(dir, 'hook.key');
    await writeFile(key, 'sesame\n', { mode: 0o600 });
    const endless = await badReceiver('endless');

    // Refused when the job is added, on this daemon's host, without waiting on the FIFO: exit 2 and why.
    const fifoAdd = await d.cli(['job', 'add', 'signed', '--cmd', 'true', '--notify', endless.url, '--notify-secret-file', fifo]);
    expectExit(fifoAdd, EXIT.badInput);
    expect(fifoAdd.stderr).toContain(`--notify-secret-file ${fifo}: it is not a regular file (a FIFO)`);
    expect(fifoAdd.stderr).toMatch(/mode 0600 or 0400/);
    expect(fifoAdd.stderr).toMatch(/every node that may lead needs it; this check ran on hooks-1/);
    const zeroRun = await d.cli(['run', '--notify', endless.url, '--notify-secret-file', '/dev/zero', '--', 'true']);
    expectExit(zeroRun, EXIT.badInput);
    expect(zeroRun.stderr).toContain('--notify-secret-file /dev/zero: it is not a regular file (a character device)');
    const jobs = join(dir, 'jobs.toml');
    await writeFile(jobs, `[jobs.filed]\ncmd = "true"\nnotify = ["${endless.url}"]\nnotify-secret-file = "${loose}"\n`);
    const apply = await d.cli(['job', 'apply', '-f', jobs]);
    expectExit(apply, EXIT.badInput);
    expect(`${apply.stdout}${apply.stderr}`).toMatch(/its mode 0644 lets group or others in \(chmod 600 it\)/);
    expect((await d.json<unknown[]>(['job', 'list'])).length).toBe(0);

    // A receiver answering 200 with a body that never ends: delivered, the connection closed after a little of it.
    const run = await runWait(d, ['--notify', endless.url, '--notify-on', 'always', '--notify-secret-file', key, '--', 'true']);
    await waitFor(async () => (await d.json<InstanceView>(['instance', 'show', run.id])).notifications[0]?.status === 'delivered', { timeoutMs: 20_000, what: 'the delivery recorded' });
    await waitFor(() => endless.closed() === 1, { timeoutMs: 10_000, what: 'the daemon closing the endless answer' });
    expect(endless.sentBytes()).toBeLessThan(64 * 1024 * 1024); // socket buffers, not the 10 s of body it used to take
    expectExit(await d.cli(['status'], { timeoutMs: 10_000 }), EXIT.ok);

    // A stop with one POST waiting on a receiver that never answers and one delivery whose key became a FIFO.
    const silent = await badReceiver('silent');
    await runWait(d, ['--notify', silent.url, '--notify-on', 'always', '--', 'true']);
    await waitFor(() => silent.received() === 1, { timeoutMs: 20_000, what: 'a POST in flight' });
    expectExit(await d.cli(['job', 'add', 'rekeyed', '--cmd', 'true', '--notify', endless.url, '--notify-on', 'always', '--notify-secret-file', key]), EXIT.ok);
    await rm(key);
    execFileSync('mkfifo', ['-m', '600', key]);
    expectExit(await d.cli(['job', 'run', 'rekeyed', '--wait', '--timeout', '60s'], { timeoutMs: 90_000 }), EXIT.ok);
    await waitFor(() => /webhook try failed; retrying/.test(d.logs()) && d.logs().includes(`${key}: it is not a regular file (a FIFO)`), { timeoutMs: 20_000, what: 'the FIFO refused at delivery' });
    const stoppingAtMs = performance.now();
    const exit = await d.stop(15_000);
    expect(exit).toEqual({ exitCode: 0, signal: null }); // a graceful stop, not the deadline's exit 1
    expect(performance.now() - stoppingAtMs).toBeLessThan(10_000);
    expect(endless.received()).toBe(1); // the FIFO's delivery never went out unsigned
  });
});

