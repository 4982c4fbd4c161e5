// The dashboard in a real browser (Debian's chromium driven by puppeteer-core): a login
// through `chorus ui`'s one-use URL, the cluster page, a 5-node broadcast whose cells turn
// from pending to succeeded live, a killed node's cell turning failed/node-lost, and a read
// session with no buttons that change anything (and an API that refuses it anyway); the
// lists follow the cluster through the change long poll.
// Screenshots go to a temporary directory, or to CHORUS_UI_SHOTS (the README's come from there).
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterEach, describe, expect, it } from 'vitest';
import type { InstanceView } from '../src/api/views.js';
import { EXIT, expectExit, startCluster, tempDir, useProcessCleanup, waitForAgreement, type Daemon } from './support/index.js';

useProcessCleanup();

/** The page's DOM, as the functions run inside the browser see it (this file is compiled without the DOM's types). */
declare const document: {
  querySelectorAll(selector: string): ArrayLike<{ getAttribute(name: string): string | null }> & { length: number };
  querySelector(selector: string): { getAttribute(name: string): string | null; textContent: string | null } | null;
};

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const TEST_TIMEOUT_MS = 180_000;

let browser: Browser | null = null;
afterEach(async () => {
  await browser?.close();
  browser = null;
});

async function launch(): Promise<Browser> {
  if (!CHROMIUM) throw new Error('chromium is not installed: npm test installs it from Debian (scripts/test-deps.mjs) when it runs as root; else apt-get install chromium');
  // As root chromium needs --no-sandbox; nothing but 127.0.0.1 is ever loaded.
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  return browser;
}

async function loginUrl(d: Daemon, extra: string[] = []): Promise<string> {
  const r = await d.cli(['ui', '--json', ...extra]);
  expectExit(r, EXIT.ok);
  return r.json<{ url: string }>().url;
}

async function shotsDir(): Promise<string> {
  const dir = process.env.CHORUS_UI_SHOTS ? resolve(process.env.CHORUS_UI_SHOTS) : await tempDir('chorus-ui-shots-');
  await mkdir(dir, { recursive: true });
  return dir;
}

/** The status the page shows for a node's cell: "running/", "failed/node-lost"... */
const cellOf = (page: Page, nodeId: string) => page.$eval(`li[data-node="${nodeId}"]`, (n) => n.getAttribute('data-status'));

