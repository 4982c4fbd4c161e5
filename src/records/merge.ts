// The merge rules of every replicated record. Each merge picks the greater of two
// records under a total order, so it is commutative, associative and idempotent
// (merge.test.ts checks this with generated records), and the result is always one of
// the two signed records as its writer signed it. Keep these functions pure.
import { InvariantError } from '../core/assert.js';
import { canonicalJson } from './canonical.js';
import { compareStamps } from './hlc.js';
import type { AnyRecord, AttemptState, CancelRecord, FireRecord, InstanceRecord, JobRecord, MemberRecord, NotifyRecord, PauseRecord, StepRecord, SubtaskRecord } from './types.js';
import { isTerminal, subtaskKey } from './types.js';

/** Two records that are not versions of one record were given to a merge: a bug (guarantee 6 rests on it). */
export class MergeInvariantError extends InvariantError {
  constructor(detail: string) {
    super(6, detail);
  }
}

function assertSameKey(a: string, b: string, what: string): void {
  if (a !== b) throw new MergeInvariantError(`cannot merge ${what} ${a} with ${b}`);
}

function compareCanonical(a: unknown, b: unknown): number {
  const ca = canonicalJson(a);
  const cb = canonicalJson(b);
  return ca === cb ? 0 : ca < cb ? -1 : 1;
}

/** Last writer wins; a tombstone is just a write with `deleted: true`. */
export function mergeJob(a: JobRecord, b: JobRecord): JobRecord {
  assertSameKey(a.name, b.name, 'job');
  const byStamp = compareStamps(a.stamp, b.stamp);
  if (byStamp !== 0) return byStamp > 0 ? a : b;
  return compareCanonical(a, b) >= 0 ? a : b;
}

const STATUS_RANK = { pending: 0, running: 1, succeeded: 2, failed: 2, cancelled: 2 } as const;

/**
 * Order of subtask states: higher attempt first; within an attempt the status only
 * moves forward (pending < running < terminal); among terminal states the owner's
 * own report outranks another node's verdict (node-lost, cancelled), because the owner
 * knows what really happened. Stamp and content break the remaining ties.
 */
export function compareSubtasks(a: SubtaskRecord, b: SubtaskRecord): number {
  return compareAttempts(a, a.nodeId, b, b.nodeId);
}

/** The lattice shared by subtasks and steps; `runnerA`/`runnerB` is whose own report outranks a verdict. */
export function compareAttempts(a: AttemptState, runnerA: string, b: AttemptState, runnerB: string): number {
  if (a.attempt !== b.attempt) return a.attempt - b.attempt;
  const rank = STATUS_RANK[a.status] - STATUS_RANK[b.status];
  if (rank !== 0) return rank;
  const ownA = isTerminal(a.status) && a.reporter === runnerA ? 1 : 0;
  const ownB = isTerminal(b.status) && b.reporter === runnerB ? 1 : 0;
  if (ownA !== ownB) return ownA - ownB;
  const byStamp = compareStamps(a.stamp, b.stamp);
  if (byStamp !== 0) return byStamp;
  return compareCanonical(a, b);
}

export function mergeSubtask(a: SubtaskRecord, b: SubtaskRecord): SubtaskRecord {
  assertSameKey(subtaskKey(a.instanceId, a.nodeId), subtaskKey(b.instanceId, b.nodeId), 'subtask');
  return compareSubtasks(a, b) >= 0 ? a : b;
}

/**
 * A pre/post step merges like a subtask. Its runner is fixed by the leader that created
 * it; only when two leaders created it at once (both sides of a partition) do two runners
 * meet here, and the same total order picks one of them everywhere.
 */
export function mergeStep(a: StepRecord, b: StepRecord): StepRecord {
  assertSameKey(`${a.instanceId}/${a.step}`, `${b.instanceId}/${b.step}`, 'step');
  return compareAttempts(a, a.runnerNodeId, b, b.runnerNodeId) >= 0 ? a : b;
}

/**
 * An instance never changes after its creation, except that two leaders may create the
 * same instance id (a scheduled fire on both sides of a partition, guarantee 7): then the
 * earliest creation wins everywhere. The other side's targets are not lost: each got a
 * subtask record of its own, and the instance's targets include every subtask's node
 * (RecordStore.targetsOf). The merge picks one signed record and never builds a new one.
 */
export function mergeInstance(a: InstanceRecord, b: InstanceRecord): InstanceRecord {
  assertSameKey(a.id, b.id, 'instance');
  const byStamp = compareStamps(a.stamp, b.stamp);
  if (byStamp !== 0) return byStamp < 0 ? a : b;
  return compareCanonical(a, b) <= 0 ? a : b;
}

/** A cancel request is sticky: the earliest one wins (then stamp and content break ties). */
export function mergeCancel(a: CancelRecord, b: CancelRecord): CancelRecord {
  assertSameKey(a.instanceId, b.instanceId, 'cancel');
  if (a.requestedAtMs !== b.requestedAtMs) return a.requestedAtMs < b.requestedAtMs ? a : b;
  const byStamp = compareStamps(a.stamp, b.stamp);
  if (byStamp !== 0) return byStamp < 0 ? a : b;
  return compareCanonical(a, b) <= 0 ? a : b;
}

const RAN: Record<FireRecord['outcome'], number> = { created: 1, 'caught-up': 1, skipped: 0, missed: 0 };

