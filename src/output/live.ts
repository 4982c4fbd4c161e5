// The output of the attempts this node runs now, readable while they run (`instance logs
// --follow`): the executor writes into these buffers (bounded like every captured output,
// maxOutputBytes per stream) and the worker drops an attempt's buffers once its log is saved.
import type { Clock } from '../core/clock.js';
import { AttemptOutput } from '../executor/executor.js';
import type { StepName } from '../records/types.js';
import { partOf, type PartOutput } from './follow.js';
import { Waiters } from '../core/waiters.js';

export interface LiveAttempt {
  readonly instanceId: string;
  readonly step: StepName | null;
  readonly attempt: number;
  readonly output: AttemptOutput;
  /** The command ended: no more bytes will come (its log is being saved). */
  ended: boolean;
}

export class LiveOutputs {
  private readonly running = new Map<string, LiveAttempt>();
  /** Followers waiting for news of an instance on this node: output, an attempt's start or end, a change of its records. */
  readonly waiters: Waiters;

  constructor(clock: Clock) {
    this.waiters = new Waiters(clock);
  }

  begin(instanceId: string, step: StepName | null, attempt: number, maxBytes: number): LiveAttempt {
    const live: LiveAttempt = { instanceId, step, attempt, output: new AttemptOutput(maxBytes, () => this.waiters.wake(instanceId)), ended: false };
    this.running.set(keyOf(instanceId, step, attempt), live);
    this.waiters.wake(instanceId);
    return live;
  }

  end(live: LiveAttempt): void {
    live.ended = true;
    this.waiters.wake(live.instanceId);
  }

  /** Once the attempt's log is saved: from now on it is read from there. */
  remove(live: LiveAttempt): void {
    const key = keyOf(live.instanceId, live.step, live.attempt);
    if (this.running.get(key) === live) this.running.delete(key);
    this.waiters.wake(live.instanceId);
  }

  of(instanceId: string): LiveAttempt[] {
    return [...this.running.values()].filter((l) => l.instanceId === instanceId);
  }

  /** Attempts whose output is held here now. */
  get size(): number {
    return this.running.size;
  }
}

export function liveParts(attempts: readonly LiveAttempt[]): PartOutput[] {
  return attempts.map((l) => ({
    part: partOf(l.step, l.attempt),
    step: l.step,
    attempt: l.attempt,
    ended: l.ended,
    stdout: l.output.stdout.snapshot(),
    stderr: l.output.stderr.snapshot(),
  }));
}

function keyOf(instanceId: string, step: StepName | null, attempt: number): string {
  return `${instanceId}:${partOf(step, attempt)}`;
}