describe('the dashboard in a browser', () => {
  it('logs in with a one-use code, shows the cluster and a broadcast live, and a killed node', { timeout: TEST_TIMEOUT_MS }, async () => {
    const daemons = await startCluster({ prefix: 'ui-', count: 5 });
    const [a, b] = daemons as [Daemon, Daemon, Daemon, Daemon, Daemon];
    await waitForAgreement({ alive: daemons, stableMs: 500, what: 'five daemons agreeing' });
    const url = await loginUrl(a);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/ui\/login\?code=[\w-]{20,}$/);
    expect(url).not.toContain(readFileSync(join(a.dataDir, 'api-token'), 'utf8').trim());

    const page = await (await launch()).newPage();
    await page.setViewport({ width: 1280, height: 800 });
    await page.goto(url);
    expect(new URL(page.url()).pathname).toBe('/ui/'); // the code is gone from the address bar
    await page.waitForFunction(() => document.querySelectorAll('tr[data-node]').length === 5, { timeout: 20_000 });
    const states = await page.$$eval('tr[data-node] .state', (cells) => cells.map((c) => c.textContent));
    expect(states).toEqual(Array(5).fill('● alive')); // a symbol and a word, never colour alone
    expect(await page.$eval('caption', (n) => n.textContent)).toMatch(/^5 member\(s\): 5 alive; leader ui-\d$/);
    expect(await page.$eval('#detector', (n) => n.textContent)).toMatch(/^Failure detector at ui-1: \d+ probes/);
    const shots = await shotsDir();
    await page.screenshot({ path: join(shots, 'ui-cluster.png') });
    // On a phone: nothing wider than the screen.
    await page.setViewport({ width: 390, height: 844 });
    expect(await page.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } }; innerWidth: number }).document.documentElement.scrollWidth <= (globalThis as unknown as { innerWidth: number }).innerWidth)).toBe(true);
    await page.screenshot({ path: join(shots, 'ui-cluster-phone.png') });
    await page.setViewport({ width: 1280, height: 800 });

    // A rolling broadcast, two at a time: its cells go from pending (not released) to succeeded, live.
    const run = await b.cli(['run', '--json', '--max-parallel', '2', '--', 'sleep 1']);
    expectExit(run, EXIT.ok);
    const id = run.json<InstanceView>().id;
    await page.goto(`${new URL(url).origin}/ui/#/instances/${id}`);
    await page.waitForFunction(() => document.querySelectorAll('li[data-node]').length === 5, { timeout: 20_000 });
    const seen = new Set<string>();
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const all = await page.$$eval('li[data-node]', (items) => items.map((i) => i.getAttribute('data-status') ?? ''));
      for (const s of all) seen.add(s);
      if (all.every((s) => s === 'succeeded/')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen).toContain('unreleased/');
    expect(seen).toContain('running/');
    expect(seen).toContain('succeeded/');
    expect(await page.$eval('#counts', (n) => n.textContent)).toBe('5 subtasks: 5 succeeded');
    expect(await page.$eval('#rollout', (n) => n.textContent)).toMatch(/^Rollout: at most 2 at once, 5 of 5 released$/);

    // A node killed while its subtask runs: its cell turns failed/node-lost on the open page.
    const slow = await b.cli(['run', '--json', '--', 'sleep 30']);
    expectExit(slow, EXIT.ok);
    const slowId = slow.json<InstanceView>().id;
    const victim = daemons[4] as Daemon;
    await page.goto(`${new URL(url).origin}/ui/#/instances/${slowId}`);
    await page.waitForFunction((n) => document.querySelector(`li[data-node="${n}"]`)?.getAttribute('data-status') === 'running/', { timeout: 30_000 }, victim.nodeId);
    victim.kill('SIGKILL');
    await page.waitForFunction((n) => document.querySelector(`li[data-node="${n}"]`)?.getAttribute('data-status') === 'failed/node-lost', { timeout: 30_000 }, victim.nodeId);
    expect(await cellOf(page, victim.nodeId)).toBe('failed/node-lost');
    await page.screenshot({ path: join(shots, 'ui-instance.png') });
    expectExit(await b.cli(['instance', 'cancel', slowId]), EXIT.ok);
    console.log(`dashboard screenshots in ${shots}`);

    // The same login link a second time: refused.
    const again = await (await browser?.newPage())?.goto(url);
    expect(again?.status()).toBe(401);
    expect(await again?.text()).toMatch(/used already or has expired/);
  });

  it('a read session has no buttons that change anything, and the API refuses it anyway; no login, no data', { timeout: TEST_TIMEOUT_MS }, async () => {
    const [a] = (await startCluster({ prefix: 'uir-', count: 1 })) as [Daemon];
    expectExit(await a.cli(['job', 'add', 'hello', '--cmd', 'true']), EXIT.ok);
    const page = await (await launch()).newPage();
    const origin = new URL(await loginUrl(a)).origin;
    expect((await page.goto(`${origin}/v1/nodes`))?.status()).toBe(401);
    await page.goto(`${origin}/ui/`);
    await page.waitForSelector('[role="alert"]', { timeout: 20_000 });
    expect(await page.$eval('[role="alert"]', (n) => n.textContent)).toMatch(/not logged in .*chorus ui/);

    const created = await a.cli(['token', 'create', '--role', 'read', '--json']);
    expectExit(created, EXIT.ok);
    await page.goto(await loginUrl(a, ['--api', origin, '--token', created.json<{ token: string }>().token]));
    await page.waitForFunction(() => document.querySelectorAll('tr[data-node]').length === 1, { timeout: 20_000 });
    expect(await page.$('[data-action]')).toBeNull(); // no drain button
    const changeWatches: string[] = [];
    let abortedPolls = 0; // long polls of a page left, ended by the page rather than left to hold a connection
    page.on('requestfailed', (req) => {
      if (req.url().includes('/v1/changes?') && req.failure()?.errorText === 'net::ERR_ABORTED') abortedPolls += 1;
    });
    page.on('request', (req) => {
      if (req.url().includes('/v1/changes?') && req.url().includes('cursor=')) changeWatches.push(req.url());
    });
    await page.goto(`${origin}/ui/#/jobs`);
    await page.waitForSelector('tr[data-job="hello"]', { timeout: 20_000 });
    expect(await page.$('[data-action="run"]')).toBeNull();
    // The list follows the cluster: a job added from the CLI appears on the open page, which
    // waits on the change long poll (GET /v1/changes) rather than reading the list again and again.
    expectExit(await a.cli(['job', 'add', 'later', '--cmd', 'true']), EXIT.ok);
    await page.waitForSelector('tr[data-job="later"]', { timeout: 20_000 });
    expect(changeWatches.length).toBeGreaterThan(0);
    expect(changeWatches[0]).toMatch(/kinds=job,instance,subtask,cancel&cursor=[0-9a-f]{12}\.\d+&waitMs=\d+/);
    expect(await page.$eval('#me', (n) => n.textContent)).toMatch(/read only/);
    const status = await page.evaluate(async () => (await fetch('/v1/jobs/hello/run', { method: 'POST', headers: { 'content-type': 'application/json', 'x-chorus-ui': '1' }, body: '{}' })).status);
    expect(status).toBe(403);

    // An operate session has the buttons, and a run from the jobs page opens its instance.
    await page.goto(await loginUrl(a));
    await page.goto(`${origin}/ui/#/jobs`);
    await page.waitForSelector('[data-action="run"]', { timeout: 20_000 });
    await page.click('[data-action="run"]');
    await page.waitForFunction(() => document.querySelector('#counts')?.textContent === '1 subtask: 1 succeeded', { timeout: 20_000 });
    // The jobs page's strip of last runs (one request for every job) links that run, with its outcome.
    const clicked = new URL(page.url()).hash.replace('#/instances/', '');
    await page.goto(`${origin}/ui/#/jobs`);
    await page.waitForSelector(`tr[data-job="hello"] .strip a[href="#/instances/${clicked}"]`, { timeout: 20_000 });
    expect(await page.$eval(`tr[data-job="hello"] .strip a[href="#/instances/${clicked}"]`, (n) => n.textContent)).toBe('✓');
    // The instance list, open while a run starts from the CLI, shows it without a reload.
    await page.goto(`${origin}/ui/#/instances`);
    await page.waitForSelector('a[href^="#/instances/"]', { timeout: 20_000 });
    const fromCli = await a.cli(['job', 'run', 'hello', '--json']);
    expectExit(fromCli, EXIT.ok);
    const cliRunId = fromCli.json<InstanceView>().id;
    expect(abortedPolls).toBeGreaterThan(0); // the jobs page's, left for the instance page
    await page.waitForSelector(`a[href="#/instances/${cliRunId}"]`, { timeout: 20_000 });
    // The list asks for summaries: no per-node parts, the counts only; the row counts the run's node once it ended.
    const summaries = await page.evaluate(async () => (await (await fetch('/v1/instances?limit=2&summary=1')).json()) as { id: string; subtasks?: unknown; targets?: unknown; counts: Record<string, number> }[]);
    expect(summaries.map((v) => [v.subtasks, v.targets, Object.values(v.counts).reduce((a, b) => a + b, 0)])).toEqual([[undefined, undefined, 1], [undefined, undefined, 1]]);
    await page.waitForFunction((runId) => document.querySelector(`tr[data-instance="${runId}"] td[data-label="Nodes"]`)?.textContent === '1/1 ok', { timeout: 20_000 }, cliRunId);
    // Its "Created" moves on with the page's clock though nothing changes to reload the list
    // (its last reload came within about 2 s of the run; the next would be the long poll's, 25 s on).
    await page.waitForFunction((runId) => /^([6-9]|\d\d)s ago$/.test(document.querySelector(`tr[data-instance="${runId}"] td[data-label="Created"]`)?.textContent ?? ''), { timeout: 20_000 }, cliRunId);
  });
});
