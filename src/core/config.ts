// Every timing and size knob of the daemon, in one place. Each says what it trades;
// validateConfig() refuses the combinations the code cannot work with.
import { MAX_TIMEOUT_MS } from './clock.js';

export interface ChorusConfig {
  // Scheduling and running (leader, worker, store).
  /** How often the leader looks at unfinished instances (lost subtasks, steps to start) while any exists. Lower: faster reaction, more CPU while work is in flight. */
  leaderTickMs: number;
  /**
   * With nothing in flight, the leader (and a node waiting to become one) wakes at the next due
   * fire and at least this often; records and membership changes wake it at once anyway.
   * Lower: a missed wake-up is made up sooner, more CPU on every idle node.
   */
  leaderIdleTickMs: number;
  /** How often a node looks for its own runnable subtasks besides reacting to changes (a safety net). Lower: a missed change is noticed sooner, more CPU when idle. */
  workerTickMs: number;
  /** Batching window of state-file writes. Higher: fewer writes, slower acknowledged writes. 0: every change is written at once. */
  storeFlushDelayMs: number;
  /** A missed scheduled fire older than this is not caught up after a leader change or restart. Higher: more catch-up runs of stale fires; 0: none. */
  misfireGraceMs: number;
  /**
   * A due fire the leader looks at within this of its time is on time (`created`); later, it is
   * late and the job's misfire policy decides. The leader's ticks and a busy event loop add
   * some delay. Lower: a fire delayed by a busy leader is a misfire sooner; higher: a leader
   * that was away this long still counts the fire as on time.
   */
  fireOnTimeMs: number;
  /**
   * A post step (or the pre step of a scheduled fire) waits this long before it starts, so
   * that if two leaders created it at once their records merge and only one runs it.
   * Higher: a longer wait before post steps; lower: a wider window for a double run.
   */
  stepSettleMs: number;
  /** How often a step held back because this node may not start steps yet (a leader not settled) is looked at again. Lower: it starts sooner once allowed, more wake-ups. */
  stepGatePollMs: number;
  /** Retry backoff of a failed attempt: base * 2^(attempt-1), capped by retryBackoffMaxMs. Lower: faster retries, more load on whatever made the attempt fail. */
  retryBackoffBaseMs: number;
  /** Cap of the retry backoff. Lower: a long-failing subtask is retried more often. */
  retryBackoffMaxMs: number;
  /** A webhook POST (`--notify`) not answered after this is a failed try; its answer's body is not read past it either. Lower: a slow receiver fails sooner; higher: a hung receiver holds a delivery longer. */
  webhookTimeoutMs: number;
  /** Backoff of a failed webhook try: base * 2^(tries-1), capped by webhookBackoffMaxMs. Lower: faster retries, more load on a receiver that is down. */
  webhookBackoffBaseMs: number;
  /** Cap of the webhook backoff. Lower: a receiver that comes back hears sooner, more tries while it is down. */
  webhookBackoffMaxMs: number;
  /** Webhook retries stop this long after the first try: the delivery is then `failed`. Higher: a longer outage of the receiver is bridged, a pending delivery kept longer. */
  webhookRetryForMs: number;
  /** Tail of stdout and of stderr kept per subtask attempt. Higher: more output kept, more disk and bigger log replies. */
  maxOutputBytes: number;
  /**
   * `instance logs --follow`: after new output of an attempt, the node that runs it waits this
   * long for more before it answers a waiting follower, so lines written together travel
   * together. Higher: fewer, bigger replies, output seen later; 0: an answer per write.
   */
  followBatchMs: number;
  /**
   * Most bytes of output one answer to a follower carries from the node that ran it (the
   * rest comes in the next). Its JSON (escapes can make a byte six characters) must fit in a
   * message. Higher: fewer round trips for chatty commands, bigger messages.
   */
  followReplyBytes: number;
  /**
   * Questions for output a daemon serving `instance logs --follow` keeps at once: one per
   * followed node, waiting on it (or answered and not yet passed on). More followed nodes
   * than this are asked in turns. Higher: wide broadcasts followed whole, more memory
   * (each answer up to followReplyBytes) and more requests held open on other nodes.
   */
  maxFollowPolls: number;
  /**
   * How long a node may hold a follower's question for output before it answers with none: under
   * the API's longest wait (30 s), so a client's next request usually finds the answer waiting.
   * At most MAX_FOLLOW_WAIT_MS (a node refuses to hold one longer). Higher: fewer empty answers
   * while a command is quiet, questions held open longer.
   */
  followAskWaitMs: number;
  /** An answer to a follower nobody came for (the client went away) is dropped after this. Lower: less memory held for gone clients; too low drops answers a slow client comes back for (asked again). */
  followAnswerKeptMs: number;
  /** After the first news for a follower, how long its answer waits for more from the other followed nodes. Higher: fewer, fuller answers, output seen later; 0: the first news goes alone. */
  followGatherMs: number;
  /** Subtasks this node runs at once; more wait in `pending`. Higher: more throughput, more load on the host. */
  maxConcurrentSubtasks: number;
  /** Finished instances kept per job (older ones and their logs are deleted). Higher: more history, a bigger state file and anti-entropy digest. */
  retainInstancesPerJob: number;
  /**
   * Finished ad-hoc runs (`chorus run`) kept, all of them together: a bound of their own, so a
   * burst of ad-hoc runs keeps the others' recent results (counted as one job, 200 went fast).
   * Higher: more history, a bigger state file.
   */
  retainAdhocInstances: number;
  /**
   * Unfinished instances a scheduled job may have: a fire past it is skipped (reason
   * `backlog`), so a job that fires faster than the cluster can run it does not grow a
   * backlog (and memory) without bound. Higher: more overlap allowed; lower: skips sooner.
   */
  maxUnfinishedPerJob: number;
  /**
   * Records a node holds at most: past it, the oldest finished instances of any job are
   * pruned (unfinished ones never are). About 1.6 KB of heap per record. Higher: more
   * history, more memory, a longer catch-up for a new node.
   */
  retainRecords: number;
  /** How often old finished instances are pruned. Lower: the state stays closer to retainInstancesPerJob, more scans. */
  retentionIntervalMs: number;
  /** Earlier attempts kept in a subtask's history. Higher: more history shown, bigger subtask records. */
  maxAttemptHistory: number;
  /** Grace between SIGTERM and SIGKILL when a subtask's process group is stopped. Higher: more time to clean up, a slower cancel. */
  killGraceMs: number;
  /**
   * After a command's shell exits, how long its pipes get to reach EOF. A background process
   * (or one that escaped the group) can hold them open forever; without this cap the result
   * would wait for it. Higher: late output is kept; lower: a result sooner.
   */
  pipeDrainGraceMs: number;

