import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { FireRecord, InstanceRecord, JobRecord, JobSpec, SubtaskRecord } from '../records/types.js';
import { systemClock } from '../core/clock.js';
import { RecordStore } from './record-store.js';
import { pruneFinishedInstances, pruneFires } from './retention.js';
import { ADHOC_JOB } from '../records/ids.js';
import { jobSpec } from '../testing/fixtures.js';

const spec: JobSpec = jobSpec();
const stamp = (wallMs: number) => ({ wallMs, counter: 0, nodeId: 'n1' });

function instance(id: string, createdAtMs: number, job = 'backup'): InstanceRecord {
  return { id, job, spec, trigger: 'manual', scheduledAtMs: null, createdAtMs, targets: ['n1'], failure: null, stamp: stamp(createdAtMs), sig: '' };
}

function subtask(instanceId: string, status: SubtaskRecord['status'], wallMs: number): SubtaskRecord {
  return { instanceId, nodeId: 'n1', attempt: 1, status, reason: null, exitCode: status === 'succeeded' ? 0 : null, startedAtMs: wallMs, finishedAtMs: status === 'succeeded' ? wallMs : null, notBeforeMs: null, history: [], reporter: 'n1', stamp: stamp(wallMs), sig: '' };
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function storeWith(ids: { id: string; at: number; done: boolean; job?: string }[]): Promise<{ store: RecordStore; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-retention-'));
  dirs.push(dir);
  const store = RecordStore.inDirectory(dir, systemClock, 1);
  await store.load();
  for (const { id, at, done, job } of ids) {
    store.apply([
      { kind: 'instance', record: instance(id, at, job) },
      { kind: 'subtask', record: subtask(id, done ? 'succeeded' : 'running', at + 1) },
    ]);
  }
  return { store, dir };
}

describe('retention', () => {
  it('removes finished instances beyond the newest N of each job, never unfinished ones', async () => {
    const { store } = await storeWith([
      { id: 'a1', at: 1000, done: true },
      { id: 'a2', at: 2000, done: true },
      { id: 'a3', at: 3000, done: true },
      { id: 'a0', at: 500, done: false },
      { id: 'b1', at: 1000, done: true, job: 'other' },
    ]);
    expect(pruneFinishedInstances(store, 2).sort()).toEqual(['a1']);
    expect(store.instance('a1')).toBeUndefined();
    expect(store.subtask('a1', 'n1')).toBeUndefined();
    expect(store.instance('a0')).toBeDefined();
    expect(store.instance('b1')).toBeDefined();
    expect(pruneFinishedInstances(store, 2)).toEqual([]);
  });

  it('ad-hoc runs have a bound of their own: a burst of them neither goes by a job\'s bound nor pushes out the jobs\' runs', async () => {
    const adhoc = Array.from({ length: 8 }, (_, i) => ({ id: `h${i}`, at: 3000 + i, done: true, job: ADHOC_JOB }));
    const { store } = await storeWith([{ id: 'a1', at: 1000, done: true }, { id: 'a2', at: 2000, done: true }, ...adhoc]);
    expect(pruneFinishedInstances(store, 2, Number.POSITIVE_INFINITY, 5).sort()).toEqual(['h0', 'h1', 'h2']);
    expect(store.instances().map((i) => i.id).sort()).toEqual(['a1', 'a2', 'h3', 'h4', 'h5', 'h6', 'h7']);
  });

  it('never takes a pruned instance back from a peer, also after a restart', async () => {
    const { store, dir } = await storeWith([
      { id: 'a1', at: 1000, done: true },
      { id: 'a2', at: 2000, done: true },
    ]);
    pruneFinishedInstances(store, 1);
    // A stale peer still has a1 with the subtask pending: taking it back would run it again.
    expect(store.apply([{ kind: 'instance', record: instance('a1', 1000) }, { kind: 'subtask', record: subtask('a1', 'pending', 999) }])).toEqual([]);
    await store.flush();
    const reloaded = RecordStore.inDirectory(dir, systemClock, 1);
    await reloaded.load();
    expect(reloaded.instance('a1')).toBeUndefined();
    expect(reloaded.apply([{ kind: 'subtask', record: subtask('a1', 'pending', 999) }])).toEqual([]);
    expect(reloaded.instance('a2')).toBeDefined();
  });

  it('keeps the node within its bound of records: the oldest finished instances of any job go first, unfinished ones never', async () => {
    // Two records each (an instance and its subtask): 10 records.
    const { store } = await storeWith([
      { id: 'a1', at: 1000, done: true },
      { id: 'b1', at: 1500, done: true, job: 'other' },
      { id: 'a0', at: 500, done: false },
      { id: 'a2', at: 2000, done: true },
      { id: 'b2', at: 2500, done: true, job: 'other' },
    ]);
    expect(store.size()).toBe(10);
    expect(pruneFinishedInstances(store, 200, 10)).toEqual([]);
    expect(pruneFinishedInstances(store, 200, 5)).toEqual(['a1', 'b1', 'a2']);
    expect(store.size()).toBe(4);
    expect(store.instances().map((i) => i.id).sort()).toEqual(['a0', 'b2']);
    // Below what unfinished work holds: the finished go, the unfinished stay (the bound is exceeded, not the work lost).
    expect(pruneFinishedInstances(store, 200, 1)).toEqual(['b2']);
    expect(store.instances().map((i) => i.id)).toEqual(['a0']);
    expect(store.size()).toBe(2);
  });
});

describe('pruneFires', () => {
  const fire = (job: string, jobCreatedAtMs: number, scheduledAtMs: number): FireRecord => ({ job, jobCreatedAtMs, scheduledAtMs, outcome: 'created', reason: null, instanceId: null, leader: 'n1', decidedAtMs: scheduledAtMs, stamp: stamp(scheduledAtMs), sig: '' });
  const jobRecord = (name: string, createdAtMs: number, deleted = false): JobRecord => ({ name, spec: deleted ? null : spec, enabled: true, deleted, createdAtMs, stamp: stamp(createdAtMs), sig: '' });

  it('keeps the newest fires of each job, drops those of deleted or replaced definitions, and takes no pruned fire back', () => {
    const store = RecordStore.inMemory(systemClock);
    store.apply([
      { kind: 'job', record: jobRecord('tick', 100) },
      { kind: 'job', record: jobRecord('gone', 100, true) },
      ...[1, 2, 3, 4, 5].map((i): { kind: 'fire'; record: FireRecord } => ({ kind: 'fire', record: fire('tick', 100, 1000 * i) })),
      { kind: 'fire', record: fire('tick', 50, 500) }, // an earlier definition of the name
      { kind: 'fire', record: fire('gone', 100, 1000) },
    ]);
    expect(pruneFires(store, 3)).toBe(4);
    expect(store.fires().map((f) => `${f.job}@${f.scheduledAtMs}`).sort()).toEqual(['tick@3000', 'tick@4000', 'tick@5000']);
    expect(store.lastFireOf('tick', 100)).toBe(5000);
    expect(store.lastFireOf('gone', 100)).toBeNull();
    expect(store.lastFireOf('tick', 50)).toBeNull();
    // A peer that has not pruned yet sends an old one again: not taken.
    expect(store.apply([{ kind: 'fire', record: fire('tick', 100, 2000) }])).toEqual([]);
  });
});
