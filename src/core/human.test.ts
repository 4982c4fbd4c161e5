// The relative time and the short node id the CLI and the dashboard both show.
import { describe, expect, it } from 'vitest';
import { relativeTime, shortId } from './human.js';

const NOW_MS = Date.parse('2026-12-02T09:00:03.000Z');
const isoAt = (offsetMs: number) => new Date(NOW_MS + offsetMs).toISOString();

describe('relativeTime', () => {
  it.each([
    [-3_000, '3s ago'],
    [-3_999, '3s ago'],
    [120_000, 'in 2m'],
    [150_000, 'in 2m'],
    [-59_000, '59s ago'],
    [-60_000, '1m ago'],
    [-90_000, '1m ago'],
    [-2 * 3_600_000, '2h ago'],
    [5 * 3_600_000 + 59 * 60_000, 'in 5h'],
    [-3 * 86_400_000, '3d ago'],
    [25 * 86_400_000, 'in 25d'],
    [-400, 'now'],
    [400, 'now'],
    [-1_000, '1s ago'],
  ])('%d ms from now reads %s', (offsetMs, text) => {
    expect(relativeTime(isoAt(offsetMs), NOW_MS)).toBe(text);
  });

  it('leaves a time it cannot read as it is', () => {
    expect(relativeTime('not a time', NOW_MS)).toBe('not a time');
  });
});

describe('shortId', () => {
  it("is '…' and the last 12 characters, the form --node takes back", () => {
    expect(shortId('12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVeabcdef123456')).toBe('…abcdef123456');
  });

  it('keeps an id of 16 characters or fewer whole', () => {
    expect(shortId('n1')).toBe('n1');
    expect(shortId('0123456789abcdef')).toBe('0123456789abcdef');
    expect(shortId('0123456789abcdefg')).toBe('…56789abcdefg');
  });
});