  // Cluster (membership, failure detection, replication).
  /** SWIM: every this often a node probes one member (round robin). Lower: a frozen member is found sooner, more probes (each costs one request and its ack). */
  probeIntervalMs: number;
  /** A direct probe unanswered for this long (times Lifeguard's local health score + 1) is retried through indirectChecks others. Lower: faster suspicion, more indirect probes to merely slow members. */
  probeTimeoutMs: number;
  /** Members asked to probe an unanswering member for us (a network path problem is not a death). Higher: fewer false suspicions, more requests per failed probe. */
  indirectChecks: number;
  /** A suspect is declared dead after suspicionMult × max(1, log10 N) × probeIntervalMs if enough others confirm (longer otherwise). Lower: faster verdicts, less time for a slow member to refute. */
  suspicionMult: number;
  /** The suspicion timeout starts at this multiple of its minimum and shrinks as others confirm the suspicion. Higher: a lone suspicion waits longer. */
  suspicionMaxMult: number;
  /** Pending membership changes are sent to gossipFanout connected members this often (besides riding on probes). Lower: faster spread, more messages while anything changes. */
  gossipIntervalMs: number;
  /** Members each gossip round goes to. Higher: faster spread, more messages per change. */
  gossipFanout: number;
  /** Each membership change is sent retransmitMult × ceil(log10(N + 1)) times, then dropped. Higher: more certain spread, more bytes per change. */
  retransmitMult: number;
  /** Membership changes carried by one probe, ack or gossip message. Higher: faster spread of many changes, bigger messages. */
  maxPiggyback: number;
  /** Cap of Lifeguard's local health score: failed probes and stalls raise it, and probe timeouts are multiplied by it + 1. Higher: a struggling node slows down more before it judges. */
  awarenessMax: number;
  /** Connections a node keeps to other members. Above it, it closes some (telling the peer first); below half of it, it dials more. Probes and gossip go over these; other members are reached through them. Higher: faster spread, more connections (each costs memory and pings). */
  maxPeerConnections: number;
  /** A member that closed our connection to keep within its budget is not redialled for this long. Lower: connections are rebalanced sooner, more churn. */
  trimBackoffMs: number;
  /** Every this often (times a factor that grows with log2 of the cluster size above 32 members) a node exchanges its whole membership view with one connected member, and at its first connection. Lower: a missed change is repaired sooner, bigger exchanges more often. */
  pushPullIntervalMs: number;
  /** Every this often a node pings one member it holds dead (it may be back: a thawed process, a healed partition) and redials known members it is not connected to. Lower: faster reunion, more dials to dead hosts. */
  deadProbeIntervalMs: number;
  /**
   * A member dead or left this long (as this node saw it happen) is reaped: forgotten by the
   * failure detector, dropped from push/pull exchanges and its member record removed (a
   * tombstone refuses the old record from peers; a new start of it is a member again). Until
   * then it is pinged now and then in case it is back, and `chorus nodes` lists it. Higher:
   * dead members stay visible and reachable longer, every node holds and exchanges more of
   * them (a fleet of rebuilt hosts, each a fresh node id, must not reach MAX_STATE_ENTRIES);
   * lower: members away longer than this (the two sides of a day-long partition) forget each
   * other's addresses and meet again only when one side restarts (and dials its --join), as
   * serf's members do after its reconnect_timeout.
   */
  reapAfterMs: number;
  /**
   * Members that keep the whole state (every subtask, step, fire and webhook of every
   * instance); the others keep only their own work (cluster/leadership.ts chooses them, the
   * leader first). 1-7. Higher: more copies of the history, each member's results sent to more
   * nodes; lower: fewer copies (an acknowledged write is still on two nodes).
   */
  keepers: number;
  /** A member must have been alive this long before it can become leader (avoids flapping). Higher: steadier leadership, slower failover to a restarted member. */
  leaderStableMs: number;
  /** A (re)started node that knows other members does not lead before this (its view is stale). Higher: a safer first decision, a longer leaderless start. */
  selfSettleMs: number;
  /**
   * Anti-entropy with one random peer at least this often. Every probe and ack carries the
   * sender's fingerprint and a difference starts an exchange at once (replicator.ts), so
   * this is a safety net. Lower: more exchanges when all agree; higher: nothing is slower.
   */
  antiEntropyIntervalMs: number;
  /** A node starts an exchange on a peer's differing fingerprint (it comes with every probe and ack) at most this often. Lower: a lost delta is repaired sooner, more exchanges while gossip is in flight. */
  rootSyncGapMs: number;
  /** A member that stops being a keeper forgets the other members' work after it has stayed so this long. Higher: a flapping view costs fewer full catch-ups; lower: memory freed sooner. */
  keeperHandoverMs: number;
  /** A member that is not a keeper waits this long for its subtask of an instance that targets it before it asks a keeper (a lost message). Lower: a lost subtask found sooner, more questions. */
  workSyncGraceMs: number;
  /**
   * Nor while its own records changed this recently: gossip is still arriving (a broadcast's
   * results come in batches for a second or two), fingerprints differ only because it is in
   * flight, and exchanges then moved the same records again (at 50 daemons one broadcast of
   * `true` started 90 such exchanges, 192 pages). Lower: repairs start sooner, more exchanges
   * of records already on their way; 0: no wait.
   */
  rootSyncQuietMs: number;
  /** A peer that pulled a page from this node this recently is taken to be pulling still, and no exchange the other way is started with it. Lower: more duplicate exchanges with a node catching up; 0: none skipped. */
  pullingWindowMs: number;
  /**
   * Largest page of records anti-entropy moves in one message (and half of it for a digest
   * of keys). Must stay under maxMessageBytes with room for the envelope. Higher: fewer
   * round trips to catch up, bigger messages to buffer.
   */
  syncPageBytes: number;
  /** Timeout of a direct request (sync, write acknowledgement, log fetch). Lower: a dead peer is given up sooner; too low fails on a busy peer. */
  requestTimeoutMs: number;
  /**
   * One try of a run forwarded to the leader (dial included), when the client names no
   * wait of its own (the CLI asks for 2.5 s, then twice as long at each try, up to 20 s):
   * past it the client is told the leader is busy (or gone) and tries again with the same
   * request id, which makes no second instance; a try that arrives while the first is still
   * being made waits for it. Lower: a client hears sooner that it waits; higher: fewer tries.
   */
  leaderTryMs: number;
  /** If our own timers fire this late, we were stalled: do not trust our own timeouts for a while. Lower: a short stall is noticed, more pauses of failure detection on a busy host. */
  stallThresholdMs: number;
  /** Redial of a known member that is not connected: first backoff, doubling up to peerRedialMaxMs. Lower: faster reconnects, more dials to a dead host. */
  peerRedialBaseMs: number;
  /** Cap of the redial backoff. Lower: a member that comes back is reconnected sooner, more dials while it is down. */
  peerRedialMaxMs: number;
  /** Largest batch of records in one gossip delta; more go in several. Must stay under maxPublishBytes. Higher: fewer messages, bigger ones. */
  maxDeltaBytes: number;
  /**
   * Records written or relayed within this window go out together, and a record written
   * twice in it (a short command's `running`, then its result) goes once. Higher: fewer
   * messages on every node, records a little later everywhere. 0: at the end of each turn.
   */
  deltaBatchMs: number;
  /**
   * The leader gathers the records members hand it (Replicator.publish) at most this long
   * (relayBatchPerPeerMs per connected member, up to this) before it gossips them: a broadcast's results from every target go out in a few messages. Higher:
   * fewer messages on every node, results seen later on nodes other than the leader and the
   * writer. 0: at the end of each turn.
   */
  relayBatchMs: number;
  /** The relay batch window per connected member (up to relayBatchMs): a leader with few members gossips sooner. Higher: fewer messages from a small cluster's leader, results later; 0: relayed at the end of each turn. */
  relayBatchPerPeerMs: number;
  /**
   * Largest clock skew taken from a remote stamp: a stamp further ahead of this node's clock
   * is not adopted by its record clock. Higher: a member whose clock runs ahead pulls every
   * node's stamps further ahead with it; lower: later local writes may order before a write of
   * a member whose clock is that far ahead (last-writer-wins keeps its write until then).
   */
  maxRemoteDriftMs: number;

