// What a node tells an observer as it works: the daemon's Prometheus metrics (metrics.ts)
// listen; the simulator and unit tests pass none. Every method is optional and must not
// throw or block: it runs inside the node's own steps.
import type { FailureReason, InstanceTrigger, StepName, TerminalStatus } from './types.js';

export interface NodeObserver {
  /** This node, as leader, created an instance. */
  instanceCreated?(e: { job: string; trigger: InstanceTrigger; targets: number; skipped: number }): void;
  /** An instance ended while this node was the leader (each instance once per leader that sees it end). */
  instanceFinished?(e: { job: string; status: 'succeeded' | 'failed' | 'cancelled' }): void;
  /** An attempt this node ran (its subtask, or a step it ran as leader) ended. */
  attemptEnded?(e: { job: string; step: StepName | null; status: TerminalStatus; reason: FailureReason | null; durationMs: number | null; retried: boolean }): void;
  /** This node, as leader, released subtasks of an instance to their owners (wrote their first records). */
  subtasksReleased?(instanceId: string, nodeIds: readonly string[]): void;
  /** The leader this node sees changed (null: none). */
  leaderChanged?(leader: string | null): void;
  /** This node declared a member dead, `silentForMs` after it last heard from it (null: never heard). */
  memberDead?(e: { nodeId: string; silentForMs: number | null }): void;
  /** A write of the state files ended. */
  storeFlushed?(e: { durationMs: number; bytes: number; compacted: boolean; ok: boolean }): void;
}

export const NO_OBSERVER: NodeObserver = {};
