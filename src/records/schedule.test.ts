// Schedules: cron validation with messages that name the problem, and fire-time
// arithmetic for cron (seconds, time zones across DST), fixed intervals and one-shots.
import { describe, expect, it } from 'vitest';
import type { Schedule } from './types.js';
import { latestFireBetween, nextFireAfter, ScheduleError, validateCron } from './schedule.js';

const utc = (iso: string): number => Date.parse(iso);

function validationError(expr: string, tz: string | null = null): ScheduleError {
  try {
    validateCron(expr, tz);
  } catch (err) {
    expect(err).toBeInstanceOf(ScheduleError);
    return err as ScheduleError;
  }
  throw new Error(`validateCron accepted "${expr}" (tz ${tz})`);
}

describe('validateCron', () => {
  it.each([
    ['*/5 * * * *', null],
    ['0 9 * * 1-5', 'America/New_York'],
    ['30 0 9 * * *', null],
    ['*/15 * * * * *', 'UTC'],
    ['  0 3 * * *  ', 'Europe/Berlin'],
  ])('accepts "%s" (tz %s)', (expr, tz) => {
    expect(() => validateCron(expr, tz)).not.toThrow();
  });

  it('rejects minute 61 and says which field is wrong', () => {
    const err = validationError('61 * * * *');
    expect(err.message).toContain('"61 * * * *"');
    expect(err.message).toMatch(/minute/i);
    expect(err.message).toContain('61');
  });

  it('rejects 4 fields, naming the count and the accepted forms', () => {
    const err = validationError('* * * *');
    expect(err.message).toContain('4 field');
    expect(err.message).toMatch(/use 5 .* or 6/);
  });

  it('rejects 7 fields', () => {
    expect(validationError('0 0 0 1 1 * 2030').message).toContain('7 field');
  });

  it('rejects an empty expression', () => {
    expect(validationError('   ').message).toMatch(/bad cron expression/);
  });

  it('rejects an unknown time zone, naming it', () => {
    const err = validationError('0 9 * * *', 'Mars/Olympus_Mons');
    expect(err.message).toContain('unknown time zone "Mars/Olympus_Mons"');
  });

  it('rejects other bad fields', () => {
    expect(validationError('0 25 * * *').message).toMatch(/hour/i);
    expect(validationError('0 0 * 13 *').message).toMatch(/month/i);
    expect(validationError('x * * * *').message).toMatch(/bad cron expression "x \* \* \* \*"/);
  });
});

