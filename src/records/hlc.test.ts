// The hybrid logical clock: local stamps never go backwards, whatever the wall clock
// does; a remote stamp orders later stamps after it unless it is implausibly far ahead.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Clock } from '../core/clock.js';
import { defaultConfig } from '../core/config.js';
import { compareStamps, HybridClock } from './hlc.js';
import type { Stamp } from './types.js';

const MAX_REMOTE_DRIFT_MS = defaultConfig.maxRemoteDriftMs;

/** A wall clock the test sets by hand. Timers are not used by the HLC. */
class ManualClock implements Clock {
  constructor(public nowMs: number) {}
  now(): number {
    return this.nowMs;
  }
  setTimer(): never {
    throw new Error('the hybrid clock must not set timers');
  }
}

function expectIncreasing(stamps: Stamp[]): void {
  for (let i = 1; i < stamps.length; i++) {
    const [a, b] = [stamps[i - 1] as Stamp, stamps[i] as Stamp];
    expect(compareStamps(b, a), `stamp ${i} ${JSON.stringify(b)} after ${JSON.stringify(a)}`).toBe(1);
  }
}

describe('compareStamps', () => {
  it('orders by wall time, then counter, then node id', () => {
    expect(compareStamps({ wallMs: 1, counter: 9, nodeId: 'z' }, { wallMs: 2, counter: 0, nodeId: 'a' })).toBe(-1);
    expect(compareStamps({ wallMs: 2, counter: 1, nodeId: 'a' }, { wallMs: 2, counter: 0, nodeId: 'z' })).toBe(1);
    expect(compareStamps({ wallMs: 2, counter: 1, nodeId: 'a' }, { wallMs: 2, counter: 1, nodeId: 'b' })).toBe(-1);
    expect(compareStamps({ wallMs: 2, counter: 1, nodeId: 'b' }, { wallMs: 2, counter: 1, nodeId: 'b' })).toBe(0);
  });
});

describe('HybridClock.tick', () => {
  it('follows the wall clock when it moves forward', () => {
    const clock = new ManualClock(1_000);
    const hlc = new HybridClock(clock, 'n1');
    expect(hlc.tick()).toEqual({ wallMs: 1_000, counter: 0, nodeId: 'n1' });
    clock.nowMs = 1_500;
    expect(hlc.tick()).toEqual({ wallMs: 1_500, counter: 0, nodeId: 'n1' });
  });

  it('is strictly increasing while the wall clock stands still', () => {
    const hlc = new HybridClock(new ManualClock(1_000), 'n1');
    const stamps = Array.from({ length: 5 }, () => hlc.tick());
    expect(stamps.map((s) => s.counter)).toEqual([0, 1, 2, 3, 4]);
    expect(stamps.every((s) => s.wallMs === 1_000)).toBe(true);
    expectIncreasing(stamps);
  });

  it('is strictly increasing when the wall clock goes backwards', () => {
    const clock = new ManualClock(10_000);
    const hlc = new HybridClock(clock, 'n1');
    const first = hlc.tick();
    clock.nowMs = 4_000; // NTP stepped the clock back six seconds
    const second = hlc.tick();
    clock.nowMs = 9_999;
    const third = hlc.tick();
    expect(second).toEqual({ wallMs: 10_000, counter: 1, nodeId: 'n1' });
    expect(third).toEqual({ wallMs: 10_000, counter: 2, nodeId: 'n1' });
    expectIncreasing([first, second, third]);
    // Once the wall clock passes the stamp again, it takes over with counter 0.
    clock.nowMs = 10_001;
    expect(hlc.tick()).toEqual({ wallMs: 10_001, counter: 0, nodeId: 'n1' });
  });

  it('never goes backwards under any wall clock path (generated)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5_000 }), { minLength: 1, maxLength: 200 }), (walls) => {
        const clock = new ManualClock(0);
        const hlc = new HybridClock(clock, 'n1');
        const stamps = walls.map((w) => {
          clock.nowMs = w;
          const s = hlc.tick();
          expect(s.wallMs).toBeGreaterThanOrEqual(w);
          return s;
        });
        expectIncreasing(stamps);
      }),
      { numRuns: 300 },
    );
  });
});

