// Structured logging to stderr: JSON lines (pino) where stderr is not a terminal, readable
// lines (pino-pretty) where it is; `--log-format json|pretty` chooses. Synchronous on
// purpose, in both forms: it bundles into the single executable (no worker-thread
// transport) and nothing is lost on a crash.
import { pino } from 'pino';
import type { Clock } from './clock.js';

export type Logger = pino.Logger;
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** JSON unless stderr is a terminal. */
export function defaultLogFormat(): LogFormat {
  return process.stderr.isTTY ? 'pretty' : 'json';
}

/** pino-pretty is loaded only for the readable form (a daemon under systemd never needs it). */
export async function createLogger(options: { level?: string; nodeId?: string; format?: LogFormat } = {}): Promise<Logger> {
  const level = options.level ?? process.env.CHORUS_LOG_LEVEL ?? 'info';
  const format = options.format ?? defaultLogFormat();
  const destination =
    format === 'pretty'
      ? (await import('pino-pretty')).default({ destination: 2, sync: true, colorize: process.stderr.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
      : pino.destination({ fd: 2, sync: true });
  return pino({ level, base: options.nodeId ? { node: options.nodeId.slice(-8) } : {}, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

export const silentLogger: Logger = pino({ level: 'silent' });

/** Kinds of line a LogRepeats follows at once; past it lines are logged as they come. */
const MAX_REPEAT_KINDS = 1000;

/**
 * Lines of one kind said once per window: the first is logged, the next ones are only
 * counted, and one line says how many there were when the window ends ("(and 8218 more like
 * it in the last 60 s)", with the fields of the last). A full disk, a stalled host or a
 * restart with many missed fires must not bury the log in the same line thousands of times.
 */
export class LogRepeats {
  private readonly open = new Map<string, { count: number; fields: object; msg: string }>();

  constructor(
    private readonly clock: Clock,
    private readonly windowMs = 60_000,
  ) {}

  log(log: Logger, level: 'info' | 'warn' | 'error', kind: string, fields: object, msg: string): void {
    const entry = this.open.get(kind);
    if (entry) {
      entry.count += 1;
      entry.fields = fields;
      entry.msg = msg;
      return;
    }
    log[level](fields, msg);
    if (this.open.size >= MAX_REPEAT_KINDS) return;
    const window = { count: 0, fields, msg };
    this.open.set(kind, window);
    this.clock.setTimer(this.windowMs, () => {
      this.open.delete(kind);
      if (window.count > 0) log[level]({ ...window.fields, repeated: window.count }, `${window.msg} (and ${window.count} more like it in the last ${Math.round(this.windowMs / 1000)} s)`);
    });
  }
}
