// Structured logging to stderr: JSON lines (pino) where stderr is not a terminal, readable
// lines (pino-pretty) where it is; `--log-format json|pretty` chooses. Synchronous on
// purpose, in both forms: it bundles into the single executable (no worker-thread
// transport) and nothing is lost on a crash.
import { pino } from 'pino';

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
