import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jobView } from '../api/views.js';
import type { JobRecord, JobSpec } from '../records/types.js';
import { changedFields, entryOf, exportJobs, JobFileError, parseJobFile } from './job-file.js';

const NOW = Date.parse('2026-12-06T12:00:00Z');

function problemsOf(file: string, text: string): string[] {
  try {
    parseJobFile(file, text);
  } catch (err) {
    expect(err).toBeInstanceOf(JobFileError);
    return (err as JobFileError).problems;
  }
  throw new Error('expected a JobFileError');
}

function view(name: string, spec: JobSpec, enabled = true) {
  const record: JobRecord = { name, spec, enabled, deleted: false, createdAtMs: NOW, stamp: { wallMs: NOW, counter: 0, nodeId: 'n1' }, sig: 'x' } as unknown as JobRecord;
  return jobView(record, NOW);
}

describe('job files', () => {
  it('reads TOML and JSON into the specs job add would build', () => {
    const toml = parseJobFile(
      'jobs.toml',
      ['[jobs.backup]', 'cmd = "pg_dump"', 'type = "standalone"', 'cron = "0 3 * * *"', 'tz = "Europe/Paris"', 'timeout = "30m"', 'retries = 2', 'concurrency = "forbid"', 'tags = { role = "db" }', '', '[jobs.tick]', 'cmd = "date"', 'every = "10m"', 'enabled = false'].join('\n'),
    );
    expect(toml).toEqual([
      {
        name: 'backup',
        file: 'jobs.toml',
        line: 1,
        enabled: true,
        spec: { cmd: 'pg_dump', type: 'standalone', schedule: { kind: 'cron', expr: '0 3 * * *', tz: 'Europe/Paris' }, tags: { role: 'db' }, timeoutMs: 1_800_000, retries: 2, concurrency: 'forbid', pre: null, post: null },
      },
      { name: 'tick', file: 'jobs.toml', line: 11, enabled: false, spec: { cmd: 'date', type: 'broadcast', schedule: { kind: 'every', intervalMs: 600_000 }, tags: {}, timeoutMs: null, retries: 0, concurrency: 'allow', pre: null, post: null } },
    ]);
    const json = parseJobFile('jobs.json', '{\n  "jobs": {\n    "once": { "cmd": "x", "at": "2026-12-07T00:00:00Z", "pre": "echo pre" }\n  }\n}\n');
    expect(json[0]).toMatchObject({ name: 'once', line: 3, spec: { schedule: { kind: 'at', atMs: Date.parse('2026-12-07T00:00:00Z') }, pre: 'echo pre' } });
  });

  it('reads the rolling and quorum keys by the rules of the flags', () => {
    const [job] = parseJobFile('r.toml', ['[jobs.restart]', 'cmd = "systemctl restart agent"', 'max-parallel = 2', 'waves = [1, "10%", "100%"]', 'max-failures = "10%"', 'min-success = 3'].join('\n'));
    expect(job?.spec).toMatchObject({ maxParallel: 2, waves: [1, '10%', '100%'], maxFailures: '10%', minSuccess: 3 });
    const [same] = parseJobFile('r.json', JSON.stringify({ jobs: { restart: { cmd: 'x', waves: '1,10%,100%' } } }));
    expect(same?.spec.waves).toEqual([1, '10%', '100%']);
    expect(problemsOf('r.toml', ['[jobs.a]', 'cmd = "x"', 'max-parallel = 0', '[jobs.b]', 'cmd = "x"', 'waves = "10%,5%"', '[jobs.c]', 'cmd = "x"', 'type = "standalone"', 'min-success = 1', '[jobs.d]', 'cmd = "x"', 'max-failures = "1000%"'].join('\n'))).toEqual([
      'r.toml:13: jobs.d.max-failures: write a number of subtasks (2) or a share of the targets ("10%", at most "100%")',
      'r.toml:3: jobs.a.max-parallel: 0: a number from 1 to 10000',
      'r.toml:6: jobs.b.waves: 10%,5%: sizes are cumulative (each wave includes the ones before it), so 5% after 10% adds nothing; write e.g. 1,10%,100%',
      'r.toml:10: jobs.c.min-success: steers a broadcast across its nodes; a standalone job runs on one node',
    ]);
  });

  it('reads misfire and misfire-window on scheduled jobs only', () => {
    const [job] = parseJobFile('m.toml', ['[jobs.n]', 'cmd = "x"', 'cron = "0 2 * * *"', 'misfire = "all"', 'misfire-window = "6h"'].join('\n'));
    expect(job?.spec).toMatchObject({ misfire: 'all', misfireWindowMs: 6 * 3_600_000 });
    expect(problemsOf('m.toml', ['[jobs.a]', 'cmd = "x"', 'misfire = "all"', '[jobs.b]', 'cmd = "x"', 'every = "1m"', 'misfire = "never"', '[jobs.c]', 'cmd = "x"', 'every = "1m"', 'misfire = "skip"', 'misfire-window = "1h"'].join('\n'))).toEqual([
      'm.toml:7: jobs.b.misfire: must be one of "skip", "once", "all"',
      'm.toml:3: jobs.a.misfire: applies to a scheduled job (cron, every or at)',
      'm.toml:12: jobs.c.misfire-window: does not apply to misfire = "skip" (a late fire never runs)',
    ]);
  });

  it('reports every problem with its file, line and key', () => {
    const text = ['[jobs.one]', 'cmd = "true"', 'retries = "many"', 'shedule = "x"', '', '[jobs.two]', 'cmd = "true"', 'cron = "61 * * * *"', '', '[jobs.three]', 'cmd = "true"', 'every = "5 minutes"', 'cron = "* * * * *"', '', '[jobs."bad name!"]', 'cmd = "x"', '', '[jobs.four]', 'cmd = "x"', 'tz = "UTC"', '', '[jobs.five]', 'cmd = "x"', 'every = "100ms"', 'type = "everywhere"'].join('\n');
    expect(problemsOf('x.toml', text).sort()).toEqual(
      [
        "x.toml:15: jobs.bad name!: bad job name: use letters, digits, '.', '_' or '-' (at most 64), starting with a letter or digit",
        'x.toml:4: jobs.one.shedule: unknown key (allowed: cmd, type, cron, tz, every, at, tags, timeout, retries, concurrency, pre, post, enabled, max-parallel, waves, max-failures, min-success, misfire, misfire-window, notify, notify-on, notify-secret-file)',
        'x.toml:3: jobs.one.retries: must be integer',
        'x.toml:10: jobs.three: use only one of cron, every and at',
        'x.toml:12: jobs.three.every: not a duration; write it like 30s, 5m, 1h30m or 500ms',
        'x.toml:18: jobs.four: tz only applies to cron',
        'x.toml:25: jobs.five.type: must be one of "broadcast", "standalone"',
        'x.toml:8: jobs.two.cron: bad cron expression "61 * * * *": CronPattern: Invalid value for minute: 61',
      ].sort(),
    );
    expect(problemsOf('y.toml', '[jobs.e]\ncmd = "x"\nevery = "100ms"\n')).toEqual(['y.toml:3: jobs.e.every: "100ms" is less than 1s']);
    expect(problemsOf('z.toml', 'name = "x"\n')).toEqual(['z.toml:1: (the file): jobs is required', 'z.toml:1: name: unknown key (allowed: jobs)']);
    expect(problemsOf('bad.toml', '[jobs.a]\ncmd = "x\n')[0]).toMatch(/^bad\.toml:2: not valid TOML: /);
    expect(problemsOf('bad.json', '{"jobs": {"a": {"cmd": "x"}}\n')[0]).toMatch(/^bad\.json:\d+: not valid JSON: /);
    expect(problemsOf('w.json', '{\n "jobs": {\n  "a": {\n   "cmd": 1\n  }\n }\n}')).toEqual(['w.json:4: jobs.a.cmd: must be string']);
    expect(problemsOf('jobs.yaml', 'jobs: {}')).toEqual(['jobs.yaml: a job file ends in .toml or .json']);
  });

  it('export prints files that parse back to the same jobs, unchanged (property)', () => {
    const schedule = fc.oneof(
      fc.constant(null),
      fc.record({ kind: fc.constant('cron' as const), expr: fc.constantFrom('0 3 * * *', '*/5 * * * * *'), tz: fc.constantFrom(null, 'Europe/Paris') }),
      fc.record({ kind: fc.constant('every' as const), intervalMs: fc.integer({ min: 1000, max: 86_400_000 * 30 }) }),
      fc.record({ kind: fc.constant('at' as const), atMs: fc.integer({ min: NOW, max: NOW + 86_400_000 * 300 }) }),
    );
    const baseSpec = fc.record<JobSpec>({
      cmd: fc.string({ minLength: 1 }).filter((s) => s.trim() !== ''),
      type: fc.constantFrom('broadcast', 'standalone'),
      schedule,
      tags: fc.dictionary(fc.stringMatching(/^[a-z]{1,5}$/), fc.string()),
      timeoutMs: fc.option(fc.integer({ min: 1, max: 86_400_000 * 365 }), { nil: null }),
      retries: fc.integer({ min: 0, max: 100 }),
      concurrency: fc.constantFrom('allow', 'forbid'),
      pre: fc.option(fc.string({ minLength: 1 }), { nil: null }),
      post: fc.option(fc.string({ minLength: 1 }), { nil: null }),
    });
    const amount = (min: number) => fc.oneof(fc.integer({ min, max: 10_000 }), fc.integer({ min, max: 100 }).map((p) => `${p}%` as const));
    const rollout = fc.record(
      { maxParallel: amount(1), waves: fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 4 }).map((xs) => [...new Set(xs)].sort((a, b) => a - b).map((x) => `${x}%` as const)), maxFailures: amount(0), minSuccess: amount(1) },
      { requiredKeys: [] },
    );
    const misfire = fc.record({ misfire: fc.constantFrom('skip' as const, 'once' as const, 'all' as const), misfireWindowMs: fc.integer({ min: 1, max: 86_400_000 }) }, { requiredKeys: [] });
    const spec = fc.tuple(baseSpec, rollout, misfire).map(([s, r, m]): JobSpec => {
      const withRollout = s.type === 'broadcast' ? { ...s, ...r } : s;
      if (s.schedule === null) return withRollout;
      const { misfireWindowMs, ...policy } = m;
      return { ...withRollout, ...policy, ...(m.misfire !== 'skip' && misfireWindowMs !== undefined ? { misfireWindowMs } : {}) };
    });
    fc.assert(
      fc.property(fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/), fc.tuple(spec, fc.boolean()), { minKeys: 1, maxKeys: 4 }), fc.constantFrom('toml', 'json'), (jobs, format) => {
        const views = Object.entries(jobs).map(([name, [s, enabled]]) => view(name, s, enabled));
        const parsed = parseJobFile(`jobs.${format}`, exportJobs(views, format as 'toml' | 'json'));
        expect(parsed.map((p) => p.name).sort()).toEqual(Object.keys(jobs).sort());
        for (const p of parsed) expect(changedFields(views.find((v) => v.name === p.name) as ReturnType<typeof view>, p)).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });

  it('names the fields that differ in the file\'s words', () => {
    const base: JobSpec = { cmd: 'x', type: 'broadcast', schedule: null, tags: { a: '1', b: '2' }, timeoutMs: null, retries: 0, concurrency: 'allow', pre: null, post: null };
    const current = view('j', base);
    const wanted = (spec: Partial<JobSpec>, enabled = true) => ({ name: 'j', spec: { ...base, ...spec }, enabled, file: 'f', line: 1 });
    expect(changedFields(current, wanted({ tags: { b: '2', a: '1' } }))).toEqual([]);
    expect(changedFields(current, wanted({ cmd: 'y', schedule: { kind: 'every', intervalMs: 60_000 }, timeoutMs: 5000 }, false))).toEqual(['cmd', 'schedule', 'timeout', 'enabled']);
    expect(entryOf({ spec: base, enabled: true })).toEqual({ cmd: 'x', type: 'broadcast', tags: { a: '1', b: '2' } });
  });
});
