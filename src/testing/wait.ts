// Waiting for a condition in real time, with a deadline: the only sleeping the tests and
// the benchmark do is inside these loops (never a fixed sleep). No vitest here: the
// benchmark uses it too.

export interface WaitOptions {
  /** Give up after this long (default 20 s). */
  timeoutMs?: number;
  /** Time between two probes (default 100 ms). */
  intervalMs?: number;
  /**
   * Count intervalMs from the start of one probe to the start of the next instead of
   * sleeping intervalMs after each probe: a steady probe rate, for measurements.
   */
  paced?: boolean;
  /** What is awaited, for the error message. */
  what?: string;
}

/** Thrown by a waitFor predicate to give up at once (any other error means "not yet"). */
export class StopWaiting extends Error {}

export type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

/**
 * Polls `predicate` until it returns a truthy value (which is returned) or the deadline
 * passes (then it throws, with the last value or error). A throwing predicate counts as
 * "not yet", except for StopWaiting, which is rethrown at once.
 */
export async function waitFor<T>(predicate: () => T | Promise<T>, options: WaitOptions | string = {}, timeoutMsArg?: number): Promise<Truthy<T>> {
  // waitFor(p, 'what', timeoutMs): the short form of the unit tests, polling every 20 ms.
  const opts: WaitOptions = typeof options === 'string' ? { what: options, timeoutMs: timeoutMsArg ?? 10_000, intervalMs: 20 } : options;
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const intervalMs = opts.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  let lastError: unknown;
  for (;;) {
    const started = Date.now();
    try {
      last = await predicate();
      lastError = undefined;
      if (last) return last as Truthy<T>;
    } catch (err) {
      if (err instanceof StopWaiting) throw err;
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastError !== undefined ? `last error: ${errorText(lastError)}` : `last value: ${preview(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'a condition'} (${detail})`);
    }
    const pause = opts.paced ? intervalMs - (Date.now() - started) : intervalMs;
    if (pause > 0) await sleep(Math.min(pause, Math.max(1, deadline - Date.now())));
  }
}

/** Like waitFor, but resolves null instead of throwing when the deadline passes. */
export async function waitForOrNull<T>(predicate: () => T | Promise<T>, opts: WaitOptions = {}): Promise<Truthy<T> | null> {
  try {
    return await waitFor(predicate, opts);
  } catch (err) {
    if (err instanceof StopWaiting) throw err;
    return null;
  }
}

/**
 * Polls `probe` for `durationMs` and throws as soon as its value (compared as JSON)
 * differs from the first one: "nothing changes for a while". Returns the value.
 */
export async function expectStable<T>(probe: () => T | Promise<T>, opts: { durationMs: number; intervalMs?: number; what?: string }): Promise<T> {
  const first = await probe();
  const firstJson = JSON.stringify(first);
  const deadline = Date.now() + opts.durationMs;
  while (Date.now() < deadline) {
    await sleep(Math.min(opts.intervalMs ?? 200, Math.max(1, deadline - Date.now())));
    const now = await probe();
    const nowJson = JSON.stringify(now);
    if (nowJson !== firstJson) {
      throw new Error(`${opts.what ?? 'value'} changed while it should stay stable: was ${preview(first)}, became ${preview(now)}`);
    }
  }
  return first;
}

/** A pause for a measurement window (the benchmark's idle CPU), never a wait for a condition. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** `promise`, or a rejection after `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]);
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A value as a short string, for messages. */
export function preview(value: unknown): string {
  let text: string | undefined;
  try {
    text = typeof value === 'string' ? value : JSON.stringify(value);
  } catch {
    text = String(value);
  }
  text ??= String(value);
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}
