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
  /**
   * After a command's shell exits, how long its pipes get to reach EOF. A background process
   * (or one that escaped the group) can hold them open forever; without this cap the result
   * would wait for it. Higher: late output is kept; lower: a result sooner.
   */
  pipeDrainGraceMs: number;
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
  /** Redial of a known member that is not connected: first backoff, doubling up to the max. Lower: faster reconnects, more dials to a dead host. */
  peerRedialBaseMs: number;
  peerRedialMaxMs: number;
  /** Largest batch of records in one gossip delta; more go in several. Must stay under maxPublishBytes. */
  maxDeltaBytes: number;
  // Transport (libp2p).
  /** Largest request or reply frame either side accepts. Bigger frames are refused, not buffered. */
  maxMessageBytes: number;
  /** Largest gossip payload. gossipsub's receivers drop RPCs over 4 MiB, so stay well below. */
  maxPublishBytes: number;
  /** How long a dial (TCP + noise + yamux) may take. Lower: a dead address is given up sooner; too low fails on a busy host. */
  dialTimeoutMs: number;
  /** How long an incoming request may take to arrive completely. Bounds a slow or stuck client. */
  inboundReadTimeoutMs: number;
  /**
   * How long an older connection gets to answer a ping once a second connection to the same
   * peer opens. Too short and a busy peer is needlessly reconnected (a brief flap); too long and
   * a restarted peer stays deaf to gossip for that long.
   */
  staleProbeTimeoutMs: number;
  /**
   * Close and redial a peer whose old connection is dead or whose gossip stream was lost. Only
   * tests turn this off, to show the trap it guards against.
   */
  repairStaleConnections: boolean;
  /**
   * After one of several connections to a peer closes, how long gossipsub gets to have a stream
   * on a remaining connection before the peer is reconnected. Gossip to that peer is lost in
   * between (anti-entropy repairs it); too short risks reconnecting a peer that was fine.
   */
  gossipStreamSettleMs: number;
  /** How long a new connection gets to prove it has the swarm key before it is refused. */
  swarmHandshakeTimeoutMs: number;
  // Daemon and worker housekeeping.
  /** --join retries: first backoff, doubling up to the max. Lower: a faster join once the member is up, more dials while it is not. */
  joinRetryBaseMs: number;
  joinRetryMaxMs: number;
  /** A --join that keeps failing is logged this often, not at every try. */
  joinRetryReportMs: number;
  /** How often a stopping worker checks that its attempts ended. Lower: a quicker stop, more wake-ups. */
  workerStopPollMs: number;
  /** A stopping worker waits killGraceMs plus this for its attempts to end before it gives up on them. */
  workerStopSlackMs: number;
  /** After a failed state-file write (a full disk), when it is tried again. Lower: recovers sooner, more failing writes. */
  storeFlushRetryMs: number;
  /** Unshowable records remembered for `chorus status`. */
  maxViewErrors: number;
  /** How far back a leaving node re-sends its own subtask reports to every peer. Higher: a longer last message. */
  leaveRecentMs: number;
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
  pipeDrainGraceMs: 500,
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
  peerRedialBaseMs: 500,
  peerRedialMaxMs: 10_000,
  maxDeltaBytes: 256 * 1024,
  maxMessageBytes: 8 * 1024 * 1024,
  maxPublishBytes: 1024 * 1024,
  dialTimeoutMs: 10_000,
  inboundReadTimeoutMs: 30_000,
  staleProbeTimeoutMs: 3_000,
  repairStaleConnections: true,
  gossipStreamSettleMs: 2_000,
  swarmHandshakeTimeoutMs: 5_000,
  joinRetryBaseMs: 250,
  joinRetryMaxMs: 5000,
  joinRetryReportMs: 60_000,
  workerStopPollMs: 20,
  workerStopSlackMs: 2000,
  storeFlushRetryMs: 1000,
  maxViewErrors: 50,
  leaveRecentMs: 60_000,
};

