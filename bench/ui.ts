// The dashboard's figures (issue 12), measured in Debian's chromium through puppeteer-core:
//   npm run bench:ui -- [--renders 10] [--cells 1000] [--seconds 5]
// 1. Time to first render against a local daemon: from the navigation to the login URL
//    (`chorus ui`) to the cluster table on screen, in the page's own clock, median of N.
// 2. Frame time while a grid of 1,000 cells updates: the instance page against a stand-in
//    API (a small server here: the real page and assets from dist/ui, an instance of N
//    subtasks whose statuses change at every answer of the long poll, about 10 a second),
//    frames counted with requestAnimationFrame in the page.
// 3. The assets' size, gzipped.
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import puppeteer from 'puppeteer-core';
import { Daemon } from '../cluster-tests/support/daemon.js';
import { cli } from '../cluster-tests/support/cli.js';
import { cleanupAllSync, REPO_ROOT } from '../cluster-tests/support/processes.js';

const { values } = parseArgs({ options: { renders: { type: 'string', default: '10' }, cells: { type: 'string', default: '1000' }, seconds: { type: 'string', default: '5' } } });
process.on('exit', () => cleanupAllSync({ keepDirs: false }));
process.on('SIGINT', () => process.exit(130));

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
if (!CHROMIUM) throw new Error('bench:ui needs chromium (apt-get install chromium)');
const UI = join(REPO_ROOT, 'dist', 'ui');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))] as number;

const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
try {
  // 3. Sizes.
  const sizes = ['index.html', 'app.js', 'app.css'].map((f) => ({ f, raw: readFileSync(join(UI, f)).length, gz: gzipSync(readFileSync(join(UI, f))).length }));
  console.log(`assets: ${sizes.map((s) => `${s.f} ${s.raw} B (${s.gz} gzipped)`).join(', ')}; ${sizes.reduce((a, s) => a + s.gz, 0)} B gzipped in all`);

  // 1. First render against a daemon.
  const daemon = await Daemon.start({ label: 'ui', name: 'ui-bench' });
  const renders: number[] = [];
  for (let i = 0; i < Number(values.renders); i++) {
    const r = await cli(['ui', '--json'], { dataDir: daemon.dataDir });
    const page = await browser.newPage();
    await page.goto(r.json<{ url: string }>().url);
    await page.waitForSelector('tr[data-node]');
    renders.push(await page.evaluate(() => performance.now()));
    await page.close();
  }
  console.log(`first render (login URL to the cluster table, in the page): median ${median(renders).toFixed(0)} ms, min ${Math.min(...renders).toFixed(0)}, max ${Math.max(...renders).toFixed(0)} (${renders.length} logins)`);
  await daemon.stop();

  // 2. A grid of N cells updating.
  const cells = Number(values.cells);
  const statuses = ['pending', 'running', 'succeeded', 'failed'] as const;
  let tick = 0;
  const view = () => ({
    id: 'bench', job: 'bench', status: 'running', trigger: 'manual', cmd: 'true', createdAt: new Date().toISOString(), finishedAt: null, failure: null, paused: false, notifications: [],
    rollout: { maxParallel: null, maxFailures: null, minSuccess: null, waveSizes: [cells], currentWave: 1, released: cells, aborted: false, parallelLimit: null },
    subtasks: Array.from({ length: cells }, (_, i) => ({ nodeId: `node-${String(i).padStart(5, '0')}`, nodeName: `n${i}`, shardIndex: i, wave: 1, released: true, status: statuses[(i + tick) % 4], reason: null, exitCode: null, signal: null, attempt: 1, startedAt: null, finishedAt: null })),
  });
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const json = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (path === '/v1/whoami') return json({ role: 'read', name: 'bench' });
    if (path === '/v1/instances/bench') return setTimeout(() => { tick += 1; json(view()); }, 100); // a change every 100 ms
    const file = path === '/ui/' ? 'index.html' : path.slice('/ui/'.length);
    if (['index.html', 'app.js', 'app.css'].includes(file)) return res.writeHead(200, { 'content-type': file.endsWith('.js') ? 'text/javascript' : file.endsWith('.css') ? 'text/css' : 'text/html' }).end(readFileSync(join(UI, file)));
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/ui/#/instances/bench`);
  await page.waitForFunction((n) => (globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }).document.querySelectorAll('li[data-node]').length === n, {}, cells);
  const ticksBefore = tick;
  const frames: number[] = await page.evaluate(
    (ms) =>
      new Promise<number[]>((resolve) => {
        const out: number[] = [];
        let last = performance.now();
        const end = last + ms;
        const raf = (globalThis as unknown as { requestAnimationFrame(cb: (t: number) => void): void }).requestAnimationFrame;
        const frame = (t: number) => {
          out.push(t - last);
          last = t;
          if (t < end) raf(frame);
          else resolve(out);
        };
        raf(frame);
      }),
    Number(values.seconds) * 1000,
  );
  const updates = tick - ticksBefore;
  console.log(`grid of ${cells} cells, ${updates} updates in ${values.seconds} s (every cell changes at each): frame time median ${median(frames).toFixed(1)} ms, p95 ${pct(frames, 95).toFixed(1)} ms, max ${Math.max(...frames).toFixed(1)} ms over ${frames.length} frames`);
  server.close();
} finally {
  await browser.close();
}
