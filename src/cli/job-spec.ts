// Turns command-line flags into a JobSpec, with a clear message for every bad value.
import { parseDuration, DurationError } from '../core/duration.js';
import { ClientError, EXIT } from '../api/client.js';
import { isAbsolute, resolve } from 'node:path';
import { Flags } from '@oclif/core';
import type { Amount, JobSpec, Schedule } from '../records/types.js';
import { validateCron, ScheduleError } from '../records/schedule.js';
import { atProblem, jobNameProblem, MAX_DURATION_MS, MIN_EVERY_MS } from '../core/limits.js';
import { defaultConfig } from '../core/config.js';
import { formatDurationUnits } from '../core/duration.js';

/** The largest count `--max-parallel` and the like take (the most targets an instance can have). */
const MAX_AMOUNT = 10_000;

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
  'max-parallel'?: string;
  waves?: string;
  'max-failures'?: string;
  'min-success'?: string;
  misfire?: string;
  'misfire-window'?: string;
  notify?: string[];
  'notify-on'?: string;
  'notify-secret-file'?: string;
}

/** The rolling and quorum flags `job add` and `run` share (README, "Rolling broadcasts"). */
export const rolloutFlags = {
  'max-parallel': Flags.string({ description: 'at most N (or P%) of the instance\'s subtasks released and running at once across the cluster', helpGroup: 'ROLLOUT' }),
  waves: Flags.string({ description: 'cumulative wave sizes over the sorted targets, e.g. 1,10%,100%; a wave starts when the previous one has ended', helpGroup: 'ROLLOUT' }),
  'max-failures': Flags.string({ description: 'stop when more than N (or P%) subtasks failed: unreleased ones end cancelled/aborted, the instance fails', helpGroup: 'ROLLOUT' }),
  'min-success': Flags.string({ description: 'the instance succeeds when at least N (or P%) subtasks succeeded (default: all)', helpGroup: 'ROLLOUT' }),
};

/** The webhook flags `job add` and `run` share (README, "Notifications"). */
export const notifyFlags = {
  notify: Flags.string({ multiple: true, description: 'POST the instance JSON to this URL when it ends (repeatable, at most 10)', helpGroup: 'NOTIFY' }),
  'notify-on': Flags.string({ options: ['failure', 'always'], description: 'when to call --notify: only when it did not succeed (default), or always', helpGroup: 'NOTIFY' }),
  'notify-secret-file': Flags.string({ description: 'sign each POST with HMAC-SHA256 of this file\'s content (X-Chorus-Signature); a regular file of at most 4 KiB, mode 0600 or 0400, read on the node that delivers (every node that may lead needs it)', helpGroup: 'NOTIFY' }),
};

/** The webhook fields from the flags; a URL must be http(s). */
export function parseNotify(flags: Pick<SpecFlags, 'notify' | 'notify-on' | 'notify-secret-file'>): Pick<JobSpec, 'notify' | 'notifyOn' | 'notifySecretFile'> {
  const urls = flags.notify ?? [];
  if (urls.length === 0 && (flags['notify-on'] !== undefined || flags['notify-secret-file'] !== undefined)) throw badInput('--notify-on and --notify-secret-file need --notify URL');
  if (urls.length > 10) throw badInput(`--notify: at most 10 URLs, not ${urls.length}`);
  for (const url of urls) {
    let protocol: string;
    try {
      protocol = new URL(url).protocol;
    } catch {
      throw badInput(`--notify ${url}: not a URL; write it like https://hooks.example.com/chorus`);
    }
    if (protocol !== 'http:' && protocol !== 'https:') throw badInput(`--notify ${url}: an http:// or https:// URL`);
  }
  const on = flags['notify-on'];
  if (on !== undefined && on !== 'failure' && on !== 'always') throw badInput(`--notify-on ${on}: use failure or always`);
  const secret = flags['notify-secret-file'];
  return {
    ...(urls.length > 0 ? { notify: [...urls] } : {}),
    ...(on !== undefined ? { notifyOn: on } : {}),
    ...(secret !== undefined ? { notifySecretFile: isAbsolute(secret) ? secret : resolve(secret) } : {}),
  };
}

/** The misfire flags of `job add` (README, "Fire history and misfires"). */
export const misfireFlags = {
  misfire: Flags.string({ options: ['skip', 'once', 'all'], description: 'a fire the leader was away for: skip it, run the latest once (default), or run every one', helpGroup: 'SCHEDULE' }),
  'misfire-window': Flags.string({ description: 'how late a fire may still run (default 1h)', helpGroup: 'SCHEDULE' }),
};

