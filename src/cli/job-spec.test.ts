// Flags to JobSpec: every good combination gives the right spec, every bad value a
// ClientError with exit code 2 and a message that names the flag.
import { describe, expect, it } from 'vitest';
import { ClientError, EXIT } from '../api/client.js';
import { buildSpec, checkJobName, parseTags, type SpecFlags } from './job-spec.js';
import { jobSpec } from '../testing/fixtures.js';

const NOW = Date.parse('2026-01-15T10:00:00Z');

function badInputError(flags: SpecFlags): ClientError {
  try {
    buildSpec(flags, NOW);
  } catch (err) {
    expect(err).toBeInstanceOf(ClientError);
    return err as ClientError;
  }
  throw new Error(`buildSpec accepted ${JSON.stringify(flags)}`);
}

describe('buildSpec', () => {
  it('fills in defaults from just --cmd', () => {
    expect(buildSpec({ cmd: 'echo hi' }, NOW)).toEqual(jobSpec({ cmd: 'echo hi' }));
  });

  it('takes every flag', () => {
    const spec = buildSpec(
      {
        cmd: 'backup.sh',
        type: 'standalone',
        cron: ' 0 3 * * * ',
        tz: 'Europe/Berlin',
        tag: ['role=db', 'dc=eu-1', 'expr=a=b'],
        timeout: '1h30m',
        retries: 3,
        concurrency: 'forbid',
        pre: 'pre.sh',
        post: 'post.sh',
      },
      NOW,
    );
    expect(spec).toEqual({
      cmd: 'backup.sh',
      type: 'standalone',
      schedule: { kind: 'cron', expr: '0 3 * * *', tz: 'Europe/Berlin' },
      tags: { role: 'db', dc: 'eu-1', expr: 'a=b' },
      timeoutMs: 5_400_000,
      retries: 3,
      concurrency: 'forbid',
      pre: 'pre.sh',
      post: 'post.sh',
    });
  });

  it('builds each kind of schedule', () => {
    expect(buildSpec({ cmd: 'x', cron: '*/10 * * * * *' }, NOW).schedule).toEqual({ kind: 'cron', expr: '*/10 * * * * *', tz: null });
    expect(buildSpec({ cmd: 'x', every: '30s' }, NOW).schedule).toEqual({ kind: 'every', intervalMs: 30_000 });
    expect(buildSpec({ cmd: 'x', at: '2026-12-01T03:00:00Z' }, NOW).schedule).toEqual({ kind: 'at', atMs: Date.parse('2026-12-01T03:00:00Z') });
    expect(buildSpec({ cmd: 'x', at: '2026-12-01T04:00:00+01:00' }, NOW).schedule).toEqual({ kind: 'at', atMs: Date.parse('2026-12-01T03:00:00Z') });
  });

  it('reads --at +10m relative to the given now', () => {
    expect(buildSpec({ cmd: 'x', at: '+10m' }, NOW).schedule).toEqual({ kind: 'at', atMs: NOW + 600_000 });
    expect(buildSpec({ cmd: 'x', at: '+1h30m' }, 1_000).schedule).toEqual({ kind: 'at', atMs: 1_000 + 5_400_000 });
  });

  it('retries 0 and 100 are accepted', () => {
    expect(buildSpec({ cmd: 'x', retries: 0 }, NOW).retries).toBe(0);
    expect(buildSpec({ cmd: 'x', retries: 100 }, NOW).retries).toBe(100);
  });

  const bad: [string, SpecFlags, RegExp][] = [
    ['--cron and --every', { cmd: 'x', cron: '* * * * *', every: '5m' }, /only one of --cron, --every and --at/],
    ['--every and --at', { cmd: 'x', every: '5m', at: '+5m' }, /only one of --cron, --every and --at/],
    ['--cron and --at', { cmd: 'x', cron: '* * * * *', at: '+5m' }, /only one of --cron, --every and --at/],
    ['--tz without --cron', { cmd: 'x', tz: 'UTC' }, /--tz only applies to --cron/],
    ['--tz with --every', { cmd: 'x', every: '5m', tz: 'UTC' }, /--tz only applies to --cron/],
    ['a bad cron', { cmd: 'x', cron: '61 * * * *' }, /--cron: bad cron expression "61 \* \* \* \*".*minute/],
    ['a cron with 4 fields', { cmd: 'x', cron: '* * * *' }, /--cron: .*4 field/],
    ['an unknown --tz', { cmd: 'x', cron: '* * * * *', tz: 'Nowhere/City' }, /--cron: unknown time zone "Nowhere\/City"/],
    ['a tag without =', { cmd: 'x', tag: ['role'] }, /--tag role: write it as KEY=VALUE/],
    ['a tag without a key', { cmd: 'x', tag: ['role=web', '=web'] }, /--tag =web: write it as KEY=VALUE/],
    ['a bad --at', { cmd: 'x', at: 'tomorrow' }, /--at tomorrow: write a time like .*ISO 8601.* or a delay like \+10m/],
    ['an impossible --at date', { cmd: 'x', at: '2026-13-45T00:00:00Z' }, /--at 2026-13-45T00:00:00Z:/],
    ['a bad --at delay', { cmd: 'x', at: '+10' }, /--at: "10" is not a duration/],
    ['a zero --at delay', { cmd: 'x', at: '+0s' }, /--at: "0s" must be longer than zero/],
    ['a bad --timeout', { cmd: 'x', timeout: '5' }, /--timeout: "5" is not a duration/],
    ['a zero --timeout', { cmd: 'x', timeout: '0s' }, /--timeout: .*longer than zero/],
    ['a bad --every', { cmd: 'x', every: 'often' }, /--every: "often" is not a duration/],
    ['negative retries', { cmd: 'x', retries: -1 }, /--retries must be a whole number from 0 to 100, not -1/],
    ['too many retries', { cmd: 'x', retries: 101 }, /--retries .* not 101/],
    ['fractional retries', { cmd: 'x', retries: 1.5 }, /--retries .* not 1.5/],
    ['an empty --cmd', { cmd: '  ' }, /--cmd cannot be empty/],
  ];

  it.each(bad)('refuses %s with exit code 2 and a message naming the flag', (_what, flags, message) => {
    const err = badInputError(flags);
    expect(err.exitCode).toBe(2);
    expect(err.exitCode).toBe(EXIT.badInput);
    expect(err.code).toBe('bad-input');
    expect(err.message).toMatch(message);
  });
});

