// Runs one job command on this host in its own process group and reports exactly how
// it ended: exit code or signal, timeout, cancellation, and a bounded tail of its output.
// A timeout or a cancel stops everything the command started (containment.ts), not only
// its process group.

import { setLongTimeout } from '../core/clock.js';
import { execa } from 'execa';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultConfig } from '../core/config.js';
import type { Readable } from 'node:stream';
import { environmentContainment, type Containment, type Enclosure } from './containment.js';
import { attemptMarks } from './marks.js';
import type { CapturedOutput } from '../store/output-store.js';

export interface ExecutionRequest {
  /** Shell command line, run with /bin/sh -c. */
  cmd: string;
  /** Extra variables (the CHORUS_* set), merged over process.env. */
  env: Record<string, string>;
  /** null = no timeout. */
  timeoutMs: number | null;
  /** Tail kept per stream; default: ChorusConfig's maxOutputBytes. */
  maxOutputBytes?: number;
  /**
   * Where the output is kept as it is written, for whoever reads it while the command runs
   * (`instance logs --follow`); default: a new one of maxOutputBytes per stream. The result's
   * stdout and stderr are its tails.
   */
  output?: AttemptOutput;
  /** Written to the child's stdin, which is then closed; without it stdin is ignored. */
  stdin?: string;
  cwd?: string;
  /** Abort = cancel: everything the command started is killed and the result is 'cancelled'. */
  signal?: AbortSignal;
  /** SIGTERM to everything the command started, then SIGKILL after this if anything is still alive; default: ChorusConfig's killGraceMs. */
  killGraceMs?: number;
  /**
   * What holds the command's processes together beyond its process group, so a timeout or a
   * cancel reaches those that left it (`setsid`); the attempt is named by env's CHORUS_*
   * variables. Default: environmentContainment (a search by those variables).
   */
  containment?: Containment;
  onSpawn?: (pid: number) => void;
  /** After the shell exits, how long its pipes get to reach EOF; default: ChorusConfig's pipeDrainGraceMs. */
  pipeDrainGraceMs?: number;
}

/** How an attempt ended, and its output (the last maxOutputBytes bytes of each stream as utf8, without a multibyte character cut at the start). */
export interface ExecutionResult extends CapturedOutput {
  status: 'succeeded' | 'failed' | 'cancelled';
  /**
   * null when succeeded. `signal`: killed by a signal this executor did not send (the OOM
   * killer, an operator's `kill -9`); its own kills are `timeout` and `cancelled`.
   */
  reason: 'exit-code' | 'signal' | 'timeout' | 'cancelled' | 'spawn-failed' | null;
  /** The child's exit code as the OS reported it; null when it died by a signal or never started. */
  exitCode: number | null;
  /** Signal name if the child was killed by a signal, whoever sent it (also the one that ended a timeout or a cancel). */
  signal: string | null;
  startedAtMs: number;
  finishedAtMs: number;
  /** Why the command could not start (for example: cwd missing); null when it started. */
  spawnError: string | null;
}

type KillReason = 'timeout' | 'cancelled';

interface Exit {
  code: number | null;
  signal: string | null;
  atMs: number;
}

/** Keeps the last maxBytes of a stream while holding at most ~2x maxBytes. */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private heldBytes = 0;
  private seenBytes = 0;

  constructor(private readonly maxBytes: number) {}

  /** Bytes currently in memory (for tests of the bound). */
  get bytesHeld(): number {
    return this.heldBytes;
  }

  /** Bytes of the stream so far, kept or not: the offset the next byte will have. */
  get totalBytes(): number {
    return this.seenBytes;
  }

  /** The bytes held now (a copy) and the stream offset of the first one; may start inside a character cut off in front. */
  snapshot(): { bytes: Buffer; startOffset: number } {
    return { bytes: Buffer.concat(this.chunks, this.heldBytes), startOffset: this.seenBytes - this.heldBytes };
  }

  push(chunk: Buffer): void {
    this.seenBytes += chunk.length;
    this.chunks.push(chunk);
    this.heldBytes += chunk.length;
    // Trimming only at 2x keeps the copying amortised O(1) per byte written.
    if (this.heldBytes > 2 * this.maxBytes) this.trimTo(this.maxBytes);
  }

  /** The kept tail as text, and how many bytes of the stream are not in it. */
  finish(): { text: string; droppedBytes: number } {
    this.trimTo(this.maxBytes);
    let tail = Buffer.concat(this.chunks, this.heldBytes);
    if (this.seenBytes > tail.length) tail = tail.subarray(utf8ContinuationPrefix(tail));
    return { text: tail.toString('utf8'), droppedBytes: this.seenBytes - tail.length };
  }

  private trimTo(keepBytes: number): void {
    while (this.chunks.length > 0 && this.heldBytes - this.chunks[0]!.length >= keepBytes) {
      this.heldBytes -= this.chunks.shift()!.length;
    }
    const excessBytes = this.heldBytes - keepBytes;
    if (excessBytes > 0) {
      // Copy, so the dropped front of the chunk is not kept alive by a view into it.
      this.chunks[0] = Buffer.from(this.chunks[0]!.subarray(excessBytes));
      this.heldBytes = keepBytes;
    }
  }
}

