// Turns command-line flags into a JobSpec, with a clear message for every bad value.
import { parseDuration, DurationError } from '../core/duration.js';
import { ClientError, EXIT } from '../api/client.js';
import type { JobSpec, Schedule } from '../records/types.js';
import { validateCron, ScheduleError } from '../scheduler/schedule.js';
import { atProblem, jobNameProblem, MAX_DURATION_MS, MIN_EVERY_MS } from '../core/limits.js';
import { defaultConfig } from '../core/config.js';
import { formatDurationUnits } from '../core/duration.js';

export interface SpecFlags {
  cmd: string;
  type?: string;
  cron?: string;
  every?: string;
  at?: string;
  tz?: string;
  tag?: string[];
  timeout?: string;
  retries?: number;
  concurrency?: string;
  pre?: string;
  post?: string;
}

export function badInput(message: string): ClientError {
  return new ClientError(message, EXIT.badInput, 'bad-input');
}

/** The job name argument, checked with the API's own rule before anything is sent. */
export function checkJobName(name: string): string {
  const problem = jobNameProblem(name);
  if (problem !== null) throw badInput(problem);
  return name;
}

/** A duration flag, within the documented bounds (at most 365d; `minMs` and up). */
export function durationFlag(name: string, value: string, minMs = 1): number {
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch (err) {
    if (err instanceof DurationError) throw badInput(`--${name}: ${err.message}`);
    throw err;
  }
  if (ms > MAX_DURATION_MS) throw badInput(`--${name} ${value}: at most ${formatDurationUnits(MAX_DURATION_MS)} (365 days)`);
  if (ms < minMs) throw badInput(`--${name} ${value}: at least ${formatDurationUnits(minMs)}`);
  return ms;
}

export function parseTags(values: string[] | undefined, flag = '--tag'): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const value of values ?? []) {
    const eq = value.indexOf('=');
    if (eq <= 0) throw badInput(`${flag} ${value}: write it as KEY=VALUE, for example ${flag} role=web`);
    tags[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return tags;
}

export function parseSchedule(flags: SpecFlags, nowMs: number): Schedule | null {
  const given = [flags.cron, flags.every, flags.at].filter((v) => v !== undefined).length;
  if (given > 1) throw badInput('use only one of --cron, --every and --at');
  if (flags.tz !== undefined && flags.cron === undefined) throw badInput('--tz only applies to --cron');
  if (flags.cron !== undefined) {
    try {
      validateCron(flags.cron, flags.tz ?? null);
    } catch (err) {
      if (err instanceof ScheduleError) throw badInput(`--cron: ${err.message}`);
      throw err;
    }
    return { kind: 'cron', expr: flags.cron.trim(), tz: flags.tz ?? null };
  }
  if (flags.every !== undefined) return { kind: 'every', intervalMs: durationFlag('every', flags.every, MIN_EVERY_MS) };
  if (flags.at !== undefined) return { kind: 'at', atMs: parseAt(flags.at, nowMs) };
  return null;
}

/** `--at` takes an ISO 8601 time (2026-12-01T03:00:00Z) or a delay from now (+10m). */
function parseAt(value: string, nowMs: number): number {
  if (value.startsWith('+')) return nowMs + durationFlag('at', value.slice(1));
  const atMs = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(atMs)) {
    throw badInput(`--at ${value}: write a time like 2026-12-01T03:00:00Z (ISO 8601) or a delay like +10m`);
  }
  const problem = atProblem(atMs, nowMs, defaultConfig.misfireGraceMs);
  if (problem !== null) throw badInput(`--at ${value}: ${problem}`);
  return atMs;
}

export function buildSpec(flags: SpecFlags, nowMs: number): JobSpec {
  if (flags.cmd.trim() === '') throw badInput('--cmd cannot be empty');
  const retries = flags.retries ?? 0;
  if (!Number.isInteger(retries) || retries < 0 || retries > 100) throw badInput(`--retries must be a whole number from 0 to 100, not ${retries}`);
  return {
    cmd: flags.cmd,
    type: (flags.type ?? 'broadcast') as JobSpec['type'],
    schedule: parseSchedule(flags, nowMs),
    tags: parseTags(flags.tag),
    timeoutMs: flags.timeout === undefined ? null : durationFlag('timeout', flags.timeout),
    retries,
    concurrency: (flags.concurrency ?? 'allow') as JobSpec['concurrency'],
    pre: flags.pre ?? null,
    post: flags.post ?? null,
  };
}
