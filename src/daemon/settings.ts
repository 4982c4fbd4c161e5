// The daemon's settings and where each comes from. Every daemon flag can also be given in
// the environment (CHORUS_*) and in a TOML file (`--config FILE`); a flag wins over the
// environment, which wins over the file, which wins over the default. The file also holds
// the timings and limits an operator may tune (`[tuning]`). Anything unknown or invalid is
// an error that names where it came from (the flag, the variable, or the file and key) and
// what is allowed, and the daemon does not start.
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { multiaddr } from '@multiformats/multiaddr';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { ConfigError, configFrom, defaultConfig, type ChorusConfig } from '../core/config.js';
import { DurationError, formatExactDuration, parseDuration } from '../core/duration.js';
import { LOG_FORMATS, type LogFormat } from '../core/log.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface DaemonSettings {
  dataDir: string;
  listen: string[];
  join: string[];
  /** HOST:PORT of the control API. */
  api: string;
  name: string | null;
  tags: Record<string, string>;
  mdns: boolean;
  swarmKey: string | null;
  logLevel: LogLevel;
  /** json or pretty; null: pretty on a terminal, json otherwise. */
  logFormat: LogFormat | null;
  /** HOST:PORT to serve Prometheus metrics on (/metrics); null: none. */
  metrics: string | null;
  /** PEM certificate and key of the API's TLS; both or neither. */
  tlsCert: string | null;
  tlsKey: string | null;
  /** An API beyond loopback without TLS is refused unless this is set. */
  insecureApi: boolean;
  /** Only the knobs the file set; the rest keep their defaults. */
  tuning: Partial<ChorusConfig>;
}

type Field = Exclude<keyof DaemonSettings, 'tuning'>;

/** What one source gave (a key it did not give is absent). */
export type SettingsLayer = Partial<Pick<DaemonSettings, Field>> & { tuning?: Partial<ChorusConfig> };

export type SettingSource = 'flag' | 'env' | 'file' | 'default';

/** Bad input in a flag, a variable or the config file: the daemon exits 2 with this message. */
export class SettingsError extends Error {
  override readonly name = 'SettingsError';
}

interface KeyDef {
  field: Field;
  /** The key in the file, and the flag's name. */
  key: string;
  env: string;
  kind: 'string' | 'list' | 'boolean' | 'tags' | 'level' | 'format';
}

const KEYS: KeyDef[] = [
  { field: 'dataDir', key: 'data-dir', env: 'CHORUS_DATA_DIR', kind: 'string' },
  { field: 'listen', key: 'listen', env: 'CHORUS_LISTEN', kind: 'list' },
  { field: 'join', key: 'join', env: 'CHORUS_JOIN', kind: 'list' },
  { field: 'api', key: 'api', env: 'CHORUS_API', kind: 'string' },
  { field: 'name', key: 'name', env: 'CHORUS_NAME', kind: 'string' },
  { field: 'tags', key: 'tags', env: 'CHORUS_TAGS', kind: 'tags' },
  { field: 'mdns', key: 'mdns', env: 'CHORUS_MDNS', kind: 'boolean' },
  { field: 'swarmKey', key: 'swarm-key', env: 'CHORUS_SWARM_KEY', kind: 'string' },
  { field: 'logLevel', key: 'log-level', env: 'CHORUS_LOG_LEVEL', kind: 'level' },
  { field: 'logFormat', key: 'log-format', env: 'CHORUS_LOG_FORMAT', kind: 'format' },
  { field: 'metrics', key: 'metrics', env: 'CHORUS_METRICS', kind: 'string' },
  { field: 'tlsCert', key: 'tls-cert', env: 'CHORUS_TLS_CERT', kind: 'string' },
  { field: 'tlsKey', key: 'tls-key', env: 'CHORUS_TLS_KEY', kind: 'string' },
  { field: 'insecureApi', key: 'insecure-api', env: 'CHORUS_INSECURE_API', kind: 'boolean' },
];

/** The environment variable of each setting, for help texts and the README. */
export const SETTING_ENV: Record<string, string> = Object.fromEntries(KEYS.map((k) => [k.key, k.env]));

/**
 * The knobs of ChorusConfig an operator may change, by their key in `[tuning]`. A knob in
 * milliseconds is written as a duration ("500ms", "30s", "5m"; 0 where zero has a meaning),
 * the others as whole numbers. The rest of ChorusConfig are internal trade-offs that tests
 * and benchmarks tune.
 */
