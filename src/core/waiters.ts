// Long polls inside a node: callers wait on a key (an instance id) until someone wakes it or
// their time is up, on the node's clock. A key is kept only while someone waits on it.
import type { Clock, TimerHandle } from './clock.js';

export class Waiters {
  private readonly byKey = new Map<string, Set<() => void>>();

  constructor(private readonly clock: Clock) {}

  /** Resolves at the next wake of any of `keys`, or after `timeoutMs`. */
  wait(keys: readonly string[], timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: TimerHandle | null = null;
      const done = () => {
        timer?.cancel();
        for (const key of keys) {
          const waiting = this.byKey.get(key);
          waiting?.delete(done);
          if (waiting?.size === 0) this.byKey.delete(key);
        }
        resolve();
      };
      for (const key of keys) {
        const waiting = this.byKey.get(key) ?? new Set();
        this.byKey.set(key, waiting);
        waiting.add(done);
      }
      timer = this.clock.setTimer(Math.max(0, timeoutMs), done);
    });
  }

  wake(key: string): void {
    const waiting = this.byKey.get(key);
    if (waiting === undefined) return;
    for (const done of [...waiting]) done();
  }

  /** Keys someone waits on now. */
  get size(): number {
    return this.byKey.size;
  }
}
