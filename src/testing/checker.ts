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
  return violations;
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

/** A final attempt that legitimately never started: cancelled while pending. */
function neverStarted(status: string, reason: string | null, startedAt: string | null): boolean {
  return status === 'cancelled' && reason === 'cancelled' && startedAt === null;
}