describe('HybridClock.observe', () => {
  /** The stamp `nodeId` ticks at wall time `nowMs` after one tick of its own and then `remote`. */
  function tickAfter(remote: Stamp, nowMs: number, nodeId = 'n1'): Stamp {
    const hlc = new HybridClock(new ManualClock(nowMs), nodeId);
    hlc.tick();
    hlc.observe(remote);
    return hlc.tick();
  }

  it('makes later local ticks greater than a remote stamp ahead of the local clock', () => {
    const remote: Stamp = { wallMs: 5_000, counter: 7, nodeId: 'n2' };
    const next = tickAfter(remote, 1_000);
    expect(next).toEqual({ wallMs: 5_000, counter: 8, nodeId: 'n1' });
    expect(compareStamps(next, remote)).toBe(1);
  });

  it('orders after a remote stamp with the same wall time and a higher counter', () => {
    const remote: Stamp = { wallMs: 1_000, counter: 5, nodeId: 'a-node' };
    const next = tickAfter(remote, 1_000, 'z-node');
    expect(next.counter).toBe(6);
    expect(compareStamps(next, remote)).toBe(1);
  });

  it('ignores a remote stamp that is behind', () => {
    expect(tickAfter({ wallMs: 9_000, counter: 50, nodeId: 'n2' }, 10_000)).toEqual({ wallMs: 10_000, counter: 1, nodeId: 'n1' });
  });

  it('does not adopt a remote stamp beyond maxRemoteDriftMs in the future', () => {
    const clock = new ManualClock(1_000_000);
    const hlc = new HybridClock(clock, 'n1');
    const farFuture: Stamp = { wallMs: 1_000_000 + MAX_REMOTE_DRIFT_MS + 1, counter: 0, nodeId: 'bad' };
    hlc.observe(farFuture);
    const next = hlc.tick();
    expect(next).toEqual({ wallMs: 1_000_000, counter: 0, nodeId: 'n1' });
    expect(compareStamps(next, farFuture)).toBe(-1);
    // A year ahead is not adopted either.
    hlc.observe({ wallMs: 1_000_000 + 365 * 86_400_000, counter: 0, nodeId: 'bad' });
    expect(hlc.tick().wallMs).toBe(1_000_000);
  });

  it('adopts a remote stamp exactly maxRemoteDriftMs ahead', () => {
    const clock = new ManualClock(1_000_000);
    const hlc = new HybridClock(clock, 'n1');
    const edge: Stamp = { wallMs: 1_000_000 + MAX_REMOTE_DRIFT_MS, counter: 3, nodeId: 'n2' };
    hlc.observe(edge);
    const next = hlc.tick();
    expect(next).toEqual({ wallMs: edge.wallMs, counter: 4, nodeId: 'n1' });
    expect(compareStamps(next, edge)).toBe(1);
  });

  it('every tick is after every adopted remote stamp and after every earlier tick (generated)', () => {
    const step = fc.oneof(
      fc.record({ op: fc.constant('wall' as const), wallMs: fc.integer({ min: 0, max: 200_000 }) }),
      fc.record({ op: fc.constant('tick' as const) }),
      fc.record({
        op: fc.constant('observe' as const),
        aheadMs: fc.integer({ min: -100_000, max: MAX_REMOTE_DRIFT_MS }),
        counter: fc.integer({ min: 0, max: 20 }),
      }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 100 }), (steps) => {
        const clock = new ManualClock(100_000);
        const hlc = new HybridClock(clock, 'n1');
        let last: Stamp | null = null;
        let seen: Stamp | null = null;
        for (const s of steps) {
          if (s.op === 'wall') clock.nowMs = s.wallMs;
          else if (s.op === 'observe') {
            const remote: Stamp = { wallMs: Math.max(0, clock.nowMs + s.aheadMs), counter: s.counter, nodeId: 'n2' };
            hlc.observe(remote);
            if (seen === null || compareStamps(remote, seen) > 0) seen = remote;
          } else {
            const t = hlc.tick();
            if (last) expect(compareStamps(t, last)).toBe(1);
            if (seen) expect(compareStamps(t, seen)).toBe(1);
            last = t;
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
