// `chorus daemon --metrics HOST:PORT`: a real daemon serves Prometheus text at /metrics
// that `promtool check metrics` accepts, and a broadcast moves its counters: instances
// created and finished by the leader, attempts ended and their durations on every node.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { InstanceView } from '../src/api/views.js';
import { EXIT, expectExit, readNodeInfo, startCluster, useProcessCleanup, waitForAgreement } from './support/index.js';

useProcessCleanup();

const TEST_TIMEOUT_MS = 120_000;

async function scrape(url: string): Promise<{ status: number; type: string | null; text: string }> {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

/** The value of one sample (`name{labels} value`), or 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries((m[2] ?? '').split(',').filter(Boolean).map((kv) => kv.split('=').map((s) => s.replace(/^"|"$/g, '')) as [string, string]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return 0;
}

describe('chorus daemon --metrics', () => {
  it('serves /metrics that promtool accepts, and a broadcast moves its counters', { timeout: TEST_TIMEOUT_MS }, async () => {
    const daemons = await startCluster({ prefix: 'metrics-', count: 2, daemon: { extraArgs: ['--metrics', '127.0.0.1:0'] } });
    await waitForAgreement({ alive: daemons, stableMs: 1000, what: 'the two daemons to agree on one leader' });
    const urls = await Promise.all(daemons.map(async (d) => (await readNodeInfo(d.dataDir))?.metrics as string));
    for (const url of urls) expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const [leaderUrl, otherUrl] = urls as [string, string];
    const before = await scrape(leaderUrl);
    expect(before.status).toBe(200);
    expect(before.type).toMatch(/^text\/plain; version=0\.0\.4/);

    const first = daemons[0];
    if (!first) throw new Error('no daemon');
    const run = await first.cli(['run', '--wait', '--json', '--', 'true']);
    expectExit(run, EXIT.ok);
    const failing = await first.cli(['run', '--wait', '--json', '--', 'exit 3']);
    expectExit(failing, EXIT.failed);
    expect(run.json<InstanceView>().targets).toHaveLength(2);

    // Whichever daemon leads counts the instances; each counts the attempts it ran.
    const after = await Promise.all(urls.map(async (u) => (await scrape(u)).text));
    const sum = (name: string, labels: Record<string, string> = {}) => after.reduce((n, text) => n + sample(text, name, labels), 0);
    const job = '(ad hoc)';
    expect(sum('chorus_instances_created_total', { job, trigger: 'adhoc' })).toBe(2);
    expect(sum('chorus_instances_finished_total', { job, status: 'succeeded' })).toBe(1);
    expect(sum('chorus_instances_finished_total', { job, status: 'failed' })).toBe(1);
    expect(sum('chorus_attempts_ended_total', { job, kind: 'subtask', status: 'succeeded', reason: 'none' })).toBe(2);
    expect(sum('chorus_attempts_ended_total', { job, kind: 'subtask', status: 'failed', reason: 'exit-code' })).toBe(2);
    expect(sum('chorus_attempt_duration_seconds_count', { job, kind: 'subtask' })).toBe(4);
    expect(sum('chorus_leader')).toBe(1);
    for (const text of after) {
      expect(sample(text, 'chorus_members', { state: 'alive' })).toBe(2);
      expect(sample(text, 'chorus_records')).toBeGreaterThan(0);
      expect(text).toMatch(/^chorus_nodejs_eventloop_lag_seconds /m);
      expect(text).toMatch(/^chorus_store_flush_seconds_count\{kind="append"\} [1-9]/m);
    }
    expect(sum('chorus_gossip_bytes_sent_total')).toBeGreaterThan(0);

    // The format, checked by Prometheus's own tool (scripts/test-deps.mjs installs it).
    const promtool = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
    expect(promtool.status, 'promtool is missing: npm test installs it with scripts/test-deps.mjs (Debian package prometheus; needs root and apt-get)').toBe(0);
    for (const text of after) {
      const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect(`${check.stdout}${check.stderr}`.trim()).toBe('');
      expect(check.status).toBe(0);
    }

    // Anything but GET /metrics: a plain refusal.
    const wrong = await scrape(otherUrl.replace(/\/metrics$/, '/nope'));
    expect(wrong.status).toBe(404);
    const post = await fetch(otherUrl, { method: 'POST' });
    expect(post.status).toBe(405);
  });
});
