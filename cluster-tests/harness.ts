// Real-process test harness: starts `chorus daemon` processes and runs the `chorus`
// CLI exactly as a user would (`node bin/run.js ...`), and guarantees that every
// process a test started is gone when the test ends, whether it passed or not.
//
// Usage in a test file:
//
//   useProcessCleanup();                     // once, at the top level of the file
//   const d = await startDaemon({ name: 'a' });
//   const r = await cli(['status', '--json'], { dataDir: d.dataDir });
//   expect(r.exitCode, r.context).toBe(0);
//
// Scoping: whatever is started or created inside a test (`it`, or its beforeEach) is
// SIGKILLed / removed in afterEach; whatever is started outside a test (beforeAll)
// belongs to the file and is cleaned up in afterAll. Tests in a file must not run
// concurrently (no describe.concurrent): the scope is tracked per file, not per test.
//
// Every daemon and CLI process gets a unique marker variable in its environment
// (CHORUS_TEST_PROCESS_TAG); job commands inherit it, so cleanup finds and kills the
// jobs a daemon spawned in their own process groups even after the daemon itself was
// SIGKILLed and they were re-parented (Linux: by scanning /proc).
import type { NodeInfo } from '../src/daemon/paths.js';
import { createWriteStream, existsSync, readdirSync, readFileSync, type WriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { generateSwarmKey } from '../src/network/swarm-key.js';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { execa, type ResultPromise } from 'execa';
import { afterAll, afterEach, beforeEach } from 'vitest';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The CLI entry point; always run with `process.execPath` (the pinned Node inside vitest). */
export const RUN_JS = join(REPO_ROOT, 'bin', 'run.js');
/** Environment variable that marks every process started through this harness. */
export const PROCESS_TAG_VAR = 'CHORUS_TEST_PROCESS_TAG';

const DEFAULT_READY_TIMEOUT_MS = 30_000;
const DEFAULT_CLI_TIMEOUT_MS = 60_000;
const DEFAULT_STOP_TIMEOUT_MS = 20_000;
const MAX_LOG_BUFFER_CHARS = 1024 * 1024;

/** What `DIR/node.json` holds: the daemon's own type. */
export type { NodeInfo } from '../src/daemon/paths.js';

export interface ExitInfo {
  /** The exit code, or null when the process died by a signal. */
  exitCode: number | null;
  /** The signal that ended the process, or null when it exited by itself. */
  signal: NodeJS.Signals | null;
}

// ---- registry and cleanup ------------------------------------------------------------

type Scope = 'test' | 'suite';

interface TrackedProcess {
  scope: Scope;
  tag: string;
  subprocess: ResultPromise;
  exited: Promise<ExitInfo>;
  done: boolean;
}

interface TrackedGroup {
  scope: Scope;
  pgid: number;
}

interface TrackedDir {
  scope: Scope;
  path: string;
}

const processes: TrackedProcess[] = [];
const groups: TrackedGroup[] = [];
const dirs: TrackedDir[] = [];
let currentScope: Scope = 'suite';
let anyTestFailed = false;
let cleanupInstalled = false;
let exitHookInstalled = false;
const runId = `${process.pid}-${randomBytes(4).toString('hex')}`;
let tagSeq = 0;

function newTag(kind: string): string {
  tagSeq += 1;
  return `${runId}-${kind}-${tagSeq}`;
}

/**
 * Installs the hooks that kill every process and remove every temporary directory
 * this harness started or created. Call it once at the top level of each test file.
 * A failed test keeps its temporary directories (their paths are printed).
 */
export function useProcessCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  installExitHook();
  beforeEach(() => {
    currentScope = 'test';
  });
  afterEach(async (context) => {
    const failed = context.task.result?.state === 'fail';
    if (failed) anyTestFailed = true;
    try {
      await cleanupScope('test', failed, context.task.name);
    } finally {
      currentScope = 'suite';
    }
  });
  afterAll(async () => {
    await cleanupScope('suite', anyTestFailed, 'a test in this file');
    cleanupInstalled = false;
    sharedSwarmKey = null; // its directory went with the file's others
  });
}

