// The lines that sum an instance up, for `chorus instance show` and the dashboard alike: the
// counts by status and reason, and the rollout's progress. Pure and free of Node's and the
// DOM's types, so the browser bundle takes the same code as the CLI.
import { reasonText, type EndedAs } from '../records/outcome-text.js';

/** What the count line reads of a subtask (the API's SubtaskView has it). */
export type CountedSubtask = EndedAs;

/** What the rollout line reads of an instance's rollout (the API's RolloutView has it). */
export interface SummarizedRollout {
  maxParallel: number | string | null;
  maxFailures: number | string | null;
  minSuccess: number | string | null;
  parallelLimit: number | null;
  waveSizes: readonly number[];
  currentWave: number | null;
  released: number;
  aborted: boolean;
}

/** "3/5": the subtasks that succeeded out of all, from an instance's counts by status (a summary has no subtasks). */
export function succeededOfTotal(counts: Readonly<Record<string, number>>): string {
  return `${counts.succeeded ?? 0}/${Object.values(counts).reduce((a, b) => a + b, 0)}`;
}

/** The order statuses are counted in: how it ended first, then what is still going on. */
const SUMMARY_STATUSES = ['succeeded', 'failed', 'cancelled', 'running', 'pending'] as const;
/** Per status, at most this many reasons are counted; the others are "+N more". */
export const SUMMARY_MAX_REASONS = 3;

/**
 * One line of counts: "5 subtasks: 3 succeeded, 2 failed (exit 1: 1, node-lost: 1)". A
 * failure is counted by its reason, an exit code by itself ("exit 2") and a signal by its
 * name ("signal SIGKILL"), most frequent first;
 * cancelled subtasks by reason only when some were `aborted`. Statuses no subtask has are
 * left out.
 */
export function formatSubtaskSummary(subtasks: readonly CountedSubtask[]): string {
  if (subtasks.length === 0) return 'no subtasks';
  const parts: string[] = [];
  for (const status of SUMMARY_STATUSES) {
    const mine = subtasks.filter((s) => s.status === status);
    if (mine.length === 0) continue;
    const why = new Map<string, number>();
    for (const s of mine) {
      // "exit 2" rather than "exit-code 2": the line counts many, in little room.
      const label = s.reason === 'exit-code' ? `exit ${s.exitCode ?? '?'}` : (reasonText(s) ?? status);
      why.set(label, (why.get(label) ?? 0) + 1);
    }
    const counted = [...why].sort(([a, n], [b, m]) => m - n || a.localeCompare(b, 'en', { numeric: true }));
    const shown = counted.slice(0, SUMMARY_MAX_REASONS).map(([label, n]) => `${label}: ${n}`);
    if (counted.length > SUMMARY_MAX_REASONS) shown.push(`+${counted.length - SUMMARY_MAX_REASONS} more`);
    const explain = status === 'failed' || (status === 'cancelled' && why.has('aborted'));
    parts.push(`${mine.length} ${status}${explain ? ` (${shown.join(', ')})` : ''}`);
  }
  return `${subtasks.length} subtask${subtasks.length === 1 ? '' : 's'}: ${parts.join(', ')}`;
}

/** An instance's rolling and quorum options and how far it got, in one sentence; '' without any. */
export function formatRollout(view: { rollout: SummarizedRollout | null; paused: boolean; subtasks: readonly unknown[] }): string {
  const r = view.rollout;
  if (!r) return view.paused ? 'PAUSED' : '';
  const parts: string[] = [];
  if (r.waveSizes.length > 1) {
    const at = r.currentWave === null ? 'all waves released' : `wave ${r.currentWave} of ${r.waveSizes.length}`;
    parts.push(`${at} (sizes ${r.waveSizes.join(', ')})`);
  }
  if (r.parallelLimit !== null) parts.push(`at most ${r.parallelLimit} at once${typeof r.maxParallel === 'string' ? ` (${r.maxParallel})` : ''}`);
  if (r.maxFailures !== null) parts.push(`stops after more than ${r.maxFailures} failed`);
  if (r.minSuccess !== null) parts.push(`succeeds with ${r.minSuccess} succeeded`);
  parts.push(`${r.released} of ${view.subtasks.length} released`);
  const state = r.aborted ? '; ABORTED: more failed than --max-failures allows' : view.paused ? '; PAUSED (chorus instance resume)' : '';
  return `${parts.join(', ')}${state}`;
}