describe('cron fire times', () => {
  const everyFifteenSeconds: Schedule = { kind: 'cron', expr: '*/15 * * * * *', tz: 'UTC' };
  const t = (s: string) => utc(`2025-01-01T12:${s}Z`);

  it('nextFireAfter honours the seconds field and is strictly after', () => {
    expect(nextFireAfter(everyFifteenSeconds, 0, t('00:07'))).toBe(t('00:15'));
    expect(nextFireAfter(everyFifteenSeconds, 0, t('00:15'))).toBe(t('00:30'));
    expect(nextFireAfter(everyFifteenSeconds, 0, t('00:14.999'))).toBe(t('00:15'));
    expect(nextFireAfter(everyFifteenSeconds, 0, t('00:59'))).toBe(utc('2025-01-01T12:01:00Z'));
  });

  it('latestFireBetween returns the latest fire in (after, now]', () => {
    expect(latestFireBetween(everyFifteenSeconds, 0, t('00:00'), t('00:44'))).toBe(t('00:30'));
    // `now` itself counts.
    expect(latestFireBetween(everyFifteenSeconds, 0, t('00:00'), t('00:45'))).toBe(t('00:45'));
    // `after` itself does not: that fire was already handled.
    expect(latestFireBetween(everyFifteenSeconds, 0, t('00:30'), t('00:44'))).toBeNull();
    expect(latestFireBetween(everyFifteenSeconds, 0, t('00:29.999'), t('00:44'))).toBe(t('00:30'));
  });

  it('a five-field expression fires on minutes, at second zero', () => {
    const hourly: Schedule = { kind: 'cron', expr: '5 * * * *', tz: 'UTC' };
    expect(nextFireAfter(hourly, 0, utc('2025-06-01T10:04:59Z'))).toBe(utc('2025-06-01T10:05:00Z'));
    expect(nextFireAfter(hourly, 0, utc('2025-06-01T10:05:00Z'))).toBe(utc('2025-06-01T11:05:00Z'));
    expect(latestFireBetween(hourly, 0, utc('2025-06-01T00:00:00Z'), utc('2025-06-01T13:00:00Z'))).toBe(utc('2025-06-01T12:05:00Z'));
  });

  it('a schedule that never fires gives null', () => {
    const never: Schedule = { kind: 'cron', expr: '0 0 31 2 *', tz: 'UTC' };
    expect(nextFireAfter(never, 0, utc('2025-01-01T00:00:00Z'))).toBeNull();
    expect(latestFireBetween(never, 0, 0, utc('2025-01-01T00:00:00Z'))).toBeNull();
  });

  describe('in America/New_York across DST changes', () => {
    const nineAm: Schedule = { kind: 'cron', expr: '0 9 * * *', tz: 'America/New_York' };

    it('keeps firing at 09:00 local time when the clocks spring forward', () => {
      // 9:00 EST is 14:00Z; from 2025-03-09, 9:00 EDT is 13:00Z.
      expect(nextFireAfter(nineAm, 0, utc('2025-03-07T14:00:00Z'))).toBe(utc('2025-03-08T14:00:00Z'));
      expect(nextFireAfter(nineAm, 0, utc('2025-03-08T14:00:00Z'))).toBe(utc('2025-03-09T13:00:00Z'));
      expect(latestFireBetween(nineAm, 0, utc('2025-03-08T14:00:00Z'), utc('2025-03-09T13:30:00Z'))).toBe(utc('2025-03-09T13:00:00Z'));
      // 13:30Z on the 8th was 08:30 EST: no fire yet that day.
      expect(latestFireBetween(nineAm, 0, utc('2025-03-07T14:00:00Z'), utc('2025-03-08T13:30:00Z'))).toBeNull();
    });

    it('keeps firing at 09:00 local time when the clocks fall back', () => {
      expect(nextFireAfter(nineAm, 0, utc('2025-11-01T13:00:00Z'))).toBe(utc('2025-11-02T14:00:00Z'));
      expect(latestFireBetween(nineAm, 0, utc('2025-11-01T13:00:00Z'), utc('2025-11-02T13:30:00Z'))).toBeNull();
    });

    it('fires once on the day a local time does not exist (02:30 on spring-forward day)', () => {
      const twoThirty: Schedule = { kind: 'cron', expr: '30 2 * * *', tz: 'America/New_York' };
      const dayStart = utc('2025-03-09T05:00:00Z'); // 00:00 EST
      const dayEnd = utc('2025-03-10T04:00:00Z'); // 00:00 EDT
      const fire = nextFireAfter(twoThirty, 0, dayStart);
      expect(fire).not.toBeNull();
      // Right after the gap: between 03:00 and 03:30 EDT.
      expect(fire).toBeGreaterThanOrEqual(utc('2025-03-09T07:00:00Z'));
      expect(fire).toBeLessThanOrEqual(utc('2025-03-09T07:30:00Z'));
      const following = nextFireAfter(twoThirty, 0, fire as number);
      expect(following).toBe(utc('2025-03-10T06:30:00Z'));
      expect(following).toBeGreaterThan(dayEnd);
    });

    it('fires once on the day a local time happens twice (01:30 on fall-back day)', () => {
      const oneThirty: Schedule = { kind: 'cron', expr: '30 1 * * *', tz: 'America/New_York' };
      // 01:30 EDT is 05:30Z; 01:30 EST (an hour later) is 06:30Z and must not fire again.
      expect(nextFireAfter(oneThirty, 0, utc('2025-11-02T04:00:00Z'))).toBe(utc('2025-11-02T05:30:00Z'));
      expect(nextFireAfter(oneThirty, 0, utc('2025-11-02T05:30:00Z'))).toBe(utc('2025-11-03T06:30:00Z'));
      expect(latestFireBetween(oneThirty, 0, utc('2025-11-02T05:30:00Z'), utc('2025-11-02T06:45:00Z'))).toBeNull();
    });
  });
});

