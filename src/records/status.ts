// An instance's status is derived from its subtasks rather than stored, so every node
// that holds the same records reports the same status, with nothing to reconcile.
import type { InstanceRecord, InstanceStatus, SubtaskRecord } from './types.js';
import { isTerminal } from './types.js';

export interface InstanceProgress {
  status: InstanceStatus;
  startedAtMs: number | null;
  finishedAtMs: number | null;
  counts: Record<'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled', number>;
}

export function deriveInstanceProgress(
  instance: InstanceRecord,
  subtasksByNode: ReadonlyMap<string, SubtaskRecord>,
): InstanceProgress {
  const counts = { pending: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 };
  let startedAtMs: number | null = null;
  let finishedAtMs: number | null = null;
  for (const nodeId of instance.targets) {
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
  const status = statusFrom(instance, counts);
  const terminal = status === 'succeeded' || status === 'failed' || status === 'cancelled';
  if (terminal && finishedAtMs === null) finishedAtMs = instance.createdAtMs;
  return { status, startedAtMs, finishedAtMs: terminal ? finishedAtMs : null, counts };
}

function statusFrom(instance: InstanceRecord, counts: InstanceProgress['counts']): InstanceStatus {
  if (instance.failure !== null || instance.targets.length === 0) return 'failed';
  const total = instance.targets.length;
  const terminal = counts.succeeded + counts.failed + counts.cancelled;
  if (terminal === total) {
    if (counts.succeeded === total) return 'succeeded';
    if (instance.cancelRequestedAtMs !== null && counts.cancelled > 0) return 'cancelled';
    return 'failed';
  }
  if (counts.pending === total) return 'pending';
  return 'running';
}

export function isInstanceFinished(status: InstanceStatus): boolean {
  return status === 'succeeded' || status === 'failed' || status === 'cancelled';
}
