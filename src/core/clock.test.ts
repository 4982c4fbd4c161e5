// Long timers: Node's setTimeout fires at once past 2^31-1 ms, so the system clock waits
// longer delays out in steps. Fake timers stand in for the 25 and 30 days.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_TIMEOUT_MS, setLongTimeout, systemClock } from './clock.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('setLongTimeout', () => {
  it('waits out a 25-day delay in steps and fires once, at the end', () => {
    vi.useFakeTimers({ now: 0 });
    const fired: number[] = [];
    setLongTimeout(() => fired.push(Date.now()), 25 * 86_400_000);
    vi.advanceTimersByTime(MAX_TIMEOUT_MS);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(25 * 86_400_000 - MAX_TIMEOUT_MS - 3_600_000);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(3_600_000);
    expect(fired).toEqual([25 * 86_400_000]);
    vi.advanceTimersByTime(100 * 86_400_000);
    expect(fired).toHaveLength(1);
  });

  it('chains with a small step too, and can be cancelled between steps', () => {
    vi.useFakeTimers({ now: 0 });
    const fired: string[] = [];
    setLongTimeout(() => fired.push('a'), 1000, 300);
    const b = setLongTimeout(() => fired.push('b'), 1000, 300);
    vi.advanceTimersByTime(700);
    b.cancel();
    vi.advanceTimersByTime(300);
    expect(fired).toEqual(['a']);
  });

  it('a delay of zero, below zero or exactly one step fires once, when due', () => {
    vi.useFakeTimers({ now: 0 });
    const fired: string[] = [];
    setLongTimeout(() => fired.push('zero'), 0);
    setLongTimeout(() => fired.push('negative'), -5);
    setLongTimeout(() => fired.push('step'), 1000, 1000);
    vi.advanceTimersByTime(0);
    expect(fired).toEqual(['zero', 'negative']);
    vi.advanceTimersByTime(999);
    expect(fired).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(['zero', 'negative', 'step']);
  });

  it('with real timers, a 25-day timer gives no TimeoutOverflowWarning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      let fired = false;
      const timer = systemClock.setTimer(25 * 86_400_000, () => (fired = true));
      await new Promise((r) => setTimeout(r, 20)); // an overflowing timer would fire after 1 ms
      timer.cancel();
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
      expect(fired).toBe(false);
      expect(warnings).not.toContain('TimeoutOverflowWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('is what the system clock uses: a 30-day timer does not fire at once', () => {
    vi.useFakeTimers({ now: 0 });
    let fired = false;
    systemClock.setTimer(30 * 86_400_000, () => (fired = true));
    vi.advanceTimersByTime(10);
    expect(fired).toBe(false);
    vi.advanceTimersByTime(30 * 86_400_000);
    expect(fired).toBe(true);
  });
});
