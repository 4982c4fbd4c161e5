// Job files: jobs kept in git as TOML or JSON, applied with `chorus job apply -f FILE|DIR`
// and printed back by `chorus job export`. The file is checked against the shipped JSON
// Schema (schema/job.schema.json) and then by the same rules as `job add`; every problem
// is reported with its file, line and the key at fault, all at once.
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import schema from '../../schema/job.schema.json' with { type: 'json' };
import { DurationError, formatExactDuration, parseDuration } from '../core/duration.js';
import { MAX_DURATION_MS, MIN_EVERY_MS } from '../core/limits.js';
import type { JobSpec, Schedule } from '../records/types.js';
import { ScheduleError, validateCron } from '../records/schedule.js';
import type { JobView } from '../api/views.js';
import { ClientError } from '../api/client.js';
import { parseNotify, parseRollout } from './job-spec.js';

/** One job as a file holds it (the keys of schema/job.schema.json). */
export interface JobEntry {
  cmd: string;
  type?: 'broadcast' | 'standalone';
  cron?: string;
  tz?: string;
  every?: string;
  at?: string;
  tags?: Record<string, string>;
  timeout?: string;
  retries?: number;
  concurrency?: 'allow' | 'forbid';
  pre?: string;
  post?: string;
  enabled?: boolean;
  'max-parallel'?: number | string;
  waves?: (number | string)[] | string;
  'max-failures'?: number | string;
  'min-success'?: number | string;
  misfire?: 'skip' | 'once' | 'all';
  'misfire-window'?: string;
  notify?: string[];
  'notify-on'?: 'failure' | 'always';
  'notify-secret-file'?: string;
}

/** A job wanted by the files: its spec, whether it is enabled, and where it was written. */
export interface DesiredJob {
  name: string;
  spec: JobSpec;
  enabled: boolean;
  file: string;
  line: number | null;
}

