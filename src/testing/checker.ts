// Checks a broadcast history against the guarantees (DESIGN.md 1-5). Commands under
// test append "nodeId instanceId attempt" to a history file each time they really
// start; the checker compares those lines with the final instance records.
import type { InstanceView } from '../api/views.js';

export interface HistoryLine {
  nodeId: string;
  instanceId: string;
  attempt: number;
}

export interface CheckInput {
  history: HistoryLine[];
  instances: InstanceView[];
  /** Nodes that stayed up from the creation of the instances to the end of the run. */
  survivors: ReadonlySet<string>;
  /** Instances expected in `instances` (each must exist and have ended). */
  expectedInstances?: string[];
  /** Every release of a subtask by a leader (the simulator sees them); checked: none released twice. */
  releases?: { instanceId: string; nodeId: string; atMs: number }[];
  /** node-lost verdicts with their time: the cluster counts a subtask ended from its first verdict on. */
  verdicts?: { instanceId: string; nodeId: string; atMs: number }[];
  /**
   * When more than one node believed itself the leader (a partition, the moment a failover
   * settles): two leaders may each steer a rollout then (guarantee 7), so the rollout checks
   * skip instances that overlap such a time. Guarantees 1-5 are checked for every instance.
   */
  contested?: { fromMs: number; toMs: number }[];
  /** How far apart the nodes' clocks may be: the rollout checks compare times written by different nodes. */
  clockToleranceMs?: number;
}

/** Parses history lines; a torn last line (a process killed mid-write) is ignored. */
export function parseHistory(text: string): HistoryLine[] {
  const lines: HistoryLine[] = [];
  for (const raw of text.split('\n')) {
    const [nodeId, instanceId, attempt, extra] = raw.trim().split(/\s+/);
    if (!nodeId || !instanceId || !attempt || extra !== undefined || !/^\d+$/.test(attempt)) continue;
    lines.push({ nodeId, instanceId, attempt: Number(attempt) });
  }
  return lines;
}

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

/** Returns every violation found; an empty list means the run kept the guarantees. */
export function checkBroadcasts(input: CheckInput): string[] {
  const violations: string[] = [];
  const byId = new Map(input.instances.map((i) => [i.id, i]));
  const runs = new Map<string, number>();
  for (const line of input.history) {
    const key = `${line.instanceId} ${line.nodeId} ${line.attempt}`;
    runs.set(key, (runs.get(key) ?? 0) + 1);
  }
  for (const [key, count] of runs) if (count > 1) violations.push(`ran ${count} times: (instance node attempt) ${key}`);

  for (const line of input.history) {
    const instance = byId.get(line.instanceId);
    if (!instance) continue;
    if (!instance.targets.includes(line.nodeId)) {
      violations.push(`node ${line.nodeId} ran instance ${line.instanceId}, which it is not a target of`);
    }
    const subtask = instance.subtasks.find((s) => s.nodeId === line.nodeId);
    if (subtask && line.attempt > subtask.attempt) {
      violations.push(`node ${line.nodeId} ran attempt ${line.attempt} of ${line.instanceId}, beyond the recorded attempt ${subtask.attempt}`);
    }
  }

  for (const id of input.expectedInstances ?? []) if (!byId.has(id)) violations.push(`instance ${id} is missing`);
  for (const instance of input.instances) violations.push(...checkInstance(instance, runs, input.survivors));
  for (const instance of input.instances) if (instance.rollout) violations.push(...checkRollout(instance, input));
  return violations;
}

const ms = (iso: string | null): number | null => (iso === null ? null : Date.parse(iso));

/**
 * The rollout's invariants (issue 11), from the records' times: never more than
 * --max-parallel subtasks released and unended at once; no wave released before every
 * subtask of the earlier waves ended; no release after the rollout was aborted; no subtask
 * released twice. A subtask counts as ended from its end or its first node-lost verdict,
 * whichever came first (a thawed owner's own later report does not reopen the slot the
 * leader already reused). Skipped for an instance that overlapped a partition.
 */
/** Whether the instance's life overlapped a time when two leaders could steer it (the rollout checks skip it then). */
export function rolloutContested(instance: InstanceView, input: Pick<CheckInput, 'releases' | 'contested' | 'clockToleranceMs'>): boolean {
  const created = ms(instance.createdAt) as number;
  // A leader that lost a record may still act on the instance after others saw it end: up to its last release.
  const lastRelease = Math.max(0, ...(input.releases ?? []).filter((r) => r.instanceId === instance.id).map((r) => r.atMs));
  const finished = Math.max(ms(instance.finishedAt) ?? Number.POSITIVE_INFINITY, lastRelease);
  const skew = input.clockToleranceMs ?? 0;
  return (input.contested ?? []).some((p) => p.fromMs <= finished + skew && p.toMs >= created - skew);
}