export type OutputStream = 'stdout' | 'stderr';

/** The bounded output of one attempt, both streams, readable while the command runs. */
export class AttemptOutput {
  readonly stdout: TailBuffer;
  readonly stderr: TailBuffer;

  /** `onData`: told after every chunk (the reader that waits for more). */
  constructor(
    maxBytes: number,
    private readonly onData: () => void = () => undefined,
  ) {
    this.stdout = new TailBuffer(maxBytes);
    this.stderr = new TailBuffer(maxBytes);
  }

  push(stream: OutputStream, chunk: Buffer): void {
    this[stream].push(chunk);
    this.onData();
  }
}

/** Number of leading utf8 continuation bytes (the rest of a character cut off in front). */
function utf8ContinuationPrefix(buf: Buffer): number {
  let n = 0;
  while (n < 3 && n < buf.length && (buf[n]! & 0xc0) === 0x80) n++;
  return n;
}

/** Signals the process group; false when no member is left. */
function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false; // ESRCH: the whole group is gone
  }
}

/** How often a stopped attempt is looked at for processes still alive. Lower: a result sooner after they die, more looks. */
const KILL_POLL_MS = 50;
/** After the SIGKILL, how long what a dying process forked meanwhile is still killed. Below workerStopSlackMs's default, so a stopping daemon waits for it. */
const KILL_CONFIRM_MS = 1000;

/**
 * Stops everything an attempt started: SIGTERM to the shell's process group and to every
 * other process in its enclosure, SIGKILL to whatever is left after killGraceMs. Resolves
 * once nothing is left, or KILL_CONFIRM_MS after the SIGKILL, so a caller that waits for it
 * (a stopping daemon) exits only after the SIGKILL went out.
 */