describe('parseTags', () => {
  it('parses KEY=VALUE pairs; a later value for the same key wins; the value may be empty', () => {
    expect(parseTags(['role=web', 'zone=a', 'role=db', 'empty='])).toEqual({ role: 'db', zone: 'a', empty: '' });
    expect(parseTags(undefined)).toEqual({});
    expect(parseTags([])).toEqual({});
  });

  it('names the flag it was given in its errors', () => {
    expect(() => parseTags(['nope'], '--node-tag')).toThrow(/--node-tag nope: write it as KEY=VALUE, for example --node-tag role=web/);
  });
});

describe('documented bounds (README "Limits")', () => {
  it.each([
    [{ cmd: 'true', every: '100000000d' }, /--every 100000000d: at most 365d/],
    [{ cmd: 'true', every: '500ms' }, /--every 500ms: at least 1s/],
    [{ cmd: 'true', timeout: '366d' }, /--timeout 366d: at most 365d/],
    [{ cmd: 'true', at: '2025-01-15T10:00:00Z' }, /--at 2025-01-15T10:00:00Z: that is in the past, more than 1h ago/],
    [{ cmd: 'true', at: '2040-01-15T10:00:00Z' }, /more than 10 years ahead/],
    [{ cmd: 'true', at: '+3651d' }, /--at 3651d: at most 365d/],
  ])('%j is bad input: %s', (flags, message) => {
    const err = badInputError(flags);
    expect(err.exitCode).toBe(EXIT.badInput);
    expect(err.message).toMatch(message);
  });

  it('accepts the edges: --every 1s, --timeout 365d and 25d, --at within the last hour', () => {
    expect(buildSpec({ cmd: 'true', every: '1s' }, NOW).schedule).toEqual({ kind: 'every', intervalMs: 1000 });
    expect(buildSpec({ cmd: 'true', timeout: '365d' }, NOW).timeoutMs).toBe(365 * 86_400_000);
    expect(buildSpec({ cmd: 'true', timeout: '25d' }, NOW).timeoutMs).toBe(25 * 86_400_000);
    expect(buildSpec({ cmd: 'true', at: '2026-01-15T09:30:00Z' }, NOW).schedule).toEqual({ kind: 'at', atMs: NOW - 30 * 60_000 });
  });

  it('checks job names with the API rule', () => {
    for (const name of ['.', '..', '', 'a/b', '-x', 'x'.repeat(65)]) expect(() => checkJobName(name)).toThrow(/bad job name/);
    expect(checkJobName('disk-report.v2_1')).toBe('disk-report.v2_1');
  });
});

