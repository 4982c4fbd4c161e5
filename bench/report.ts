// The benchmark's figures: samples per scenario and metric, their statistics, the
// targets they are held to, the markdown table, and a count of what the daemons logged.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const SCENARIOS = {
  a: 'kill',
  b: 'stop',
  c: 'leader',
  d: 'job',
  e: 'idle',
  f: 'false-dead',
  g: 'broadcast',
  h: 'bcast-kill',
  i: 'xargs',
  j: 'startup',
} as const;

export type Letter = keyof typeof SCENARIOS;

// Order of execution: startup before the cluster exists; idle on a fresh cluster; the
// soak last (it is the longest).
export const ORDER: Letter[] = ['j', 'e', 'd', 'a', 'b', 'c', 'g', 'i', 'h', 'f'];

export type Sample = number | null;

export interface Bucket {
  samples: Record<string, Sample[]>;
  extra: Record<string, unknown>;
  errors: string[];
}

export interface Summary {
  n: number;
  median: number | null;
  p90: number | null;
  min: number | null;
  max: number | null;
}

/** What one run of the benchmark measured. */
export class Results {
  readonly byScenario: Partial<Record<Letter, Bucket>> = {};
  /** Daemon spawn -> node.json written by that pid, for every start and restart. */
  readonly startupMs: number[] = [];

  bucket(letter: Letter): Bucket {
    return (this.byScenario[letter] ??= { samples: {}, extra: {}, errors: [] });
  }

  sample(letter: Letter, metric: string, value: Sample): void {
    (this.bucket(letter).samples[metric] ??= []).push(value);
  }
}

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? null;
}

export function summarize(values: Sample[]): Summary {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return { n: 0, median: null, p90: null, min: null, max: null };
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
  return { n: v.length, median, p90: percentile(v, 90), min: v[0] as number, max: v[v.length - 1] as number };
}

interface Target {
  text: string;
  ok: (s: Summary) => boolean;
}

const atMost = (limit: number, key: 'median' | 'max' = 'median') => (s: Summary) => s[key] !== null && (s[key] as number) <= limit;
const below = (limit: number) => (s: Summary) => s.max !== null && s.max < limit;

// Targets: `${scenario}|${metric}`
const TARGETS: Record<string, Target> = {
  'a|dead at all survivors': { text: '≤ 1000 ms', ok: atMost(1000) },
  'b|dead at all survivors': { text: '≤ 3000 ms', ok: atMost(3000) },
  'c|new leader agreed by all survivors': { text: '≤ 2000 ms', ok: atMost(2000) },
  'd|visible on all others, from the response': { text: '≤ 200 ms', ok: atMost(200) },
  'd|visible on all others, from the request': { text: '≤ 200 ms', ok: atMost(200) },
  'e|idle RSS per daemon (MB)': { text: '< 100 MB (max)', ok: below(100) },
  'e|idle CPU per daemon (% of one core)': { text: '< 2 % (max)', ok: below(2) },
  'f|false dead reports': { text: '0', ok: (s) => s.max === 0 },
  'g|all started, from the run response': { text: 'median ≤ 50 ms', ok: atMost(50) },
  'g|all started, from the run request': { text: '(≤ 50 ms, for reference)', ok: atMost(50) },
  'g|`succeeded` seen by long-poll, from the run response': { text: 'median ≤ 150 ms', ok: atMost(150) },
  'g|`succeeded` seen by long-poll, from the run request': { text: '(≤ 150 ms, for reference)', ok: atMost(150) },
  'h|killed target `failed` node-lost at the leader': { text: 'median ≤ 1500 ms', ok: atMost(1500) },
};

export interface Row extends Summary {
  scenario: string;
  metric: string;
  target: string;
  missing: number;
  verdict: string;
}

export function buildRows(results: Results): Row[] {
  const rows: Row[] = [];
  for (const letter of ORDER) {
    const b = results.byScenario[letter];
    if (!b) continue;
    for (const [metric, values] of Object.entries(b.samples)) {
      const s = summarize(values);
      const missing = values.filter((v) => v === null || v === undefined).length;
      const target = TARGETS[`${letter}|${metric}`];
      const verdict = target ? (s.n === 0 ? '✗ (no data)' : target.ok(s) && missing === 0 ? '✓' : '✗') : '';
      rows.push({ scenario: `${letter} ${SCENARIOS[letter]}`, metric, target: target?.text ?? '', ...s, missing, verdict });
    }
  }
  if (results.startupMs.length) {
    const s = summarize(results.startupMs);
    rows.push({ scenario: 'j startup', metric: 'daemon spawn -> node.json (all starts and restarts)', target: '', ...s, missing: 0, verdict: '' });
  }
  return rows;
}

const fmtV = (v: number | null) => (v == null ? '–' : Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1));

export function markdown(rows: Row[]): string {
  const head = '| scenario | metric (ms unless stated) | n | median | p90 | min | max | failed trials | target | meets |';
  const sep = '|---|---|---:|---:|---:|---:|---:|---:|---|---|';
  const body = rows.map(
    (r) => `| ${r.scenario} | ${r.metric} | ${r.n} | ${fmtV(r.median)} | ${fmtV(r.p90)} | ${fmtV(r.min)} | ${fmtV(r.max)} | ${r.missing} | ${r.target} | ${r.verdict} |`,
  );
  return [head, sep, ...body].join('\n');
}

export interface DaemonLogs {
  byLevel: Record<string, number>;
  top: { level: string; msg: string; count: number }[];
}

/** Counts warn/error/fatal lines (pino JSON) in every daemon.log under the given cluster folders. */
export function scanDaemonLogs(roots: string[]): DaemonLogs {
  const names: Record<number, string> = { 40: 'warn', 50: 'error', 60: 'fatal' };
  const byLevel: Record<string, number> = {};
  const byMsg = new Map<string, number>();
  const count = (level: string, msg: string) => {
    byLevel[level] = (byLevel[level] ?? 0) + 1;
    const key = `${level}|${msg.slice(0, 160)}`;
    byMsg.set(key, (byMsg.get(key) ?? 0) + 1);
  };
  for (const root of roots) {
    let dirs: string[];
    try {
      dirs = readdirSync(root);
    } catch {
      continue;
    }
    for (const dir of dirs) {
      let text: string;
      try {
        text = readFileSync(join(root, dir, 'daemon.log'), 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n')) {
        // The support marks each start and exit with a line of its own: not the daemon's output.
        if (line.startsWith('===== ')) continue;
        if (!line.startsWith('{')) {
          if (line.trim()) {
            byLevel['non-JSON output line'] = (byLevel['non-JSON output line'] ?? 0) + 1;
            const key = `non-JSON|${line.trim().slice(0, 160)}`;
            byMsg.set(key, (byMsg.get(key) ?? 0) + 1);
          }
          continue;
        }
        let rec: { level?: number; msg?: unknown };
        try {
          rec = JSON.parse(line) as { level?: number; msg?: unknown };
        } catch {
          continue;
        }
        const level = names[rec.level ?? 0];
        if (level) count(level, String(rec.msg ?? ''));
      }
    }
  }
  const top = [...byMsg.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8)
    .map(([key, n]) => ({ level: key.split('|')[0] as string, msg: key.slice(key.indexOf('|') + 1), count: n }));
  return { byLevel, top };
}