const TUNING: Record<string, keyof ChorusConfig> = {
  'probe-interval': 'probeIntervalMs',
  'probe-timeout': 'probeTimeoutMs',
  'indirect-checks': 'indirectChecks',
  'suspicion-mult': 'suspicionMult',
  'max-peer-connections': 'maxPeerConnections',
  'anti-entropy-interval': 'antiEntropyIntervalMs',
  'request-timeout': 'requestTimeoutMs',
  'leader-stable': 'leaderStableMs',
  'misfire-grace': 'misfireGraceMs',
  'retry-backoff-base': 'retryBackoffBaseMs',
  'retry-backoff-max': 'retryBackoffMaxMs',
  'webhook-timeout': 'webhookTimeoutMs',
  'webhook-backoff-base': 'webhookBackoffBaseMs',
  'webhook-backoff-max': 'webhookBackoffMaxMs',
  'webhook-retry-for': 'webhookRetryForMs',
  'max-output-bytes': 'maxOutputBytes',
  'max-concurrent-subtasks': 'maxConcurrentSubtasks',
  'retain-instances-per-job': 'retainInstancesPerJob',
  'retain-adhoc-instances': 'retainAdhocInstances',
  'max-unfinished-per-job': 'maxUnfinishedPerJob',
  'retain-records': 'retainRecords',
  'retention-interval': 'retentionIntervalMs',
  'kill-grace': 'killGraceMs',
  'relay-batch': 'relayBatchMs',
  'reap-after': 'reapAfterMs',
  keepers: 'keepers',
  'keeper-handover': 'keeperHandoverMs',
};
const TUNING_KEY_OF = new Map(Object.entries(TUNING).map(([key, knob]) => [knob, key]));
const isDurationKnob = (knob: keyof ChorusConfig) => knob.endsWith('Ms');

export const DEFAULT_SETTINGS: DaemonSettings = {
  dataDir: join(homedir(), '.chorus'),
  listen: ['/ip4/0.0.0.0/tcp/7400'],
  join: [],
  api: '127.0.0.1:7410',
  name: null,
  tags: {},
  mdns: false,
  swarmKey: null,
  logLevel: 'info',
  logFormat: null,
  metrics: null,
  tlsCert: null,
  tlsKey: null,
  insecureApi: false,
  tuning: {},
};

// ---- checks shared by every source ---------------------------------------------------

/** A --listen or --join value must be a TCP multiaddr, like /ip4/10.0.0.5/tcp/7400. */
function multiaddrProblem(value: string): string | null {
  let protocols: string[];
  try {
    protocols = multiaddr(value).getComponents().map((c) => c.name);
  } catch (err) {
    return `not a multiaddr (${(err as Error).message}); write it like /ip4/10.0.0.5/tcp/7400`;
  }
  if (!protocols.includes('tcp') || !protocols.some((p) => ['ip4', 'ip6', 'dns', 'dns4', 'dns6'].includes(p))) {
    return 'give an address and a TCP port, like /ip4/10.0.0.5/tcp/7400';
  }
  return null;
}

/** HOST:PORT, or the http:// URL that chorus status shows (the API speaks plain HTTP; no path). */
export function parseApiAddress(value: string): { host: string; port: number } | null {
  const match = /^(?:http:\/\/)?([^/\s]+):(\d+)\/?$/.exec(value);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) return null;
  return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port };
}

const API_HELP = 'write it as HOST:PORT, for example 127.0.0.1:7410 (port 0 picks a free one)';

/** The problem with a value of `def`, or null. `value` is already of the kind's type. */
function valueProblem(def: KeyDef, value: unknown): string | null {
  switch (def.field) {
    case 'listen':
    case 'join':
      for (const address of value as string[]) {
        const problem = multiaddrProblem(address);
        if (problem) return `${address}: ${problem}`;
      }
      return null;
    case 'api':
      return parseApiAddress(value as string) ? null : `${String(value)}: ${API_HELP}`;
    case 'metrics':
      return parseApiAddress(value as string) ? null : `${String(value)}: write it as HOST:PORT, for example 127.0.0.1:9464 (port 0 picks a free one)`;
    case 'name':
    case 'dataDir':
    case 'swarmKey':
    case 'tlsCert':
    case 'tlsKey':
      return (value as string).trim() === '' ? 'must not be empty' : null;
    case 'tags':
      for (const [key, tag] of Object.entries(value as Record<string, string>)) {
        if (key.trim() === '') return 'a tag key must not be empty';
        if (typeof tag !== 'string') return `tag ${key} must be a string, got ${describe(tag)}`;
      }
      return null;
    default:
      return null;
  }
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value !== null && typeof value === 'object') return 'a table';
  return typeof value === 'string' ? `"${value}"` : String(value);
}