async function cleanupScope(scope: Scope, keepDirs: boolean, label: string): Promise<void> {
  const mine = processes.filter((p) => p.scope === scope);
  await Promise.all(mine.map((p) => killTracked(p)));
  remove(processes, mine);

  const myGroups = groups.filter((g) => g.scope === scope);
  for (const g of myGroups) signalGroup(g.pgid, 'SIGKILL');
  remove(groups, myGroups);

  const myDirs = dirs.filter((d) => d.scope === scope);
  remove(dirs, myDirs);
  if (keepDirs) {
    if (myDirs.length > 0) {
      process.stderr.write(`[harness] ${label} failed; kept for debugging (daemon output is in daemon.log):\n${myDirs.map((d) => `  ${d.path}\n`).join('')}`);
    }
    return;
  }
  await Promise.all(myDirs.map((d) => rm(d.path, { recursive: true, force: true }).catch(() => undefined)));
}

async function killTracked(p: TrackedProcess): Promise<void> {
  if (!p.done) {
    try {
      p.subprocess.kill('SIGKILL');
    } catch {
      // already gone
    }
    await withTimeout(p.exited, 10_000).catch(() => undefined);
  }
  // Whatever it spawned (job commands in their own process groups) carries its tag.
  killTaggedProcesses(p.tag);
}

function remove<T>(list: T[], items: T[]): void {
  for (const item of items) {
    const i = list.indexOf(item);
    if (i >= 0) list.splice(i, 1);
  }
}

/** Last resort when the worker exits without running the hooks: kill synchronously. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const p of processes) {
      try {
        if (!p.done) p.subprocess.kill('SIGKILL');
      } catch {
        // ignore
      }
      killTaggedProcesses(p.tag);
    }
    for (const g of groups) signalGroup(g.pgid, 'SIGKILL');
  });
}

function register(subprocess: ResultPromise, tag: string): TrackedProcess {
  installExitHook();
  const tracked: TrackedProcess = {
    scope: currentScope,
    tag,
    subprocess,
    done: false,
    exited: new Promise<ExitInfo>((resolveExit) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        tracked.done = true;
        resolveExit({ exitCode: code, signal });
      };
      if (subprocess.exitCode !== null || subprocess.signalCode !== null) {
        finish(subprocess.exitCode, subprocess.signalCode as NodeJS.Signals | null);
      } else {
        subprocess.once('exit', finish);
      }
    }),
  };
  // reject: false everywhere, but never leave a rejection unhandled (spawn errors).
  void subprocess.catch(() => undefined);
  processes.push(tracked);
  return tracked;
}

/**
 * Kills a process group (SIGKILL) when the current test (or, outside a test, the file)
 * ends: for job commands a test knows about, e.g. an orphan left by a killed daemon.
 */
export function trackProcessGroup(pgid: number): void {
  if (!Number.isInteger(pgid) || pgid <= 1) throw new Error(`trackProcessGroup: bad process group id ${pgid}`);
  installExitHook();
  groups.push({ scope: currentScope, pgid });
}

/** A new temporary directory (real path), removed after the test unless it failed. */
export async function tempDir(prefix = 'chorus-test-'): Promise<string> {
  const path = await realpath(await mkdtemp(join(tmpdir(), prefix)));
  dirs.push({ scope: currentScope, path });
  return path;
}

// ---- processes on the host ------------------------------------------------------------

const ownPgid = readOwnPgid();

function readOwnPgid(): number | null {
  try {
    return statOf('self')?.pgrp ?? null;
  } catch {
    return null;
  }
}

/** Fields of /proc/PID/stat we need; null if the process does not exist (or not Linux). */
function statOf(pid: number | 'self'): { state: string; ppid: number; pgrp: number } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may contain spaces.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0] ?? '?', ppid: Number(rest[1]), pgrp: Number(rest[2]) };
}

const hasProc = existsSync('/proc/self/stat');

