// Hybrid logical clock: stamps that follow wall time but never go backwards and
// order every event in the cluster totally (wall, counter, node id).
import type { Clock } from '../core/clock.js';
import { defaultConfig } from '../core/config.js';
import type { Stamp } from './types.js';

export function compareStamps(a: Stamp, b: Stamp): number {
  if (a.wallMs !== b.wallMs) return a.wallMs < b.wallMs ? -1 : 1;
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1;
  if (a.nodeId === b.nodeId) return 0;
  return a.nodeId < b.nodeId ? -1 : 1;
}

export class HybridClock {
  private wallMs = 0;
  private counter = 0;

  constructor(
    private readonly clock: Clock,
    readonly nodeId: string,
    /** Largest clock skew taken from a remote stamp; a stamp further ahead is not adopted (config.maxRemoteDriftMs). */
    private readonly maxRemoteDriftMs: number = defaultConfig.maxRemoteDriftMs,
  ) {}

  /** A new stamp for a local event, later than every stamp seen so far. */
  tick(): Stamp {
    const nowMs = this.clock.now();
    if (nowMs > this.wallMs) {
      this.wallMs = nowMs;
      this.counter = 0;
    } else {
      this.counter += 1;
    }
    return { wallMs: this.wallMs, counter: this.counter, nodeId: this.nodeId };
  }

  /** Takes in a remote stamp so later local stamps order after it. */
  observe(remote: Stamp): void {
    if (remote.wallMs > this.clock.now() + this.maxRemoteDriftMs) return;
    if (remote.wallMs > this.wallMs) {
      this.wallMs = remote.wallMs;
      this.counter = remote.counter;
    } else if (remote.wallMs === this.wallMs && remote.counter > this.counter) {
      this.counter = remote.counter;
    }
  }
}