  // Transport (libp2p).
  /** Largest request or reply frame either side accepts. Bigger frames are refused, not buffered. Higher: bigger syncs and log replies, more memory a peer can make us buffer. */
  maxMessageBytes: number;
  /** Largest gossip payload. gossipsub's receivers drop RPCs over 4 MiB, so stay well below. Higher: fewer, bigger deltas. */
  maxPublishBytes: number;
  /** How long a dial (TCP + noise + yamux) may take. Lower: a dead address is given up sooner; too low fails on a busy host. */
  dialTimeoutMs: number;
  /** How long an incoming request may take to arrive completely. Bounds a slow or stuck client; too low refuses big requests on a slow link. */
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
  /** How long a new connection gets to prove it has the swarm key before it is refused. Lower: a stuck handshake is dropped sooner; too low refuses peers on a busy host. */
  swarmHandshakeTimeoutMs: number;
  /** Connections libp2p keeps before it prunes some. Each member holds one or two per peer. Higher: bigger clusters, more file descriptors. */
  maxConnections: number;
  /**
   * Inbound connections one host may open per second before further ones are refused. libp2p's
   * default (5) would refuse many daemons on one host (re)connecting at once. Lower: a
   * connection flood from one host costs less.
   */
  maxConnectionsPerHostPerSecond: number;
  /** Incoming connections still in their handshake (swarm key, noise, yamux) at once. Higher: more members can (re)join at the same moment; lower: half-open connections cost less. */
  maxPendingInboundConnections: number;
  /**
   * libp2p's connection monitor pings every connection this often (on a new stream each
   * time, with a protocol negotiation); 0 turns it off. SWIM finds dead members by itself
   * (membership.ts), and a member it declares dead is hung up on, so the default is 0: at 30
   * members the monitor and yamux's keep-alive were half of an idle node's packets.
   */
  connectionPingIntervalMs: number;
  /** Requests in flight on one connection at once, each way; more are refused. Higher: more parallel calls to one peer, more buffers (each up to maxMessageBytes). */
  maxRpcStreamsPerConnection: number;

