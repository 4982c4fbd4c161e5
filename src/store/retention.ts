// Bounded history: finished instances beyond the newest N of each job are removed
// with their subtasks and steps. Every node applies the same rule to the same
// replicated records, so they prune the same instances.
import { isInstanceFinished } from '../records/status.js';
import type { RecordStore } from './record-store.js';

export function pruneFinishedInstances(store: RecordStore, keepPerJob: number): string[] {
  const byJob = new Map<string, { id: string; createdAtMs: number }[]>();
  for (const instance of store.instances()) {
    if (!isInstanceFinished(store.statusOf(instance))) continue;
    const list = byJob.get(instance.job) ?? [];
    list.push({ id: instance.id, createdAtMs: instance.createdAtMs });
    byJob.set(instance.job, list);
  }
  const removed: string[] = [];
  for (const list of byJob.values()) {
    list.sort((a, b) => b.createdAtMs - a.createdAtMs || a.id.localeCompare(b.id));
    for (const { id } of list.slice(keepPerJob)) {
      store.removeInstance(id);
      removed.push(id);
    }
  }
  return removed;
}
