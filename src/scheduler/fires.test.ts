import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../core/config.js';
import { planFires, type FireInput } from './fires.js';

const MIN = 60_000;
const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);
const every = { kind: 'every' as const, intervalMs: MIN };

function plan(over: Partial<FireInput>) {
  return planFires({ schedule: every, originMs: T0, lastDecidedMs: null, nowMs: T0 + MIN, enabled: true, policy: 'once', windowMs: 60 * MIN, onTimeMs: defaultConfig.fireOnTimeMs, limit: 100, ...over }).map((p) => [
    (p.scheduledAtMs - T0) / MIN,
    p.action === 'run' ? (p.late ? 'caught-up' : 'created') : p.action,
  ]);
}

describe('planFires', () => {
  it('an on-time fire runs; nothing before the job was created is due', () => {
    expect(plan({ nowMs: T0 + MIN + 100 })).toEqual([[1, 'created']]);
    expect(plan({ nowMs: T0 + 30_000 })).toEqual([]);
  });

  it('decides only what is newer than the last decided fire', () => {
    expect(plan({ lastDecidedMs: T0 + MIN, nowMs: T0 + 2 * MIN + 10 })).toEqual([[2, 'created']]);
    expect(plan({ lastDecidedMs: T0 + 2 * MIN, nowMs: T0 + 2 * MIN + 10 })).toEqual([]);
  });

  it('once (the default): after an outage, the latest late fire within the window is caught up, the others coalesced or missed', () => {
    // Leader away from minute 1 to minute 90 and 30 s: fires 1..90 are late; the window is 60 min.
    const out = plan({ nowMs: T0 + 90 * MIN + 30_000 });
    expect(out).toHaveLength(90);
    expect(out.slice(0, 30).every(([, a]) => a === 'miss-window')).toBe(true); // minutes 1..30: more than 60 min late
    expect(out.slice(30, 89).every(([, a]) => a === 'miss-coalesced')).toBe(true);
    expect(out.at(-1)).toEqual([90, 'caught-up']);
  });

  it('once: an on-time fire covers the late ones before it', () => {
    const out = plan({ lastDecidedMs: T0 + MIN, nowMs: T0 + 4 * MIN + 1000 });
    expect(out).toEqual([[2, 'miss-coalesced'], [3, 'miss-coalesced'], [4, 'created']]);
  });

  it('all: every late fire within the window runs, in order', () => {
    expect(plan({ policy: 'all', lastDecidedMs: T0 + MIN, nowMs: T0 + 4 * MIN + 30_000 })).toEqual([[2, 'caught-up'], [3, 'caught-up'], [4, 'caught-up']]);
    expect(plan({ policy: 'all', windowMs: 2 * MIN, lastDecidedMs: T0 + MIN, nowMs: T0 + 4 * MIN + 30_000 })).toEqual([[2, 'miss-window'], [3, 'caught-up'], [4, 'caught-up']]);
  });

  it('skip: a late fire never runs (its window is 0); an on-time one does', () => {
    expect(plan({ policy: 'skip', lastDecidedMs: T0 + MIN, nowMs: T0 + 3 * MIN + 30_000 })).toEqual([[2, 'miss-window'], [3, 'miss-window']]);
    expect(plan({ policy: 'skip', lastDecidedMs: T0 + MIN, nowMs: T0 + 3 * MIN + 100 })).toEqual([[2, 'miss-window'], [3, 'created']]);
  });

  it('a disabled job skips every due fire', () => {
    expect(plan({ enabled: false, lastDecidedMs: T0, nowMs: T0 + 2 * MIN + 100 })).toEqual([[1, 'skip-disabled'], [2, 'skip-disabled']]);
  });

  it('decides at most `limit` of the newest due times', () => {
    const out = plan({ nowMs: T0 + 1000 * MIN + 100, limit: 5 });
    expect(out.map(([m]) => m)).toEqual([996, 997, 998, 999, 1000]);
  });

  it('an --at time a little in the past is caught up once; long past it is missed', () => {
    const at = { kind: 'at' as const, atMs: T0 - 10 * MIN };
    expect(plan({ schedule: at, originMs: T0, nowMs: T0 })).toEqual([[-10, 'caught-up']]);
    expect(plan({ schedule: at, originMs: T0, nowMs: T0 + 2 * 60 * MIN })).toEqual([[-10, 'miss-window']]);
    expect(plan({ schedule: at, originMs: T0, lastDecidedMs: T0 - 10 * MIN, nowMs: T0 })).toEqual([]);
  });
});
