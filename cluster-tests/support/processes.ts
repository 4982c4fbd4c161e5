// Every process the multi-process tests and the benchmark start, and how it is taken
// down: a registry of tracked processes, process groups and temporary directories,
// each in a scope ('test': killed/removed when the current test ends; 'suite': when
// the file, or the benchmark, ends). No vitest here: hooks.ts installs the hooks that
// call cleanupScope(); the benchmark calls cleanupAllSync() itself.
//
// Every process gets a unique marker variable in its environment (PROCESS_TAG_VAR);
// job commands inherit it, so cleanup finds and kills what a daemon spawned in its own
// process groups even after the daemon itself was SIGKILLed and they were re-parented
// (Linux: by scanning /proc).
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processAlive, processGroupOf } from '../../src/core/proc.js';
import { generateSwarmKey } from '../../src/network/swarm-key.js';
import { withTimeout } from './wait.js';

/** The repository: the first folder above this file with a package.json (this file also runs compiled, from dist/). */
export const REPO_ROOT = findRepoRoot(dirname(fileURLToPath(import.meta.url)));
/** The CLI entry point; always run with `process.execPath` (the pinned Node). */
export const RUN_JS = join(REPO_ROOT, 'bin', 'run.js');
/** What bin/chorus and dist/chorus pass to Node (see bin/chorus): daemons in tests and benchmarks run as users run them. */
export const DAEMON_NODE_FLAGS = ['--max-semi-space-size=1'];
/** Environment variable that marks every process started through this support. */
export const PROCESS_TAG_VAR = 'CHORUS_TEST_PROCESS_TAG';

function findRepoRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export interface ExitInfo {
  /** The exit code, or null when the process died by a signal. */
  exitCode: number | null;
  /** The signal that ended the process, or null when it exited by itself. */
  signal: NodeJS.Signals | null;
}

// ---- registry ---------------------------------------------------------------------------

export type Scope = 'test' | 'suite';

export interface TrackedProcess {
  readonly scope: Scope;
  readonly tag: string;
  readonly child: ChildProcess;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitInfo>;
  /** performance.now() when it was spawned and when it exited. */
  readonly spawnedAt: number;
  exitedAt: number | null;
  /** How it ended, set at the exit event; null while it runs. */
  exit: ExitInfo | null;
  done: boolean;
  /** Stopped with SIGSTOP: cleanup sends SIGCONT before SIGKILL. */
  frozen: boolean;
}

const processes: TrackedProcess[] = [];
const groups: { scope: Scope; pgid: number }[] = [];
const dirs: { scope: Scope; path: string }[] = [];
let currentScope: Scope = 'suite';
let exitHookInstalled = false;
const runId = `${process.pid}-${randomBytes(4).toString('hex')}`;
let tagSeq = 0;

/** Whatever is started or created from now on belongs to this scope (hooks.ts sets it around each test). */
export function setScope(scope: Scope): void {
  currentScope = scope;
}

/** A marker unique to one process; every marker of this run starts with the same prefix. */
export function newTag(kind: string): string {
  tagSeq += 1;
  return `${runId}-${kind}-${tagSeq}`;
}

/** process.env without any CHORUS_* variable (the outer shell cannot redirect a test), then `extra`, then the marker. */
export function childEnv(tag: string, extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('CHORUS_')) env[k] = v;
  }
  return { ...env, ...extra, [PROCESS_TAG_VAR]: tag };
}

/** Registers a child process (spawned with childEnv(tag) at performance.now() `spawnedAt`) in the current scope. */
export function track(child: ChildProcess, tag: string, spawnedAt = performance.now()): TrackedProcess {
  installExitHook();
  const tracked: TrackedProcess = {
    scope: currentScope,
    tag,
    child,
    spawnedAt,
    exitedAt: null,
    exit: null,
    done: false,
    frozen: false,
    exited: new Promise<ExitInfo>((resolveExit) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        if (tracked.done) return;
        tracked.exitedAt = performance.now();
        tracked.exit = { exitCode: code, signal };
        tracked.done = true;
        resolveExit(tracked.exit);
      };
      if (child.exitCode !== null || child.signalCode !== null) finish(child.exitCode, child.signalCode);
      else child.once('exit', finish);
      // A process that could not be spawned emits 'error' and maybe never 'exit'.
      child.once('error', () => {
        if (child.pid === undefined) finish(null, null);
      });
    }),
  };
  processes.push(tracked);
  return tracked;
}

/** Spawns a tracked process (its environment: childEnv) in the repository. */
export function spawnTracked(
  file: string,
  args: string[],
  opts: { kind: string; env?: Record<string, string>; stdio?: StdioOptions; cwd?: string },
): TrackedProcess {
  const tag = newTag(opts.kind);
  const env = childEnv(tag, opts.env);
  const spawnedAt = performance.now();
  const child = spawn(file, args, { cwd: opts.cwd ?? REPO_ROOT, env, stdio: opts.stdio ?? 'ignore' });
  child.on('error', () => undefined); // reported through `exited`; never an unhandled 'error' event
  return track(child, tag, spawnedAt);
}