// ---- flags ----------------------------------------------------------------------------

export interface DaemonFlags {
  'data-dir'?: string | undefined;
  listen?: string[] | undefined;
  join?: string[] | undefined;
  api?: string | undefined;
  name?: string | undefined;
  tag?: string[] | undefined;
  mdns?: boolean | undefined;
  'swarm-key'?: string | undefined;
  'log-level'?: string | undefined;
  'log-format'?: string | undefined;
  metrics?: string | undefined;
  'tls-cert'?: string | undefined;
  'tls-key'?: string | undefined;
  'insecure-api'?: boolean | undefined;
}

/** The flags given on the command line (oclif leaves the others undefined: no defaults there). */
export function layerFromFlags(flags: DaemonFlags): SettingsLayer {
  const layer: Record<string, unknown> = {};
  for (const def of KEYS) {
    const raw = def.field === 'tags' ? flags.tag : flags[def.key as keyof DaemonFlags];
    if (raw === undefined) continue;
    const name = def.field === 'tags' ? '--tag' : `--${def.key}`;
    const value = def.kind === 'tags' ? parseTagList(raw as string[], (bad) => `${name} ${bad}: write it as KEY=VALUE, for example --tag role=web`) : raw;
    const problem = valueProblem(def, value);
    if (problem) throw new SettingsError(`${name} ${problem}`);
    layer[def.field] = value;
  }
  return layer as SettingsLayer;
}

function parseTagList(values: string[], bad: (value: string) => string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq <= 0) throw new SettingsError(bad(value));
    tags[value.slice(0, eq).trim()] = value.slice(eq + 1);
  }
  return tags;
}

// ---- environment ----------------------------------------------------------------------

/** CHORUS_* variables. Lists are comma-separated (CHORUS_JOIN, CHORUS_LISTEN, CHORUS_TAGS=role=web,zone=a). An empty variable counts as not set. */
export function layerFromEnv(env: NodeJS.ProcessEnv): SettingsLayer {
  const layer: Record<string, unknown> = {};
  for (const def of KEYS) {
    const raw = env[def.env];
    if (raw === undefined || raw.trim() === '') continue;
    let value: unknown;
    switch (def.kind) {
      case 'list':
        value = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
        break;
      case 'tags':
        value = parseTagList(raw.split(',').map((s) => s.trim()).filter((s) => s !== ''), (bad) => `${def.env}=${raw}: "${bad}" is not KEY=VALUE; write it like role=web,zone=a`);
        break;
      case 'boolean': {
        const word = raw.trim().toLowerCase();
        if (!['true', 'false', '1', '0', 'yes', 'no'].includes(word)) throw new SettingsError(`${def.env}=${raw}: write true or false`);
        value = ['true', '1', 'yes'].includes(word);
        break;
      }
      case 'level':
        if (!(LOG_LEVELS as readonly string[]).includes(raw.trim())) throw new SettingsError(`${def.env}=${raw}: must be one of ${LOG_LEVELS.join(', ')}`);
        value = raw.trim();
        break;
      case 'format':
        if (!(LOG_FORMATS as readonly string[]).includes(raw.trim())) throw new SettingsError(`${def.env}=${raw}: must be one of ${LOG_FORMATS.join(', ')}`);
        value = raw.trim();
        break;
      default:
        value = raw;
    }
    const problem = valueProblem(def, value);
    if (problem) throw new SettingsError(`${def.env}: ${problem}`);
    layer[def.field] = value;
  }
  return layer as SettingsLayer;
}

// ---- the file -------------------------------------------------------------------------

export async function readConfigFile(path: string): Promise<SettingsLayer> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SettingsError(`--config ${path}: cannot read it (${code === 'ENOENT' ? 'no such file' : ((err as Error).message ?? code)})`);
  }
  return layerFromToml(text, path);
}

