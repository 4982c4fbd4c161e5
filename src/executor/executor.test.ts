// Tests for the executor: outcomes, env, bounded output, and that timeouts and cancels
// kill the whole process group. Timing is only ever asserted through polled deadlines.

import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from '../core/config.js';
import { CgroupContainment, environmentContainment, probeContainment, type Containment } from './containment.js';
import { AttemptOutput, runCommand, TailBuffer, type ExecutionRequest, type ExecutionResult } from './executor.js';
import { attemptMarks } from './marks.js';
import { processExecutor } from './process-executor.js';
import { waitFor } from '../testing/wait.js';

const DEADLINE_MS = 10_000;

let dir: string;
/** Every pid a test learns about; whatever is still alive is killed after the test. */
let pids: number[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'chorus-executor-'));
  pids = [];
});

afterEach(async () => {
  for (const pid of pids) killQuietly(pid);
  await waitFor(() => pids.every((pid) => !isAlive(pid)), 'test processes to die');
  rmSync(dir, { recursive: true, force: true });
});

function killQuietly(pid: number): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** A zombie counts as dead: it is waiting to be reaped, not running. */
function isAlive(pid: number): boolean {
  const statPath = `/proc/${pid}/stat`;
  if (existsSync('/proc/self/stat')) {
    try {
      const stat = readFileSync(statPath, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}


/** Live (non-zombie) members of a process group, from /proc; empty where there is no /proc. */
function liveGroupMembers(pgid: number): number[] {
  if (!existsSync('/proc/self/stat')) return [];
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // Fields after "(comm)": state ppid pgrp ...
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') members.push(Number(entry));
  }
  return members;
}

function hasCompleteLine(file: string): boolean {
  return existsSync(file) && readFileSync(file, 'utf8').endsWith('\n');
}

/**
 * Runs a command that writes its grandchild's pid and then must be stopped by the
 * timeout. On a loaded machine 200 ms may pass before the shell got that far, so
 * retry with longer timeouts until the grandchild really existed when it fired.
 */
async function runIntoTimeout(
  cmdFor: (pidFile: string) => string,
  extra: Partial<ExecutionRequest>,
): Promise<{ result: ExecutionResult; grandchild: number; pgid: number }> {
  for (const [i, timeoutMs] of [200, 1000, 5000].entries()) {
    const pidFile = join(dir, `grandchild-${i}.pid`);
    let pgid = 0;
    const result = await runCommand(
      request(cmdFor(pidFile), { ...extra, timeoutMs, onSpawn: (pid) => pids.push((pgid = pid)) }),
    );
    if (hasCompleteLine(pidFile)) return { result, grandchild: pidFrom(pidFile), pgid };
  }
  throw new Error('the command never wrote its pid file before the timeout');
}

/** Reads a pid the command wrote to a file, and registers it for cleanup. */
function pidFrom(file: string): number {
  const pid = Number(readFileSync(file, 'utf8').trim());
  expect(Number.isInteger(pid) && pid > 0).toBe(true);
  pids.push(pid);
  return pid;
}

function request(cmd: string, extra: Partial<ExecutionRequest> = {}): ExecutionRequest {
  return {
    cmd,
    env: {},
    timeoutMs: null,
    onSpawn: (pid) => pids.push(pid),
    ...extra,
  };
}

describe('runCommand outcomes', () => {
  it('reports success with both streams captured', async () => {
    const before = Date.now();
    const r = await runCommand(request('echo out; echo err >&2'));
    expect(r).toMatchObject({
      status: 'succeeded',
      reason: null,
      exitCode: 0,
      signal: null,
      stdout: 'out\n',
      stderr: 'err\n',
      stdoutDroppedBytes: 0,
      stderrDroppedBytes: 0,
      spawnError: null,
    });
    expect(r.startedAtMs).toBeGreaterThanOrEqual(before);
    expect(r.finishedAtMs).toBeGreaterThanOrEqual(r.startedAtMs);
  });

  it('reports a non-zero exit as failed with its code', async () => {
    const r = await runCommand(request('echo nope >&2; exit 3', { timeoutMs: 30_000 }));
    expect(r).toMatchObject({ status: 'failed', reason: 'exit-code', exitCode: 3, signal: null, stderr: 'nope\n' });
  });

  it('reports death by a signal it did not send as reason signal, with the signal', async () => {
    const r = await runCommand(request('kill -KILL $$'));
    expect(r).toMatchObject({ status: 'failed', reason: 'signal', exitCode: null, signal: 'SIGKILL' });
  });

  it('reports a kill -9 from outside while the command runs (the OOM killer, an operator) as reason signal', async () => {
    const pidFile = join(dir, 'sleep.pid');
    const running = runCommand(request(`echo $$ > ${pidFile}; exec sleep 30`, { timeoutMs: 30_000 }));
    await waitFor(() => hasCompleteLine(pidFile), 'the pid file');
    process.kill(pidFrom(pidFile), 'SIGKILL');
    expect(await running).toMatchObject({ status: 'failed', reason: 'signal', exitCode: null, signal: 'SIGKILL', spawnError: null });
  });

  it('passes CHORUS_* variables over the inherited environment', async () => {
    const env = {
      CHORUS_JOB: 'backup',
      CHORUS_INSTANCE_ID: 'inst-1',
      CHORUS_NODE_ID: 'node-a',
      CHORUS_ATTEMPT: '2',
      CHORUS_SHARD_INDEX: '1',
      CHORUS_SHARD_TOTAL: '3',
    };
    const cmd =
      'echo "$CHORUS_JOB|$CHORUS_INSTANCE_ID|$CHORUS_NODE_ID|$CHORUS_ATTEMPT|$CHORUS_SHARD_INDEX|$CHORUS_SHARD_TOTAL"; ' +
      'test -n "$PATH"';
    const r = await runCommand(request(cmd, { env }));
    expect(r.status).toBe('succeeded');
    expect(r.stdout).toBe('backup|inst-1|node-a|2|1|3\n');
  });

  it('runs in the given cwd', async () => {
    const r = await runCommand(request('pwd -P', { cwd: dir }));
    expect(r.stdout.trim()).toBe(realpathSync(dir));
  });

  it('reports a missing cwd as a spawn error without rejecting', async () => {
    const r = await runCommand(request('echo hi', { cwd: join(dir, 'missing') }));
    expect(r).toMatchObject({ status: 'failed', reason: 'spawn-failed', exitCode: null, signal: null, stdout: '' });
    expect(r.spawnError).toContain('missing');
  });
});

describe('stdin', () => {
  it('writes the given data to stdin and closes it', async () => {
    const json = JSON.stringify({ instanceId: 'i-1', status: 'succeeded' });
    const r = await runCommand(request('cat', { stdin: json }));
    expect(r).toMatchObject({ status: 'succeeded', stdout: json });
  });

  it('gives an empty, closed stdin when none is given', async () => {
    const r = await runCommand(request('cat; echo done'));
    expect(r).toMatchObject({ status: 'succeeded', stdout: 'done\n' });
  });

  it('survives a child that exits without reading a large stdin', async () => {
    const r = await runCommand(request('exit 0', { stdin: 'x'.repeat(4 * 1024 * 1024) }));
    expect(r.status).toBe('succeeded');
  });
});

describe('timeout and cancel', () => {
  it('kills the whole process group on timeout', async () => {
    const { result, grandchild, pgid } = await runIntoTimeout(
      (pidFile) => `sleep 30 & echo $! > ${pidFile}; wait`,
      {},
    );
    expect(result).toMatchObject({ status: 'failed', reason: 'timeout', spawnError: null });
    await waitFor(() => !isAlive(grandchild), 'the grandchild to die');
    await waitFor(() => liveGroupMembers(pgid).length === 0, 'the process group to be empty');
  });

  it('escalates to SIGKILL when the group ignores SIGTERM', async () => {
    // An ignored signal stays ignored in children, so sleep ignores SIGTERM too.
    const { result, grandchild, pgid } = await runIntoTimeout(
      (pidFile) => `trap '' TERM; sleep 30 & echo $! > ${pidFile}; wait; wait`,
      { killGraceMs: 300 },
    );
    expect(result).toMatchObject({ status: 'failed', reason: 'timeout', exitCode: null, signal: 'SIGKILL' });
    await waitFor(() => !isAlive(grandchild), 'the grandchild to die');
    await waitFor(() => liveGroupMembers(pgid).length === 0, 'the process group to be empty');
  });

  it('cancels through the abort signal and kills the group', async () => {
    const pidFile = join(dir, 'grandchild.pid');
    const abort = new AbortController();
    const running = runCommand(request(`sleep 30 & echo $! > ${pidFile}; wait`, { signal: abort.signal }));
    await waitFor(() => hasCompleteLine(pidFile), 'the pid file');
    const grandchild = pidFrom(pidFile);
    abort.abort();
    const r = await running;
    // Its own SIGTERM ended the shell: a cancel, not a signal failure.
    expect(r).toMatchObject({ status: 'cancelled', reason: 'cancelled', exitCode: null, signal: 'SIGTERM', spawnError: null });
    await waitFor(() => !isAlive(grandchild), 'the grandchild to die');
  });

  it('does not start a command whose signal is already aborted', async () => {
    const marker = join(dir, 'ran');
    const abort = new AbortController();
    abort.abort();
    const r = await runCommand(request(`touch ${marker}`, { signal: abort.signal }));
    expect(r).toMatchObject({ status: 'cancelled', reason: 'cancelled', exitCode: null });
    expect(pids).toEqual([]);
    expect(existsSync(marker)).toBe(false);
  });

  it('does not hang on a background process that keeps the pipes open', async () => {
    const pidFile = join(dir, 'background.pid');
    const before = Date.now();
    const r = await runCommand(request(`sleep 30 & echo $! > ${pidFile}; echo started`));
    // Far below the 30 s the background sleep holds stdout open.
    expect(Date.now() - before).toBeLessThan(DEADLINE_MS);
    expect(r).toMatchObject({ status: 'succeeded', stdout: 'started\n' });
    pidFrom(pidFile); // killed by afterEach
  });

  it('keeps output a background process writes within pipeDrainGraceMs', async () => {
    // The late line comes 1 s after the shell exits: past the default grace, well within this one.
    expect(defaultConfig.pipeDrainGraceMs).toBeLessThan(1000);
    const r = await runCommand(request('(sleep 1; echo late) & echo early', { pipeDrainGraceMs: DEADLINE_MS }));
    expect(r).toMatchObject({ status: 'succeeded', stdout: 'early\nlate\n' });
  });
});

describe('bounded output', () => {
  it('keeps only the tail of several MB of output', async () => {
    // seq 1 1000000 writes 6888896 bytes, ending in "999999\n1000000\n".
    const totalBytes = 6_888_896;
    const r = await runCommand(request('seq 1 1000000; echo small >&2'));
    expect(r.status).toBe('succeeded');
    // By default the tail is ChorusConfig's maxOutputBytes.
    expect(Buffer.byteLength(r.stdout)).toBe(defaultConfig.maxOutputBytes);
    expect(r.stdoutDroppedBytes).toBe(totalBytes - defaultConfig.maxOutputBytes);
    expect(r.stdout.endsWith('999999\n1000000\n')).toBe(true);
    expect(r).toMatchObject({ stderr: 'small\n', stderrDroppedBytes: 0 });
  });

  it('honours maxOutputBytes per stream', async () => {
    const r = await runCommand(request('printf 0123456789; printf abcdefghij >&2', { maxOutputBytes: 4 }));
    expect(r).toMatchObject({ stdout: '6789', stdoutDroppedBytes: 6, stderr: 'ghij', stderrDroppedBytes: 6 });
  });

  it('drops a multibyte character cut at the start of the tail', async () => {
    // "ééé" is c3 a9 c3 a9 c3 a9; the last 5 bytes start inside the first é.
    const r = await runCommand(request("printf '\\303\\251\\303\\251\\303\\251'", { maxOutputBytes: 5 }));
    expect(r).toMatchObject({ stdout: 'éé', stdoutDroppedBytes: 2 });
  });
});

describe('output read while the command runs', () => {
  it('is in the given AttemptOutput as it is written, and the result is its tail', async () => {
    let writes = 0;
    const output = new AttemptOutput(defaultConfig.maxOutputBytes, () => (writes += 1));
    let ended = false;
    // The command waits for a file the test creates once it saw the first line.
    const go = join(dir, 'go');
    const run = runCommand(request(`echo one; echo oops >&2; while [ ! -e ${go} ]; do sleep 0.05; done; echo two`, { output })).then((r) => {
      ended = true;
      return r;
    });
    await waitFor(() => output.stdout.totalBytes === 4 && output.stderr.totalBytes === 5, 'the first lines, live');
    expect(ended).toBe(false);
    expect(output.stdout.snapshot()).toEqual({ bytes: Buffer.from('one\n'), startOffset: 0 });
    expect(writes).toBeGreaterThanOrEqual(2);
    writeFileSync(go, '');
    const r = await run;
    expect(r).toMatchObject({ status: 'succeeded', stdout: 'one\ntwo\n', stderr: 'oops\n' });
    expect(output.stdout.totalBytes).toBe(8);
  });
});

describe('TailBuffer', () => {
  it('never holds more than twice its bound', () => {
    const maxBytes = 1000;
    const tail = new TailBuffer(maxBytes);
    let written = 0;
    for (let i = 0; i < 5000; i++) {
      const chunk = Buffer.alloc(1 + (i % 700), 97 + (i % 26));
      tail.push(chunk);
      written += chunk.length;
      expect(tail.bytesHeld).toBeLessThanOrEqual(2 * maxBytes);
    }
    const { text, droppedBytes } = tail.finish();
    expect(text.length).toBe(maxBytes);
    expect(droppedBytes).toBe(written - maxBytes);
  });

  it('keeps nothing with a zero bound', () => {
    const tail = new TailBuffer(0);
    tail.push(Buffer.from('hello'));
    expect(tail.finish()).toEqual({ text: '', droppedBytes: 5 });
  });
});

describe('long timeouts (past setTimeout’s 2^31-1 ms)', () => {
  it('a 25-day timeout lets a short command finish, with no TimeoutOverflowWarning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const result = await runCommand(request('sleep 0.2; echo done', { timeoutMs: 25 * 86_400_000 }));
      expect(result).toMatchObject({ status: 'succeeded', reason: null, exitCode: 0 });
      expect(result.stdout).toBe('done\n');
      await new Promise((r) => setImmediate(r));
      expect(warnings).not.toContain('TimeoutOverflowWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });
});

/** The processes whose command line or environment holds `token` (live ones: a zombie is dead). */
function processesWith(token: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const text = readFileSync(`/proc/${entry}/cmdline`, 'utf8') + readFileSync(`/proc/${entry}/environ`, 'utf8');
      if (text.includes(token) && isAlive(Number(entry))) found.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return found;
}

let tokenSeq = 0;
/** Variables that name a new attempt, unique on this host: its processes carry the token. */
function attemptEnv(): { env: Record<string, string>; token: string } {
  tokenSeq += 1;
  const token = `executor-test-${process.pid}-${Date.now()}-${tokenSeq}`;
  return { token, env: { CHORUS_INSTANCE_ID: token, CHORUS_NODE_ID: 'n-test', CHORUS_ATTEMPT: '1' } };
}

/**
 * `setsid`: a background process that leaves the command's process group (and session),
 * writes its pid, then sleeps on; `clearEnv` also drops every variable, CHORUS_* included.
 */
function escapee(pidFile: string, clearEnv = false): string {
  return `setsid ${clearEnv ? 'env -i ' : ''}/bin/sh -c 'echo $$ > ${pidFile}; exec /bin/sleep 300' &`;
}

/** Every test of this file that asks for a cgroup gets its own node directory; removed at the end. */
const probed: Containment[] = [];
function probe(sources?: Parameters<typeof probeContainment>[1]): Containment {
  const containment = probeContainment(`executor-test-${process.pid}-${probed.length}`, sources);
  probed.push(containment);
  return containment;
}

afterAll(() => {
  for (const containment of probed) containment.close();
});

/** This host's mounts without the cgroup2 one: the probe falls back to cgroup v1 (or, without it, to the variables). */
function withoutCgroupV2() {
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => !line.includes(' - cgroup2 '))
    .join('\n');
  return { mountinfo, selfCgroup: readFileSync('/proc/self/cgroup', 'utf8') };
}

const containments: [string, () => Containment][] = [
  ['the probed containment (as root here: a cgroup v2)', () => probe()],
  ['the probed containment without cgroup v2 (here: cgroup v1)', () => probe(withoutCgroupV2())],
  // What a daemon that may make no cgroup (not root, a read-only /sys/fs/cgroup) uses.
  ['the search by CHORUS_* variables', () => environmentContainment],
];

describe.each(containments)('a timeout or a cancel kills what left the process group, with %s', (_name, containmentOf) => {
  let containment: Containment;
  beforeEach(() => {
    containment = containmentOf();
  });

  it('a timeout kills a setsid escapee; the result is a timeout, with the output', async () => {
    const { env, token } = attemptEnv();
    const { result, grandchild: escaped } = await runIntoTimeout((pidFile) => `${escapee(pidFile)} while [ ! -s ${pidFile} ]; do sleep 0.01; done; echo started; sleep 300`, {
      env,
      containment,
    });
    expect(result).toMatchObject({ status: 'failed', reason: 'timeout', exitCode: null, signal: 'SIGTERM', stdout: 'started\n', spawnError: null });
    await waitFor(() => !isAlive(escaped), 'the setsid escapee to die');
    await waitFor(() => processesWith(token).length === 0, 'no process of the attempt left');
  });

  it('a cancel kills a setsid escapee', async () => {
    const { env, token } = attemptEnv();
    const pidFile = join(dir, 'escapee.pid');
    const abort = new AbortController();
    const running = runCommand(request(`${escapee(pidFile)} sleep 300`, { env, containment, signal: abort.signal }));
    await waitFor(() => hasCompleteLine(pidFile), 'the escapee to start');
    const escaped = pidFrom(pidFile);
    abort.abort();
    expect(await running).toMatchObject({ status: 'cancelled', reason: 'cancelled', spawnError: null });
    await waitFor(() => !isAlive(escaped), 'the setsid escapee to die');
    await waitFor(() => processesWith(token).length === 0, 'no process of the attempt left');
  });

  it('an escapee that ignores SIGTERM gets the SIGKILL', async () => {
    const { env, token } = attemptEnv();
    const { result, grandchild: escaped } = await runIntoTimeout(
      (pidFile) => `setsid /bin/sh -c 'trap "" TERM; echo $$ > ${pidFile}; exec /bin/sleep 300' & while [ ! -s ${pidFile} ]; do sleep 0.01; done; sleep 300`,
      { env, containment, killGraceMs: 300 },
    );
    expect(result).toMatchObject({ status: 'failed', reason: 'timeout' });
    await waitFor(() => !isAlive(escaped), 'the escapee that ignores SIGTERM to die');
    await waitFor(() => processesWith(token).length === 0, 'no process of the attempt left');
  });

  it('leaves a command that ends by itself as it was: exit code, output, $$, and what it leaves running', async () => {
    const { env } = attemptEnv();
    let shell = 0;
    const failed = await runCommand(request('echo "$$"; echo nope >&2; exit 3', { env, containment, timeoutMs: 30_000, onSpawn: (pid) => pids.push((shell = pid)) }));
    expect(failed).toMatchObject({ status: 'failed', reason: 'exit-code', exitCode: 3, signal: null, stdout: `${shell}\n`, stderr: 'nope\n' });
    // A command may start something meant to outlive it (a server): only a timeout or a cancel stops it.
    const pidFile = join(dir, 'server.pid');
    const started = await runCommand(request(`${escapee(pidFile)} while [ ! -s ${pidFile} ]; do sleep 0.01; done; echo ok`, { env, containment }));
    expect(started).toMatchObject({ status: 'succeeded', exitCode: 0, stdout: 'ok\n' });
    expect(isAlive(pidFrom(pidFile))).toBe(true); // killed by afterEach
  });
});

/** Why this host gives no cgroup to an attempt (not root, no writable cgroup mount), or null when it does (as root on this kind of host, and in CI). */
const noCgroup: string | null = (() => {
  const containment = probe();
  return containment instanceof CgroupContainment ? null : containment.view.detail;
})();

describe.skipIf(noCgroup !== null)(`in a cgroup${noCgroup === null ? '' : ` (not run: ${noCgroup})`}`, () => {
  /** The probed containment, which must be a cgroup on a host like this one (root, cgroups mounted read-write). */
  function cgroup(): CgroupContainment {
    const containment = probe();
    if (!(containment instanceof CgroupContainment)) throw new Error(`this host gives no cgroup: ${containment.view.detail}`);
    return containment;
  }

  it('a timeout kills even an escapee that cleared its environment, and the attempt\'s cgroup is removed', async () => {
    const containment = cgroup();
    const { env } = attemptEnv();
    const { result, grandchild: escaped } = await runIntoTimeout((pidFile) => `${escapee(pidFile, true)} while [ ! -s ${pidFile} ]; do sleep 0.01; done; sleep 300`, { env, containment });
    expect(result).toMatchObject({ status: 'failed', reason: 'timeout' });
    await waitFor(() => !isAlive(escaped), 'the escapee without variables to die');
    expect(readdirSync(containment.base).filter((name) => name.startsWith('a-'))).toEqual([]);
  });

  it('a command whose shell could not join its cgroup is still killed whole, by its variables', async () => {
    const containment = cgroup();
    // Its cgroup is gone before the shell writes itself in (someone removed it).
    const lost: Containment = {
      view: containment.view,
      enclose: (marks) => {
        const enclosure = containment.enclose(marks);
        for (const name of readdirSync(containment.base).filter((n) => n.startsWith('a-'))) rmdirSync(join(containment.base, name));
        return enclosure;
      },
      killLeftover: (marks) => containment.killLeftover(marks),
      close: () => containment.close(),
    };
    const { env, token } = attemptEnv();
    const { result, grandchild: escaped } = await runIntoTimeout((pidFile) => `${escapee(pidFile)} while [ ! -s ${pidFile} ]; do sleep 0.01; done; sleep 300`, { env, containment: lost });
    expect(result).toMatchObject({ status: 'failed', reason: 'timeout', stderr: '' });
    await waitFor(() => !isAlive(escaped), 'the setsid escapee to die');
    await waitFor(() => processesWith(token).length === 0, 'no process of the attempt left');
  });

  it('killLeftover kills what an attempt left in its cgroup (a crash), variables or not', async () => {
    const containment = cgroup();
    const { env } = attemptEnv();
    const pidFile = join(dir, 'escapee.pid');
    const running = runCommand(request(`${escapee(pidFile, true)} sleep 300`, { env, containment }));
    await waitFor(() => hasCompleteLine(pidFile), 'the escapee to start');
    const escaped = pidFrom(pidFile);
    // As a restarted daemon does for an attempt its crashed predecessor started.
    const killed = processExecutor(containment).killLeftover({ ...attemptMarks(env)!, recordedGroup: undefined });
    expect(killed).toContain(escaped); // it leads its own group
    await waitFor(() => !isAlive(escaped), 'the escapee to die');
    expect(await running).toMatchObject({ signal: 'SIGKILL' });
  });
});
