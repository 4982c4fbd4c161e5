// Every timing and size knob of the daemon, in one place. Each says what it trades.

export interface ChorusConfig {
  /** How often the leader looks for due fires and lost subtasks. Lower: faster reaction, more CPU when idle. */
  leaderTickMs: number;
  /** How often a node looks for its own runnable subtasks besides reacting to changes (a safety net). */
  workerTickMs: number;
  /** Batching window of state-file writes. Higher: fewer writes, slower acknowledged writes. */
  storeFlushDelayMs: number;
  /** A missed scheduled fire older than this is not caught up after a leader change or restart. */
  misfireGraceMs: number;
  /**
   * A post step (or the pre step of a scheduled fire) waits this long before it starts, so
   * that if two leaders created it at once their records merge and only one runs it.
   * Higher: a longer wait before post steps; lower: a wider window for a double run.
   */
  stepSettleMs: number;
  /** Retry backoff of a failed attempt: base * 2^(attempt-1), capped. */
  retryBackoffBaseMs: number;
  retryBackoffMaxMs: number;
  /** Tail of stdout/stderr kept per subtask attempt. */
  maxOutputBytes: number;
  /** Subtasks this node runs at once; more wait in `pending`. */
  maxConcurrentSubtasks: number;
  /** Finished instances kept per job (older ones and their logs are deleted). */
  retainInstancesPerJob: number;
  /** How often old finished instances are pruned. */
  retentionIntervalMs: number;
  /** Earlier attempts kept in a subtask's history. */
  maxAttemptHistory: number;
  /** Grace between SIGTERM and SIGKILL when a subtask's process group is stopped. */
  killGraceMs: number;
  // Cluster (membership, failure detection, replication).
  /** Heartbeat period. Lower: faster detection of frozen nodes, more gossip. */
  heartbeatIntervalMs: number;
  /** No heartbeat for this long: a member is suspected and pinged directly. */
  suspectAfterMs: number;
  /** A suspected member that also fails direct pings for this long is declared dead. */
  deadAfterMs: number;
  /** Timeout of a direct ping used to confirm a suspicion. */
  pingTimeoutMs: number;
  /** A member must have been alive this long before it can become leader (avoids flapping). */
  leaderStableMs: number;
  /** A (re)started node that knows other members does not lead before this (its view is stale). */
  selfSettleMs: number;
  /** Anti-entropy period with one random peer. */
  antiEntropyIntervalMs: number;
  /** Timeout of a direct request (sync, write acknowledgement, log fetch). */
  requestTimeoutMs: number;
  /** If our own timers fire this late, we were stalled: do not trust our own timeouts for a while. */
  stallThresholdMs: number;
}

export const defaultConfig: ChorusConfig = {
  leaderTickMs: 50,
  workerTickMs: 500,
  storeFlushDelayMs: 5,
  misfireGraceMs: 60 * 60_000,
  stepSettleMs: 500,
  retryBackoffBaseMs: 500,
  retryBackoffMaxMs: 30_000,
  maxOutputBytes: 64 * 1024,
  maxConcurrentSubtasks: 32,
  retainInstancesPerJob: 200,
  retentionIntervalMs: 60_000,
  maxAttemptHistory: 20,
  killGraceMs: 2000,
  // 400 ms heartbeats: each costs a signature check at every peer, which dominates an idle
  // daemon's CPU; a frozen host is still declared dead in about 2 s.
  heartbeatIntervalMs: 400,
  suspectAfterMs: 1200,
  deadAfterMs: 2000,
  pingTimeoutMs: 400,
  leaderStableMs: 300,
  selfSettleMs: 1000,
  antiEntropyIntervalMs: 2000,
  requestTimeoutMs: 3000,
  stallThresholdMs: 400,
};