/** Every problem of the files, each "FILE:LINE: jobs.NAME.KEY: what is wrong". */
export class JobFileError extends Error {
  override readonly name = 'JobFileError';
  constructor(readonly problems: string[]) {
    super(problems.length === 1 ? (problems[0] as string) : `${problems.length} problems in the job files:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

type JobDoc = { jobs: Record<string, JobEntry> };
let compiled: ((doc: unknown) => doc is JobDoc) & { errors?: ErrorObject[] | null } | null = null;

/** The schema's validator, compiled at first use (not by every command that loads this module). */
function validator() {
  // strictRequired off: the schema's `not: {anyOf: [{required: [...]}]}` names keys defined beside it.
  compiled ??= new Ajv({ allErrors: true, strict: true, strictRequired: false }).compile<JobDoc>(schema);
  return compiled;
}

type Format = 'toml' | 'json';

function formatOf(path: string): Format | null {
  const ext = extname(path).toLowerCase();
  return ext === '.toml' ? 'toml' : ext === '.json' ? 'json' : null;
}

/** The files a -f argument names: the file, or every .toml and .json file of the directory (sorted). */
export async function jobFilesAt(path: string): Promise<string[]> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    throw new JobFileError([`${path}: cannot read it (${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message})`]);
  }
  if (!info.isDirectory()) return [path];
  const names = (await readdir(path)).filter((n) => formatOf(n) !== null).sort();
  if (names.length === 0) throw new JobFileError([`${path}: no .toml or .json file in this directory`]);
  return names.map((n) => join(path, n));
}

/** Reads and checks every file; a job named in two files is an error naming both. */
export async function readJobFiles(paths: string[]): Promise<DesiredJob[]> {
  const problems: string[] = [];
  const jobs = new Map<string, DesiredJob>();
  for (const file of paths) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      problems.push(`${file}: cannot read it (${(err as Error).message})`);
      continue;
    }
    try {
      for (const job of parseJobFile(file, text)) {
        const other = jobs.get(job.name);
        if (other) problems.push(`${where(file, job.line)}: job ${job.name} is also defined in ${where(other.file, other.line)}`);
        else jobs.set(job.name, job);
      }
    } catch (err) {
      if (err instanceof JobFileError) problems.push(...err.problems);
      else throw err;
    }
  }
  if (problems.length > 0) throw new JobFileError(problems);
  return [...jobs.values()];
}

const where = (file: string, line: number | null) => (line === null ? file : `${file}:${line}`);

/** The jobs of one file (TOML or JSON by its extension). */
export function parseJobFile(file: string, text: string): DesiredJob[] {
  const format = formatOf(file);
  if (format === null) throw new JobFileError([`${file}: a job file ends in .toml or .json`]);
  let doc: unknown;
  try {
    doc = format === 'toml' ? parseToml(text) : JSON.parse(text);
  } catch (err) {
    const { line } = err as { line?: number };
    const jsonLine = format === 'json' ? jsonErrorLine(text, (err as Error).message) : null;
    const message = (err as Error).message.split('\n')[0]?.replace(/^Invalid TOML document: /, '') ?? '';
    throw new JobFileError([`${where(file, typeof line === 'number' ? line : jsonLine)}: not valid ${format.toUpperCase()}: ${message}`]);
  }
  const validate = validator();
  const problems: string[] = [];
  const badJobs = new Set<string>();
  if (!validate(doc)) {
    // propertyNames reports the name twice (its pattern, then the name): the second says it better.
    // A value that fits no branch of a oneOf (an amount: 2 or "10%") is said once, in one sentence.
    const all = validate.errors ?? [];
    const oneOfPaths = new Set(all.filter((e) => e.keyword === 'oneOf').map((e) => e.instancePath));
    const errors = all.filter((e) => !e.schemaPath.includes('/propertyNames/') && (e.keyword === 'oneOf' || !oneOfPaths.has(e.instancePath)));
    for (const e of errors) {
      const path = pathOf(e);
      if (path[0] === 'jobs' && path[1] !== undefined) badJobs.add(path[1]);
      problems.push(`${where(file, lineOf(text, format, path))}: ${describeSchemaError(e)}`);
    }
    // The shape is wrong above the jobs: nothing more can be said of them.
    if (badJobs.size === 0 || typeof (doc as { jobs?: unknown })?.jobs !== 'object') throw new JobFileError(problems);
  }
  const out: DesiredJob[] = [];
  // The jobs the schema found nothing wrong with are checked by the rules of `job add` too.
  for (const [name, entry] of Object.entries((doc as JobDoc).jobs)) {
    if (badJobs.has(name)) continue;
    const line = lineOf(text, format, ['jobs', name]);
    try {
      out.push({ name, spec: specOf(name, entry), enabled: entry.enabled ?? true, file, line });
    } catch (err) {
      if (!(err instanceof FieldError)) throw err;
      problems.push(`${where(file, lineOf(text, format, ['jobs', name, err.key]) ?? line)}: jobs.${name}.${err.key}: ${err.message}`);
    }
  }
  if (problems.length > 0) throw new JobFileError(problems);
  return out;
}

class FieldError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(message);
  }
}

function durationOf(key: string, text: string, minMs = 1): number {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (err) {
    if (err instanceof DurationError) throw new FieldError(key, err.message);
    throw err;
  }
  if (ms > MAX_DURATION_MS) throw new FieldError(key, `"${text}" is more than 365 days`);
  if (ms < minMs) throw new FieldError(key, `"${text}" is less than ${minMs / 1000}s`);
  return ms;
}

/** The spec `job add` would build from the same values (the API checks `at` against now). */
function specOf(name: string, e: JobEntry): JobSpec {
  let schedule: Schedule | null = null;
  if (e.cron !== undefined) {
    try {
      validateCron(e.cron, e.tz ?? null);
    } catch (err) {
      if (err instanceof ScheduleError) throw new FieldError(e.tz !== undefined && /zone/i.test(err.message) ? 'tz' : 'cron', err.message);
      throw err;
    }
    schedule = { kind: 'cron', expr: e.cron.trim(), tz: e.tz ?? null };
  } else if (e.every !== undefined) {
    schedule = { kind: 'every', intervalMs: durationOf('every', e.every, MIN_EVERY_MS) };
  } else if (e.at !== undefined) {
    const atMs = Date.parse(e.at);
    if (Number.isNaN(atMs)) throw new FieldError('at', `"${e.at}" is not a time; write it like 2026-12-01T03:00:00Z (ISO 8601)`);
    schedule = { kind: 'at', atMs };
  }
  if (e.cmd.trim() === '') throw new FieldError('cmd', `job ${name} has an empty cmd`);
  return {
    cmd: e.cmd,
    type: e.type ?? 'broadcast',
    schedule,
    tags: { ...(e.tags ?? {}) },
    timeoutMs: e.timeout === undefined ? null : durationOf('timeout', e.timeout),
    retries: e.retries ?? 0,
    concurrency: e.concurrency ?? 'allow',
    pre: e.pre ?? null,
    post: e.post ?? null,
    ...rolloutOf(e),
    ...misfireOf(e, schedule),
    ...notifyOf(e),
  };
}

/** notify, notify-on and notify-secret-file, by the rules of `job add`'s flags. */
function notifyOf(e: JobEntry): Partial<JobSpec> {
  try {
    return parseNotify({ notify: e.notify, 'notify-on': e['notify-on'], 'notify-secret-file': e['notify-secret-file'] });
  } catch (err) {
    if (err instanceof ClientError) throw new FieldError(e.notify === undefined ? 'notify-on' : 'notify', err.message.replace(/^--/, ''));
    throw err;
  }
}

/** misfire and misfire-window, by the rules of `job add`'s flags. */
function misfireOf(e: JobEntry, schedule: Schedule | null): Partial<JobSpec> {
  if (e.misfire === undefined && e['misfire-window'] === undefined) return {};
  if (schedule === null) throw new FieldError(e.misfire !== undefined ? 'misfire' : 'misfire-window', 'applies to a scheduled job (cron, every or at)');
  if (e.misfire === 'skip' && e['misfire-window'] !== undefined) throw new FieldError('misfire-window', 'does not apply to misfire = "skip" (a late fire never runs)');
  return {
    ...(e.misfire !== undefined ? { misfire: e.misfire } : {}),
    ...(e['misfire-window'] !== undefined ? { misfireWindowMs: durationOf('misfire-window', e['misfire-window']) } : {}),
  };
}

/** The rolling and quorum keys, checked by the rules of `job add`'s flags. */
function rolloutOf(e: JobEntry): Partial<JobSpec> {
  const flags = {
    'max-parallel': e['max-parallel'],
    waves: Array.isArray(e.waves) ? e.waves.join(',') : e.waves,
    'max-failures': e['max-failures'],
    'min-success': e['min-success'],
  };
  const out: Partial<JobSpec> = {};
  for (const [key, value] of Object.entries(flags)) {
    if (value === undefined) continue;
    try {
      Object.assign(out, parseRollout({ [key]: String(value) }));
    } catch (err) {
      if (err instanceof ClientError) throw new FieldError(key, err.message.replace(`--${key} `, ''));
      throw err;
    }
  }
  if ((e.type ?? 'broadcast') === 'standalone' && Object.keys(out).length > 0) {
    throw new FieldError(Object.keys(flags).find((k) => flags[k as keyof typeof flags] !== undefined) as string, 'steers a broadcast across its nodes; a standalone job runs on one node');
  }
  return out;
}

function pathOf(e: ErrorObject): string[] {
  const parts = e.instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (e.keyword === 'additionalProperties') parts.push(String((e.params as { additionalProperty: string }).additionalProperty));
  if (e.keyword === 'propertyNames') parts.push(String((e.params as { propertyName: string }).propertyName));
  return parts;
}

function describeSchemaError(e: ErrorObject): string {
  const at = pathOf(e).join('.') || '(the file)';
  switch (e.keyword) {
    case 'additionalProperties':
      return `${at}: unknown key (allowed: ${allowedAt(e.instancePath)})`;
    case 'propertyNames':
      return `${at}: bad job name: use letters, digits, '.', '_' or '-' (at most 64), starting with a letter or digit`;
    case 'required':
      return `${at}: ${(e.params as { missingProperty: string }).missingProperty} is required`;
    case 'enum':
      return `${at}: must be one of ${((e.params as { allowedValues: unknown[] }).allowedValues ?? []).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'pattern':
      return `${at}: ${/every|timeout|misfire-window/.test(at) ? 'not a duration; write it like 30s, 5m, 1h30m or 500ms' : at.endsWith('.at') ? 'write a time like 2026-12-01T03:00:00Z (ISO 8601)' : e.message}`;
    case 'dependencies':
      return `${at}: tz only applies to cron`;
    case 'not':
      return `${at}: use only one of cron, every and at`;
    case 'oneOf':
      return at.endsWith('.waves')
        ? `${at}: write wave sizes as a list like [1, "10%", "100%"] or a text like "1,10%,100%"`
        : `${at}: write a number of subtasks (2) or a share of the targets ("10%", at most "100%")`;
    default:
      return `${at}: ${e.message ?? e.keyword}`;
  }
}

function allowedAt(instancePath: string): string {
  if (instancePath === '') return 'jobs';
  return Object.keys(schema.definitions.job.properties).join(', ');
}

/**
 * The line a key is written on (1-based), found by reading the text as written: a TOML
 * table header [jobs.NAME] or a `key =` in it; a JSON "key": after its parent's. Null
 * when it cannot be told (the message still names the key).
 */
export function lineOf(text: string, format: Format, path: string[]): number | null {
  const lines = text.split('\n');
  if (path.length === 0) return 1;
  if (format === 'json') {
    let from = 0;
    for (const key of path) {
      const at = text.indexOf(JSON.stringify(key), from);
      if (at < 0) return null;
      from = at + 1;
    }
    return text.slice(0, from).split('\n').length;
  }
  // TOML: [jobs.NAME] (quoted or not), then KEY = within it; or jobs.NAME.KEY / NAME = { ... } forms: best effort.
  const [top, name, key] = path;
  if (top !== 'jobs') {
    const i = lines.findIndex((l) => new RegExp(`^\\s*${escape(top ?? '')}\\s*=`).test(l) || new RegExp(`^\\s*\\[+\\s*${escape(top ?? '')}`).test(l));
    return i < 0 ? null : i + 1;
  }
  if (name === undefined) return (lines.findIndex((l) => /^\s*\[+\s*jobs\b/.test(l)) + 1) || null;
  const header = new RegExp(`^\\s*\\[\\s*jobs\\.(?:${escape(name)}|"${escape(name)}"|'${escape(name)}')\\s*\\]`);
  const start = lines.findIndex((l) => header.test(l));
  if (start < 0) return null;
  if (key === undefined) return start + 1;
  for (let i = start + 1; i < lines.length; i++) {
    const l = lines[i] as string;
    if (/^\s*\[/.test(l) && !new RegExp(`^\\s*\\[\\s*jobs\\.(?:${escape(name)}|"${escape(name)}")\\.`).test(l)) break;
    if (new RegExp(`^\\s*${escape(key)}\\s*=`).test(l) || new RegExp(`^\\s*\\[\\s*jobs\\.(?:${escape(name)}|"${escape(name)}")\\.${escape(key)}\\s*\\]`).test(l)) return i + 1;
  }
  return start + 1;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function jsonErrorLine(text: string, message: string): number | null {
  const m = /position (\d+)/.exec(message);
  if (m) return text.slice(0, Number(m[1])).split('\n').length;
  const lc = /line (\d+)/.exec(message);
  return lc ? Number(lc[1]) : null;
}

// ---- comparing and exporting --------------------------------------------------------

/** How a stored job differs from the wanted one, in the file's words (empty: the same). */
export function changedFields(current: JobView, wanted: DesiredJob): string[] {
  const a = current.spec;
  const b = wanted.spec;
  const same = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y);
  const out: string[] = [];
  if (a.cmd !== b.cmd) out.push('cmd');
  if (a.type !== b.type) out.push('type');
  if (!same(a.schedule, b.schedule)) out.push('schedule');
  if (!same(sortKeys(a.tags), sortKeys(b.tags))) out.push('tags');
  if (a.timeoutMs !== b.timeoutMs) out.push('timeout');
  if (a.retries !== b.retries) out.push('retries');
  if (a.concurrency !== b.concurrency) out.push('concurrency');
  if (a.pre !== b.pre) out.push('pre');
  if (a.post !== b.post) out.push('post');
  for (const [key, field] of [['max-parallel', 'maxParallel'], ['waves', 'waves'], ['max-failures', 'maxFailures'], ['min-success', 'minSuccess'], ['misfire', 'misfire'], ['misfire-window', 'misfireWindowMs'], ['notify', 'notify'], ['notify-on', 'notifyOn'], ['notify-secret-file', 'notifySecretFile']] as const) {
    if (!same(a[field] ?? null, b[field] ?? null)) out.push(key);
  }
  if (current.enabled !== wanted.enabled) out.push('enabled');
  return out;
}

/** Only `enabled` differs: no new version of the spec is written, only an enable or disable. */
export function onlyEnabledChanged(fields: string[]): boolean {
  return fields.length === 1 && fields[0] === 'enabled';
}

function sortKeys(tags: Record<string, string>): [string, string][] {
  return Object.entries(tags).sort(([x], [y]) => x.localeCompare(y));
}


/** A job as a file holds it: what differs from the defaults, so apply takes it back unchanged. */
export function entryOf(job: Pick<JobView, 'spec' | 'enabled'>): JobEntry {
  const s = job.spec;
  const e: JobEntry = { cmd: s.cmd, type: s.type };
  if (s.schedule?.kind === 'cron') {
    e.cron = s.schedule.expr;
    if (s.schedule.tz !== null) e.tz = s.schedule.tz;
  } else if (s.schedule?.kind === 'every') e.every = formatExactDuration(s.schedule.intervalMs);
  else if (s.schedule?.kind === 'at') e.at = new Date(s.schedule.atMs).toISOString();
  if (Object.keys(s.tags).length > 0) e.tags = { ...s.tags };
  if (s.timeoutMs !== null) e.timeout = formatExactDuration(s.timeoutMs);
  if (s.retries !== 0) e.retries = s.retries;
  if (s.concurrency !== 'allow') e.concurrency = s.concurrency;
  if (s.pre !== null) e.pre = s.pre;
  if (s.post !== null) e.post = s.post;
  if (!job.enabled) e.enabled = false;
  if (s.maxParallel !== undefined) e['max-parallel'] = s.maxParallel;
  if (s.waves !== undefined) e.waves = [...s.waves];
  if (s.maxFailures !== undefined) e['max-failures'] = s.maxFailures;
  if (s.minSuccess !== undefined) e['min-success'] = s.minSuccess;
  if (s.misfire !== undefined) e.misfire = s.misfire;
  if (s.misfireWindowMs !== undefined) e['misfire-window'] = formatExactDuration(s.misfireWindowMs);
  if (s.notify !== undefined) e.notify = [...s.notify];
  if (s.notifyOn !== undefined) e['notify-on'] = s.notifyOn;
  if (s.notifySecretFile !== undefined) e['notify-secret-file'] = s.notifySecretFile;
  return e;
}

export function exportJobs(jobs: JobView[], format: Format): string {
  const doc = { jobs: Object.fromEntries([...jobs].sort((a, b) => a.name.localeCompare(b.name)).map((j) => [j.name, entryOf(j)])) };
  if (format === 'json') return `${JSON.stringify(doc, null, 2)}\n`;
  return `# chorus job file (chorus job export); apply with: chorus job apply -f FILE\n${stringifyToml(doc)}\n`;
}
