// The clock every part of the daemon uses. Production passes the real one; tests
// and the simulator pass a fake clock so a run can be replayed exactly.

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `fn` once after `delayMs`. */
  setTimer(delayMs: number, fn: () => void): TimerHandle;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(delayMs, fn) {
    const t = setTimeout(fn, Math.max(0, delayMs));
    return { cancel: () => clearTimeout(t) };
  },
};

/** Calls `fn` every `intervalMs` until cancelled; the next run is scheduled after `fn` returns. */
export function every(clock: Clock, intervalMs: number, fn: () => void): TimerHandle {
  let handle: TimerHandle | undefined;
  let cancelled = false;
  const tick = () => {
    if (cancelled) return;
    try {
      fn();
    } finally {
      if (!cancelled) handle = clock.setTimer(intervalMs, tick);
    }
  };
  handle = clock.setTimer(intervalMs, tick);
  return {
    cancel() {
      cancelled = true;
      handle?.cancel();
    },
  };
}
