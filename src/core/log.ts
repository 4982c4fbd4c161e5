// Structured logging to stderr. Synchronous output on purpose: it bundles into the
// single executable (no worker-thread transport) and nothing is lost on a crash.
import { pino } from 'pino';

export type Logger = pino.Logger;

export function createLogger(options: { level?: string; nodeId?: string } = {}): Logger {
  const level = options.level ?? process.env.CHORUS_LOG_LEVEL ?? 'info';
  return pino(
    { level, base: options.nodeId ? { node: options.nodeId.slice(-8) } : {}, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ fd: 2, sync: true }),
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });
