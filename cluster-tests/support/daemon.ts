// One `chorus daemon` of a test or of the benchmark: its current process, how to start
// it again on the same data directory with the same flags, how to stop, kill, freeze
// and thaw it, its output, its CLI and its API. No vitest here.
//
// A daemon (re)started inside a test is killed when the test ends; one (re)started
// outside a test (beforeAll, the benchmark) lives until the file (the benchmark) ends.
import { appendFileSync, closeSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ChorusClient } from '../../src/api/client.js';
import type { NodeInfo } from '../../src/store/paths.js';
import { cli, shellWord, type CliOptions, type CliResult } from './cli.js';
import { DAEMON_NODE_FLAGS, RUN_JS, sharedSwarmKeyFile, signalPid, spawnTracked, tempDir, type ExitInfo, type TrackedProcess } from './processes.js';
import { StopWaiting, waitFor, withTimeout } from './wait.js';

/** What `DIR/node.json` holds: the daemon's own type. */
export type { NodeInfo } from '../../src/store/paths.js';

const DEFAULT_READY_TIMEOUT_MS = 30_000;
const DEFAULT_STOP_TIMEOUT_MS = 20_000;
const MAX_LOG_CHARS = 1024 * 1024;

export interface StartDaemonOptions {
  /** A name for messages; default: --name, else the data directory's name. */
  label?: string;
  /** Data directory; default: a new temporary one (removed with its scope). */
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
  /** How often to look for node.json; default 100 ms (the benchmark, which times it, looks more often). */
  readyPollMs?: number;
  /**
   * --swarm-key FILE; default: one key shared by every daemon of this process, so they
   * form one cluster. null passes no --swarm-key (the daemon uses or creates DIR/swarm.key).
   */
  swarmKey?: string | null;
  /** Where its output goes; default DIR/daemon.log (a test whose data directory fills up on purpose puts it elsewhere). */
  logFile?: string;
  /** The executable to run `daemon ...` with; default: this Node with bin/run.js (e.g. dist/chorus instead). */
  executable?: string;
}

/** One process of a daemon. */
interface Incarnation {
  tracked: TrackedProcess;
  pid: number;
  info: NodeInfo;
  client: ChorusClient;
  /** Where this process's output starts in DIR/daemon.log. */
  logStart: number;
  /** From the spawn to node.json seen. */
  readyMs: number;
}

export class Daemon {
  private current: Incarnation;

  private constructor(
    readonly label: string,
    /** The flags it was first started with (data directory included): a restart reuses them. */
    readonly options: StartDaemonOptions & { dataDir: string },
    first: Incarnation,
  ) {
    this.current = first;
  }

  /**
   * Starts `chorus daemon` on its own (or the given) data directory, listening on
   * 127.0.0.1 with port 0 for both libp2p and the API, and waits until node.json was
   * written by this very process. Output is appended to DIR/daemon.log (`logs()`).
   */
  static async start(opts: StartDaemonOptions = {}): Promise<Daemon> {
    const dataDir = opts.dataDir ?? (await tempDir('chorus-node-'));
    const options = { ...opts, dataDir };
    const label = opts.label ?? opts.name ?? basename(dataDir);
    return new Daemon(label, options, await spawnDaemon(label, options));
  }

  get dataDir(): string {
    return this.options.dataDir;
  }

  get pid(): number {
    return this.current.pid;
  }

  /** node.json as the current process wrote it. */
  get info(): NodeInfo {
    return this.current.info;
  }

  get nodeId(): string {
    return this.current.info.nodeId;
  }

  /** The project's own HTTP client, pointed at the current process (api.ts has the helpers). */
  get api(): ChorusClient {
    return this.current.client;
  }

  /** From the spawn of the current process to its node.json, in ms. */
  get readyMs(): number {
    return this.current.readyMs;
  }

  /** Exit code once it exited by itself; null while running or when killed by a signal. */
  get exitCode(): number | null {
    return this.current.tracked.exit?.exitCode ?? null;
  }

  /** The signal that ended it, or null. */
  get signalCode(): NodeJS.Signals | null {
    return this.current.tracked.exit?.signal ?? null;
  }

  get running(): boolean {
    return this.current.tracked.exit === null;
  }

  get frozen(): boolean {
    return this.current.tracked.frozen;
  }

  /** A multiaddr to join through, from its own node.json. */
  get joinAddr(): string {
    const addr = this.info.multiaddrs.find((a) => a.startsWith('/ip4/127.0.0.1/')) ?? this.info.multiaddrs[0];
    if (!addr) throw new Error(`${this.label} has no multiaddr in node.json`);
    return addr;
  }

  /** Starts the daemon again on the same data directory with the same flags (plus `overrides`); the node id must not change. */
  async restart(overrides: StartDaemonOptions = {}): Promise<void> {
    if (this.running) throw new Error(`${this.label} (pid ${this.pid}) is still running`);
    const before = this.nodeId;
    this.current = await spawnDaemon(this.label, { ...this.options, ...overrides, dataDir: this.dataDir });
    if (this.nodeId !== before) throw new Error(`${this.label} restarted on ${this.dataDir} with another node id: ${this.nodeId}, was ${before}`);
  }

  /** Sends a signal (default SIGTERM); does not wait. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.running) signalPid(this.pid, signal);
  }

  /** SIGTERM and wait for the exit; SIGKILL and throw if it takes longer than timeoutMs (20 s). */
  async stop(timeoutMs = DEFAULT_STOP_TIMEOUT_MS): Promise<ExitInfo> {
    const { tracked } = this.current;
    if (tracked.exit) return tracked.exit;
    this.kill('SIGTERM');
    try {
      return await this.waitForExit(timeoutMs);
    } catch (err) {
      this.kill('SIGKILL');
      await withTimeout(tracked.exited, 5000).catch(() => undefined);
      throw err;
    }
  }

