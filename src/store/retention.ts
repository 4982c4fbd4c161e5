// Bounded history: finished instances beyond the newest N of each job are removed
// with their subtasks and steps, and then, while the node holds more records than its
// bound, the oldest finished instances of any job. Every node applies the same rules to
// the same replicated records, so they prune the same instances. Unfinished instances are
// never removed: their work is not done (a bound they exceed is shown by chorus status).
import { isInstanceFinished } from '../records/status.js';
import type { RecordStore } from './record-store.js';

interface Finished {
  id: string;
  createdAtMs: number;
}

const newestFirst = (a: Finished, b: Finished) => b.createdAtMs - a.createdAtMs || a.id.localeCompare(b.id);

export function pruneFinishedInstances(store: RecordStore, keepPerJob: number, maxRecords = Number.POSITIVE_INFINITY): string[] {
  const byJob = new Map<string, Finished[]>();
  for (const instance of store.instances()) {
    if (!isInstanceFinished(store.statusOf(instance))) continue;
    const list = byJob.get(instance.job) ?? [];
    list.push({ id: instance.id, createdAtMs: instance.createdAtMs });
    byJob.set(instance.job, list);
  }
  const removed: string[] = [];
  const kept: Finished[] = [];
  for (const list of byJob.values()) {
    list.sort(newestFirst);
    for (const { id } of list.slice(keepPerJob)) {
      store.removeInstance(id);
      removed.push(id);
    }
    kept.push(...list.slice(0, keepPerJob));
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