describe('rolling and quorum flags', () => {
  it('take a count or a share, and leave the spec without them when absent', () => {
    expect(buildSpec({ cmd: 'x' }, NOW)).not.toHaveProperty('maxParallel');
    expect(buildSpec({ cmd: 'x', 'max-parallel': '2', waves: '1, 10%,100%', 'max-failures': '0', 'min-success': '90%' }, NOW)).toMatchObject({
      maxParallel: 2,
      waves: [1, '10%', '100%'],
      maxFailures: 0,
      minSuccess: '90%',
    });
  });

  it.each([
    [{ 'max-parallel': '0' }, /--max-parallel 0: a number from 1 to 10000/],
    [{ 'max-parallel': 'two' }, /--max-parallel two: write a number of subtasks \(2\) or a share of the targets \(10%\)/],
    [{ 'max-parallel': '2.5' }, /--max-parallel 2\.5: write a number/],
    [{ 'max-failures': '101%' }, /--max-failures 101%: a percentage from 0% to 100%/],
    [{ 'min-success': '0%' }, /--min-success 0%: a percentage from 1% to 100%/],
    [{ waves: '1,,100%' }, /--waves 1,,100%: write cumulative wave sizes separated by commas/],
    [{ waves: '5,2' }, /so 2 after 5 adds nothing/],
    [{ waves: '50%,50%' }, /so 50% after 50% adds nothing/],
    [{ type: 'standalone', waves: '1' }, /a standalone job runs on one node/],
  ])('refuses %j', (flags, message) => {
    const err = badInputError({ cmd: 'x', ...flags });
    expect(err.exitCode).toBe(EXIT.badInput);
    expect(err.message).toMatch(message);
  });
});

describe('misfire flags', () => {
  it('apply to scheduled jobs', () => {
    expect(buildSpec({ cmd: 'x', every: '1m', misfire: 'all', 'misfire-window': '6h' }, NOW)).toMatchObject({ misfire: 'all', misfireWindowMs: 21_600_000 });
    expect(buildSpec({ cmd: 'x', every: '1m' }, NOW)).not.toHaveProperty('misfire');
  });

  it.each([
    [{ misfire: 'all' }, /--misfire and --misfire-window apply to a scheduled job/],
    [{ every: '1m', misfire: 'never' }, /--misfire never: use skip, once or all/],
    [{ every: '1m', misfire: 'skip', 'misfire-window': '1h' }, /--misfire-window does not apply to --misfire skip/],
    [{ every: '1m', 'misfire-window': 'soon' }, /--misfire-window/],
  ])('refuses %j', (flags, message) => {
    expect(badInputError({ cmd: 'x', ...flags }).message).toMatch(message);
  });
});