  // Daemon and worker housekeeping.
  /** --join retries: first backoff, doubling up to joinRetryMaxMs. Lower: a faster join once the member is up, more dials while it is not. */
  joinRetryBaseMs: number;
  /** Cap of the --join backoff. Lower: joins sooner once the member is up, more dials while it is not. */
  joinRetryMaxMs: number;
  /** A --join that keeps failing is logged this often, not at every try. Lower: more log lines. */
  joinRetryReportMs: number;
  /** How often a stopping worker checks that its attempts ended. Lower: a quicker stop, more wake-ups. */
  workerStopPollMs: number;
  /** A stopping worker waits killGraceMs plus this for its attempts to end before it gives up on them. Higher: a slower stop, fewer attempts left to the next start's recovery. */
  workerStopSlackMs: number;
  /** After a failed state-file write (a full disk), when it is tried again. Lower: recovers sooner, more failing writes. */
  storeFlushRetryMs: number;
  /** Unshowable records remembered for `chorus status`. Higher: more of them listed, more memory. */
  maxViewErrors: number;
  /** How far back a leaving node re-sends its own subtask reports to every peer. Higher: a longer last message. */
  leaveRecentMs: number;
}

export const defaultConfig: ChorusConfig = {
  leaderTickMs: 50,
  leaderIdleTickMs: 500,
  workerTickMs: 500,
  storeFlushDelayMs: 5,
  misfireGraceMs: 60 * 60_000,
  fireOnTimeMs: 5_000,
  stepSettleMs: 500,
  stepGatePollMs: 100,
  retryBackoffBaseMs: 500,
  retryBackoffMaxMs: 30_000,
  webhookTimeoutMs: 10_000,
  webhookBackoffBaseMs: 1_000,
  webhookBackoffMaxMs: 60_000,
  webhookRetryForMs: 10 * 60_000,
  maxOutputBytes: 64 * 1024,
  followBatchMs: 50,
  followReplyBytes: 64 * 1024,
  maxFollowPolls: 128,
  followAskWaitMs: 20_000,
  followAnswerKeptMs: 60_000,
  followGatherMs: 100,
  maxConcurrentSubtasks: 32,
  retainInstancesPerJob: 200,
  retainAdhocInstances: 2000,
  maxUnfinishedPerJob: 100,
  retainRecords: 100_000,
  retentionIntervalMs: 60_000,
  maxAttemptHistory: 20,
  killGraceMs: 2000,
  pipeDrainGraceMs: 500,
  // SWIM: one probe per second whatever the cluster size (memberlist's default; every 500 ms
  // cost an idle node 0.33 % of a core more at 30 members: a probe and its ack are four
  // encrypted, multiplexed frames). A frozen member is suspected about 1.5 s after it froze
  // and declared dead 2 s (under 10 members) to 3.4 s (50) later once the others confirm
  // (2 × max(1, log10 N) × 1 s; three times that unconfirmed), so about 3.5 to 5 s; a killed
  // one at once (its connections close, a redial fails). memberlist's LAN default is 4; 1
  // took a leader stopped for 3 s (a busy host) for a dead one at 3 members after 2.2 s.
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectChecks: 3,
  suspicionMult: 2,
  suspicionMaxMult: 3,
  gossipIntervalMs: 200,
  gossipFanout: 3,
  retransmitMult: 4,
  maxPiggyback: 16,
  awarenessMax: 8,
  deadProbeIntervalMs: 2000,
  maxPeerConnections: 32,
  trimBackoffMs: 60_000,
  pushPullIntervalMs: 30_000,
  // serf's reconnect_timeout and tombstone_timeout (the dead and the left reaped after a day),
  // not memberlist's 30 s of gossip to the dead: here the member record is what `chorus nodes`
  // shows and what names a target in `instance show`, and an operator looking the morning
  // after a host died should still see it dead. A day of churn is what a node holds: a
  // thousand hosts rebuilt a day is a thousand records, far from MAX_STATE_ENTRIES.
  reapAfterMs: 24 * 60 * 60_000,
  keepers: 3,
  leaderStableMs: 300,
  selfSettleMs: 1000,
  antiEntropyIntervalMs: 30_000,
  rootSyncGapMs: 1000,
  workSyncGraceMs: 1000,
  keeperHandoverMs: 10_000,
  rootSyncQuietMs: 750,
  pullingWindowMs: 2000,
  syncPageBytes: 768 * 1024,
  requestTimeoutMs: 3000,
  leaderTryMs: 2500,
  stallThresholdMs: 400,
  peerRedialBaseMs: 500,
  peerRedialMaxMs: 10_000,
  maxDeltaBytes: 256 * 1024,
  deltaBatchMs: 20,
  relayBatchMs: 100,
  relayBatchPerPeerMs: 3,
  maxRemoteDriftMs: 60_000,
  maxMessageBytes: 1024 * 1024,
  maxPublishBytes: 1024 * 1024,
  dialTimeoutMs: 10_000,
  inboundReadTimeoutMs: 30_000,
  staleProbeTimeoutMs: 3_000,
  repairStaleConnections: true,
  gossipStreamSettleMs: 2_000,
  swarmHandshakeTimeoutMs: 5_000,
  maxConnections: 1024,
  maxConnectionsPerHostPerSecond: 1000,
  maxPendingInboundConnections: 256,
  maxRpcStreamsPerConnection: 256,
  connectionPingIntervalMs: 0,
  joinRetryBaseMs: 250,
  joinRetryMaxMs: 5000,
  joinRetryReportMs: 60_000,
  workerStopPollMs: 20,
  workerStopSlackMs: 2000,
  storeFlushRetryMs: 1000,
  maxViewErrors: 50,
  leaveRecentMs: 60_000,
};