/** A configuration that cannot work; the message names every knob at fault, with its value and what is needed. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
  }
}

/** Knobs that must be at least 1 (a period, a timeout, a count of zero cannot work). */
const POSITIVE: readonly (keyof ChorusConfig)[] = [
  'leaderTickMs',
  'workerTickMs',
  'maxOutputBytes',
  'maxConcurrentSubtasks',
  'retainInstancesPerJob',
  'retentionIntervalMs',
  'heartbeatIntervalMs',
  'suspectAfterMs',
  'deadAfterMs',
  'pingTimeoutMs',
  'antiEntropyIntervalMs',
  'requestTimeoutMs',
  'stallThresholdMs',
  'joinRetryBaseMs',
  'joinRetryMaxMs',
  'joinRetryReportMs',
  'workerStopPollMs',
  'storeFlushRetryMs',
  'retryBackoffBaseMs',
  'retryBackoffMaxMs',
  'peerRedialBaseMs',
  'peerRedialMaxMs',
  'maxDeltaBytes',
  'maxMessageBytes',
  'maxPublishBytes',
  'dialTimeoutMs',
  'inboundReadTimeoutMs',
  'staleProbeTimeoutMs',
  'swarmHandshakeTimeoutMs',
];

/** Two knobs where the first must stay below (or not above) the second, and why. */
const ORDERED: readonly { low: keyof ChorusConfig; high: keyof ChorusConfig; strict: boolean; why: string }[] = [
  { low: 'heartbeatIntervalMs', high: 'suspectAfterMs', strict: true, why: 'a member would be suspected between two of its own heartbeats' },
  { low: 'suspectAfterMs', high: 'deadAfterMs', strict: true, why: 'a member must be suspected (and pinged) before it is declared dead' },
  { low: 'pingTimeoutMs', high: 'deadAfterMs', strict: false, why: 'a ping that outlasts the whole dead window can never confirm a suspicion' },
  { low: 'retryBackoffBaseMs', high: 'retryBackoffMaxMs', strict: false, why: 'the first retry backoff cannot exceed its cap' },
  { low: 'joinRetryBaseMs', high: 'joinRetryMaxMs', strict: false, why: 'the first --join backoff cannot exceed its cap' },
  { low: 'peerRedialBaseMs', high: 'peerRedialMaxMs', strict: false, why: 'the first redial backoff cannot exceed its cap' },
  { low: 'maxDeltaBytes', high: 'maxPublishBytes', strict: true, why: 'a delta batch (plus its envelope) must fit in one gossip message' },
  { low: 'maxPublishBytes', high: 'maxMessageBytes', strict: false, why: 'what is gossiped must also fit in a direct request (a push of the same records)' },
];

/**
 * Checks that the knobs fit together and returns the config unchanged; throws a
 * ConfigError listing every problem at once.
 */
export function validateConfig(config: ChorusConfig): ChorusConfig {
  const problems: string[] = [];
  for (const [key, value] of Object.entries(config) as [keyof ChorusConfig, unknown][]) {
    if (typeof defaultConfig[key] === 'boolean') {
      if (typeof value !== 'boolean') problems.push(`${key} is ${JSON.stringify(value)}; it must be true or false`);
      continue;
    }
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      problems.push(`${key} is ${JSON.stringify(value)}; it must be a whole number ≥ 0`);
    } else if (value < 1 && POSITIVE.includes(key)) {
      problems.push(`${key} is ${value}; it must be at least 1`);
    }
  }
  for (const { low, high, strict, why } of ORDERED) {
    const a = config[low] as number;
    const b = config[high] as number;
    if (strict ? a >= b : a > b) problems.push(`${low} (${a}) must be ${strict ? 'less than' : 'at most'} ${high} (${b}): ${why}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** The defaults with `overrides` over them, validated; an unknown knob is an error naming it. */
export function configFrom(overrides: Partial<ChorusConfig>): ChorusConfig {
  const unknown = Object.keys(overrides).filter((key) => !(key in defaultConfig));
  if (unknown.length > 0) throw new ConfigError(unknown.map((key) => `${key} is not a setting (known: ${Object.keys(defaultConfig).join(', ')})`));
  return validateConfig({ ...defaultConfig, ...overrides });
}