/**
 * Two leaders may decide the same fire (guarantee 7): a decision that created an instance
 * wins (the instance exists), then the first decision; content breaks the last ties.
 */
export function mergeFire(a: FireRecord, b: FireRecord): FireRecord {
  assertSameKey(`${a.job}/${a.scheduledAtMs}`, `${b.job}/${b.scheduledAtMs}`, 'fire');
  if (RAN[a.outcome] !== RAN[b.outcome]) return RAN[a.outcome] > RAN[b.outcome] ? a : b;
  const byStamp = compareStamps(a.stamp, b.stamp);
  if (byStamp !== 0) return byStamp < 0 ? a : b;
  return compareCanonical(a, b) <= 0 ? a : b;
}

const NOTIFY_RANK: Record<NotifyRecord['status'], number> = { pending: 0, failed: 1, delivered: 2 };

/**
 * A webhook delivery: an end (delivered, then failed) outranks any pending state, whatever
 * its generation, so a takeover never reopens a delivery that ended; among pending states
 * the latest generation (the runner now), then the most attempts, then the stamp.
 */
export function mergeNotify(a: NotifyRecord, b: NotifyRecord): NotifyRecord {
  assertSameKey(`${a.instanceId}/${a.index}`, `${b.instanceId}/${b.index}`, 'notify');
  if (NOTIFY_RANK[a.status] !== NOTIFY_RANK[b.status]) return NOTIFY_RANK[a.status] > NOTIFY_RANK[b.status] ? a : b;
  if (a.generation !== b.generation) return a.generation > b.generation ? a : b;
  if (a.attempts !== b.attempts) return a.attempts > b.attempts ? a : b;
  const byStamp = compareStamps(a.stamp, b.stamp);
  if (byStamp !== 0) return byStamp > 0 ? a : b;
  return compareCanonical(a, b) >= 0 ? a : b;
}

/** Pause and resume of a rollout: the last writer wins. */
export function mergePause(a: PauseRecord, b: PauseRecord): PauseRecord {
  assertSameKey(a.instanceId, b.instanceId, 'pause');
  const byStamp = compareStamps(a.stamp, b.stamp);
  if (byStamp !== 0) return byStamp > 0 ? a : b;
  return compareCanonical(a, b) >= 0 ? a : b;
}

/** A member record is written only by its node: the newest incarnation, then the newest stamp, wins. */
export function mergeMember(a: MemberRecord, b: MemberRecord): MemberRecord {
  assertSameKey(a.nodeId, b.nodeId, 'member');
  if (a.incarnation !== b.incarnation) return a.incarnation > b.incarnation ? a : b;
  const byStamp = compareStamps(a.stamp, b.stamp);
  if (byStamp !== 0) return byStamp > 0 ? a : b;
  return compareCanonical(a, b) >= 0 ? a : b;
}

export function recordKey(r: AnyRecord): string {
  switch (r.kind) {
    case 'job':
      return `job:${r.record.name}`;
    case 'instance':
      return `instance:${r.record.id}`;
    case 'cancel':
      return `cancel:${r.record.instanceId}`;
    case 'subtask':
      return `subtask:${subtaskKey(r.record.instanceId, r.record.nodeId)}`;
    case 'step':
      return `step:${r.record.instanceId}/${r.record.step}`;
    case 'member':
      return `member:${r.record.nodeId}`;
    case 'pause':
      return `pause:${r.record.instanceId}`;
    case 'fire':
      return `fire:${r.record.job}/${r.record.scheduledAtMs}`;
    case 'notify':
      return `notify:${r.record.instanceId}/${r.record.index}`;
  }
}

/** The instance a record key (recordKey) belongs to: its instance, cancel, pause, subtask, step or webhook delivery; null for any other. */
export function instanceIdOfKey(key: string): string | null {
  const colon = key.indexOf(':');
  const kind = key.slice(0, colon);
  const rest = key.slice(colon + 1);
  if (kind === 'instance' || kind === 'cancel' || kind === 'pause') return rest;
  if (kind === 'subtask' || kind === 'step' || kind === 'notify') return rest.slice(0, rest.indexOf('/'));
  return null;
}

export function mergeRecord(a: AnyRecord, b: AnyRecord): AnyRecord {
  if (a.kind === 'job' && b.kind === 'job') return { kind: 'job', record: mergeJob(a.record, b.record) };
  if (a.kind === 'instance' && b.kind === 'instance') return { kind: 'instance', record: mergeInstance(a.record, b.record) };
  if (a.kind === 'cancel' && b.kind === 'cancel') return { kind: 'cancel', record: mergeCancel(a.record, b.record) };
  if (a.kind === 'subtask' && b.kind === 'subtask') return { kind: 'subtask', record: mergeSubtask(a.record, b.record) };
  if (a.kind === 'step' && b.kind === 'step') return { kind: 'step', record: mergeStep(a.record, b.record) };
  if (a.kind === 'member' && b.kind === 'member') return { kind: 'member', record: mergeMember(a.record, b.record) };
  if (a.kind === 'pause' && b.kind === 'pause') return { kind: 'pause', record: mergePause(a.record, b.record) };
  if (a.kind === 'fire' && b.kind === 'fire') return { kind: 'fire', record: mergeFire(a.record, b.record) };
  if (a.kind === 'notify' && b.kind === 'notify') return { kind: 'notify', record: mergeNotify(a.record, b.record) };
  throw new MergeInvariantError(`cannot merge a ${a.kind} with a ${b.kind}`);
}