/** The settings in a TOML text; `path` names it in errors, and relative paths in it (data-dir, swarm-key) are taken from its directory. */
export function layerFromToml(text: string, path: string): SettingsLayer {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    const { line, column } = err as { line?: number; column?: number };
    const where = typeof line === 'number' ? `:${line}${typeof column === 'number' ? `:${column}` : ''}` : '';
    throw new SettingsError(`${path}${where}: not valid TOML: ${firstLine((err as Error).message).replace(/^Invalid TOML document: /, '')}`);
  }
  const layer: Record<string, unknown> = {};
  const allowed = [...KEYS.map((k) => k.key), 'tuning'];
  for (const [key, raw] of Object.entries(doc)) {
    const at = `${path}: key "${key}"`;
    if (key === 'tuning') {
      layer.tuning = tuningFrom(raw, path);
      continue;
    }
    const def = KEYS.find((k) => k.key === key);
    if (!def) throw new SettingsError(`${path}: unknown key "${key}" (allowed: ${allowed.join(', ')})`);
    let value: unknown = raw;
    switch (def.kind) {
      case 'list':
        if (typeof raw === 'string') value = [raw];
        else if (!Array.isArray(raw) || !raw.every((v) => typeof v === 'string')) throw new SettingsError(`${at}: must be a list of multiaddrs, like ["/ip4/10.0.0.5/tcp/7400"]; got ${describe(raw)}`);
        break;
      case 'tags': {
        if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new SettingsError(`${at}: must be a table of strings, like tags = { role = "web" }; got ${describe(raw)}`);
        // A setting written below the [tags] line is a tag in TOML: say so rather than tag the node with it.
        const setting = Object.keys(raw).find((k) => KEYS.some((d) => d.key === k) || k === 'tuning');
        if (setting !== undefined) throw new SettingsError(`${path}: key "tags.${setting}": ${setting} is a setting, not a tag: in TOML every key after a [tags] line belongs to that table; move it above [tags]`);
        break;
      }
      case 'boolean':
        if (typeof raw !== 'boolean') throw new SettingsError(`${at}: must be true or false; got ${describe(raw)}`);
        break;
      case 'level':
        if (typeof raw !== 'string' || !(LOG_LEVELS as readonly string[]).includes(raw)) throw new SettingsError(`${at}: must be one of ${LOG_LEVELS.join(', ')}; got ${describe(raw)}`);
        break;
      case 'format':
        if (typeof raw !== 'string' || !(LOG_FORMATS as readonly string[]).includes(raw)) throw new SettingsError(`${at}: must be one of ${LOG_FORMATS.join(', ')}; got ${describe(raw)}`);
        break;
      default:
        if (typeof raw !== 'string') throw new SettingsError(`${at}: must be a string; got ${describe(raw)}`);
    }
    const problem = valueProblem(def, value);
    if (problem) throw new SettingsError(`${at}: ${problem}`);
    layer[def.field] = ['dataDir', 'swarmKey', 'tlsCert', 'tlsKey'].includes(def.field) ? resolve(dirname(path), value as string) : value;
  }
  return layer as SettingsLayer;
}

function firstLine(text: string): string {
  return text.split('\n').filter((l) => l.trim() !== '').slice(0, 1).join('').trim();
}

function tuningFrom(raw: unknown, path: string): Partial<ChorusConfig> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new SettingsError(`${path}: key "tuning" must be a table ([tuning]); got ${describe(raw)}`);
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    const at = `${path}: key "tuning.${key}"`;
    const knob = TUNING[key];
    if (!knob) throw new SettingsError(`${path}: unknown key "tuning.${key}" (allowed in [tuning]: ${Object.keys(TUNING).join(', ')})`);
    if (isDurationKnob(knob)) {
      if (value === 0) out[knob] = 0;
      else if (typeof value !== 'string') throw new SettingsError(`${at}: must be a duration like "500ms", "30s" or "5m"; got ${describe(value)}`);
      else {
        try {
          out[knob] = parseDuration(value);
        } catch (err) {
          if (err instanceof DurationError) throw new SettingsError(`${at}: ${err.message}`);
          throw err;
        }
      }
    } else if (typeof value !== 'number' && typeof value !== 'bigint') {
      throw new SettingsError(`${at}: must be a whole number; got ${describe(value)}`);
    } else {
      out[knob] = Number(value);
    }
  }
  // The knobs' own rules (ranges, and how they relate), named by their keys in the file.
  try {
    configFrom(out);
  } catch (err) {
    if (err instanceof ConfigError) throw new SettingsError(`${path}: ${err.problems.map(renameKnobs).join('; ')}`);
    throw err;
  }
  return out as Partial<ChorusConfig>;
}