/** Membership's own period: a fifth of the probe interval, at least 10 ms. It checks suspicion clocks and its own stalls at this rate. */
export function membershipTickMs(config: Pick<ChorusConfig, 'probeIntervalMs'>): number {
  return Math.max(10, Math.floor(config.probeIntervalMs / 5));
}

/**
 * gossipsub frames each RPC with it-length-prefixed's default limit (4 MiB) on both sides; a
 * larger one is neither sent nor read. A message's signature, key, topic and sequence number
 * share the frame with its payload; 1 KiB covers them.
 */
const GOSSIP_FRAME_BYTES = 4 * 1024 * 1024;
const GOSSIP_ENVELOPE_BYTES = 1024;

/** A configuration that cannot work; the message names every knob at fault, with its value and what is needed. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
  }
}

type Knob = keyof ChorusConfig;
type NumberKnob = { [K in Knob]: ChorusConfig[K] extends number ? K : never }[Knob];

/** Every numeric knob must be a whole number ≥ 1, except these, where 0 has a meaning. */
const MAY_BE_ZERO: ReadonlySet<NumberKnob> = new Set<NumberKnob>([
  'storeFlushDelayMs', // every change is written at once
  'misfireGraceMs', // a missed fire is never caught up
  'stepSettleMs', // steps start at once (a wider window for a double run)
  'killGraceMs', // SIGKILL right after SIGTERM
  'pipeDrainGraceMs', // the result does not wait for output after the shell exits
  'leaderStableMs', // any alive member may lead at once
  'selfSettleMs', // a restarted node may lead at once
  'gossipStreamSettleMs', // a peer without a gossip stream is reconnected at once
  'workerStopSlackMs', // a stopping worker waits killGraceMs only
  'maxViewErrors', // unshowable records are logged, not remembered
  'leaveRecentMs', // a leaving node re-sends only its unfinished work
  'indirectChecks', // an unanswered probe is a suspicion at once
  'awarenessMax', // no Lifeguard: probe timeouts never grow
  'deltaBatchMs', // records go out at the end of each turn
  'relayBatchMs', // relayed records go out at the end of each turn
  'connectionPingIntervalMs', // libp2p's connection monitor is off (SWIM finds dead members)
  'followBatchMs', // a follower gets every write of a command as it comes
  'followGatherMs', // a follower's answer carries the first news alone
  'rootSyncQuietMs', // a differing fingerprint starts an exchange while records still arrive
  'pullingWindowMs', // an exchange is started even with a peer pulling from this node
  'relayBatchPerPeerMs', // relayed records go out at the end of each turn
]);

