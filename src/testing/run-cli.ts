// Runs a chorus command in the test process, without spawning one: oclif's own `run`
// with the repository's package.json and the command map of commands/index.ts held in
// memory (the way the single executable runs, scripts/sea-entry.mjs), capturing what the
// command prints and the exit code bin/run.js would end with.
//
// What it takes over while a command runs, and gives back after: process.stdout.write,
// process.stderr.write and console.* (oclif's help prints through console.log), the
// CHORUS_* environment (the outer one never leaks in), process.argv (oclif's error
// handler reads it) and process.exit (a command that calls it ends the run with that
// code instead of ending the test process). Runs are serialised, one at a time. A
// command that starts long-lived work (`chorus daemon` past its flag checks) does not
// belong here: use a real process.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format } from 'node:util';
import { Config, Errors, Plugin, run } from '@oclif/core';
import { Exit, handle } from '@oclif/core/handle';
import { COMMANDS } from '../../commands/index.js';
import { cliOutput, withDataDir, type CliOutput } from './cli-args.js';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface RunCliOptions {
  /** Adds `--data-dir DIR` (before a `--` separator, if any). */
  dataDir?: string;
  /** CHORUS_* (or other) variables the command sees; the outer CHORUS_* ones are hidden. */
  env?: Record<string, string>;
}

export interface CliRun extends CliOutput {
  args: string[];
  /** What `chorus ARGS` would exit with. */
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * The oclif config of scripts/sea-entry.mjs: package.json from the repository, COMMANDS
 * from memory. A new one for every run: oclif keeps state of a run in its Config (one
 * reused prints no help for the second `--help`), and loading it takes a few ms.
 */
export async function chorusConfig(): Promise<Config> {
  const pjson = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as ConstructorParameters<typeof Plugin>[0]['pjson'];
  const plugin = new Plugin({ isRoot: true, pjson, root: REPO_ROOT, ignoreManifest: true });
  // `commandCache` is private in oclif's typings but is the cache the 'explicit' strategy reads first.
  (plugin as unknown as { commandCache: unknown }).commandCache = COMMANDS;
  await plugin.load();
  if (plugin.commands.length !== Object.keys(COMMANDS).length) {
    throw new Error(`oclif loaded ${plugin.commands.length} of ${Object.keys(COMMANDS).length} commands: the in-memory command map was not used`);
  }
  return Config.load({ root: REPO_ROOT, pjson: plugin.pjson, plugins: new Map([[plugin.name, plugin]]), userPlugins: false, devPlugins: false });
}

let queue: Promise<unknown> = Promise.resolve();

/** Runs `chorus ARGS...` in this process. Never rejects on a non-zero exit. */
export function runCli(args: string[], opts: RunCliOptions = {}): Promise<CliRun> {
  const next = queue.then(() => runNow(withDataDir(args, opts.dataDir), opts.env ?? {}));
  queue = next.catch(() => undefined);
  return next;
}

/** Thrown in place of process.exit(code) while a command runs. */
class ProcessExit extends Error {
  constructor(readonly code: number) {
    super(`process.exit(${code})`);
  }
}

async function runNow(argv: string[], env: Record<string, string>): Promise<CliRun> {
  const cfg = await chorusConfig();
  let stdout = '';
  let stderr = '';
  const restore = takeOver({
    out: (text) => (stdout += text),
    err: (text) => (stderr += text),
    env,
    argv,
  });
  let exitCode = 0;
  let exitedWith: number | null = null;
  const realExit = process.exit;
  process.exit = ((code?: number | string | null) => {
    exitedWith = Number(code ?? 0);
    throw new ProcessExit(exitedWith);
  }) as typeof process.exit;
  try {
    await run(argv, cfg);
  } catch (err) {
    exitCode = await exitCodeOf(err as Error);
  } finally {
    process.exit = realExit;
    restore();
  }
  if (exitedWith !== null) exitCode = exitedWith;
  return { args: argv, exitCode, stdout, stderr, ...cliOutput(argv, `exit: ${exitCode} (in-process)`, stdout, stderr) };
}

/** The exit code bin/run.js ends with for an error out of `run`, printing what oclif's handler prints. */
async function exitCodeOf(err: Error): Promise<number> {
  if (err instanceof ProcessExit) return err.code;
  if (err instanceof Errors.ExitError) return err.oclif.exit ?? 0;
  // oclif's own handler (as execute() in bin/run.js), with its process.exit caught.
  let code = 1;
  const realExit = Exit.exit;
  Exit.exit = ((c = 0) => {
    code = c;
  }) as typeof Exit.exit;
  try {
    await handle(err);
  } finally {
    Exit.exit = realExit;
  }
  return code;
}

interface TakeOver {
  out: (text: string) => void;
  err: (text: string) => void;
  env: Record<string, string>;
  argv: string[];
}

/** Redirects the output, environment and argv of this process; returns how to undo it. */
function takeOver(t: TakeOver): () => void {
  const { stdout, stderr } = process;
  const writes = { out: stdout.write, err: stderr.write };
  const capture = (sink: (text: string) => void) =>
    ((chunk: string | Uint8Array, encodingOrCb?: unknown, cb?: unknown) => {
      sink(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      const done = typeof encodingOrCb === 'function' ? encodingOrCb : cb;
      if (typeof done === 'function') queueMicrotask(() => (done as () => void)());
      return true;
    }) as typeof stdout.write;
  stdout.write = capture(t.out);
  stderr.write = capture(t.err);

  const methods = ['log', 'info', 'debug', 'warn', 'error'] as const;
  const consoles = Object.fromEntries(methods.map((m) => [m, console[m]])) as Record<(typeof methods)[number], (...args: unknown[]) => void>;
  for (const m of methods) {
    const sink = m === 'log' || m === 'info' || m === 'debug' ? t.out : t.err;
    console[m] = (...args: unknown[]) => sink(`${format(...args)}\n`);
  }

  const savedEnv: Record<string, string | undefined> = {};
  const keys = new Set([...Object.keys(process.env).filter((k) => k.startsWith('CHORUS_')), ...Object.keys(t.env)]);
  for (const k of keys) {
    savedEnv[k] = process.env[k];
    delete process.env[k];
  }
  Object.assign(process.env, t.env);
  const savedArgv = process.argv;
  process.argv = [savedArgv[0] ?? process.execPath, join(REPO_ROOT, 'bin', 'run.js'), ...t.argv];

  return () => {
    stdout.write = writes.out;
    stderr.write = writes.err;
    for (const m of methods) console[m] = consoles[m];
    for (const k of keys) {
      if (savedEnv[k] === undefined) delete process.env[k];
      else process.env[k] = savedEnv[k];
    }
    process.argv = savedArgv;
  };
}
