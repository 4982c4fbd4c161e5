// Runs a daemon in the foreground until SIGTERM or SIGINT, then leaves gracefully (or, past
// a deadline, exits anyway).
import { createLogger, type LogFormat, type Logger } from '../core/log.js';
import { DataFileError } from '../store/durable-file.js';
import { DataDirLockedError } from '../store/lock.js';
import { SwarmKeyError } from '../network/swarm-key.js';
import { ChorusDaemon, DaemonFlagError, EXIT_INVARIANT, type DaemonOptions } from './daemon.js';
import { InvariantError } from '../core/assert.js';
import { exitProcess, stopDeadlineMs } from './stop-deadline.js';

export class DaemonStartError extends Error {
  constructor(
    message: string,
    /** 2 when a flag's value is what cannot work, 1 otherwise. */
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
  }
}

/** Errors libp2p throws for a write to a stream or muxer that already closed. */
const CLOSED_STREAM_ERRORS = new Set(['StreamStateError', 'StreamClosedError', 'MuxerClosedError', 'StreamResetError']);

export interface Reloaded {
  tags: Record<string, string> | null;
  logLevel: string | null;
  restartNeeded: string[];
}

/**
 * Runs the daemon until a signal stops it, then ends the process (exit 0 after a graceful stop).
 * `reload`: what SIGHUP does (the command re-reads the config file and says what changed);
 * a rejection is logged and the daemon goes on as it was.
 */
export async function runDaemon(options: Omit<DaemonOptions, 'log'> & { logLevel?: string; logFormat?: LogFormat | null; reload?: () => Promise<Reloaded> }): Promise<void> {
  const log = await createLogger({ level: options.logLevel, ...(options.logFormat ? { format: options.logFormat } : {}) });
  handleUnexpected(log);
  const onStopSignal = catchStopSignals();
  const daemon = await startDaemon({ ...options, log });
  await new Promise<void>((resolve) => {
    let stopping = false;
    onStopSignal((signal) => {
      if (stopping) return;
      stopping = true;
      stopGracefully(daemon, log, signal).finally(resolve);
    });
    // Without a config file there is nothing to re-read; SIGHUP must still not kill the daemon.
    process.on('SIGHUP', () => {
      if (!stopping) reloadConfig(daemon, log, options.reload);
    });
  });
  log.info('stopped');
  // Everything is stopped and flushed; do not wait for libraries' idle timers.
  await exitProcess(0, log);
}

/**
 * A broken invariant thrown where no caller can handle it (a timer, a network event) stops
 * the daemon the same way the worker's does: one fatal line naming the guarantee. Anything
 * else ends the process as Node would without these handlers: its stack, exit 1.
 */
function handleUnexpected(log: Logger): void {
  const onUnexpected = (err: unknown) => {
    // libp2p writing to a stream or connection that closed meanwhile, from a callback no
    // caller can catch (a teardown race in the library): that connection is gone and the
    // node is fine. Logged with its stack, and the daemon goes on.
    if (err instanceof Error && CLOSED_STREAM_ERRORS.has(err.name)) {
      log.warn({ err }, `a network write to a closed stream failed outside any caller (${err.name}: ${err.message}); ignored`);
      return;
    }
    if (err instanceof InvariantError) {
      log.fatal({ err, guarantee: err.guarantee }, `${err.message}; the daemon stops`);
      process.exit(EXIT_INVARIANT);
    }
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  };
  process.on('uncaughtException', onUnexpected);
  process.on('unhandledRejection', onUnexpected);
}

/**
 * SIGTERM and SIGINT, caught from the first moment: one that comes while the daemon starts
 * (systemd stopping it, a test killing it as soon as it answers) must stop it gracefully once
 * it has started, not kill it by the signal's default action with its lock and node.json
 * behind. Returns how to say what a stop signal does; one that came already is passed on then.
 */
function catchStopSignals(): (onStop: (signal: string) => void) => void {
  let early: string | null = null;
  let onStop: (signal: string) => void = (signal) => {
    early ??= signal;
  };
  process.once('SIGTERM', () => onStop('SIGTERM'));
  process.once('SIGINT', () => onStop('SIGINT'));
  return (handler) => {
    onStop = handler;
    if (early !== null) handler(early); // it came while the daemon was starting
  };
}

/** Starts the daemon; an error an operator can fix becomes a DaemonStartError that says what to do. */
async function startDaemon(options: DaemonOptions): Promise<ChorusDaemon> {
  try {
    return await ChorusDaemon.start(options);
  } catch (err) {
    if (err instanceof DaemonFlagError) throw new DaemonStartError(err.message, 2);
    if (err instanceof DataDirLockedError || err instanceof DataFileError || err instanceof SwarmKeyError) throw new DaemonStartError(err.message);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new DaemonStartError(`an address is already in use (${(err as Error).message}); pick another --api or --listen port`);
    if (code === 'EACCES') throw new DaemonStartError(`permission denied: ${(err as Error).message}`);
    throw err;
  }
}

/** Leaves the cluster and stops; past the stop deadline the process exits anyway. */
async function stopGracefully(daemon: ChorusDaemon, log: Logger, signal: string): Promise<void> {
  log.info({ signal }, 'leaving the cluster');
  const deadlineMs = stopDeadlineMs(daemon.node.config);
  const overrun = setTimeout(() => {
    const pending = process.getActiveResourcesInfo();
    log.fatal({ signal, deadlineMs, pending }, `the graceful stop did not end within ${deadlineMs} ms; exiting anyway`);
    void exitProcess(1, log);
  }, deadlineMs);
  // Never what keeps the process alive: a stop with nothing left to wait for ends on its own.
  overrun.unref();
  try {
    await daemon.stop();
  } catch (err) {
    log.error({ err }, 'error while stopping');
  } finally {
    clearTimeout(overrun);
  }
}

/** SIGHUP: re-reads the config file and applies what can change while running (tags, log level); says what needs a restart. */
function reloadConfig(daemon: ChorusDaemon, log: Logger, reload: (() => Promise<Reloaded>) | undefined): void {
  if (!reload) return log.warn('SIGHUP: no --config file to re-read; nothing changed');
  reload().then(
    (changes) => {
      if (changes.logLevel !== null) daemon.setLogLevel(changes.logLevel);
      if (changes.tags !== null) daemon.node.setTags(changes.tags);
      const applied = [...(changes.logLevel !== null ? [`log-level ${changes.logLevel}`] : []), ...(changes.tags !== null ? ['tags'] : [])];
      log.info({ applied, tags: changes.tags ?? undefined }, applied.length > 0 ? `SIGHUP: config re-read; applied ${applied.join(', ')}` : 'SIGHUP: config re-read; nothing to apply');
      if (changes.restartNeeded.length > 0) {
        log.warn({ keys: changes.restartNeeded }, `SIGHUP: restart needed to apply ${changes.restartNeeded.join(', ')} (changed in the config file)`);
      }
    },
    (err: unknown) => log.error({ err: (err as Error).message }, `SIGHUP: the config was not applied: ${(err as Error).message}`),
  );
}