async function stopAttempt(pgid: number, enclosure: Enclosure, killGraceMs: number): Promise<void> {
  // The enclosure first: it checks that the shell is inside while it surely is alive.
  const elsewhere = enclosure.signal('SIGTERM', pgid);
  const inGroup = signalGroup(pgid, 'SIGTERM');
  if (!elsewhere && !inGroup) return;
  const alive = () => enclosure.occupied(pgid);
  const graceEndMs = Date.now() + killGraceMs;
  while (alive() && Date.now() < graceEndMs) await sleep(Math.min(KILL_POLL_MS, graceEndMs - Date.now()));
  const confirmEndMs = Date.now() + KILL_CONFIRM_MS;
  while (alive()) {
    enclosure.signal('SIGKILL', pgid);
    signalGroup(pgid, 'SIGKILL');
    if (Date.now() >= confirmEndMs) return;
    await sleep(KILL_POLL_MS);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function runCommand(req: ExecutionRequest): Promise<ExecutionResult> {
  const startedAtMs = Date.now();
  const output = req.output ?? new AttemptOutput(req.maxOutputBytes ?? defaultConfig.maxOutputBytes);
  const finish = (exit: Exit, killReason: KillReason | null, spawnError: string | null) =>
    buildResult({ startedAtMs, exit, killReason, spawnError, stdout: output.stdout, stderr: output.stderr });
  if (req.signal?.aborted) {
    return finish({ code: null, signal: null, atMs: startedAtMs }, 'cancelled', null);
  }
  try {
    return await execute(req, output, finish);
  } catch (err) {
    // Options execa rejects synchronously, or anything unexpected: the promise never rejects.
    return finish({ code: null, signal: null, atMs: Date.now() }, null, errorText(err));
  }
}

type Finish = (exit: Exit, killReason: KillReason | null, spawnError: string | null) => ExecutionResult;

async function execute(req: ExecutionRequest, output: AttemptOutput, finish: Finish): Promise<ExecutionResult> {
  const enclosure = (req.containment ?? environmentContainment).enclose(attemptMarks(req.env));
  try {
    return await executeIn(enclosure, req, output, finish);
  } finally {
    enclosure.release();
  }
}

async function executeIn(enclosure: Enclosure, req: ExecutionRequest, output: AttemptOutput, finish: Finish): Promise<ExecutionResult> {
  const { file, args } = enclosure.spawnArgs(req.cmd);
  const subprocess = execa(file, args, {
    env: req.env,
    cwd: req.cwd,
    // Own process group (setsid), so a kill reaches everything the command started.
    detached: true,
    // We read the streams ourselves into bounded tails; execa's buffering is unbounded.
    buffer: false,
    reject: false,
    stripFinalNewline: false,
    ...(req.stdin === undefined ? { stdin: 'ignore' as const } : { input: req.stdin }),
  });
  // Listeners go on synchronously so no event can be missed.
  const exited = waitForExit(subprocess);
  const closed = new Promise<void>((resolve) => subprocess.once('close', () => resolve()));
  collect(subprocess.stdout, output, 'stdout');
  collect(subprocess.stderr, output, 'stderr');
  const pid = subprocess.pid;
  if (pid === undefined) {
    // Spawning failed (missing cwd, no /bin/sh); execa's result carries a readable reason.
    const failure = await subprocess;
    const message = failure.originalMessage ?? failure.shortMessage ?? 'the command did not start';
    return finish({ code: null, signal: null, atMs: Date.now() }, null, message);
  }
  void subprocess.catch(() => undefined); // reject: false, but never let it go unhandled
  try {
    req.onSpawn?.(pid);
  } catch {
    // A throwing callback must not leave the child running unsupervised.
  }
  const { killReason, exit, stopped } = await superviseUntilExit(req, pid, enclosure, exited);
  await drainPipes(subprocess, closed, req.pipeDrainGraceMs ?? defaultConfig.pipeDrainGraceMs);
  await stopped;
  return finish(exit, killReason, null);
}

function waitForExit(subprocess: NodeJS.EventEmitter): Promise<Exit> {
  return new Promise((resolve) => {
    subprocess.once('exit', (code: number | null, signal: NodeJS.Signals | null) =>
      resolve({ code, signal, atMs: Date.now() }),
    );
  });
}

function collect(stream: Readable | null | undefined, output: AttemptOutput, name: OutputStream): void {
  stream?.on('data', (chunk: Buffer | string) => output.push(name, Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)));
}

/**
 * Applies the timeout and the abort signal until the shell exits; the first kill reason
 * wins. `stopped`: the end of the kill, which may outlast the shell.
 */
async function superviseUntilExit(
  req: ExecutionRequest,
  pid: number,
  enclosure: Enclosure,
  exited: Promise<Exit>,
): Promise<{ killReason: KillReason | null; exit: Exit; stopped: Promise<void> }> {
  let reason: KillReason | null = null;
  let stopped = Promise.resolve();
  const kill = (why: KillReason) => {
    if (reason !== null) return;
    reason = why;
    stopped = stopAttempt(pid, enclosure, req.killGraceMs ?? defaultConfig.killGraceMs);
  };
  const timer = req.timeoutMs === null ? undefined : setLongTimeout(() => kill('timeout'), req.timeoutMs);
  const onAbort = () => kill('cancelled');
  req.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const exit = await exited;
    return { killReason: reason, exit, stopped };
  } finally {
    timer?.cancel();
    req.signal?.removeEventListener('abort', onAbort);
  }
}

/** Waits for the pipes to reach EOF, but not for a leftover process that holds them open. */
async function drainPipes(
  subprocess: { stdout?: Readable | null; stderr?: Readable | null },
  closed: Promise<void>,
  graceMs: number,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, graceMs);
  });
  await Promise.race([closed, graceOver]);
  clearTimeout(timer);
  // Destroying our read ends releases the handles that would otherwise keep Node alive.
  subprocess.stdout?.destroy();
  subprocess.stderr?.destroy();
}

function buildResult(parts: {
  startedAtMs: number;
  exit: Exit;
  killReason: KillReason | null;
  spawnError: string | null;
  stdout: TailBuffer;
  stderr: TailBuffer;
}): ExecutionResult {
  const { exit, killReason, spawnError } = parts;
  const out = parts.stdout.finish();
  const err = parts.stderr.finish();
  return {
    ...outcome(exit, killReason, spawnError),
    exitCode: exit.code,
    signal: exit.signal,
    stdout: out.text,
    stderr: err.text,
    stdoutDroppedBytes: out.droppedBytes,
    stderrDroppedBytes: err.droppedBytes,
    startedAtMs: parts.startedAtMs,
    finishedAtMs: exit.atMs,
    spawnError,
  };
}

function outcome(
  exit: Exit,
  killReason: KillReason | null,
  spawnError: string | null,
): Pick<ExecutionResult, 'status' | 'reason'> {
  if (spawnError !== null) return { status: 'failed', reason: 'spawn-failed' };
  if (killReason === 'cancelled') return { status: 'cancelled', reason: 'cancelled' };
  if (killReason === 'timeout') return { status: 'failed', reason: 'timeout' };
  if (exit.code === 0) return { status: 'succeeded', reason: null };
  // Not ours (no kill reason): whoever sent it, the command did not choose to end.
  if (exit.signal !== null) return { status: 'failed', reason: 'signal' };
  return { status: 'failed', reason: 'exit-code' };
}
