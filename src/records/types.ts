// The replicated records that make up chorus's state. Every record carries a hybrid
// logical clock stamp; merge rules for each kind live in merge.ts.
import { invariant } from '../core/assert.js';

/** Hybrid logical clock stamp: wall time (ms), a counter for events in the same ms, and the writer. */
export interface Stamp {
  wallMs: number;
  counter: number;
  nodeId: string;
}

export type JobType = 'broadcast' | 'standalone';
export type Concurrency = 'allow' | 'forbid';

/** A number of subtasks (`2`) or a share of an instance's targets (`"10%"`, 0-100 %). */
export type Amount = number | `${number}%`;

export type Schedule =
  | { kind: 'cron'; expr: string; tz: string | null }
  | { kind: 'every'; intervalMs: number }
  | { kind: 'at'; atMs: number };

/** What a job does; copied into every instance so a later edit does not change a running one. */
export interface JobSpec {
  cmd: string;
  type: JobType;
  schedule: Schedule | null;
  /** A node is eligible when every tag here matches one of its own tags. */
  tags: Record<string, string>;
  timeoutMs: number | null;
  retries: number;
  concurrency: Concurrency;
  pre: string | null;
  post: string | null;
  /** Rolling broadcast (scheduler/rollout.ts): at most this many subtasks released and unended at once. Absent: all at once. */
  maxParallel?: Amount;
  /** Cumulative wave sizes over the sorted targets; a wave is released when the previous one has ended. */
  waves?: Amount[];
  /** More failed subtasks than this stop the instance: unreleased subtasks end cancelled/aborted. */
  maxFailures?: Amount;
  /** The instance succeeds when at least this many subtasks succeeded (and all ended). Absent: all. */
  minSuccess?: Amount;
  /** What a late fire does (the leader was away at its time): scheduler/fires.ts. Absent: once. */
  misfire?: MisfirePolicy;
  /** How late a fire may still run. Absent: the daemon's misfireGraceMs (1 h). */
  misfireWindowMs?: number;
  /** Webhooks POSTed the instance's JSON when it ends (scheduler/notifier.ts). Absent: none. */
  notify?: string[];
  /** When to notify: only when the instance did not succeed (default), or always. */
  notifyOn?: 'failure' | 'always';
  /** A file holding the HMAC-SHA256 key of the X-Chorus-Signature header, read on the node that delivers. */
  notifySecretFile?: string;
}

/** `--misfire`: skip late fires, run the latest of them once, or run every one of them. */
export type MisfirePolicy = 'skip' | 'once' | 'all';

/**
 * Every record carries `sig`: its writer's signature (the node key whose public key is the
 * node id in `stamp.nodeId`) over the rest of the record, so that it can travel through any
 * peer and still be trusted (signature.ts). A merge only ever picks one of two signed
 * records, never builds a new one, so every record a node holds is one its writer signed.
 */
export interface Signed {
  sig: string;
}

/** A stored job: a last-writer-wins register keyed by name. Deletion is a tombstone. */
export interface JobRecord extends Signed {
  name: string;
  /** null exactly for a tombstone (deleted): a deleted job keeps no command. */
  spec: JobSpec | null;
  enabled: boolean;
  deleted: boolean;
  createdAtMs: number;
  stamp: Stamp;
}

export type SubtaskStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type TerminalStatus = 'succeeded' | 'failed' | 'cancelled';
/** Why an attempt did not succeed, in the order the README's table lists them; the record schema takes them from here. */
export const FAILURE_REASONS = ['exit-code', 'signal', 'timeout', 'spawn-failed', 'node-lost', 'interrupted', 'cancelled', 'aborted'] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

export interface AttemptSummary {
  attempt: number;
  status: SubtaskStatus;
  reason: FailureReason | null;
  /** The command's exit code: a number with reason `exit-code` (and 0 for a success), else null. */
  exitCode: number | null;
  /**
   * With reason `signal`: the name of the signal that killed the command, one the daemon did
   * not send (the OOM killer, an operator's `kill -9`): `SIGKILL`, `SIGSEGV`. Absent otherwise,
   * so a record without it (every record of a writer from before it) is signed as it was.
   */
  signal?: string;
  startedAtMs: number | null;
  finishedAtMs: number | null;
}

/** Where an attempt of a subtask or a step stands; merged on the lattice of merge.ts. */
export interface AttemptState extends AttemptSummary, Signed {
  /** Earliest time the runner may start this attempt (retry backoff, step settling). */
  notBeforeMs: number | null;
  /** Earlier attempts, oldest first, bounded. */
  history: AttemptSummary[];
  /** Node that wrote this state: the runner, or the leader for `node-lost`/`cancelled` verdicts. */
  reporter: string;
  stamp: Stamp;
}

/**
 * One node's share of an instance. Identity is (instanceId, nodeId); nodeId is the owner,
 * fixed at creation: no merge or code path ever changes it (DESIGN.md, guarantee 1).
 */
export interface SubtaskRecord extends AttemptState {
  instanceId: string;
  nodeId: string;
  /**
   * When the leader released it to its owner (wrote its first record). A rolling broadcast
   * releases its subtasks over time; an unreleased one has no record. Absent in records
   * written before rollouts, and in a subtask that was never released (aborted).
   */
  releasedAtMs?: number;
}

export type StepName = 'pre' | 'post';

/**
 * A job's `--pre` or `--post` command for one instance, keyed (instanceId, step). Its
 * runner is the leader that created it; when two leaders created it at once, the merge
 * chooses one runner everywhere, so unlike a subtask's owner the runner is not an identity.
 */
export interface StepRecord extends AttemptState {
  instanceId: string;
  step: StepName;
  runnerNodeId: string;
}