export function checkRollout(instance: InstanceView, input: Pick<CheckInput, 'releases' | 'verdicts' | 'contested' | 'clockToleranceMs'>): string[] {
  const out: string[] = [];
  const skew = input.clockToleranceMs ?? 0;
  const rollout = instance.rollout;
  if (!rollout || rolloutContested(instance, input)) return out;
  const firstVerdict = new Map<string, number>();
  for (const v of input.verdicts ?? []) {
    if (v.instanceId !== instance.id) continue;
    firstVerdict.set(v.nodeId, Math.min(firstVerdict.get(v.nodeId) ?? Number.POSITIVE_INFINITY, v.atMs));
  }
  const endOf = (s: InstanceView['subtasks'][number]) => Math.min(ms(s.finishedAt) ?? Number.POSITIVE_INFINITY, firstVerdict.get(s.nodeId) ?? Number.POSITIVE_INFINITY);
  const released = instance.subtasks.filter((s) => s.releasedAt !== null);

  const times = new Map<string, number>();
  for (const r of input.releases ?? []) {
    if (r.instanceId !== instance.id) continue;
    const key = r.nodeId;
    if (times.has(key)) out.push(`${instance.id}/${r.nodeId} released twice (at ${times.get(key)} and ${r.atMs})`);
    times.set(key, r.atMs);
  }

  if (rollout.parallelLimit !== null) {
    const events = released.flatMap((s) => [
      { at: ms(s.releasedAt) as number, delta: 1, nodeId: s.nodeId },
      { at: endOf(s) - skew, delta: -1, nodeId: s.nodeId },
    ]);
    events.sort((a, b) => a.at - b.at || a.delta - b.delta); // an end at the same ms frees its slot first
    let open = 0;
    for (const e of events) {
      open += e.delta;
      if (open > rollout.parallelLimit) {
        out.push(`${instance.id}: ${open} subtasks released and unended at ${new Date(e.at).toISOString()} (at ${e.nodeId}'s release), over --max-parallel ${rollout.parallelLimit}`);
        break;
      }
    }
  }

  const abortedAt = Math.min(...instance.subtasks.filter((s) => s.reason === 'aborted').map((s) => ms(s.finishedAt) ?? Number.POSITIVE_INFINITY));
  for (const s of released) {
    if ((ms(s.releasedAt) as number) > abortedAt + skew) out.push(`${instance.id}/${s.nodeId} released at ${s.releasedAt}, after the rollout was aborted at ${new Date(abortedAt).toISOString()}`);
  }
  for (const s of instance.subtasks) {
    if (s.reason === 'aborted' && (s.released || s.startedAt !== null)) out.push(`${instance.id}/${s.nodeId} is aborted but was released or started`);
  }

  for (const s of released) {
    const earlier = instance.subtasks.filter((e) => e.wave < s.wave);
    const lastEnd = Math.max(...earlier.map(endOf));
    if ((ms(s.releasedAt) as number) < lastEnd - skew) {
      out.push(`${instance.id}/${s.nodeId} of wave ${s.wave} released at ${s.releasedAt}, before wave ${s.wave - 1} had ended (${Number.isFinite(lastEnd) ? new Date(lastEnd).toISOString() : 'never'})`);
    }
  }
  return out;
}

function checkInstance(instance: InstanceView, runs: Map<string, number>, survivors: ReadonlySet<string>): string[] {
  const out: string[] = [];
  if (!FINISHED.has(instance.status)) out.push(`instance ${instance.id} did not end (status ${instance.status})`);
  const owners = instance.subtasks.map((s) => s.nodeId);
  if (new Set(owners).size !== owners.length) out.push(`instance ${instance.id} has two subtasks for one node`);
  if ([...owners].sort().join() !== [...instance.targets].sort().join()) {
    out.push(`instance ${instance.id}: subtask owners ${owners.join(',')} differ from its targets ${instance.targets.join(',')}`);
  }
  const preFailed = instance.pre !== null && instance.pre !== undefined && instance.pre.status !== 'succeeded';
  for (const subtask of instance.subtasks) {
    const ran = (attempt: number) => runs.get(`${instance.id} ${subtask.nodeId} ${attempt}`) ?? 0;
    if (preFailed) {
      if (ran(1) > 0) out.push(`${instance.id}/${subtask.nodeId} ran although the pre step did not succeed`);
      continue;
    }
    if (subtask.reason === 'node-lost' && survivors.has(subtask.nodeId)) {
      out.push(`${instance.id}/${subtask.nodeId} is node-lost although the node stayed up`);
    }
    if (!survivors.has(subtask.nodeId)) continue; // a killed node may or may not have started it
    for (let attempt = 1; attempt <= subtask.attempt; attempt++) {
      const expectRun = !(attempt === subtask.attempt && neverStarted(subtask.status, subtask.reason, subtask.startedAt));
      if (expectRun && ran(attempt) !== 1) {
        out.push(`${instance.id}/${subtask.nodeId} attempt ${attempt} ran ${ran(attempt)} times on a surviving node (expected once)`);
      }
    }
  }
  return out;
}

/** A final attempt that legitimately never started: cancelled while pending, or aborted before its release. */
function neverStarted(status: string, reason: string | null, startedAt: string | null): boolean {
  return status === 'cancelled' && (reason === 'cancelled' || reason === 'aborted') && startedAt === null;
}

/** The most subtasks of an instance that ran at once, from their recorded start and end times (an unended one runs on). */
export function peakRunning(view: Pick<InstanceView, 'subtasks'>): number {
  const events = view.subtasks
    .filter((s) => s.startedAt !== null)
    .flatMap((s) => [
      { at: Date.parse(s.startedAt as string), d: 1 },
      { at: s.finishedAt ? Date.parse(s.finishedAt) : Number.POSITIVE_INFINITY, d: -1 },
    ]);
  events.sort((a, b) => a.at - b.at || a.d - b.d); // an end at the same ms as a start frees its slot first
  let open = 0;
  let peak = 0;
  for (const e of events) peak = Math.max(peak, (open += e.d));
  return peak;
}
