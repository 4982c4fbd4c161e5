// Running a command to completion as a tracked process: the `chorus` CLI exactly as a
// user would (`node bin/run.js ...`), or anything else the benchmark times. No vitest.
import { execa } from 'execa';
import { childEnv, killTaggedProcesses, newTag, REPO_ROOT, RUN_JS, spawnTracked, track, untrack, type ExitInfo } from './processes.js';
import { cliOutput, withDataDir, type CliOutput } from '../../src/testing/cli-args.js';

export { shellWord, singleQuote as sq } from '../../src/core/shell-quote.js';

const DEFAULT_TIMEOUT_MS = 60_000;

export interface RunOptions {
  /** Extra environment variables (CHORUS_* from the outer environment are never passed). */
  env?: Record<string, string>;
  /** Kill the command (SIGKILL) after this long; default 60 s. */
  timeoutMs?: number;
  /** Written to stdin; without it stdin is closed. */
  input?: string;
  cwd?: string;
}

export interface ProcessResult {
  /** The exit code; null if the process was killed (timeout or signal) or could not start. */
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  /** performance.now() at the spawn and at the exit event, and the time between them. */
  startedAt: number;
  exitedAt: number;
  ms: number;
}

/** Runs `file ARGS...` to completion as a tracked process. Never rejects on a non-zero exit. */
export async function runProcess(file: string, args: string[], opts: RunOptions = {}): Promise<ProcessResult> {
  const tag = newTag('run');
  const env = childEnv(tag, opts.env);
  const spawnedAt = performance.now();
  const subprocess = execa(file, args, {
    cwd: opts.cwd ?? REPO_ROOT,
    env,
    extendEnv: false,
    reject: false,
    timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    killSignal: 'SIGKILL',
    stripFinalNewline: false,
    ...(opts.input === undefined ? { stdin: 'ignore' as const } : { input: opts.input }),
  });
  const tracked = track(subprocess, tag, spawnedAt);
  const result = await subprocess;
  await tracked.exited;
  untrack(tracked);
  killTaggedProcesses(tag); // nothing should be left, but a command must not leak children
  const exitedAt = tracked.exitedAt ?? performance.now();
  return {
    exitCode: typeof result.exitCode === 'number' ? result.exitCode : null,
    signal: result.signal ?? null,
    timedOut: Boolean(result.timedOut),
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
    startedAt: tracked.spawnedAt,
    exitedAt,
    ms: exitedAt - tracked.spawnedAt,
  };
}

export interface CliOptions extends RunOptions {
  /** Adds `--data-dir DIR` (before a `--` separator, if any). */
  dataDir?: string;
}

export interface CliResult extends ProcessResult, CliOutput {
  args: string[];
}

/** Runs `chorus ARGS...` (bin/run.js on this Node) to completion. Never rejects on a non-zero exit. */
export async function cli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const argv = withDataDir(args, opts.dataDir);
  const r = await runProcess(process.execPath, [RUN_JS, ...argv], opts);
  const how = `exit: ${r.exitCode}${r.signal ? ` signal: ${r.signal}` : ''}${r.timedOut ? ' (timed out)' : ''}`;
  return { ...r, args: argv, ...cliOutput(argv, how, r.stdout, r.stderr) };
}

/** A line a running command printed, and when it arrived (Date.now(), to compare with times the daemons report). */
export interface ArrivedLine {
  text: string;
  atMs: number;
}

export interface RunningCli {
  readonly args: string[];
  /** Lines of stdout so far, as they arrived. */
  readonly lines: ArrivedLine[];
  /** Everything on stderr so far. */
  stderr(): string;
  readonly exited: Promise<ExitInfo>;
  /** Told of every line of stdout as it arrives. */
  onLine(listener: (line: ArrivedLine) => void): void;
}

/**
 * Starts `chorus ARGS...` and reads its output while it runs (`instance logs --follow`).
 * The process belongs to the current scope: it is killed when the test ends.
 */
export function spawnCli(args: string[], opts: Pick<CliOptions, 'dataDir' | 'env'> = {}): RunningCli {
  const argv = withDataDir(args, opts.dataDir);
  const tracked = spawnTracked(process.execPath, [RUN_JS, ...argv], { kind: 'cli', env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: ArrivedLine[] = [];
  const listeners: ((line: ArrivedLine) => void)[] = [];
  let partial = '';
  let stderr = '';
  tracked.child.stdout?.setEncoding('utf8').on('data', (text: string) => {
    const parts = `${partial}${text}`.split('\n');
    partial = parts.pop() as string;
    for (const part of parts) {
      const line = { text: part, atMs: Date.now() };
      lines.push(line);
      for (const listener of listeners) listener(line);
    }
  });
  tracked.child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  // Exited, and everything it printed read.
  const drained = (stream: NodeJS.ReadableStream | null) => new Promise<void>((resolve) => (stream ? stream.once('close', () => resolve()) : resolve()));
  const exited = Promise.all([tracked.exited, drained(tracked.child.stdout), drained(tracked.child.stderr)]).then(([exit]) => exit);
  return { args: argv, lines, stderr: () => stderr, exited, onLine: (listener) => listeners.push(listener) };
}