export type InstanceTrigger = 'manual' | 'schedule' | 'adhoc';
export type InstanceStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/**
 * A run of a job, as its leader created it; it never changes afterwards. Its status is
 * derived from its subtasks (see status.ts), a cancel is a record of its own, and its
 * targets are those it was created with plus any node that holds a subtask of it (two
 * leaders that created the same scheduled instance on both sides of a partition each
 * created subtasks for their own side: RecordStore.targetsOf).
 */
export interface InstanceRecord extends Signed {
  id: string;
  job: string;
  spec: JobSpec;
  trigger: InstanceTrigger;
  scheduledAtMs: number | null;
  createdAtMs: number;
  /** Sorted node ids, fixed at creation (guarantee 4). */
  targets: string[];
  /** Why the instance could not start at all (for example: no node matched its tags). */
  failure: string | null;
  /** Alive members that matched but were left out, and why (a draining node). Absent: none. */
  skipped?: SkippedTarget[];
  stamp: Stamp;
}

export interface SkippedTarget {
  nodeId: string;
  reason: 'draining';
}

/** A request to cancel an instance, by any member; the earliest request wins everywhere. */
export interface CancelRecord extends Signed {
  instanceId: string;
  requestedAtMs: number;
  stamp: Stamp;
}

/** A node's self-description, written only by that node. */
export interface MemberRecord extends Signed {
  nodeId: string;
  name: string;
  tags: Record<string, string>;
  addrs: string[];
  /** Bumped at every start of the daemon: a restarted node is a new incarnation. */
  incarnation: number;
  left: boolean;
  /** Takes no new work (`chorus node drain`); kept across restarts. Absent: false. */
  draining?: boolean;
  stamp: Stamp;
}

export type NotifyStatus = 'pending' | 'delivered' | 'failed';

/**
 * The delivery of one webhook (`--notify URL`) for one end of an instance, keyed
 * (instanceId, index into the spec's URLs). Written only by its runner: the leader that
 * created it, or a later leader that took it over (`generation` + 1) when the runner died.
 */
export interface NotifyRecord extends Signed {
  instanceId: string;
  index: number;
  url: string;
  runner: string;
  generation: number;
  status: NotifyStatus;
  /** POSTs tried so far (all generations). */
  attempts: number;
  lastError: string | null;
  /** When the first POST was tried: retries stop 10 minutes after it. */
  firstTryAtMs: number | null;
  nextTryAtMs: number | null;
  deliveredAtMs: number | null;
  stamp: Stamp;
}

export type FireOutcome = 'created' | 'skipped' | 'caught-up' | 'missed';
export type FireReason = 'disabled' | 'forbid-overlap' | 'no-eligible-node' | 'backlog' | 'past-misfire-window' | 'coalesced';

/**
 * What the leader decided for one due fire of a scheduled job (`chorus job history`), keyed
 * (job, scheduledAtMs). Replicated, so every node answers the same; bounded per job by retention.
 */
export interface FireRecord extends Signed {
  job: string;
  /** The job definition it belongs to (a job deleted and added again starts a new history). */
  jobCreatedAtMs: number;
  scheduledAtMs: number;
  outcome: FireOutcome;
  /** For a skip: disabled, forbid-overlap, no-eligible-node, backlog (maxUnfinishedPerJob reached); for a miss: past-misfire-window, or coalesced (--misfire once ran a later one). */
  reason: FireReason | null;
  instanceId: string | null;
  /** The leader that decided it. */
  leader: string;
  decidedAtMs: number;
  stamp: Stamp;
}

/** Whether an instance's rollout is paused (`chorus instance pause|resume`): last writer wins. */
export interface PauseRecord extends Signed {
  instanceId: string;
  paused: boolean;
  stamp: Stamp;
}

export type AnyRecord =
  | { kind: 'job'; record: JobRecord }
  | { kind: 'instance'; record: InstanceRecord }
  | { kind: 'cancel'; record: CancelRecord }
  | { kind: 'subtask'; record: SubtaskRecord }
  | { kind: 'step'; record: StepRecord }
  | { kind: 'member'; record: MemberRecord }
  | { kind: 'pause'; record: PauseRecord }
  | { kind: 'fire'; record: FireRecord }
  | { kind: 'notify'; record: NotifyRecord };

export const TERMINAL: ReadonlySet<SubtaskStatus> = new Set(['succeeded', 'failed', 'cancelled']);

export function isTerminal(status: SubtaskStatus): status is TerminalStatus {
  return TERMINAL.has(status);
}

/** The spec of a job that is not deleted (a tombstone keeps none: a bug to ask for it). */
export function liveSpec(job: JobRecord): JobSpec {
  invariant(job.spec !== null, null, `job ${job.name} is deleted and has no spec`);
  return job.spec;
}

export function subtaskKey(instanceId: string, nodeId: string): string {
  return `${instanceId}/${nodeId}`;
}

/** The instance a record is about (its own, its cancel, a subtask or step of it), or null for a job or member. */
export function instanceIdOf(r: AnyRecord): string | null {
  if (r.kind === 'instance') return r.record.id;
  if (r.kind === 'cancel' || r.kind === 'subtask' || r.kind === 'step') return r.record.instanceId;
  return null;
}

/** An attempt's state with the signal that ended it, or with none: then the field is absent, never null (AttemptSummary). */
export function withSignal<T extends AttemptSummary>(state: T, signal: string | null): T {
  const { signal: _previous, ...rest } = state;
  return (signal === null ? rest : { ...rest, signal }) as T;
}

/** The node that runs a subtask (its owner) or a step (its runner). */
export function runnerOf(task: SubtaskRecord | StepRecord): string {
  return 'step' in task ? task.runnerNodeId : task.nodeId;
}