/**
 * Knobs handed to setTimeout or AbortSignal.timeout (not to the clock, which waits out any
 * delay): Node fires those at once past MAX_TIMEOUT_MS (about 24.8 days).
 */
const TIMER_LIMITS: Partial<Record<NumberKnob, number>> = {
  killGraceMs: MAX_TIMEOUT_MS, // setTimeout before SIGKILL
  pipeDrainGraceMs: MAX_TIMEOUT_MS, // setTimeout while pipes drain
  probeTimeoutMs: Math.floor(MAX_TIMEOUT_MS / (2 * 9)), // AbortSignal.timeout of an indirect probe: twice this, times the health score + 1 (at most 9)
  requestTimeoutMs: MAX_TIMEOUT_MS, // AbortSignal.timeout of a request
  leaderTryMs: MAX_TIMEOUT_MS, // AbortSignal.timeout of a forwarded run
  webhookTimeoutMs: MAX_TIMEOUT_MS, // AbortSignal.timeout of a webhook POST
  dialTimeoutMs: MAX_TIMEOUT_MS,
  inboundReadTimeoutMs: MAX_TIMEOUT_MS,
  staleProbeTimeoutMs: MAX_TIMEOUT_MS,
  gossipStreamSettleMs: MAX_TIMEOUT_MS,
  swarmHandshakeTimeoutMs: MAX_TIMEOUT_MS,
  connectionPingIntervalMs: MAX_TIMEOUT_MS, // setInterval of libp2p's connection monitor
};

interface Relation {
  /** The knobs the rule reads; it is skipped when one of them is already invalid on its own. */
  knobs: readonly Knob[];
  /** The problem, or null when the combination works. */
  check: (config: ChorusConfig) => string | null;
}

