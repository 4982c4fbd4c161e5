// When a job's schedule fires: cron (seconds optional, with a time zone), a fixed
// interval, or once at a time. Parsing errors say what is wrong with the expression.
import { Cron } from 'croner';
import type { Schedule } from './types.js';

export class ScheduleError extends Error {}

export function validateCron(expr: string, tz: string | null): void {
  const fields = expr.trim().split(/\s+/).length;
  if (fields < 5 || fields > 6) {
    throw new ScheduleError(
      `bad cron expression "${expr}": it has ${fields} field(s); use 5 (minute hour day month weekday) or 6 (with seconds first)`,
    );
  }
  if (tz !== null && !isTimeZone(tz)) throw new ScheduleError(`unknown time zone "${tz}"; use an IANA name like Europe/Berlin or UTC`);
  try {
    new Cron(expr, { paused: true, timezone: tz ?? 'UTC' });
  } catch (err) {
    throw new ScheduleError(`bad cron expression "${expr}": ${(err as Error).message}`);
  }
}

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Parsed cron expressions kept, by expression and zone (parsing is most of a fire time's cost: 5,000 jobs listed parsed 1,700 of them). */
const MAX_CACHED_CRONS = 10_000;
const crons = new Map<string, Cron>();

/** No zone means UTC, never the process's local zone: every node must compute the same fire times (guarantee 7). */
function cronOf(schedule: Extract<Schedule, { kind: 'cron' }>): Cron {
  const key = `${schedule.tz ?? 'UTC'} ${schedule.expr}`;
  let cron = crons.get(key);
  if (!cron) {
    cron = new Cron(schedule.expr, { paused: true, timezone: schedule.tz ?? 'UTC' });
    if (crons.size >= MAX_CACHED_CRONS) crons.delete(crons.keys().next().value as string);
    crons.set(key, cron);
  }
  return cron;
}

/** The latest fire time in (afterMs, nowMs], or null if none. */
export function latestFireBetween(schedule: Schedule, originMs: number, afterMs: number, nowMs: number): number | null {
  switch (schedule.kind) {
    case 'at':
      return schedule.atMs > afterMs && schedule.atMs <= nowMs ? schedule.atMs : null;
    case 'every': {
      if (nowMs < originMs + schedule.intervalMs) return null;
      const fireMs = originMs + Math.floor((nowMs - originMs) / schedule.intervalMs) * schedule.intervalMs;
      return fireMs > afterMs ? fireMs : null;
    }
    case 'cron': {
      const [previous] = cronOf(schedule).previousRuns(1, new Date(nowMs + 1));
      if (!previous) return null;
      const fireMs = previous.getTime();
      return fireMs > afterMs && fireMs <= nowMs ? fireMs : null;
    }
  }
}

/** The next fire time strictly after `afterMs`, or null if the schedule is over. */
export function nextFireAfter(schedule: Schedule, originMs: number, afterMs: number): number | null {
  switch (schedule.kind) {
    case 'at':
      return schedule.atMs > afterMs ? schedule.atMs : null;
    case 'every': {
      if (afterMs < originMs) return originMs + schedule.intervalMs;
      return originMs + (Math.floor((afterMs - originMs) / schedule.intervalMs) + 1) * schedule.intervalMs;
    }
    case 'cron':
      return cronOf(schedule).nextRun(new Date(afterMs))?.getTime() ?? null;
  }
}
