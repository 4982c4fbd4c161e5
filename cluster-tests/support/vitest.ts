// The part of the support that needs vitest: the hooks that clean up after each test
// and file, and the helpers that assert. Everything else (processes.ts and the rest)
// runs without vitest, in the benchmark too.
import { afterAll, afterEach, beforeEach, expect } from 'vitest';
import { EXIT } from '../../src/api/client.js';
import type { InstanceView } from '../../src/api/views.js';
import { checkBroadcasts } from '../../src/testing/checker.js';
import type { CliResult } from './cli.js';
import type { Daemon } from './daemon.js';
import { cleanupScope, setScope, thawAll } from './processes.js';
import { resultKey, summarize, waitForConverged, type Work } from './work.js';

let cleanupInstalled = false;
let anyTestFailed = false;

/**
 * Installs the hooks that kill every process and remove every temporary directory the
 * support started or created: what a test (or its beforeEach) started goes when the test
 * ends, what beforeAll started when the file ends. A frozen daemon is thawed first. Call
 * it once at the top level of each test file. Tests in a file must not run concurrently
 * (no describe.concurrent): the scope is tracked per file, not per test. A failed test
 * keeps its temporary directories (their paths are printed).
 */
export function useProcessCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  beforeEach(() => {
    setScope('test');
  });
  afterEach(async (context) => {
    const failed = context.task.result?.state === 'fail';
    if (failed) anyTestFailed = true;
    try {
      thawAll();
      await cleanupScope('test', { keepDirs: failed, onKept: (paths) => reportKept(context.task.name, paths) });
    } finally {
      setScope('suite');
    }
  });
  afterAll(async () => {
    thawAll();
    await cleanupScope('suite', { keepDirs: anyTestFailed, onKept: (paths) => reportKept('a test in this file', paths) });
    cleanupInstalled = false;
  });
}

function reportKept(label: string, paths: string[]): void {
  process.stderr.write(`[support] ${label} failed; kept for debugging (daemon output is in daemon.log):\n${paths.map((p) => `  ${p}\n`).join('')}`);
}

export function expectExit(r: CliResult, code: number): void {
  expect(r.exitCode, r.context).toBe(code);
}

/** Runs `ARGS --json` against a daemon through the CLI; it must exit 0. Returns the JSON document. */
export async function okJson<T>(d: Daemon, args: string[], timeoutMs?: number): Promise<T> {
  const r = await d.cli([...args, '--json'], { timeoutMs });
  expectExit(r, EXIT.ok);
  return r.json<T>();
}

/**
 * Waits until the instance has ended on every observer and all of them hold the same
 * result; returns it as `chorus instance show ID --json` prints it on the first observer,
 * which must be what the API holds.
 */
export async function waitForEnd(observers: Daemon[], id: string, timeoutMs = 30_000): Promise<InstanceView> {
  const [first] = await waitForConverged(observers, id, timeoutMs);
  const printed = await okJson<InstanceView>(observers[0] as Daemon, ['instance', 'show', id]);
  expect(resultKey(printed), summarize(printed)).toBe(resultKey(first as InstanceView));
  return printed;
}

/** Runs the broadcast checker over the history and the instances and expects no violation. */
export function expectChecked(work: Work, instances: InstanceView[], survivors: string[], expectedInstances: string[]): void {
  const violations = checkBroadcasts({
    history: work.history(),
    instances,
    survivors: new Set(survivors),
    expectedInstances,
  });
  expect(violations, `history:\n${work.historyText()}\ninstances:\n${instances.map(summarize).join('\n')}`).toEqual([]);
}
