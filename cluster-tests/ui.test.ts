// The dashboard in a real browser (Debian's chromium driven by puppeteer-core): a login
// through `chorus ui`'s one-use URL, the cluster page, and a member's death appearing live,
// without a reload. Screenshots go to the test's temporary directory (their path is logged).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';
import { afterEach, describe, expect, it } from 'vitest';
import { EXIT, expectExit, startCluster, tempDir, useProcessCleanup, waitForAgreement, type Daemon } from './support/index.js';

useProcessCleanup();

/** The page's DOM, as the functions run inside the browser see it (this file is compiled without the DOM's types). */
declare const document: { querySelectorAll(selector: string): { length: number }; querySelector(selector: string): { getAttribute(name: string): string | null } | null };

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const TEST_TIMEOUT_MS = 120_000;

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

async function loginUrl(d: Daemon): Promise<string> {
  const r = await d.cli(['ui', '--json']);
  expectExit(r, EXIT.ok);
  return r.json<{ url: string }>().url;
}

describe('the dashboard in a browser', () => {
  it('logs in with a one-use code and shows the cluster, live', { timeout: TEST_TIMEOUT_MS }, async () => {
    const daemons = await startCluster({ prefix: 'ui-', count: 3 });
    const [a, , c] = daemons as [Daemon, Daemon, Daemon];
    await waitForAgreement({ alive: daemons, stableMs: 500, what: 'three daemons agreeing' });
    const url = await loginUrl(a);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/ui\/login\?code=[\w-]{20,}$/);
    const token = (await import('node:fs')).readFileSync(join(a.dataDir, 'api-token'), 'utf8').trim();
    expect(url).not.toContain(token);

    const page = await (await launch()).newPage();
    await page.setViewport({ width: 1280, height: 800 });
    const started = Date.now();
    await page.goto(url);
    expect(new URL(page.url()).pathname).toBe('/ui/'); // the code is gone from the address bar
    await page.waitForFunction(() => document.querySelectorAll('tr[data-node]').length === 3, { timeout: 20_000 });
    const firstRenderMs = Date.now() - started;
    const states = await page.$$eval('tr[data-node]', (rows) => rows.map((r) => r.querySelector('.state')?.textContent));
    expect(states).toEqual(['● alive', '● alive', '● alive']); // a symbol and a word, never colour alone
    expect(await page.$eval('caption', (n) => n.textContent)).toMatch(/^3 member\(s\): 3 alive; leader ui-\d$/);
    const shots = await tempDir('chorus-ui-shots-');
    await page.screenshot({ path: join(shots, 'cluster.png') });

    // A member dies: its row turns dead on the open page, with no reload.
    const cId = c.nodeId;
    c.kill('SIGKILL');
    await page.waitForFunction((id) => document.querySelector(`tr[data-node="${id}"]`)?.getAttribute('data-state') === 'dead', { timeout: 30_000 }, cId);
    expect(await page.$eval(`tr[data-node="${cId}"] .state`, (n) => n.textContent)).toBe('✕ dead');
    await page.screenshot({ path: join(shots, 'cluster-dead.png') });
    console.log(`dashboard: first render ${firstRenderMs} ms after the login URL; screenshots in ${shots}`);

    // The same link a second time: refused, and no session.
    const again = await (await browser?.newPage())?.goto(url);
    expect(again?.status()).toBe(401);
    expect(await again?.text()).toMatch(/used already or has expired/);
  });

  it('without a login the API refuses the browser, and a read token logs in as read', { timeout: TEST_TIMEOUT_MS }, async () => {
    const [a] = (await startCluster({ prefix: 'uir-', count: 1 })) as [Daemon];
    const page = await (await launch()).newPage();
    const api = new URL(await loginUrl(a)).origin;
    const refused = await page.goto(`${api}/v1/nodes`);
    expect(refused?.status()).toBe(401);
    await page.goto(`${api}/ui/`);
    await page.waitForSelector('[role="alert"]', { timeout: 20_000 });
    expect(await page.$eval('[role="alert"]', (n) => n.textContent)).toMatch(/not logged in .*chorus ui/);

    const created = await a.cli(['token', 'create', '--role', 'read', '--json']);
    expectExit(created, EXIT.ok);
    const readToken = created.json<{ token: string }>().token;
    const viaRead = await a.cli(['ui', '--json', '--api', api, '--token', readToken]);
    expectExit(viaRead, EXIT.ok);
    await page.goto(viaRead.json<{ url: string }>().url);
    await page.waitForFunction(() => document.querySelectorAll('tr[data-node]').length === 1, { timeout: 20_000 });
    // The read session looks, and the API refuses it anything else (also with the dashboard's header).
    const status = await page.evaluate(async () => (await fetch('/v1/run', { method: 'POST', headers: { 'content-type': 'application/json', 'x-chorus-ui': '1' }, body: JSON.stringify({ spec: {} }) })).status);
    expect(status).toBe(403);
  });
});
