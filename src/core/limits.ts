// The documented bounds of every value a user or a peer can put into a job: checked
// where a value enters (the CLI, the API, and the record validator for the network and
// the state file), so no peer can store what the API would refuse. See README "Limits".

import { formatDurationUnits } from './duration.js';

const DAY_MS = 86_400_000;

/** Longest duration anywhere (--timeout, --cmd-timeout, --every, a wait's --timeout): 365 days. */
export const MAX_DURATION_MS = 365 * DAY_MS;
/** Shortest --every: a schedule firing more often than once a second is a mistake, not a job. */
export const MIN_EVERY_MS = 1000;
/** Latest representable time of a schedule (--at): 9999-12-31T23:59:59.999Z. */
export const MAX_TIME_MS = 253_402_300_799_999;
/** How far ahead --at may be set: 10 years. */
export const MAX_AT_AHEAD_MS = 10 * 365 * DAY_MS;
/** Retries of a failed subtask. */
export const MAX_RETRIES = 100;

/** Job names: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64. */
export const JOB_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Why a job name is refused, or null when it is fine. One rule for the CLI and the API. */
export function jobNameProblem(name: string): string | null {
  if (JOB_NAME_PATTERN.test(name)) return null;
  const shown = JSON.stringify(name);
  return `bad job name ${shown}: use letters, digits, '.', '_' or '-' (at most 64), starting with a letter or digit`;
}

/** Why an --at time is refused: too far in the past (beyond the misfire window) or ahead. */
export function atProblem(atMs: number, nowMs: number, misfireWindowMs: number): string | null {
  if (atMs < nowMs - misfireWindowMs) {
    return `that is in the past, more than ${formatDurationUnits(misfireWindowMs)} ago (a time within the last ${formatDurationUnits(misfireWindowMs)} runs once, at once)`;
  }
  if (atMs > nowMs + MAX_AT_AHEAD_MS) return 'that is more than 10 years ahead';
  return null;
}
