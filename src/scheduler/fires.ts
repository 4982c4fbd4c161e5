// Which due fires of a scheduled job the leader decides now, and how (`chorus job history`,
// `--misfire skip|once|all`, `--misfire-window`). A fire is on time when the leader looks
// at it within config.fireOnTimeMs of its due time; any other due time it had not decided is late
// (the cluster had no leader then, or the leader was stalled), and the job's misfire
// policy says what happens to it. Pure: the leader (leader.ts) carries the decisions out.
import type { MisfirePolicy, Schedule } from '../records/types.js';
import { latestFireBetween } from '../records/schedule.js';

export type FirePlan =
  /** Create the instance now: on time ('created'), or late but within the window ('caught-up'). */
  | { scheduledAtMs: number; action: 'run'; late: boolean }
  | { scheduledAtMs: number; action: 'skip-disabled' }
  /** Late past the misfire window (with --misfire skip the window is 0). */
  | { scheduledAtMs: number; action: 'miss-window' }
  /** Late within the window, but --misfire once runs only the latest such fire (or the on-time one). */
  | { scheduledAtMs: number; action: 'miss-coalesced' };

export interface FireInput {
  schedule: Schedule;
  /** The job's creation: the origin of `every` schedules; nothing before it is due. */
  originMs: number;
  /** The latest due time already decided (null: none yet). */
  lastDecidedMs: number | null;
  nowMs: number;
  enabled: boolean;
  policy: MisfirePolicy;
  windowMs: number;
  /** A due fire looked at within this of its time is on time (config.fireOnTimeMs). */
  onTimeMs: number;
  /** At most this many of the newest undecided due times are decided (older ones are past retention anyway). */
  limit: number;
}

/** The undecided due times in (lastDecided, now], oldest first, each with what to do. */
export function planFires(input: FireInput): FirePlan[] {
  const { schedule, originMs, nowMs } = input;
  // An --at time may be written a little in the past (within the misfire window): it is due even if before the job's creation.
  const fromMs = input.lastDecidedMs ?? (schedule.kind === 'at' ? Number.NEGATIVE_INFINITY : originMs - 1);
  const due: number[] = [];
  let beforeMs = nowMs;
  while (due.length < input.limit) {
    const t = latestFireBetween(schedule, originMs, fromMs, beforeMs);
    if (t === null) break;
    due.push(t);
    beforeMs = t - 1;
  }
  due.reverse();
  const windowMs = input.policy === 'skip' ? 0 : input.windowMs;
  const newest = due.at(-1);
  const onTime = newest !== undefined && nowMs - newest <= input.onTimeMs;
  // With --misfire once, the one late fire that runs: the latest within the window, unless an on-time fire covers them.
  const onceRuns = input.policy === 'once' && !onTime ? [...due].reverse().find((t) => nowMs - t <= windowMs) : undefined;
  return due.map((t): FirePlan => {
    if (!input.enabled) return { scheduledAtMs: t, action: 'skip-disabled' };
    if (t === newest && onTime) return { scheduledAtMs: t, action: 'run', late: false };
    if (nowMs - t > windowMs) return { scheduledAtMs: t, action: 'miss-window' };
    if (input.policy === 'all' || t === onceRuns) return { scheduledAtMs: t, action: 'run', late: true };
    return { scheduledAtMs: t, action: 'miss-coalesced' };
  });
}
