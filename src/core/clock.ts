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

/** Node's setTimeout fires at once (with a TimeoutOverflowWarning) past 2^31-1 ms, about 24.8 days. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * setTimeout for any delay: a delay past MAX_TIMEOUT_MS is waited out in steps, so a
 * `--timeout 25d` fires after 25 days, not at once. `stepMs` is only for tests.
 */
export function setLongTimeout(fn: () => void, delayMs: number, stepMs = MAX_TIMEOUT_MS): TimerHandle {
  let handle: NodeJS.Timeout;
  let cancelled = false;
  const deadline = Date.now() + Math.max(0, delayMs);
  const arm = () => {
    const leftMs = deadline - Date.now();
    if (leftMs > stepMs) {
      handle = setTimeout(arm, stepMs);
    } else {
      handle = setTimeout(() => {
        if (!cancelled) fn();
      }, Math.max(0, leftMs));
    }
  };
  arm();
  return {
    cancel() {
      cancelled = true;
      clearTimeout(handle);
    },
  };
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer: (delayMs, fn) => setLongTimeout(fn, delayMs),
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

/** `promise`, or a rejection with `message` once `timeoutMs` passed on `clock` (the promise itself goes on, unheard). */
export function withTimeout<T>(clock: Clock, promise: Promise<T>, timeoutMs: number, message: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = clock.setTimer(timeoutMs, () => reject(new Error(message)));
    promise.then(
      (value) => {
        timer.cancel();
        resolve(value);
      },
      (err: unknown) => {
        timer.cancel();
        reject(err as Error);
      },
    );
  });
}

/**
 * `fn` run once at the end of the current turn however often the returned function is
 * called before then: a burst of changes asks for one recomputation.
 */
export function coalesced(fn: () => void): () => void {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      fn();
    });
  };
}

/**
 * A loop of work on a clock: `run()` does the work and then arms the next run after the
 * delay `nextDelayMs()` gives (even when the work threw), while started; `soon()` runs it at
 * the next turn, once however often it is asked. The leader and the webhook notifier tick so.
 */
export class Ticker {
  private timer: TimerHandle | null = null;
  private running = false;

  constructor(
    private readonly clock: Clock,
    private readonly work: () => void,
    private readonly nextDelayMs: () => number,
  ) {}

  get started(): boolean {
    return this.running;
  }

  start(firstDelayMs: number): void {
    this.running = true;
    this.arm(firstDelayMs);
  }

  stop(): void {
    this.running = false;
    this.timer?.cancel();
    this.timer = null;
  }

  readonly soon = coalesced(() => {
    if (this.running) this.run();
  });

  run(): void {
    try {
      this.work();
    } finally {
      if (this.running) this.arm(this.nextDelayMs());
    }
  }

  private arm(delayMs: number): void {
    this.timer?.cancel();
    this.timer = this.clock.setTimer(delayMs, () => {
      this.timer = null;
      this.run();
    });
  }
}
