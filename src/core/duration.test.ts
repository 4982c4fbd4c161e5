// The one duration parser and its formatters: strict input, clear errors, readable output
// (formatDurationUnits writes what parseDuration reads back).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DurationError, formatDuration, formatDurationUnits, parseDuration } from './duration.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['1ms', 1],
    ['30s', 30_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['2d', 172_800_000],
    ['1h30m', 5_400_000],
    ['1m30s', 90_000],
    ['1d2h3m4s5ms', 86_400_000 + 7_200_000 + 180_000 + 4_000 + 5],
    ['1.5s', 1_500],
    ['0.5h', 1_800_000],
    ['  10s  ', 10_000],
    ['0s1ms', 1],
  ])('parses %s as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it('reads ms as milliseconds, not minutes followed by garbage', () => {
    expect(parseDuration('5ms')).toBe(5);
    expect(parseDuration('5m5s')).toBe(305_000);
  });

  it('refuses an empty duration', () => {
    expect(() => parseDuration('')).toThrow(DurationError);
    expect(() => parseDuration('')).toThrow(/cannot be empty/);
    expect(() => parseDuration('   ')).toThrow(/cannot be empty/);
  });

  it.each(['5', '5x', '-1s', '1h30', 's', '1 h', '1s 2m', '1e3s', 'abc', '10S', '+5s', '1.s'])(
    'refuses %j, naming the input and the accepted units',
    (text) => {
      let error: unknown;
      try {
        parseDuration(text);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(DurationError);
      expect((error as Error).message).toContain(`"${text}" is not a duration`);
      expect((error as Error).message).toMatch(/units: ms, s, m, h, d/);
    },
  );

  it.each(['0s', '0ms', '0h0m'])('refuses %j as not longer than zero', (text) => {
    expect(() => parseDuration(text)).toThrow(DurationError);
    expect(() => parseDuration(text)).toThrow(`"${text}" must be longer than zero`);
  });

  it('rounds fractional milliseconds', () => {
    expect(parseDuration('1.6ms')).toBe(2);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0ms'],
    [250, '250ms'],
    [999, '999ms'],
    [1_000, '1.00s'],
    [1_234, '1.23s'],
    [12_345, '12.3s'],
    [59_000, '59.0s'],
    [60_000, '1m'],
    [90_000, '1m30s'],
    [119_400, '1m59s'],
    [119_500, '2m'],
    [3_599_999, '1h'],
    [3_600_000, '1h'],
    [5_400_000, '1h30m'],
    [90_000_000, '25h'],
  ])('formats %d ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('round-trips whole minutes and hours through parseDuration', () => {
    for (const ms of [60_000, 90_000, 5_400_000, 7_200_000, 1_500]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
  });
});

describe('formatDurationUnits', () => {
  it.each([
    [2_160_000_000, '25d'],
    [93_600_000, '1d2h'],
    [5_400_000, '1h30m'],
    [90_000, '1m30s'],
    [1_500, '1s500ms'],
    [500, '500ms'],
    [60_000, '1m'],
    [31_536_000_000, '365d'],
    [86_400_000 + 7_200_000 + 180_000 + 4_000 + 5, '1d2h3m4s5ms'],
  ])('writes %d ms as %s', (ms, text) => {
    expect(formatDurationUnits(ms)).toBe(text);
  });

  it('is the inverse of parseDuration for whole milliseconds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 365 * 86_400_000 }), (ms) => {
        expect(parseDuration(formatDurationUnits(ms))).toBe(ms);
      }),
    );
  });

  it('gives back the text parseDuration read, when it was written in whole units largest first', () => {
    const unitTexts = fc
      .tuple(fc.nat(365), fc.nat(23), fc.nat(59), fc.nat(59), fc.nat(999))
      .map(([d, h, m, s, ms]) => [[d, 'd'], [h, 'h'], [m, 'm'], [s, 's'], [ms, 'ms']].filter(([n]) => n !== 0).map(([n, u]) => `${n}${u}`).join(''))
      .filter((text) => text !== '');
    fc.assert(
      fc.property(unitTexts, (text) => {
        expect(formatDurationUnits(parseDuration(text))).toBe(text);
      }),
    );
  });
});
