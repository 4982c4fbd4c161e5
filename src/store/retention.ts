// Bounded history: finished instances beyond the newest N of each job (and beyond the
// newest M ad-hoc runs, which have a bound of their own) are removed
// with their subtasks and steps, and then, while the node holds more records than its
// bound, the oldest finished instances of any job. Every node applies the same rules to
// the same replicated records, so they prune the same instances. Unfinished instances are
// never removed: their work is not done (a bound they exceed is shown by chorus status).
import { isInstanceFinished } from '../records/status.js';
import type { RecordStore } from './record-store.js';
import type { FireRecord } from '../records/types.js';
import { ADHOC_JOB } from '../records/ids.js';

interface Finished {
  id: string;
  createdAtMs: number;
}

const newestFirst = (a: Finished, b: Finished) => b.createdAtMs - a.createdAtMs || a.id.localeCompare(b.id);

/** `keepAdhoc`: finished ad-hoc runs kept, all together (default: as many as a job's). */
export function pruneFinishedInstances(store: RecordStore, keepPerJob: number, maxRecords = Number.POSITIVE_INFINITY, keepAdhoc = keepPerJob): string[] {
  const byJob = new Map<string, Finished[]>();
  for (const instance of store.instances()) {
    if (!isInstanceFinished(store.statusOf(instance))) continue;
    const list = byJob.get(instance.job) ?? [];
    list.push({ id: instance.id, createdAtMs: instance.createdAtMs });
    byJob.set(instance.job, list);
  }
  const removed: string[] = [];
  const kept: Finished[] = [];
  for (const [job, list] of byJob) {
    const keep = job === ADHOC_JOB ? keepAdhoc : keepPerJob;
    list.sort(newestFirst);
    for (const { id } of list.slice(keep)) {
      store.removeInstance(id);
      removed.push(id);
    }
    kept.push(...list.slice(0, keep));
  }
  if (store.size() > maxRecords) {
    kept.sort(newestFirst);
    while (store.size() > maxRecords && kept.length > 0) {
      const { id } = kept.pop() as Finished;
      store.removeInstance(id);
      removed.push(id);
    }
  }
  return removed;
}

/**
 * Fire decisions (`chorus job history`): the newest `keepPerJob` of each job's current
 * definition are kept; those of a deleted job, or of an earlier definition of the name
 * (deleted and added again), go. Returns how many were removed.
 */
export function pruneFires(store: RecordStore, keepPerJob: number): number {
  const byJob = new Map<string, FireRecord[]>();
  for (const fire of store.fires()) {
    const list = byJob.get(fire.job) ?? [];
    list.push(fire);
    byJob.set(fire.job, list);
  }
  const removed: FireRecord[] = [];
  const gone: FireRecord[] = [];
  const below = new Map<string, number>();
  for (const [name, list] of byJob) {
    const job = store.job(name);
    const live = job && !job.deleted ? job.createdAtMs : null;
    const current = list.filter((f) => f.jobCreatedAtMs === live);
    gone.push(...list.filter((f) => f.jobCreatedAtMs !== live));
    current.sort((a, b) => b.scheduledAtMs - a.scheduledAtMs);
    const old = current.slice(keepPerJob);
    removed.push(...old);
    if (old.length > 0) below.set(name, (old[0] as FireRecord).scheduledAtMs + 1);
  }
  removed.push(...gone);
  store.removeFires(removed, below, gone);
  return removed.length;
}
