// Bad input loses nothing and breaks nothing (issue "Closed by default"): out-of-range
// values are refused at the CLI and the API, a poisoned state file does not take the
// job list down, and the CLI tells a stale node.json, a non-chorus server and a bad
// --api apart. One real daemon, driven through the CLI and plain HTTP.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readStateRecords } from '../src/store/state-file.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '../src/api/views.js';
import { jobSpec } from '../src/testing/fixtures.js';
import { EXIT, cli, expectExit, rawRequest, readNodeInfo, startDaemon, tempDir, useProcessCleanup, waitFor, type Daemon } from './support/index.js';

useProcessCleanup();

const TEST_TIMEOUT_MS = 120_000;

/** A request whose HTTP status the test asserts (the client would turn it into an exit code). */
const http = (d: Daemon, method: string, path: string, body?: unknown, scheme?: string) => rawRequest(d, method, path, { body, scheme });

const jobNames = async (d: Daemon) => {
  const r = await d.cli(['job', 'list', '--json']);
  expectExit(r, EXIT.ok);
  return r.json<JobView[]>().map((j) => j.name);
};

describe('one daemon and bad input', () => {
  let d: Daemon;

  beforeAll(async () => {
    d = await startDaemon({ name: 'bounds' });
    expectExit(await d.cli(['job', 'add', 'fine', '--cmd', 'true']), EXIT.ok);
  }, TEST_TIMEOUT_MS);

  it('values out of range are exit 2 at the CLI and 400 at the API, nothing is stored, job list still works', { timeout: TEST_TIMEOUT_MS }, async () => {
    const poison = await d.cli(['job', 'add', 'poison', '--cmd', 'true', '--every', '100000000d']);
    expectExit(poison, EXIT.badInput);
    expect(poison.stderr).toMatch(/--every 100000000d: at most 365d/);
    expectExit(await d.cli(['job', 'add', 'fast', '--cmd', 'true', '--every', '100ms']), EXIT.badInput);
    const past = await d.cli(['job', 'add', 'past', '--cmd', 'true', '--at', '2020-01-01T00:00:00Z']);
    expectExit(past, EXIT.badInput);
    expect(past.stderr).toMatch(/in the past/);

    const put = await http(d, 'PUT', '/v1/jobs/poison2', { spec: jobSpec({ schedule: { kind: 'at', atMs: 9007199254740991 } }) });
    expect(put.status).toBe(400);
    expect(JSON.stringify(put.body)).toMatch(/atMs/);
    expect(await jobNames(d)).toEqual(['fine']);
  });

  it('an --at within the misfire window runs once, at once', { timeout: TEST_TIMEOUT_MS }, async () => {
    const at = new Date(Date.now() - 5 * 60_000).toISOString();
    expectExit(await d.cli(['job', 'add', 'late', '--cmd', 'true', '--at', at]), EXIT.ok);
    const instances = await waitFor(
      async () => {
        const list = (await d.cli(['instance', 'list', '--job', 'late', '--json'])).json<{ status: string }[]>();
        return list.length === 1 && list[0]?.status === 'succeeded' ? list : null;
      },
      { timeoutMs: 20_000, what: 'the late --at job to run once' },
    );
    expect(instances).toHaveLength(1);
  });

  it('bad job names are exit 2 "bad job name" everywhere; malformed escapes are 400', { timeout: TEST_TIMEOUT_MS }, async () => {
    for (const args of [['job', 'show', '..'], ['job', 'add', 'a/b', '--cmd', 'true'], ['job', 'rm', '.'], ['job', 'run', '']]) {
      const r = await d.cli(args);
      expectExit(r, EXIT.badInput);
      expect(r.stderr).toMatch(/bad job name/);
    }
    const bad = await http(d, 'GET', '/v1/jobs/%E0%A4%A');
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toMatch(/percent-escape/);
  });

  it('the Bearer scheme is case-insensitive; GET /v1/jobs/NAME is a body PUT takes', { timeout: TEST_TIMEOUT_MS }, async () => {
    const got = await http(d, 'GET', '/v1/jobs/fine', undefined, 'bearer');
    expect(got.status).toBe(200);
    const again = await http(d, 'PUT', '/v1/jobs/fine-copy', got.body);
    expect(again.status).toBe(200);
    expect((again.body as JobView).spec).toEqual((got.body as JobView).spec);
  });

  it('--api with --data-dir says which is used', { timeout: TEST_TIMEOUT_MS }, async () => {
    const both = await d.cli(['status', '--api', d.info.api, '--json']);
    expectExit(both, EXIT.ok);
    expect(both.stderr).toMatch(/both --api and --data-dir are given: using the daemon at --api/);
  });

  it('chorus daemon: a busy --listen port is one line naming the flag, exit 2', { timeout: TEST_TIMEOUT_MS }, async () => {
    const busy = d.joinAddr;
    const r = await cli(['daemon', '--data-dir', await tempDir('chorus-busy-'), '--api', '127.0.0.1:0', '--listen', busy]);
    expectExit(r, EXIT.badInput);
    expect(r.stderr).toMatch(/--listen .*already in use/);
  });
});

describe('a poisoned state file and a stale node.json', () => {
  let d: Daemon;
  afterAll(() => d?.kill('SIGKILL'));

  it('a poison record in state.json is set aside; job list works; kill -9 leaves a node.json the CLI sees through', { timeout: TEST_TIMEOUT_MS }, async () => {
    d = await startDaemon({ name: 'poisoned' });
    expectExit(await d.cli(['job', 'add', 'fine', '--cmd', 'true']), EXIT.ok);
    expect((await d.stop()).exitCode).toBe(0);
    expect(existsSync(join(d.dataDir, 'node.json'))).toBe(false);

    // The records are in the snapshot or, written since, in the change log: put a poison one in the snapshot.
    type Stored = { kind: string; record: { name?: string; spec?: { schedule: unknown } } };
    const statePath = join(d.dataDir, 'state.json');
    const state = (existsSync(statePath) ? JSON.parse(await readFile(statePath, 'utf8')) : { version: 1, records: [] }) as { records: Stored[] };
    const fine = ((await readStateRecords(d.dataDir)) as unknown as Stored[]).find((r) => r.kind === 'job' && r.record.name === 'fine');
    const poison = structuredClone(fine) as NonNullable<typeof fine>;
    poison.record.name = 'poison';
    (poison.record.spec as { schedule: unknown }).schedule = { kind: 'every', intervalMs: 100_000_000 * 86_400_000 };
    state.records.push(poison);
    await writeFile(statePath, JSON.stringify(state));

    d = await startDaemon({ name: 'poisoned', dataDir: d.dataDir });
    expect(await jobNames(d)).toEqual(['fine']);
    expect(d.logs()).toMatch(/job poison in .*state\.json is invalid and was set aside in .*state\.rejected\.json/);
    const kept = JSON.parse(await readFile(join(d.dataDir, 'state.rejected.json'), 'utf8')) as { name: string }[];
    expect(kept.map((k) => k.name)).toEqual(['job poison']);

    const pid = d.pid;
    d.kill('SIGKILL');
    await d.waitForExit();
    expect((await readNodeInfo(d.dataDir))?.pid).toBe(pid);
    const stale = await cli(['status'], { dataDir: d.dataDir });
    expectExit(stale, EXIT.unreachable);
    expect(stale.stderr).toMatch(new RegExp(`names pid ${pid}, which is gone`));
  });
});
