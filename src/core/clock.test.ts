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