const atMost = (low: NumberKnob, high: NumberKnob, why: string): Relation => ({
  knobs: [low, high],
  check: (c) => (c[low] <= c[high] ? null : `${low} (${c[low]}) must be at most ${high} (${c[high]}): ${why}`),
});

const lessThan = (low: NumberKnob, high: NumberKnob, why: string): Relation => ({
  knobs: [low, high],
  check: (c) => (c[low] < c[high] ? null : `${low} (${c[low]}) must be less than ${high} (${c[high]}): ${why}`),
});

/** Combinations the code cannot work with; each says why. */
const RELATIONS: readonly Relation[] = [
  // A probe must end (direct and indirect) before the next round would start a second one of the same member.
  lessThan('probeTimeoutMs', 'probeIntervalMs', 'a direct probe must time out before the next probe is due'),
  // A suspect gets at least suspicionMult × probeIntervalMs to refute; a stall of this node too short to be noticed must fit in it with a tick to spare.
  {
    knobs: ['suspicionMult', 'probeIntervalMs', 'stallThresholdMs'],
    check: (c) => {
      const minMs = c.suspicionMult * c.probeIntervalMs;
      const needMs = c.stallThresholdMs + membershipTickMs(c);
      if (minMs > needMs) return null;
      return (
        `suspicionMult (${c.suspicionMult}) × probeIntervalMs (${c.probeIntervalMs}) = ${minMs} ms must exceed stallThresholdMs (${c.stallThresholdMs}) plus ` +
        `the ${membershipTickMs(c)} ms membership tick, here ${needMs}: ` +
        'a stall of this node too short to be noticed could let a suspicion expire before the suspect could refute'
      );
    },
  },
  atMost('leaderTickMs', 'leaderIdleTickMs', 'the idle leader tick is the slow one'),
  // A node that missed the news of a death or a leave learns it at its next push/pull, from a peer that still holds the member.
  lessThan('pushPullIntervalMs', 'reapAfterMs', 'a member must be held dead or left for longer than a push/pull period, so that a node that missed the news learns it before the others forget it'),
  {
    knobs: ['keepers'],
    check: (c) => (c.keepers <= MAX_KEEPERS ? null : `keepers (${c.keepers}) must be at most ${MAX_KEEPERS}: every keeper receives every result of the cluster`),
  },
  atMost('suspicionMult', 'suspicionMaxMult', 'the suspicion timeout starts at its maximum and shrinks to its minimum'),
  // min(base * 2^n, max): a base above the cap is never used, the first wait already is the cap.
  atMost('retryBackoffBaseMs', 'retryBackoffMaxMs', 'the first retry backoff cannot exceed its cap'),
  atMost('webhookBackoffBaseMs', 'webhookBackoffMaxMs', 'the first webhook backoff cannot exceed its cap'),
  atMost('joinRetryBaseMs', 'joinRetryMaxMs', 'the first --join backoff cannot exceed its cap'),
  atMost('peerRedialBaseMs', 'peerRedialMaxMs', 'the first redial backoff cannot exceed its cap'),
  // The replicator cuts deltas at maxDeltaBytes; the transport refuses to publish more than maxPublishBytes, and the delta's own envelope comes on top.
  lessThan('maxDeltaBytes', 'maxPublishBytes', 'a delta batch (plus its envelope) must fit in one gossip message'),
  lessThan('syncPageBytes', 'maxMessageBytes', 'a page of records (plus its envelope) must fit in one message'),
  // Anti-entropy repairs lost gossip over direct requests: what can be gossiped must also fit in one.
  atMost('maxPublishBytes', 'maxMessageBytes', 'what is gossiped must also fit in a direct request, which repairs lost gossip'),
  // gossipsub neither sends nor reads an RPC frame over 4 MiB: every such message would be lost.
  {
    knobs: ['maxPublishBytes'],
    check: (c) =>
      c.maxPublishBytes <= GOSSIP_FRAME_BYTES - GOSSIP_ENVELOPE_BYTES
        ? null
        : `maxPublishBytes (${c.maxPublishBytes}) must be at most ${GOSSIP_FRAME_BYTES - GOSSIP_ENVELOPE_BYTES}: gossipsub drops RPCs over ${GOSSIP_FRAME_BYTES} bytes (4 MiB), envelope included`,
  },
  // The node that runs the output holds a follower's question at most MAX_FOLLOW_WAIT_MS (output/follow.ts) and refuses a longer wait.
  {
    knobs: ['followAskWaitMs'],
    check: (c) =>
      c.followAskWaitMs <= MAX_FOLLOW_WAIT_MS
        ? null
        : `followAskWaitMs (${c.followAskWaitMs}) must be at most ${MAX_FOLLOW_WAIT_MS}: a node refuses to hold a follower's question longer`,
  },
  // The logs of an attempt (stdout and stderr tails) come back in one reply from the node that ran it.
  {
    knobs: ['maxOutputBytes', 'maxMessageBytes'],
    check: (c) =>
      2 * c.maxOutputBytes < c.maxMessageBytes
        ? null
        : `maxOutputBytes (${c.maxOutputBytes}) must be less than half of maxMessageBytes (${c.maxMessageBytes}): the stdout and stderr kept of one attempt must fit in the reply that fetches its logs`,
  },
  // A follower's answer is JSON: a byte of output can take six characters (\u0001), and the answer has an envelope.
  {
    knobs: ['followReplyBytes', 'maxMessageBytes'],
    check: (c) =>
      JSON_ESCAPE_FACTOR * c.followReplyBytes + FOLLOW_ENVELOPE_BYTES <= c.maxMessageBytes
        ? null
        : `followReplyBytes (${c.followReplyBytes}) must be at most (maxMessageBytes (${c.maxMessageBytes}) - ${FOLLOW_ENVELOPE_BYTES}) / ${JSON_ESCAPE_FACTOR}: the output in a follower's answer, escaped as JSON, must fit in one message`,
  },
];