function allPids(): number[] {
  if (!hasProc) return [];
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

/** True if the process exists and is not a zombie (an exited child nobody reaped yet). */
export function isProcessAlive(pid: number): boolean {
  if (hasProc) {
    const st = statOf(pid);
    return st !== null && st.state !== 'Z' && st.state !== 'X';
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True if any member of the process group is alive (zombies do not count). */
export function isProcessGroupAlive(pgid: number): boolean {
  if (hasProc) {
    return allPids().some((pid) => {
      const st = statOf(pid);
      return st !== null && st.pgrp === pgid && st.state !== 'Z' && st.state !== 'X';
    });
  }
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  if (pgid <= 1 || pgid === ownPgid) return; // never our own group (that is vitest)
  try {
    process.kill(-pgid, signal);
  } catch {
    // gone already
  }
}

/** SIGKILLs every process whose environment carries PROCESS_TAG_VAR=tag (Linux only). */
export function killTaggedProcesses(tag: string): number {
  if (!hasProc) return 0;
  const needle = Buffer.from(`\0${PROCESS_TAG_VAR}=${tag}\0`);
  let killed = 0;
  // A few rounds: a process may fork while we look.
  for (let round = 0; round < 3; round++) {
    let found = 0;
    for (const pid of allPids()) {
      if (pid === process.pid) continue;
      let environ: Buffer;
      try {
        environ = Buffer.concat([Buffer.from([0]), readFileSync(`/proc/${pid}/environ`)]);
      } catch {
        continue;
      }
      if (environ.indexOf(needle) < 0) continue;
      const st = statOf(pid);
      if (!st || st.state === 'Z') continue;
      found += 1;
      try {
        process.kill(pid, 'SIGKILL');
        killed += 1;
      } catch {
        // raced with its exit
      }
    }
    if (found === 0) break;
  }
  return killed;
}

// ---- waiting ---------------------------------------------------------------------------

export interface WaitOptions {
  /** Give up after this long (default 20 s). */
  timeoutMs?: number;
  /** Time between two probes (default 100 ms). */
  intervalMs?: number;
  /** What is awaited, for the error message. */
  what?: string;
}

/** Thrown by a waitFor predicate to give up at once (any other error means "not yet"). */
export class StopWaiting extends Error {}

/**
 * Polls `predicate` until it returns a truthy value (which is returned) or the deadline
 * passes (then it throws, with the last value or error). A throwing predicate counts as
 * "not yet", except for StopWaiting, which is rethrown at once. The only sleeping
 * allowed in tests is inside loops like this one.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  opts: WaitOptions = {},
): Promise<Exclude<T, false | null | undefined | 0 | ''>> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const intervalMs = opts.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  let lastError: unknown;
  for (;;) {
    try {
      last = await predicate();
      lastError = undefined;
      if (last) return last as Exclude<T, false | null | undefined | 0 | ''>;
    } catch (err) {
      if (err instanceof StopWaiting) throw err;
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastError !== undefined ? `last error: ${errorText(lastError)}` : `last value: ${preview(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'a condition'} (${detail})`);
    }
    await sleep(Math.min(intervalMs, Math.max(1, deadline - Date.now())));
  }
}

/**
 * Polls `probe` for `durationMs` and throws as soon as its value (compared as JSON)
 * differs from the first one: "nothing changes for a while". Returns the value.
 */
export async function expectStable<T>(
  probe: () => T | Promise<T>,
  opts: { durationMs: number; intervalMs?: number; what?: string },
): Promise<T> {
  const first = await probe();
  const firstJson = JSON.stringify(first);
  const deadline = Date.now() + opts.durationMs;
  while (Date.now() < deadline) {
    await sleep(Math.min(opts.intervalMs ?? 200, Math.max(1, deadline - Date.now())));
    const now = await probe();
    const nowJson = JSON.stringify(now);
    if (nowJson !== firstJson) {
      throw new Error(`${opts.what ?? 'value'} changed while it should stay stable: was ${preview(first)}, became ${preview(now)}`);
    }
  }
  return first;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function preview(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'string' ? value : JSON.stringify(value);
  } catch {
    text = String(value);
  }
  text = text ?? String(value);
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}

// ---- environment -----------------------------------------------------------------------

/** process.env without any CHORUS_* variable (so the outer shell cannot redirect a test). */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('CHORUS_')) env[k] = v;
  }
  return env;
}