function renameKnobs(problem: string): string {
  return problem.replace(/\b([a-z][A-Za-z]+)\b/g, (word) => {
    const key = TUNING_KEY_OF.get(word as keyof ChorusConfig);
    if (key) return `tuning.${key}`;
    return Object.hasOwn(defaultConfig, word) ? `${word} (not tunable here)` : word;
  });
}

// ---- together -------------------------------------------------------------------------

export interface ResolvedSettings {
  settings: DaemonSettings;
  /** Where each setting (by its file key) came from. */
  sources: Record<string, SettingSource>;
}

/** Flag, then environment, then file, then default, setting by setting (tags as a whole). */
export function resolveSettings(layers: { flags: SettingsLayer; env: SettingsLayer; file: SettingsLayer }): ResolvedSettings {
  const settings: Record<string, unknown> = { ...DEFAULT_SETTINGS };
  const sources: Record<string, SettingSource> = {};
  for (const def of KEYS) {
    const [source, value] = (
      [
        ['flag', layers.flags[def.field]],
        ['env', layers.env[def.field]],
        ['file', layers.file[def.field]],
      ] as const
    ).find(([, v]) => v !== undefined) ?? ['default', DEFAULT_SETTINGS[def.field]];
    settings[def.field] = value;
    sources[def.key] = source;
  }
  settings.dataDir = resolve(settings.dataDir as string);
  if ((settings.tlsCert === null) !== (settings.tlsKey === null)) {
    const [given, missing] = settings.tlsCert === null ? ['tls-key', 'tls-cert'] : ['tls-cert', 'tls-key'];
    throw new SettingsError(`${given} is given (from ${sources[given]}) without ${missing}: the API's TLS needs both a certificate and its key`);
  }
  settings.tuning = { ...(layers.file.tuning ?? {}) };
  for (const key of Object.keys(TUNING)) sources[`tuning.${key}`] = (layers.file.tuning ?? {})[TUNING[key] as keyof ChorusConfig] === undefined ? 'default' : 'file';
  return { settings: settings as unknown as DaemonSettings, sources };
}

/** The settings as a TOML file that `--config` takes as it is: every key, defaults included, with where each came from. */
export function settingsToToml(resolved: ResolvedSettings): string {
  const { settings, sources } = resolved;
  const doc: Record<string, unknown> = {};
  for (const def of KEYS) {
    const value = settings[def.field];
    if (value === null) continue;
    doc[def.key] = value;
  }
  const config = configFrom(settings.tuning);
  const tuning: Record<string, unknown> = {};
  for (const [key, knob] of Object.entries(TUNING)) tuning[key] = isDurationKnob(knob) ? exactDuration(config[knob] as number) : config[knob];
  doc.tuning = tuning;
  const body = stringifyToml(doc);
  const from = (source: SettingSource) => Object.entries(sources).filter(([, s]) => s === source).map(([k]) => k);
  const header = [
    '# The effective configuration of this daemon (chorus daemon --print-config).',
    `# from flags: ${from('flag').join(', ') || '(none)'}`,
    `# from the environment: ${from('env').join(', ') || '(none)'}`,
    `# from the file: ${from('file').join(', ') || '(none)'}`,
    '# the rest are defaults.',
  ];
  return `${header.join('\n')}\n${body}\n`;
}

/** A duration that parses back to exactly `ms`; 0 (where a knob allows it) stays the number 0. */
export function exactDuration(ms: number): string | number {
  return ms === 0 ? 0 : formatExactDuration(ms);
}

/** What can change while the daemon runs (SIGHUP): tags and the log level; every other difference needs a restart. */
export function liveChanges(before: DaemonSettings, after: DaemonSettings): { tags: Record<string, string> | null; logLevel: LogLevel | null; restartNeeded: string[] } {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const restartNeeded: string[] = [];
  for (const def of KEYS) {
    if (def.field === 'tags' || def.field === 'logLevel') continue;
    if (!same(before[def.field], after[def.field])) restartNeeded.push(def.key);
  }
  for (const [key, knob] of Object.entries(TUNING)) if (before.tuning[knob] !== after.tuning[knob]) restartNeeded.push(`tuning.${key}`);
  return {
    tags: same(sortedTags(before.tags), sortedTags(after.tags)) ? null : after.tags,
    logLevel: before.logLevel === after.logLevel ? null : after.logLevel,
    restartNeeded,
  };
}

function sortedTags(tags: Record<string, string>): [string, string][] {
  return Object.entries(tags).sort(([a], [b]) => a.localeCompare(b));
}