/** The most keepers a cluster can have (config.keepers). */
export const MAX_KEEPERS = 7;

/**
 * The longest a node holds a follower's question waiting for output (the API's longest wait).
 * Part of the follow protocol (every node checks it), so not a knob: followAskWaitMs stays under it.
 */
export const MAX_FOLLOW_WAIT_MS = 30_000;

/** The most characters JSON takes for one byte of output (a control byte: \u0001). */
export const JSON_ESCAPE_FACTOR = 6;
/** Room in a follower's answer for everything but the output (fields, node ids, positions). */
const FOLLOW_ENVELOPE_BYTES = 16 * 1024;

const show = (value: unknown): string => (value === undefined ? 'missing' : typeof value === 'number' ? String(value) : JSON.stringify(value));

/**
 * Checks every knob on its own and the combinations the code relies on, and returns the config
 * unchanged; throws one ConfigError listing every problem (unknown knobs included).
 */
export function validateConfig(config: ChorusConfig): ChorusConfig {
  const problems: string[] = [];
  const invalid = new Set<Knob>();
  for (const key of Object.keys(config)) {
    if (!Object.hasOwn(defaultConfig, key)) problems.push(unknownKnob(key));
  }
  for (const key of Object.keys(defaultConfig) as Knob[]) {
    const value: unknown = config[key];
    const problem = knobProblem(key, value);
    if (problem === null) continue;
    invalid.add(key);
    problems.push(`${key} is ${show(value)}; it must be ${problem}`);
  }
  for (const relation of RELATIONS) {
    if (relation.knobs.some((key) => invalid.has(key))) continue;
    const problem = relation.check(config);
    if (problem !== null) problems.push(problem);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** What a single knob must be, or null when its value is fine. */
function knobProblem(key: Knob, value: unknown): string | null {
  if (typeof defaultConfig[key] === 'boolean') return typeof value === 'boolean' ? null : 'true or false';
  const numberKey = key as NumberKnob;
  const least = MAY_BE_ZERO.has(numberKey) ? 0 : 1;
  const most = TIMER_LIMITS[numberKey] ?? Number.MAX_SAFE_INTEGER;
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) return `a whole number ≥ ${least}`;
  if (value < least) return least === 0 ? 'a whole number ≥ 0' : 'at least 1';
  if (value > most) return `at most ${most} (Node fires a timer longer than that at once)`;
  return null;
}

function unknownKnob(key: string): string {
  const known = Object.keys(defaultConfig);
  const near = known.find((k) => k.toLowerCase() === key.toLowerCase()) ?? known.find((k) => editDistance(k.toLowerCase(), key.toLowerCase()) <= 2);
  return near === undefined ? `${key} is not a setting (known: ${known.join(', ')})` : `${key} is not a setting (did you mean ${near}?)`;
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/** The defaults with `overrides` over them, validated; an unknown knob is an error naming it (with every other problem). */
export function configFrom(overrides: Partial<ChorusConfig>): ChorusConfig {
  // An override left undefined (an option not given) keeps the default.
  const given = Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined));
  return validateConfig({ ...defaultConfig, ...given });
}
