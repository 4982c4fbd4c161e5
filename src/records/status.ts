// An instance's status is derived from its subtasks rather than stored, so every node
// that holds the same records reports the same status, with nothing to reconcile.
import type { InstanceRecord, InstanceStatus, JobSpec, NotifyRecord, StepName, StepRecord, SubtaskRecord } from './types.js';
import { meetsQuorum, overFailureBudget } from './rollout.js';
import { isTerminal } from './types.js';

export interface InstanceProgress {
  status: InstanceStatus;
  startedAtMs: number | null;
  finishedAtMs: number | null;
  counts: Record<'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled', number>;
}

export type InstanceSteps = Partial<Record<StepName, StepRecord>>;

/** What an instance's status is derived from, besides the instance itself (RecordStore.progressOf gathers it). */
export interface InstanceFacts {
  /** Its targets: those it was created with and any node holding a subtask of it (RecordStore.targetsOf). */
  targets: readonly string[];
  subtasks: ReadonlyMap<string, SubtaskRecord>;
  steps?: InstanceSteps;
  cancelRequestedAtMs?: number | null;
  /** The rollout is paused (`chorus instance pause`). */
  paused?: boolean;
  /** Its webhook deliveries (`--notify`), by index. */
  notifications?: NotifyRecord[];
}

export function deriveInstanceProgress(instance: InstanceRecord, facts: InstanceFacts): InstanceProgress {
  const { targets, subtasks: subtasksByNode, steps = {} } = facts;
  const cancelRequested = (facts.cancelRequestedAtMs ?? null) !== null;
  const counts = emptyCounts();
  let startedAtMs: number | null = null;
  let finishedAtMs: number | null = null;
  for (const nodeId of targets) {
    const subtask = subtasksByNode.get(nodeId);
    const status = subtask?.status ?? 'pending';
    counts[status] += 1;
    if (subtask?.startedAtMs != null) startedAtMs = Math.min(startedAtMs ?? Infinity, subtask.startedAtMs);
    const firstStart = subtask?.history[0]?.startedAtMs;
    if (firstStart != null) startedAtMs = Math.min(startedAtMs ?? Infinity, firstStart);
    if (subtask && isTerminal(subtask.status) && subtask.finishedAtMs != null) {
      finishedAtMs = Math.max(finishedAtMs ?? 0, subtask.finishedAtMs);
    }
  }
  for (const step of [steps.pre, steps.post]) {
    if (step?.startedAtMs != null) startedAtMs = Math.min(startedAtMs ?? Infinity, step.startedAtMs);
    if (step && isTerminal(step.status) && step.finishedAtMs != null) finishedAtMs = Math.max(finishedAtMs ?? 0, step.finishedAtMs);
  }
  const status = statusOfCounts(instance, targets.length, counts, steps, cancelRequested);
  const terminal = status === 'succeeded' || status === 'failed' || status === 'cancelled';
  if (terminal && finishedAtMs === null) finishedAtMs = instance.createdAtMs;
  return { status, startedAtMs, finishedAtMs: terminal ? finishedAtMs : null, counts };
}

/** Subtasks counted by state, all at zero. */
export function emptyCounts(): InstanceProgress['counts'] {
  return { pending: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 };
}

/**
 * The status from the counts of subtask states over the targets (missing subtasks count
 * as pending), the steps and the cancel request: RecordStore.statusOf keeps the counts up
 * to date as subtasks change, so the leader never walks every target of every instance.
 */
export function statusOfCounts(instance: InstanceRecord, total: number, counts: InstanceProgress['counts'], steps: InstanceSteps, cancelRequested: boolean): InstanceStatus {
  return withSteps(instance, total === 0, steps, statusFrom(instance.spec, total, cancelRequested, counts), cancelRequested);
}

function statusFrom(spec: JobSpec, total: number, cancelRequested: boolean, counts: InstanceProgress['counts']): InstanceStatus {
  // A creation that found no eligible node fails, unless another leader's creation of the
  // same instance (the other side of a partition) gave it targets.
  if (total === 0) return 'failed';
  const terminal = counts.succeeded + counts.failed + counts.cancelled;
  if (terminal === total) {
    if (counts.succeeded === total) return 'succeeded';
    if (cancelRequested && counts.cancelled > 0) return 'cancelled';
    // Over the failure budget (--max-failures) the instance failed, whatever the quorum says.
    if (overFailureBudget(spec, counts.failed, total)) return 'failed';
    return meetsQuorum(spec, counts.succeeded, total) ? 'succeeded' : 'failed';
  }
  if (counts.pending === total) return 'pending';
  return 'running';
}

/** A `--pre` step gates the subtasks; a `--post` step runs after them and can fail the instance. */
function withSteps(instance: InstanceRecord, couldNotStart: boolean, steps: InstanceSteps, fromSubtasks: InstanceStatus, cancelRequested: boolean): InstanceStatus {
  if (instance.spec.pre !== null && !couldNotStart) {
    const pre = steps.pre;
    if (!pre || pre.status === 'pending') return 'pending';
    if (pre.status === 'running') return 'running';
    if (pre.status === 'cancelled') return 'cancelled';
    if (pre.status === 'failed') return 'failed';
  }
  if (instance.spec.post === null || !isInstanceFinished(fromSubtasks) || couldNotStart) return fromSubtasks;
  if (fromSubtasks === 'cancelled') return fromSubtasks;
  const post = steps.post;
  // A cancelled instance gets no post step (the leader creates none once a cancel was asked),
  // even when every subtask had ended by itself before the cancel reached it.
  if (!post && cancelRequested) return fromSubtasks;
  if (!post || !isTerminal(post.status)) return 'running';
  return post.status === 'succeeded' ? fromSubtasks : 'failed';
}

export function isInstanceFinished(status: InstanceStatus): boolean {
  return status === 'succeeded' || status === 'failed' || status === 'cancelled';
}
