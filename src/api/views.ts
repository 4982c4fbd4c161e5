// The one shape of jobs, instances and members on the wire (API and --json), and the
// conversion from records to it. Times are ISO 8601 strings.
import { formatDurationUnits } from '../core/duration.js';
import { iso } from '../core/time.js';
import type { MemberInfo, MemberSuspicion } from '../cluster/view.js';
import { deriveInstanceProgress, type InstanceFacts } from '../records/status.js';
import type { Amount, AttemptSummary, FireRecord, NotifyRecord, InstanceRecord, InstanceStatus, JobRecord, JobSpec, StepRecord, SubtaskRecord, SubtaskStatus, FailureReason } from '../records/types.js';
import { parallelLimit, waveEnds, waveOf } from '../records/rollout.js';
import { nextFireAfter } from '../records/schedule.js';
import { liveSpec } from '../records/types.js';
import type { RecordStore } from '../store/record-store.js';

export interface AttemptView {
  attempt: number;
  status: SubtaskStatus;
  reason: FailureReason | null;
  exitCode: number | null;
  /** With reason `signal`: the signal that killed the command (`SIGKILL`); else null. */
  signal: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface SubtaskView extends AttemptView {
  nodeId: string;
  nodeName: string | null;
  shardIndex: number;
  /** Its wave (1 and up; 1 for every subtask of an instance without --waves). */
  wave: number;
  /** Whether the leader released it to its owner: false while a rollout holds it back (status pending) and for an aborted one. */
  released: boolean;
  releasedAt: string | null;
  /** When a retry may start (backoff), for a pending attempt after the first. */
  notBefore: string | null;
  history: AttemptView[];
}

export interface InstanceView {
  id: string;
  job: string;
  status: InstanceStatus;
  trigger: InstanceRecord['trigger'];
  cmd: string;
  type: JobSpec['type'];
  scheduledAt: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  failure: string | null;
  cancelRequested: boolean;
  targets: string[];
  /** Alive members that matched but were not targeted, and why (`draining`). */
  skipped: { nodeId: string; nodeName: string | null; reason: 'draining' }[];
  counts: Record<SubtaskStatus, number>;
  /** Its rollout is paused (`chorus instance pause`): no subtask is released until it is resumed. */
  paused: boolean;
  /** The rolling and quorum options it was created with, and how far it got; null when it has none. */
  rollout: RolloutView | null;
  /** Webhook deliveries (`--notify`), once the instance ended and its --notify-on asked for them. */
  notifications: NotificationView[];
  subtasks: SubtaskView[];
  /** The job's --pre and --post commands for this instance, run once on the leader. */
  pre: StepView | null;
  post: StepView | null;
}

/** An instance in a list that asked for `summary=1`: no per-node parts (`subtasks`, `targets`); `counts` says how they stand. */
export type InstanceSummaryView = Omit<InstanceView, 'subtasks' | 'targets'>;

export function instanceSummary(view: InstanceView): InstanceSummaryView {
  const { subtasks: _subtasks, targets: _targets, ...summary } = view;
  return summary;
}

export interface NotificationView {
  url: string;
  status: NotifyRecord['status'];
  attempts: number;
  lastError: string | null;
  deliveredAt: string | null;
  /** The node delivering it (the leader that saw the instance end, or the one that took it over). */
  runner: string;
}

export interface RolloutView {
  maxParallel: Amount | null;
  waves: Amount[] | null;
  maxFailures: Amount | null;
  minSuccess: Amount | null;
  /** --max-parallel as a number of subtasks over these targets (null: no limit). */
  parallelLimit: number | null;
  /** Size of each wave, in order (one wave of every target without --waves). */
  waveSizes: number[];
  /** The wave being released or run (1 and up), or null once every subtask is released. */
  currentWave: number | null;
  released: number;
  /** The failure budget was spent: unreleased subtasks ended cancelled/aborted. */
  aborted: boolean;
}

export interface StepView extends AttemptView {
  cmd: string;
  nodeId: string | null;
}

export interface JobView {
  name: string;
  /** The job's definition as `PUT /v1/jobs/NAME` takes it ({"spec": ...} is a valid PUT body). */
  spec: JobSpec;
  cmd: string;
  type: JobSpec['type'];
  schedule: JobSpec['schedule'];
  scheduleText: string | null;
  nextRunAt: string | null;
  tags: Record<string, string>;
  timeoutMs: number | null;
  retries: number;
  concurrency: JobSpec['concurrency'];
  pre: string | null;
  post: string | null;
  enabled: boolean;
  createdAt: string;
  updatedAt: string;
  /** The job's newest instances, newest first: only when asked (`GET /v1/jobs?recent=N`). */
  recent?: RecentRun[];
}

/** An instance in a job's row of recent runs. */
export interface RecentRun {
  id: string;
  status: InstanceStatus;
  createdAt: string;
}

/** A member as the answering node sees it; `suspicion` while it suspects it (its failure detector's view). */
export type NodeView = Omit<MemberInfo, 'suspicion'> & { lastSeen: string | null; suspicion: SuspicionView | null };

export type SuspicionView = MemberSuspicion & { since: string; deadAt: string };

export function nodeView(m: MemberInfo): NodeView {
  const s = m.suspicion ?? null;
  return { ...m, lastSeen: iso(m.lastSeenMs), suspicion: s === null ? null : { ...s, since: iso(s.sinceMs) as string, deadAt: iso(s.deadAtMs) as string } };
}

/** A member and its unfinished work (pending or running subtasks and steps), as the answering node sees it. */
export type NodeDetailView = NodeView & { unfinished: number };

export { iso };

function attemptView(a: AttemptSummary): AttemptView {
  return { attempt: a.attempt, status: a.status, reason: a.reason, exitCode: a.exitCode, signal: a.signal ?? null, startedAt: iso(a.startedAtMs), finishedAt: iso(a.finishedAtMs) };
}

/** An ended instance as its webhooks tell it: the API's view of it, as `chorus instance show --json` prints it. */
export function webhookBody(instance: InstanceRecord, store: RecordStore): InstanceView {
  return instanceView(instance, store.factsOf(instance), (nodeId) => store.member(nodeId)?.name ?? null);
}

export function instanceView(instance: InstanceRecord, facts: InstanceFacts, nameOf: (nodeId: string) => string | null): InstanceView {
  const progress = deriveInstanceProgress(instance, facts);
  const { targets, subtasks, steps = {} } = facts;
  const ends = waveEnds(instance.spec, targets.length);
  return {
    id: instance.id,
    job: instance.job,
    status: progress.status,
    trigger: instance.trigger,
    cmd: instance.spec.cmd,
    type: instance.spec.type,
    scheduledAt: iso(instance.scheduledAtMs),
    createdAt: iso(instance.createdAtMs) as string,
    startedAt: iso(progress.startedAtMs),
    finishedAt: iso(progress.finishedAtMs),
    failure: instance.failure,
    cancelRequested: (facts.cancelRequestedAtMs ?? null) !== null,
    targets: [...targets],
    skipped: (instance.skipped ?? []).map((s) => ({ nodeId: s.nodeId, nodeName: nameOf(s.nodeId), reason: s.reason })),
    counts: progress.counts,
    paused: facts.paused ?? false,
    rollout: rolloutView(instance.spec, targets, subtasks),
    notifications: (facts.notifications ?? []).map((n) => ({ url: n.url, status: n.status, attempts: n.attempts, lastError: n.lastError, deliveredAt: iso(n.deliveredAtMs), runner: n.runner })),
    pre: stepView(instance.spec.pre, steps.pre),
    post: stepView(instance.spec.post, steps.post),
    subtasks: targets.map((nodeId, shardIndex) => {
      const s = subtasks.get(nodeId);
      const current = s ?? { attempt: 1, status: 'pending' as const, reason: null, exitCode: null, startedAtMs: null, finishedAtMs: null };
      return {
        nodeId,
        nodeName: nameOf(nodeId),
        shardIndex,
        wave: waveOf(ends, shardIndex) + 1,
        released: s !== undefined && isReleased(s),
        releasedAt: iso(s?.releasedAtMs),
        ...attemptView(current),
        notBefore: iso(s?.notBeforeMs),
        history: (s?.history ?? []).map(attemptView),
      };
    }),
  };
}

/** Released: the leader wrote it for its owner (a record written before rollouts existed counts when it ran). */
function isReleased(s: SubtaskRecord): boolean {
  return s.releasedAtMs !== undefined || s.startedAtMs !== null || s.history.length > 0;
}

function rolloutView(spec: JobSpec, targets: readonly string[], subtasks: ReadonlyMap<string, SubtaskRecord>): RolloutView | null {
  const { maxParallel, waves, maxFailures, minSuccess } = spec;
  if (maxParallel === undefined && waves === undefined && maxFailures === undefined && minSuccess === undefined) return null;
  const ends = waveEnds(spec, targets.length);
  let released = 0;
  let aborted = false;
  let firstUnreleased: number | null = null;
  targets.forEach((nodeId, index) => {
    const s = subtasks.get(nodeId);
    if (s?.reason === 'aborted') aborted = true;
    if (s && isReleased(s)) released += 1;
    else if (!s && firstUnreleased === null) firstUnreleased = index;
  });
  return {
    maxParallel: maxParallel ?? null,
    waves: waves ?? null,
    maxFailures: maxFailures ?? null,
    minSuccess: minSuccess ?? null,
    parallelLimit: parallelLimit(spec, targets.length),
    waveSizes: ends.map((end, i) => end - (ends[i - 1] ?? 0)),
    currentWave: firstUnreleased === null ? null : waveOf(ends, firstUnreleased) + 1,
    released,
    aborted,
  };
}

function stepView(cmd: string | null, step: StepRecord | undefined): StepView | null {
  if (cmd === null) return null;
  if (!step) return { cmd, nodeId: null, attempt: 1, status: 'pending', reason: null, exitCode: null, signal: null, startedAt: null, finishedAt: null };
  return { cmd, nodeId: step.runnerNodeId, ...attemptView(step) };
}

export function describeSchedule(schedule: JobSpec['schedule']): string | null {
  if (schedule === null) return null;
  switch (schedule.kind) {
    case 'cron':
      return `cron "${schedule.expr}"${schedule.tz ? ` (${schedule.tz})` : ''}`;
    case 'every':
      return `every ${formatDurationUnits(schedule.intervalMs)}`;
    case 'at':
      return `at ${iso(schedule.atMs)}`;
  }
}

export function jobView(job: JobRecord, nowMs: number): JobView {
  const spec = liveSpec(job);
  const next = job.enabled && spec.schedule ? nextFireAfter(spec.schedule, job.createdAtMs, nowMs) : null;
  return {
    name: job.name,
    spec,
    cmd: spec.cmd,
    type: spec.type,
    schedule: spec.schedule,
    scheduleText: describeSchedule(spec.schedule),
    nextRunAt: iso(next),
    tags: spec.tags,
    timeoutMs: spec.timeoutMs,
    retries: spec.retries,
    concurrency: spec.concurrency,
    pre: spec.pre,
    post: spec.post,
    enabled: job.enabled,
    createdAt: iso(job.createdAtMs) as string,
    updatedAt: iso(job.stamp.wallMs) as string,
  };
}

/** One decided fire of a scheduled job (`chorus job history`). */
export interface FireView {
  job: string;
  scheduledAt: string;
  outcome: FireRecord['outcome'];
  reason: FireRecord['reason'];
  instanceId: string | null;
  /** The leader that decided it, and its name. */
  leader: string;
  leaderName: string | null;
  decidedAt: string;
}

export function fireView(fire: FireRecord, nameOf: (nodeId: string) => string | null): FireView {
  return {
    job: fire.job,
    scheduledAt: iso(fire.scheduledAtMs) as string,
    outcome: fire.outcome,
    reason: fire.reason,
    instanceId: fire.instanceId,
    leader: fire.leader,
    leaderName: nameOf(fire.leader),
    decidedAt: iso(fire.decidedAtMs) as string,
  };
}