/** Forgets a process that has ended and whose leftovers were killed (a CLI run). */
export function untrack(tracked: TrackedProcess): void {
  remove(processes, [tracked]);
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

/** A new temporary directory (real path), removed with its scope unless a test failed. */
export async function tempDir(prefix = 'chorus-test-'): Promise<string> {
  const path = await realpath(await mkdtemp(join(tmpdir(), prefix)));
  dirs.push({ scope: currentScope, path });
  return path;
}

let sharedSwarmKey: Promise<string> | null = null;

/** The swarm key file every daemon gets unless told otherwise (a cluster is always closed). */
export function sharedSwarmKeyFile(): Promise<string> {
  sharedSwarmKey ??= (async () => {
    const path = await realpath(await mkdtemp(join(tmpdir(), 'chorus-swarm-')));
    dirs.push({ scope: 'suite', path }); // removed with the file's other directories
    const file = join(path, 'swarm.key');
    await writeFile(file, generateSwarmKey(), { mode: 0o600 });
    return file;
  })();
  return sharedSwarmKey;
}

/** SIGCONTs every frozen process (whatever its scope), e.g. after a test that failed while one was stopped. */
export function thawAll(): void {
  for (const p of processes) {
    if (!p.frozen) continue;
    p.frozen = false;
    signalPid(p.child.pid, 'SIGCONT');
  }
}

/**
 * Kills every process of `scope` (SIGCONT, then SIGKILL, then whatever carries its
 * marker), every tracked process group, and removes the directories unless `keepDirs`
 * (then `onKept` is told their paths).
 */
export async function cleanupScope(scope: Scope, opts: { keepDirs?: boolean; onKept?: (paths: string[]) => void } = {}): Promise<void> {
  const mine = processes.filter((p) => p.scope === scope);
  await Promise.all(mine.map((p) => killTracked(p)));
  remove(processes, mine);

  const myGroups = groups.filter((g) => g.scope === scope);
  for (const g of myGroups) signalGroup(g.pgid, 'SIGKILL');
  remove(groups, myGroups);

  const myDirs = dirs.filter((d) => d.scope === scope);
  remove(dirs, myDirs);
  if (scope === 'suite') sharedSwarmKey = null; // its directory goes with the others
  if (opts.keepDirs) {
    if (myDirs.length > 0) opts.onKept?.(myDirs.map((d) => d.path));
    return;
  }
  await Promise.all(myDirs.map((d) => rm(d.path, { recursive: true, force: true }).catch(() => undefined)));
}

/**
 * Synchronous: kills everything of every scope and everything carrying a marker of this
 * run, then removes the directories unless `keepDirs`. For exit and signal handlers.
 */
export function cleanupAllSync(opts: { keepDirs?: boolean; onKept?: (paths: string[]) => void } = {}): void {
  for (const p of processes) {
    signalPid(p.child.pid, 'SIGCONT');
    signalPid(p.child.pid, 'SIGKILL');
  }
  killTaggedProcesses(`${runId}-`);
  for (const g of groups) signalGroup(g.pgid, 'SIGKILL');
  processes.length = 0;
  groups.length = 0;
  const paths = dirs.map((d) => d.path);
  dirs.length = 0;
  sharedSwarmKey = null;
  if (opts.keepDirs) {
    if (paths.length > 0) opts.onKept?.(paths);
    return;
  }
  for (const path of paths) {
    try {
      rmSync(path, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
}

async function killTracked(p: TrackedProcess): Promise<void> {
  if (!p.done) {
    signalPid(p.child.pid, 'SIGCONT'); // a stopped process would not die before it runs again
    signalPid(p.child.pid, 'SIGKILL');
    await withTimeout(p.exited, 10_000).catch(() => undefined);
  }
  // Whatever it spawned (job commands in their own process groups) carries its marker.
  killTaggedProcesses(p.tag);
}

function remove<T>(list: T[], items: T[]): void {
  for (const item of items) {
    const i = list.indexOf(item);
    if (i >= 0) list.splice(i, 1);
  }
}

/** Last resort when the process exits without running the hooks: kill synchronously. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const p of processes) {
      if (p.done) continue;
      signalPid(p.child.pid, 'SIGCONT');
      signalPid(p.child.pid, 'SIGKILL');
    }
    killTaggedProcesses(`${runId}-`);
    for (const g of groups) signalGroup(g.pgid, 'SIGKILL');
  });
}

// ---- processes on the host ----------------------------------------------------------------

const ownPgid = processGroupOf(process.pid);
const hasProc = existsSync('/proc/self/stat');

function allPids(): number[] {
  if (!hasProc) return [];
  try {
    return readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .map(Number);
  } catch {
    return [];
  }
}

/** Sends a signal; false when the process is gone (or was never spawned). */
export function signalPid(pid: number | undefined, signal: NodeJS.Signals): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** True if the process exists and is not a zombie (an exited child nobody reaped yet). */
export function isProcessAlive(pid: number): boolean {
  return processAlive(pid);
}

/** True if any member of the process group is alive (zombies do not count). */
export function isProcessGroupAlive(pgid: number): boolean {
  if (hasProc) return allPids().some((pid) => processGroupOf(pid) === pgid && processAlive(pid));
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  if (pgid <= 1 || pgid === ownPgid) return; // never our own group (that is vitest, or the benchmark)
  try {
    process.kill(-pgid, signal);
  } catch {
    // gone already
  }
}

/**
 * SIGKILLs every process whose environment carries PROCESS_TAG_VAR=tag (Linux only); a
 * tag ending in '-' matches every marker that starts with it.
 */
export function killTaggedProcesses(tag: string): number {
  if (!hasProc) return 0;
  const needle = Buffer.from(`\0${PROCESS_TAG_VAR}=${tag}${tag.endsWith('-') ? '' : '\0'}`);
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
      if (environ.indexOf(needle) < 0 || !processAlive(pid)) continue;
      found += 1;
      signalPid(pid, 'SIGCONT');
      if (signalPid(pid, 'SIGKILL')) killed += 1;
    }
    if (found === 0) break;
  }
  return killed;
}
