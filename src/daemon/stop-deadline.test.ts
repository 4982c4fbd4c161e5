// The daemon's way out: exit once the thread pool is quiet, SIGKILL when a request on it never
// comes back (exit() would wait for it forever), and the stop deadline's budget.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { withTimeout } from '../testing/wait.js';
import { defaultConfig } from '../core/config.js';
import { silentLogger } from '../core/log.js';
import { exitProcess, POOL_DRAIN_MS, stopDeadlineMs, type ProcessExits } from './stop-deadline.js';

/** Exits that record what was asked, on a clock that moves only by their sleeps. */
function fakeExits(pendingAt: (nowMs: number) => string[]) {
  let nowMs = 0;
  const calls: string[] = [];
  const exits: ProcessExits = {
    pending: () => pendingAt(nowMs),
    exit: (code) => void calls.push(`exit ${code}`),
    killSelf: () => void calls.push('SIGKILL'),
    nowMs: () => nowMs,
    sleep: async (ms) => void (nowMs += ms),
  };
  return { exits, calls, nowMs: () => nowMs };
}

describe('exitProcess', () => {
  it('exits with the code at once when nothing is out on the thread pool (timers and sockets do not count)', async () => {
    const f = fakeExits(() => ['Timeout', 'TCPWrap', 'TTYWrap']);
    expect(await exitProcess(0, silentLogger, f.exits)).toBe('exit');
    expect(f.calls).toEqual(['exit 0']);
    expect(f.nowMs()).toBe(0);
  });

  it('waits for a file request that comes back, then exits', async () => {
    const f = fakeExits((nowMs) => (nowMs < 50 ? ['FSReqPromise', 'Timeout'] : ['Timeout']));
    expect(await exitProcess(1, silentLogger, f.exits)).toBe('exit');
    expect(f.calls).toEqual(['exit 1']);
    expect(f.nowMs()).toBeGreaterThanOrEqual(50);
  });

  it('kills itself when a request on the thread pool never comes back (a read of a FIFO with no writer)', async () => {
    const f = fakeExits(() => ['FSReqCallback', 'Timeout']);
    expect(await exitProcess(0, silentLogger, f.exits)).toBe('kill');
    expect(f.calls).toEqual(['SIGKILL']);
    expect(f.nowMs()).toBeGreaterThanOrEqual(POOL_DRAIN_MS);
  });
});

describe('exitProcess in a real process', () => {
  const children: ReturnType<typeof spawn>[] = [];
  let dir: string | null = null;
  afterEach(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = null;
  });

  /** Node running exitProcess(0), after starting a read of `fifo` (which waits for a writer on the thread pool) when given one. */
  const run = (fifo: string | null): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> => {
    const module = fileURLToPath(new URL('./stop-deadline.ts', import.meta.url));
    const script = [
      `const { exitProcess } = await import(${JSON.stringify(module)});`,
      fifo ? `(await import('node:fs/promises')).readFile(${JSON.stringify(fifo)}).catch(() => {});` : '',
      `const log = { fatal: (_o, message) => process.stderr.write(message + '\\n') };`,
      'setTimeout(() => void exitProcess(0, log), 20);',
    ].join('\n');
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    return withTimeout(new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr }))), 20_000);
  };

  it('exits 0 when nothing is stuck, and ends with SIGKILL (not a hang) when a read of a FIFO never returns', async () => {
    dir = await mkdtemp(join(tmpdir(), 'chorus-exit-'));
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(await run(null)).toMatchObject({ code: 0, signal: null });
    const stuck = await run(fifo);
    expect(stuck).toMatchObject({ code: null, signal: 'SIGKILL' });
    expect(stuck.stderr).toMatch(/did not come back in 5000 ms .*ending with SIGKILL/);
  });
});

describe('stopDeadlineMs', () => {
  it('covers the worker\'s wait and the leave\'s pushes, and fits under systemd\'s 30 s (TimeoutStopSec)', () => {
    const deadlineMs = stopDeadlineMs(defaultConfig);
    expect(deadlineMs).toBeGreaterThan(defaultConfig.killGraceMs + defaultConfig.workerStopSlackMs + defaultConfig.requestTimeoutMs);
    expect(deadlineMs + POOL_DRAIN_MS).toBeLessThan(30_000);
    // A longer kill grace (an operator's [tuning]) moves the deadline with it.
    expect(stopDeadlineMs({ ...defaultConfig, killGraceMs: 60_000 })).toBe(deadlineMs + 58_000);
  });
});