  /** Resolves on exit; throws if it is still running after timeoutMs (default 20 s). */
  async waitForExit(timeoutMs = DEFAULT_STOP_TIMEOUT_MS): Promise<ExitInfo> {
    try {
      return await withTimeout(this.current.tracked.exited, timeoutMs);
    } catch (err) {
      throw new Error(`daemon ${this.label} pid ${this.pid} (${this.dataDir}) still running after ${timeoutMs} ms\n--- daemon output (tail) ---\n${this.logs().slice(-4000)}`, { cause: err });
    }
  }

  /** SIGSTOPs the daemon's own pid (its job processes, in their own groups, keep running). */
  freeze(): void {
    this.current.tracked.frozen = true;
    signalPid(this.pid, 'SIGSTOP');
  }

  /** SIGCONTs a daemon stopped with freeze(). */
  thaw(): void {
    this.current.tracked.frozen = false;
    signalPid(this.pid, 'SIGCONT');
  }

  /** The current process's output so far (the last 1 MiB), stdout and stderr as they interleaved. */
  logs(): string {
    return readLogFrom(this.options.logFile ?? join(this.dataDir, 'daemon.log'), this.current.logStart);
  }

  /** `cli(args)` against this daemon's data directory. */
  cli(args: string[], opts: Omit<CliOptions, 'dataDir'> = {}): Promise<CliResult> {
    return cli(args, { ...opts, dataDir: this.dataDir });
  }

  /** `chorus ARGS --json` through the CLI; throws a plain Error unless it exits 0 (fits waitFor predicates). */
  async json<T>(args: string[], timeoutMs = 20_000): Promise<T> {
    const r = await this.cli([...args, '--json'], { timeoutMs });
    if (r.exitCode !== 0) throw new Error(`command failed:\n${r.context}`);
    return r.json<T>();
  }
}

/** Daemon.start. */
export function startDaemon(opts: StartDaemonOptions = {}): Promise<Daemon> {
  return Daemon.start(opts);
}

async function spawnDaemon(label: string, opts: StartDaemonOptions & { dataDir: string }): Promise<Incarnation> {
  const { dataDir } = opts;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 }); // for daemon.log; the daemon would create it too
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
  const logPath = opts.logFile ?? join(dataDir, 'daemon.log');
  appendFileSync(logPath, `\n===== ${new Date().toISOString()} chorus ${args.map(shellWord).join(' ')}\n`);
  const logStart = statSync(logPath).size;
  const logFd = openSync(logPath, 'a');
  // The V8 flags bin/chorus and dist/chorus run with (a small young generation).
  const [file, argv] = opts.executable ? [opts.executable, args] : [process.execPath, [...DAEMON_NODE_FLAGS, RUN_JS, ...args]];
  let tracked: TrackedProcess;
  try {
    tracked = spawnTracked(file, argv, { kind: 'daemon', env: opts.env, stdio: ['ignore', logFd, logFd] });
  } finally {
    closeSync(logFd); // the child has its own copy
  }
  const exited = tracked.exited.then((e) => {
    try {
      appendFileSync(logPath, `===== exited: code ${e.exitCode} signal ${e.signal}\n`);
    } catch {
      // the directory may be gone at cleanup
    }
    return e;
  });
  const pid = tracked.child.pid;
  if (pid === undefined) {
    await exited;
    throw new Error(`could not spawn chorus daemon ${label}:\n${readLogFrom(logPath, logStart)}`);
  }

  const readyTimeoutMs = opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  let info: NodeInfo;
  try {
    info = await waitFor(
      async () => {
        const { exit } = tracked;
        if (exit) throw new StopWaiting(`the daemon exited before it was ready (code ${exit.exitCode}, signal ${exit.signal})`);
        const current = await readNodeInfo(dataDir);
        return current && current.pid === pid ? current : null;
      },
      { timeoutMs: readyTimeoutMs, intervalMs: opts.readyPollMs ?? 100, what: `daemon ${label} pid ${pid} to write ${join(dataDir, 'node.json')}` },
    );
  } catch (err) {
    signalPid(pid, 'SIGKILL');
    await withTimeout(exited, 5000).catch(() => undefined);
    throw new Error(`chorus daemon ${label} did not become ready in ${dataDir}: ${(err as Error).message}\n--- daemon output (tail) ---\n${readLogFrom(logPath, logStart).slice(-8000)}`, {
      cause: err,
    });
  }
  const readyMs = performance.now() - tracked.spawnedAt;
  // The files the CLI reads (node.json, api-token), read once for the life of this process.
  const token = (await readFile(join(dataDir, 'api-token'), 'utf8')).trim();
  const api = /^https?:\/\//.test(info.api) ? info.api : `http://${info.api}`;
  const client = new ChorusClient({ api, token, source: `--data-dir ${dataDir}` });
  return { tracked, pid, info, client, logStart, readyMs };
}

/** Reads DIR/node.json; null if it is missing or half written. */
export async function readNodeInfo(dataDir: string): Promise<NodeInfo | null> {
  try {
    return JSON.parse(await readFile(join(dataDir, 'node.json'), 'utf8')) as NodeInfo;
  } catch {
    return null;
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

/** The text of a file from byte `start` on, at most the last MAX_LOG_CHARS bytes; '' if it is gone. */
function readLogFrom(path: string, start: number): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '';
  }
  try {
    const size = statSync(path).size;
    const from = Math.max(start, size - MAX_LOG_CHARS);
    const buffer = Buffer.alloc(Math.max(0, size - from));
    const read = readSync(fd, buffer, 0, buffer.length, from);
    return buffer.subarray(0, read).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