/** `N` (a whole number, `min` and up) or `P%` (`min`-100). */
export function parseAmount(flag: string, value: string, min: number): Amount {
  const text = value.trim();
  const pct = /^(\d{1,3})%$/.exec(text);
  if (pct) {
    const p = Number(pct[1]);
    if (p < min || p > 100) throw badInput(`${flag} ${value}: a percentage from ${min}% to 100%`);
    return `${p}%`;
  }
  if (!/^\d+$/.test(text)) throw badInput(`${flag} ${value}: write a number of subtasks (2) or a share of the targets (10%)`);
  const n = Number(text);
  if (n < min || n > MAX_AMOUNT) throw badInput(`${flag} ${value}: a number from ${min} to ${MAX_AMOUNT}`);
  return n;
}

/** `--waves 1,10%,100%`: cumulative sizes, each larger than the one before it of the same kind. */
export function parseWaves(value: string): Amount[] {
  const parts = value.split(',').map((p) => p.trim());
  if (parts.some((p) => p === '')) throw badInput(`--waves ${value}: write cumulative wave sizes separated by commas, e.g. 1,10%,100%`);
  if (parts.length > 100) throw badInput(`--waves ${value}: at most 100 waves`);
  const waves = parts.map((p) => parseAmount('--waves', p, 1));
  for (let i = 1; i < waves.length; i++) {
    const [a, b] = [waves[i - 1] as Amount, waves[i] as Amount];
    if (typeof a === typeof b && parseFloat(String(b)) <= parseFloat(String(a))) {
      throw badInput(`--waves ${value}: sizes are cumulative (each wave includes the ones before it), so ${b} after ${a} adds nothing; write e.g. 1,10%,100%`);
    }
  }
  return waves;
}

/** The rolling and quorum fields of a spec from the flags (absent flags leave their field out). */
export function parseRollout(flags: Pick<SpecFlags, 'max-parallel' | 'waves' | 'max-failures' | 'min-success'>): Pick<JobSpec, 'maxParallel' | 'waves' | 'maxFailures' | 'minSuccess'> {
  return {
    ...(flags['max-parallel'] !== undefined ? { maxParallel: parseAmount('--max-parallel', flags['max-parallel'], 1) } : {}),
    ...(flags.waves !== undefined ? { waves: parseWaves(flags.waves) } : {}),
    ...(flags['max-failures'] !== undefined ? { maxFailures: parseAmount('--max-failures', flags['max-failures'], 0) } : {}),
    ...(flags['min-success'] !== undefined ? { minSuccess: parseAmount('--min-success', flags['min-success'], 1) } : {}),
  };
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
/** A duration flag that may be left out: null then, else as durationFlag. */
export function optionalDurationFlag(name: string, value: string | undefined): number | null {
  return value === undefined ? null : durationFlag(name, value);
}

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
  const rollout = parseRollout(flags);
  const schedule = parseSchedule(flags, nowMs);
  const misfire = parseMisfire(flags);
  if (schedule === null && Object.keys(misfire).length > 0) throw badInput('--misfire and --misfire-window apply to a scheduled job (--cron, --every or --at)');
  if (flags.type === 'standalone' && Object.keys(rollout).length > 0) {
    throw badInput('--max-parallel, --waves, --max-failures and --min-success steer a broadcast across its nodes; a standalone job runs on one node');
  }
  return {
    cmd: flags.cmd,
    type: (flags.type ?? 'broadcast') as JobSpec['type'],
    schedule,
    tags: parseTags(flags.tag),
    timeoutMs: optionalDurationFlag('timeout', flags.timeout),
    retries,
    concurrency: (flags.concurrency ?? 'allow') as JobSpec['concurrency'],
    pre: flags.pre ?? null,
    post: flags.post ?? null,
    ...rollout,
    ...misfire,
    ...parseNotify(flags),
  };
}

export function parseMisfire(flags: Pick<SpecFlags, 'misfire' | 'misfire-window'>): Pick<JobSpec, 'misfire' | 'misfireWindowMs'> {
  const policy = flags.misfire;
  if (policy !== undefined && policy !== 'skip' && policy !== 'once' && policy !== 'all') throw badInput(`--misfire ${policy}: use skip, once or all`);
  if (policy === 'skip' && flags['misfire-window'] !== undefined) throw badInput('--misfire-window does not apply to --misfire skip (a late fire never runs)');
  return {
    ...(policy !== undefined ? { misfire: policy } : {}),
    ...(flags['misfire-window'] !== undefined ? { misfireWindowMs: durationFlag('misfire-window', flags['misfire-window']) } : {}),
  };
}
