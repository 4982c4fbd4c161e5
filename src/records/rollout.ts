// Rolling broadcasts (issue 11): how an instance's subtasks are released over time, in
// waves and at most N at once, when a failure budget stops it, and when a quorum of
// successes is enough. Pure functions of the instance's spec, its sorted targets and the
// subtask records, so every leader (a new one after a failover included) computes the
// same next step from the same records, and a view shows the same waves everywhere.
import type { Amount, InstanceRecord, JobSpec, SubtaskRecord } from './types.js';
import { isTerminal } from './types.js';

/** Whether the spec asks the leader to release its subtasks over time (a wave or a parallel limit). */
export function isRolling(spec: JobSpec): boolean {
  return spec.maxParallel !== undefined || spec.waves !== undefined;
}

/**
 * Whether the instance releases every subtask at its creation (no rollout, no --pre step
 * to wait for): then a target's pending first attempt is implied by the instance naming
 * it, and no record of it is written until its owner starts it (or the leader gives a
 * verdict on it). A broadcast's pending subtasks need not travel (issue 22, point 3).
 */
export function impliesSubtasks(instance: InstanceRecord): boolean {
  return instance.failure === null && instance.spec.pre === null && !isRolling(instance.spec);
}

function percentOf(amount: Amount): number | null {
  return typeof amount === 'string' ? Number(amount.slice(0, -1)) : null;
}

/** `--max-parallel` over `total` targets: a count, or P % rounded down, at least 1. Null: no limit. */
export function parallelLimit(spec: JobSpec, total: number): number | null {
  if (spec.maxParallel === undefined) return null;
  const pct = percentOf(spec.maxParallel);
  return Math.max(1, pct === null ? (spec.maxParallel as number) : Math.floor((total * pct) / 100));
}

/**
 * The end (exclusive index into the sorted targets) of each wave: cumulative sizes, a
 * percentage rounded up, at most `total`; a size not above the previous one adds no wave,
 * and targets left after the last size form one more wave (so every target is in one).
 */
export function waveEnds(spec: JobSpec, total: number): number[] {
  const ends: number[] = [];
  for (const size of spec.waves ?? []) {
    const pct = percentOf(size);
    const end = Math.min(total, pct === null ? (size as number) : Math.ceil((total * pct) / 100));
    if (end > (ends.at(-1) ?? 0)) ends.push(end);
  }
  if ((ends.at(-1) ?? 0) < total) ends.push(total);
  return ends;
}

/** The wave (0-based) of the target at `index` among the sorted targets. */
export function waveOf(ends: readonly number[], index: number): number {
  const wave = ends.findIndex((end) => index < end);
  return wave === -1 ? ends.length - 1 : wave;
}

/** Whether more subtasks failed than `--max-failures` allows: the instance stops and is failed. */
export function overFailureBudget(spec: JobSpec, failed: number, total: number): boolean {
  if (spec.maxFailures === undefined) return false;
  const pct = percentOf(spec.maxFailures);
  return pct === null ? failed > (spec.maxFailures as number) : failed * 100 > total * pct;
}

/** Whether `succeeded` subtasks meet `--min-success` (a count, or P % of the targets). Default: all of them. */
export function meetsQuorum(spec: JobSpec, succeeded: number, total: number): boolean {
  if (spec.minSuccess === undefined) return succeeded === total;
  const pct = percentOf(spec.minSuccess);
  return pct === null ? succeeded >= (spec.minSuccess as number) : succeeded * 100 >= total * pct;
}

/** What the leader writes next for an instance: subtasks to release, unreleased ones to end `aborted`. */
export interface RolloutStep {
  release: string[];
  abort: string[];
}

/**
 * The next step of a rollout, from the records alone. `targets` are the instance's sorted
 * creation targets; a target is released once it has a subtask record. Over the failure
 * budget, every unreleased target is aborted and nothing more is released (released ones
 * run to their end). Paused: nothing is released. Otherwise the first wave that still has
 * unreleased targets is continued, once every subtask of the earlier waves has ended, up
 * to `--max-parallel` released and unended subtasks (counted over the whole instance).
 */
export function nextRelease(spec: JobSpec, targets: readonly string[], subtasks: ReadonlyMap<string, SubtaskRecord>, paused: boolean): RolloutStep {
  const total = targets.length;
  let failed = 0;
  let inFlight = 0;
  for (const subtask of subtasks.values()) {
    if (subtask.status === 'failed') failed += 1;
    else if (!isTerminal(subtask.status)) inFlight += 1;
  }
  if (overFailureBudget(spec, failed, total)) return { release: [], abort: targets.filter((t) => !subtasks.has(t)) };
  if (paused) return { release: [], abort: [] };
  const limit = parallelLimit(spec, total);
  let room = limit === null ? total : limit - inFlight;
  const release: string[] = [];
  let start = 0;
  for (const end of waveEnds(spec, total)) {
    let waveOpen = false; // a subtask of this wave is unreleased or unended
    for (let i = start; i < end; i++) {
      const target = targets[i] as string;
      const subtask = subtasks.get(target);
      if (subtask) {
        if (!isTerminal(subtask.status)) waveOpen = true;
        continue;
      }
      waveOpen = true;
      if (room > 0) {
        release.push(target);
        room -= 1;
      }
    }
    if (waveOpen) break; // the next wave waits for this one to end
    start = end;
  }
  return { release, abort: [] };
}