// ---- the CLI ---------------------------------------------------------------------------

export interface CliOptions {
  /** Adds `--data-dir DIR` (before a `--` separator, if any). */
  dataDir?: string;
  /** Extra environment variables (CHORUS_* from the outer environment are never passed). */
  env?: Record<string, string>;
  /** Kill the command (SIGKILL) after this long; default 60 s. */
  timeoutMs?: number;
  /** Written to stdin; without it stdin is closed. */
  input?: string;
}

export interface CliResult {
  args: string[];
  /** The exit code; null if the process was killed (timeout or signal). */
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  /** Everything about the run, for assertion messages: expect(r.exitCode, r.context). */
  context: string;
  /** stdout parsed as exactly one JSON document; throws with the context otherwise. */
  json<T = unknown>(): T;
}

/** Runs `chorus ARGS...` (bin/run.js on this Node) to completion. Never rejects on a non-zero exit. */
export async function cli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const argv = withDataDir(args, opts.dataDir);
  const tag = newTag('cli');
  const subprocess = execa(process.execPath, [RUN_JS, ...argv], {
    cwd: REPO_ROOT,
    env: { ...baseEnv(), ...opts.env, [PROCESS_TAG_VAR]: tag },
    extendEnv: false,
    reject: false,
    timeout: opts.timeoutMs ?? DEFAULT_CLI_TIMEOUT_MS,
    killSignal: 'SIGKILL',
    stripFinalNewline: false,
    ...(opts.input === undefined ? { stdin: 'ignore' as const } : { input: opts.input }),
  });
  const tracked = register(subprocess, tag);
  const result = await subprocess;
  await tracked.exited;
  remove(processes, [tracked]);
  killTaggedProcesses(tag); // nothing should be left, but a CLI must not leak children
  const stdout = String(result.stdout ?? '');
  const stderr = String(result.stderr ?? '');
  const exitCode = typeof result.exitCode === 'number' ? result.exitCode : null;
  const signal = result.signal ?? null;
  const timedOut = Boolean(result.timedOut);
  const context =
    `$ chorus ${argv.map(shellWord).join(' ')}\n` +
    `exit: ${exitCode}${signal ? ` signal: ${signal}` : ''}${timedOut ? ' (timed out)' : ''}\n` +
    `--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;
  return {
    args: argv,
    exitCode,
    signal,
    timedOut,
    stdout,
    stderr,
    context,
    json<T>(): T {
      try {
        return JSON.parse(stdout) as T;
      } catch (err) {
        throw new Error(`stdout is not exactly one JSON document (${errorText(err)}):\n${context}`, { cause: err });
      }
    },
  };
}

function withDataDir(args: string[], dataDir: string | undefined): string[] {
  if (dataDir === undefined) return [...args];
  const sep = args.indexOf('--');
  if (sep < 0) return [...args, '--data-dir', dataDir];
  return [...args.slice(0, sep), '--data-dir', dataDir, ...args.slice(sep)];
}

function shellWord(word: string): string {
  return /^[A-Za-z0-9_\-./:=@%+,]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

// ---- daemons ---------------------------------------------------------------------------

export interface StartDaemonOptions {
  /** Data directory; default: a new temporary one (removed with the test). */
  dataDir?: string;
  /** --name */
  name?: string;
  /** --tag KEY=VALUE, one per entry. */
  tags?: string[];
  /** --join MULTIADDR, one per entry. */
  join?: string[];
  /** --listen; default ['/ip4/127.0.0.1/tcp/0']. */
  listen?: string[];
  /** --api; default '127.0.0.1:0'. */
  api?: string;
  /** --log-level; default 'debug'. */
  logLevel?: string;
  /** More arguments, appended last. */
  extraArgs?: string[];
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** How long to wait for node.json written by this process; default 30 s. */
  readyTimeoutMs?: number;
  /**
   * --swarm-key FILE; default: one key shared by every daemon of this test process, so they
   * form one cluster. null passes no --swarm-key (the daemon uses or creates DIR/swarm.key).
   */
  swarmKey?: string | null;
}

let sharedSwarmKey: Promise<string> | null = null;

/** The swarm key file every test daemon gets unless told otherwise (a cluster is always closed). */
export function sharedSwarmKeyFile(): Promise<string> {
  sharedSwarmKey ??= (async () => {
    const dir = await realpath(await mkdtemp(join(tmpdir(), 'chorus-swarm-')));
    dirs.push({ scope: 'suite', path: dir }); // removed with the file's other directories
    const path = join(dir, 'swarm.key');
    await writeFile(path, generateSwarmKey(), { mode: 0o600 });
    return path;
  })();
  return sharedSwarmKey;
}

export interface DaemonHandle {
  readonly dataDir: string;
  readonly pid: number;
  /** node.json as this process wrote it. */
  readonly info: NodeInfo;
  readonly nodeId: string;
  /** The execa subprocess, for anything not covered here. */
  readonly subprocess: ResultPromise;
  /** Exit code once it exited by itself; null while running or when killed by a signal. */
  readonly exitCode: number | null;
  /** The signal that ended it, or null. */
  readonly signalCode: NodeJS.Signals | null;
  readonly running: boolean;
  /** Sends a signal (default SIGTERM); does not wait. */
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM and wait for the exit; SIGKILL and throw if it takes longer than timeoutMs (20 s). */
  stop(timeoutMs?: number): Promise<ExitInfo>;
  /** Resolves on exit; throws if it is still running after timeoutMs (default 20 s). */
  waitForExit(timeoutMs?: number): Promise<ExitInfo>;
  /** stdout and stderr so far (the last 1 MiB), as they interleaved. */
  logs(): string;
  /** `cli(args)` against this daemon's data directory. */
  cli(args: string[], opts?: Omit<CliOptions, 'dataDir'>): Promise<CliResult>;
}

/** Reads DIR/node.json; null if it is missing or half written. */
export async function readNodeInfo(dataDir: string): Promise<NodeInfo | null> {
  try {
    return JSON.parse(await readFile(join(dataDir, 'node.json'), 'utf8')) as NodeInfo;
  } catch {
    return null;
  }
}

/**
 * Starts `chorus daemon` on its own (or the given) data directory, listening on
 * 127.0.0.1 with port 0 for both libp2p and the API, and waits until node.json was
 * written by this very process. Output goes to a bounded buffer (`logs()`) and is
 * appended to DIR/daemon.log.
 */
export async function startDaemon(opts: StartDaemonOptions = {}): Promise<DaemonHandle> {
  const dataDir = opts.dataDir ?? (await tempDir('chorus-node-'));
  await mkdir(dataDir, { recursive: true, mode: 0o700 }); // for daemon.log; the daemon would create it too
  const swarmKey = opts.swarmKey === undefined ? await sharedSwarmKeyFile() : opts.swarmKey;
  const args = [
    'daemon',
    '--data-dir',
    dataDir,
    '--api',
    opts.api ?? '127.0.0.1:0',
    ...(opts.listen ?? ['/ip4/127.0.0.1/tcp/0']).flatMap((l) => ['--listen', l]),
    '--log-level',
    opts.logLevel ?? 'debug',
    ...(opts.name !== undefined ? ['--name', opts.name] : []),
    ...(opts.tags ?? []).flatMap((t) => ['--tag', t]),
    ...(opts.join ?? []).flatMap((j) => ['--join', j]),
    ...(swarmKey === null ? [] : ['--swarm-key', swarmKey]),
    ...(opts.extraArgs ?? []),
  ];
  const tag = newTag('daemon');
  const logFile: WriteStream = createWriteStream(join(dataDir, 'daemon.log'), { flags: 'a' });
  logFile.on('error', () => undefined); // the directory may be removed under us at cleanup
  logFile.write(`\n===== ${new Date().toISOString()} chorus ${args.map(shellWord).join(' ')}\n`);
  let buffer = '';
  const append = (chunk: Buffer | string) => {
    const text = chunk.toString();
    buffer += text;
    if (buffer.length > MAX_LOG_BUFFER_CHARS) buffer = buffer.slice(-MAX_LOG_BUFFER_CHARS);
    if (!logFile.destroyed && !logFile.writableEnded) logFile.write(text);
  };

  const subprocess = execa(process.execPath, [RUN_JS, ...args], {
    cwd: REPO_ROOT,
    env: { ...baseEnv(), ...opts.env, [PROCESS_TAG_VAR]: tag },
    extendEnv: false,
    reject: false,
    buffer: false,
    stdin: 'ignore',
  });
  const tracked = register(subprocess, tag);
  subprocess.stdout?.on('data', append);
  subprocess.stderr?.on('data', append);
  let exit: ExitInfo | null = null;
  void tracked.exited.then((e) => {
    exit = e;
    append(`===== exited: code ${e.exitCode} signal ${e.signal}\n`);
    // Let the pipes drain before closing the file.
    setTimeout(() => logFile.end(), 200).unref();
  });
  const pid = subprocess.pid;
  if (pid === undefined) {
    await tracked.exited;
    throw new Error(`could not spawn chorus daemon:\n${buffer}`);
  }

  const readyTimeoutMs = opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  let info: NodeInfo;
  try {
    info = await waitFor(
      async () => {
        if (exit) throw new EarlyExit(exit);
        const current = await readNodeInfo(dataDir);
        return current && current.pid === pid ? current : null;
      },
      { timeoutMs: readyTimeoutMs, intervalMs: 100, what: `daemon pid ${pid} to write ${join(dataDir, 'node.json')}` },
    );
  } catch (err) {
    try {
      subprocess.kill('SIGKILL');
    } catch {
      // ignore
    }
    await withTimeout(tracked.exited, 5000).catch(() => undefined);
    const e = exit as ExitInfo | null;
    const how = e ? `it exited (code ${e.exitCode}, signal ${e.signal})` : (err as Error).message;
    throw new Error(`chorus daemon did not become ready in ${dataDir}: ${how}\n--- daemon output (tail) ---\n${buffer.slice(-8000)}`, { cause: err });
  }

  const waitForExit = async (timeoutMs = DEFAULT_STOP_TIMEOUT_MS): Promise<ExitInfo> => {
    try {
      return await withTimeout(tracked.exited, timeoutMs);
    } catch (err) {
      throw new Error(`daemon pid ${pid} (${dataDir}) still running after ${timeoutMs} ms\n--- daemon output (tail) ---\n${buffer.slice(-4000)}`, { cause: err });
    }
  };

  const handle: DaemonHandle = {
    dataDir,
    pid,
    info,
    nodeId: info.nodeId,
    subprocess,
    get exitCode() {
      return exit?.exitCode ?? null;
    },
    get signalCode() {
      return exit?.signal ?? null;
    },
    get running() {
      return exit === null;
    },
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (exit) return;
      try {
        subprocess.kill(signal);
      } catch {
        // raced with its exit
      }
    },
    async stop(timeoutMs = DEFAULT_STOP_TIMEOUT_MS) {
      if (exit) return exit;
      handle.kill('SIGTERM');
      try {
        return await waitForExit(timeoutMs);
      } catch (err) {
        handle.kill('SIGKILL');
        await withTimeout(tracked.exited, 5000).catch(() => undefined);
        throw err;
      }
    },
    waitForExit,
    logs: () => buffer,
    cli: (cliArgs, cliOpts = {}) => cli(cliArgs, { ...cliOpts, dataDir }),
  };
  return handle;
}

class EarlyExit extends StopWaiting {
  constructor(readonly exit: ExitInfo) {
    super(`the daemon exited before it was ready (code ${exit.exitCode}, signal ${exit.signal})`);
  }
}

/** Reads a file holding a pid (as written by `echo $$ > FILE`); null until it is complete. */
export async function readPidFile(path: string): Promise<number | null> {
  try {
    const text = await readFile(path, 'utf8');
    if (!text.endsWith('\n')) return null;
    const pid = Number.parseInt(text.trim(), 10);
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}