describe('every fire times', () => {
  const origin = 1_000_000;
  const minute: Schedule = { kind: 'every', intervalMs: 60_000 };

  it('nextFireAfter is aligned to the origin, strictly after', () => {
    expect(nextFireAfter(minute, origin, origin)).toBe(origin + 60_000);
    expect(nextFireAfter(minute, origin, origin + 59_999)).toBe(origin + 60_000);
    expect(nextFireAfter(minute, origin, origin + 60_000)).toBe(origin + 120_000);
    expect(nextFireAfter(minute, origin, origin + 61_234)).toBe(origin + 120_000);
    // Before the origin: the first fire is one interval after it.
    expect(nextFireAfter(minute, origin, origin - 5_000)).toBe(origin + 60_000);
    expect(nextFireAfter(minute, origin, 0)).toBe(origin + 60_000);
  });

  it('latestFireBetween is aligned to the origin', () => {
    expect(latestFireBetween(minute, origin, origin, origin + 59_999)).toBeNull();
    expect(latestFireBetween(minute, origin, origin, origin + 60_000)).toBe(origin + 60_000);
    expect(latestFireBetween(minute, origin, origin, origin + 150_000)).toBe(origin + 120_000);
    // Missed fires collapse to the latest one.
    expect(latestFireBetween(minute, origin, origin, origin + 10 * 60_000 + 1)).toBe(origin + 10 * 60_000);
    // Already handled.
    expect(latestFireBetween(minute, origin, origin + 120_000, origin + 150_000)).toBeNull();
    expect(latestFireBetween(minute, origin, origin + 119_999, origin + 150_000)).toBe(origin + 120_000);
    // Before the origin: nothing.
    expect(latestFireBetween(minute, origin, 0, origin - 1)).toBeNull();
  });

  it('the next fire after the latest one is one interval later', () => {
    const latest = latestFireBetween(minute, origin, origin, origin + 1_234_567) as number;
    expect((latest - origin) % 60_000).toBe(0);
    expect(nextFireAfter(minute, origin, latest)).toBe(latest + 60_000);
    expect(latest + 60_000).toBeGreaterThan(origin + 1_234_567);
  });
});

describe('at fire times', () => {
  const once: Schedule = { kind: 'at', atMs: 5_000 };

  it('fires once, at its time', () => {
    expect(nextFireAfter(once, 0, 0)).toBe(5_000);
    expect(nextFireAfter(once, 0, 4_999)).toBe(5_000);
    expect(nextFireAfter(once, 0, 5_000)).toBeNull();
    expect(latestFireBetween(once, 0, 0, 4_999)).toBeNull();
    expect(latestFireBetween(once, 0, 0, 5_000)).toBe(5_000);
    expect(latestFireBetween(once, 0, 4_999, 100_000)).toBe(5_000);
    expect(latestFireBetween(once, 0, 5_000, 100_000)).toBeNull();
  });
});

describe('cron without a time zone', () => {
  it('fires in UTC, whatever the time zone of the daemon process (every node must agree)', () => {
    const previous = process.env.TZ;
    process.env.TZ = 'America/New_York';
    try {
      // Node picks up a changed TZ at once: local time is now New York.
      expect(new Date(utc('2025-06-01T12:00:00Z')).getHours()).toBe(8);
      const nineAm: Schedule = { kind: 'cron', expr: '0 9 * * *', tz: null };
      expect(nextFireAfter(nineAm, 0, utc('2025-06-01T00:00:00Z'))).toBe(utc('2025-06-01T09:00:00Z'));
      expect(latestFireBetween(nineAm, 0, utc('2025-06-01T00:00:00Z'), utc('2025-06-01T12:00:00Z'))).toBe(utc('2025-06-01T09:00:00Z'));
    } finally {
      if (previous === undefined) delete process.env.TZ;
      else process.env.TZ = previous;
    }
  });
});
