// The record store: merging and change reports, the indexes the daemon queries, and
// durable, batched persistence that refuses (and never overwrites) a corrupt file.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AnyRecord, InstanceRecord, JobRecord, JobSpec, MemberRecord, Stamp, SubtaskRecord } from '../records/types.js';
import { DataFileError, DurableJsonFile, StorageWriteError } from './durable-file.js';
import { mountSmallDisk, smallDiskProblem, type SmallDisk } from '../testing/small-disk.js';
import { recordKey } from '../records/merge.js';
import { systemClock } from '../core/clock.js';
import { MAX_REAPED_MEMBERS, RecordStore } from './record-store.js';
import { MemoryPersister, StateFilePersister } from './state-file.js';
import { FakeClock } from '../testing/fake-clock.js';
import { jobSpec } from '../testing/fixtures.js';
import { firstAttempt, newSubtask } from '../scheduler/leader.js';
import { waitFor } from '../testing/wait.js';
import { SimKeyring } from '../testing/sim-keys.js';
import { authorityProblem } from '../records/signature.js';

const spec: JobSpec = jobSpec({ cmd: 'echo hi' });

const stamp = (wallMs: number, counter = 0, nodeId = 'n1'): Stamp => ({ wallMs, counter, nodeId });

function job(name: string, wallMs = 1000, extra: Partial<JobRecord> = {}): AnyRecord {
  return { kind: 'job', record: { name, spec, enabled: true, deleted: false, createdAtMs: 1000, stamp: stamp(wallMs), sig: 'sig', ...extra } };
}

function instance(id: string, targets: string[] = ['n1', 'n2'], extra: Partial<InstanceRecord> = {}): AnyRecord {
  return {
    kind: 'instance',
    record: {
      id,
      job: 'backup',
      spec,
      trigger: 'manual',
      scheduledAtMs: null,
      createdAtMs: 1000,
      targets,
      failure: null,
      stamp: stamp(1000),
      sig: 'sig',
      ...extra,
    },
  };
}

function subtask(instanceId: string, nodeId: string, extra: Partial<SubtaskRecord> = {}): AnyRecord {
  return {
    kind: 'subtask',
    record: { ...newSubtask(instanceId, nodeId, stamp(1000)), ...extra },
  };
}

function member(nodeId: string, incarnation = 1, extra: Partial<MemberRecord> = {}): AnyRecord {
  return { kind: 'member', record: { nodeId, name: nodeId, tags: {}, addrs: [], incarnation, left: false, stamp: stamp(1000, 0, nodeId), sig: 'sig', ...extra } };
}

function cancel(instanceId: string, requestedAtMs: number, nodeId = 'n2'): AnyRecord {
  return { kind: 'cancel', record: { instanceId, requestedAtMs, stamp: stamp(requestedAtMs, 0, nodeId), sig: 'sig' } };
}

/** What is on disk, as a reload would see it: the snapshot (if any) with the logged changes over it, the last version of each record winning. */
async function readState(snapshotPath: string): Promise<{ version: number; records: AnyRecord[] }> {
  const logPath = snapshotPath.replace(/state\.json$/, 'state.log');
  const snapshot = await readFile(snapshotPath, 'utf8').then((t) => JSON.parse(t) as { version: number; records: AnyRecord[]; pruned?: string[] }, () => ({ version: 1, records: [] as AnyRecord[] }));
  const byKey = new Map(snapshot.records.map((r) => [recordKey(r), r]));
  const log = await readFile(logPath, 'utf8').catch(() => '');
  for (const line of log.split('\n').filter(Boolean)) {
    const change = JSON.parse(line) as { records: AnyRecord[]; pruned: string[] };
    for (const r of change.records) byKey.set(recordKey(r), r);
    for (const id of change.pruned) for (const [key, r] of byKey) if ((r.kind === 'instance' ? r.record.id : (r.record as { instanceId?: string }).instanceId) === id) byKey.delete(key);
  }
  return { version: snapshot.version, records: [...byKey.values()] };
}


let dir: string;
const stores: RecordStore[] = [];

function newStore(flushDelayMs = 60_000): RecordStore {
  const store = RecordStore.inDirectory(dir, systemClock, flushDelayMs);
  stores.push(store);
  return store;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chorus-store-'));
});

afterEach(async () => {
  vi.restoreAllMocks();
  for (const store of stores.splice(0)) await store.close().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

describe('apply and onChange', () => {
  it('reports only the records that changed the state', async () => {
    const store = newStore();
    await store.load();
    const reports: AnyRecord[][] = [];
    store.onChange((records) => reports.push(records));

    const first = store.apply([job('backup', 1000), member('n1')]);
    expect(first.map((r) => r.kind)).toEqual(['job', 'member']);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toEqual(first);

    // The same record again: nothing changed, nothing reported.
    expect(store.apply([job('backup', 1000)])).toEqual([]);
    // An older write of the same job loses the merge: nothing reported.
    expect(store.apply([job('backup', 999, { enabled: false })])).toEqual([]);
    // A duplicate that is a different object but equal content: nothing reported.
    expect(store.apply([structuredClone(member('n1'))])).toEqual([]);
    expect(reports).toHaveLength(1);
    expect(store.job('backup')?.enabled).toBe(true);

    // A newer write wins and is reported, alone, with its merged value.
    const newer = store.apply([job('backup', 2000, { enabled: false }), job('backup', 500)]);
    expect(newer).toHaveLength(1);
    expect(newer[0]).toMatchObject({ kind: 'job', record: { name: 'backup', enabled: false, stamp: { wallMs: 2000 } } });
    expect(reports).toHaveLength(2);
    expect(store.job('backup')?.stamp.wallMs).toBe(2000);
  });

  it('reports the merged record, not the incoming one: the earliest creation and the earliest cancel stick', async () => {
    const store = newStore();
    await store.load();
    store.apply([instance('i1', ['n1']), cancel('i1', 5000)]);
    const later = store.apply([instance('i1', ['n1'], { stamp: stamp(2000) }), cancel('i1', 6000)]);
    expect(later).toEqual([]);
    const changed = store.apply([cancel('i1', 3000, 'n3')]);
    expect(changed).toMatchObject([{ kind: 'cancel', record: { requestedAtMs: 3000, stamp: { nodeId: 'n3' } } }]);
    expect(store.cancelOf('i1')?.requestedAtMs).toBe(3000);
    expect(store.instance('i1')?.stamp.wallMs).toBe(1000);
  });

  it("counts a node that holds a subtask of an instance among its targets (the other side's creation of it)", async () => {
    const store = newStore();
    await store.load();
    store.apply([instance('i1', ['n2', 'n4']), subtask('i1', 'n2'), subtask('i1', 'n4')]);
    const created = store.instance('i1') as InstanceRecord;
    expect(store.targetsOf(created)).toBe(created.targets); // nothing added: the same array
    store.apply([subtask('i1', 'n3'), subtask('i1', 'n1')]);
    expect(store.targetsOf(created)).toEqual(['n1', 'n2', 'n3', 'n4']);
    expect(store.progressOf(created).counts.pending).toBe(4);
  });

  it('statusOf, kept up to date change by change, always equals the status derived from every record (property)', () => {
    const nodes = ['n1', 'n2', 'n3', 'n4'];
    const change = fc.oneof(
      fc.record({ kind: fc.constant('instance' as const), targets: fc.subarray(nodes), wallMs: fc.integer({ min: 1, max: 5 }) }),
      fc.record({ kind: fc.constant('subtask' as const), node: fc.constantFrom(...nodes), attempt: fc.integer({ min: 1, max: 2 }), status: fc.constantFrom('pending' as const, 'running' as const, 'succeeded' as const, 'failed' as const, 'cancelled' as const) }),
      fc.record({ kind: fc.constant('cancel' as const) }),
      fc.record({ kind: fc.constant('remove' as const) }),
    );
    fc.assert(
      fc.property(fc.array(change, { maxLength: 30 }), (changes) => {
        const store = RecordStore.inMemory(systemClock, 60_000);
        let wall = 1000;
        for (const c of changes) {
          if (c.kind === 'instance') store.apply([instance('i1', [...c.targets].sort(), { stamp: stamp(c.wallMs) })]);
          else if (c.kind === 'subtask') store.apply([subtask('i1', c.node, { attempt: c.attempt, status: c.status, reporter: c.node, stamp: stamp((wall += 1), 0, c.node) })]);
          else if (c.kind === 'cancel') store.apply([cancel('i1', (wall += 1))]);
          else store.removeInstance('i1');
          const held = store.instance('i1');
          if (held) expect(store.statusOf(held)).toBe(store.progressOf(held).status);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('holds() tells a record it has from one that differs, even only in its signature', async () => {
    const store = newStore();
    await store.load();
    const held = job('backup');
    store.apply([held]);
    expect(store.holds(structuredClone(held))).toBe(true);
    expect(store.holds({ kind: 'job', record: { ...(held.record as JobRecord), sig: 'other' } })).toBe(false);
    expect(store.holds(job('other'))).toBe(false);
  });

  it('does not call listeners when nothing changed', async () => {
    const store = newStore();
    await store.load();
    store.apply([subtask('i1', 'n1', { status: 'running' })]);
    const listener = vi.fn();
    store.onChange(listener);
    // A pending state of the same attempt is behind running: ignored.
    expect(store.apply([subtask('i1', 'n1', { status: 'pending', stamp: stamp(9999) })])).toEqual([]);
    expect(store.apply([])).toEqual([]);
    expect(listener).not.toHaveBeenCalled();
    expect(store.subtask('i1', 'n1')?.status).toBe('running');
  });
});

describe('indexes', () => {
  it('answers jobs, instances, subtasks and members', async () => {
    const store = newStore();
    await store.load();
    store.apply([
      job('backup'),
      job('report'),
      instance('i1', ['n1', 'n2']),
      instance('i2', ['n3']),
      subtask('i1', 'n1'),
      subtask('i1', 'n2', { reporter: 'n2' }),
      subtask('i2', 'n3', { reporter: 'n3' }),
      member('n1'),
      member('n2'),
    ]);

    expect(store.size()).toBe(9);
    expect(store.job('backup')?.name).toBe('backup');
    expect(store.job('nope')).toBeUndefined();
    expect(store.jobs().map((j) => j.name).sort()).toEqual(['backup', 'report']);
    expect(store.instance('i1')?.targets).toEqual(['n1', 'n2']);
    expect(store.instance('i3')).toBeUndefined();
    expect(store.instances().map((i) => i.id).sort()).toEqual(['i1', 'i2']);
    expect([...store.subtasksOf('i1').keys()].sort()).toEqual(['n1', 'n2']);
    expect([...store.subtasksOf('i2').keys()]).toEqual(['n3']);
    expect(store.subtasksOf('missing').size).toBe(0);
    expect(store.subtask('i1', 'n2')?.reporter).toBe('n2');
    expect(store.subtask('i2', 'n1')).toBeUndefined();
    expect(store.members().map((m) => m.nodeId).sort()).toEqual(['n1', 'n2']);
    expect(store.member('n2')?.incarnation).toBe(1);
    expect(store.get('job:backup')?.kind).toBe('job');
    expect(store.get('subtask:i1/n1')?.kind).toBe('subtask');
  });

  it('keeps the subtask index on the merged (winning) state', async () => {
    const store = newStore();
    await store.load();
    store.apply([subtask('i1', 'n1', { status: 'running', startedAtMs: 1500 })]);
    store.apply([subtask('i1', 'n1', { status: 'succeeded', exitCode: 0, startedAtMs: 1500, finishedAtMs: 1600, stamp: stamp(1600) })]);
    expect(store.subtasksOf('i1').get('n1')?.status).toBe('succeeded');
    // A stale running report arriving late does not move it back.
    store.apply([subtask('i1', 'n1', { status: 'running', stamp: stamp(1700) })]);
    expect(store.subtask('i1', 'n1')?.status).toBe('succeeded');
    expect(store.subtasksOf('i1').get('n1')?.exitCode).toBe(0);
    // A member with a newer incarnation replaces the old one.
    store.apply([member('n2', 1, { name: 'old' }), member('n2', 2, { name: 'new', stamp: stamp(10, 0, 'n2') })]);
    expect(store.member('n2')).toMatchObject({ incarnation: 2, name: 'new' });
  });

  it('removeInstance removes the instance and its subtasks, and persists that', async () => {
    const store = newStore();
    await store.load();
    store.apply([instance('i1'), subtask('i1', 'n1'), subtask('i1', 'n2'), instance('i2', ['n1']), subtask('i2', 'n1'), job('backup')]);
    store.removeInstance('i1');
    expect(store.instance('i1')).toBeUndefined();
    expect(store.subtasksOf('i1').size).toBe(0);
    expect(store.subtask('i1', 'n1')).toBeUndefined();
    expect(store.get('subtask:i1/n2')).toBeUndefined();
    expect(store.instances().map((i) => i.id)).toEqual(['i2']);
    expect(store.subtask('i2', 'n1')).toBeDefined();
    expect(store.size()).toBe(3);

    await store.flush();
    const keys = (await readState(store.path)).records.map((r) => `${r.kind}:${'id' in r.record ? r.record.id : 'name' in r.record ? r.record.name : ''}`);
    expect(keys).not.toContain('instance:i1');
    expect((await readState(store.path)).records).toHaveLength(3);

    const reloaded = newStore();
    await reloaded.load();
    expect(reloaded.instance('i1')).toBeUndefined();
    expect(reloaded.subtasksOf('i1').size).toBe(0);
    expect(reloaded.subtasksOf('i2').size).toBe(1);
  });
});

describe('reaped members: a tombstone keeps an old record from coming back', () => {
  it('removeMember removes the record; the same or an older incarnation is refused from then on, a newer one (a new start) is a member again', async () => {
    const store = newStore();
    await store.load();
    store.apply([member('n2', 3), member('n3', 1), instance('i1', ['n2', 'n3']), subtask('i1', 'n2', { status: 'failed', reason: 'node-lost' })]);
    store.removeMember('n2', { incarnation: 3, refutes: 2 });
    expect(store.member('n2')).toBeUndefined();
    expect(store.reapedAt('n2')).toEqual({ incarnation: 3, refutes: 2 });
    expect(store.reapedCount()).toBe(1);
    // Records that name it stay (guarantee 1: a subtask is tied to its node id forever).
    expect(store.subtask('i1', 'n2')?.nodeId).toBe('n2');
    // A peer that has not reaped it yet sends its record, newer in stamp but of the same start, or an older one: refused.
    expect(store.apply([member('n2', 3, { stamp: stamp(9000, 0, 'n2'), name: 'late' }), member('n2', 2)])).toEqual([]);
    expect(store.member('n2')).toBeUndefined();
    // The host restarted: a new incarnation is taken, and the tombstone goes with it.
    expect(store.apply([member('n2', 4, { name: 'back' })])).toHaveLength(1);
    expect(store.member('n2')).toMatchObject({ incarnation: 4, name: 'back' });
    expect(store.reapedAt('n2')).toBeUndefined();
    // Its old start still loses the merge.
    store.apply([member('n2', 3, { stamp: stamp(9999, 0, 'n2') })]);
    expect(store.member('n2')?.incarnation).toBe(4);
  });

  it('remembers a tombstone across a restart, from the log and from a snapshot', async () => {
    const store = newStore(0);
    await store.load();
    store.apply([member('n2', 1), member('n3', 5), member('n4', 2)]);
    store.removeMember('n2', { incarnation: 1, refutes: 0 });
    await store.flush();
    let reloaded = newStore();
    await reloaded.load();
    expect(reloaded.member('n2')).toBeUndefined();
    expect(reloaded.reapedAt('n2')).toEqual({ incarnation: 1, refutes: 0 });
    expect(reloaded.apply([member('n2', 1, { stamp: stamp(5000, 0, 'n2') })])).toEqual([]);
    // A start that read the log writes a snapshot later: the tombstone is in it, the record is not.
    store.removeMember('n3', { incarnation: 5, refutes: 1 });
    // unreap: the reaped member refuted its death in the same start; its record is taken again, and that outlives a restart.
    store.apply([member('n4', 2)]);
    store.removeMember('n4', { incarnation: 2, refutes: 0 });
    store.unreap('n4');
    expect(store.apply([member('n4', 2, { stamp: stamp(7000, 0, 'n4') })])).toHaveLength(1);
    await store.flush();
    const snapshot = JSON.parse(await readFile(store.path, 'utf8')) as { records: AnyRecord[]; reaped?: unknown };
    expect(snapshot.reaped).toEqual([
      { nodeId: 'n2', incarnation: 1, refutes: 0 },
      { nodeId: 'n3', incarnation: 5, refutes: 1 },
    ]);
    expect(snapshot.records.filter((r) => r.kind === 'member').map((r) => (r.record as MemberRecord).nodeId)).toEqual(['n4']);
    reloaded = newStore();
    await reloaded.load();
    expect(reloaded.members().map((m) => m.nodeId)).toEqual(['n4']);
    expect(reloaded.reapedAt('n3')).toEqual({ incarnation: 5, refutes: 1 });
    expect(reloaded.reapedAt('n4')).toBeUndefined();
  });

  it('keeps at most MAX_REAPED_MEMBERS tombstones, forgetting the oldest first; reaping again moves one to the newest', () => {
    const store = RecordStore.inMemory(new FakeClock(0));
    store.removeMember('first', { incarnation: 1, refutes: 0 });
    store.removeMember('second', { incarnation: 1, refutes: 0 });
    for (let i = 0; i < MAX_REAPED_MEMBERS - 2; i++) store.removeMember(`m${i}`, { incarnation: 1, refutes: 0 });
    expect(store.reapedCount()).toBe(MAX_REAPED_MEMBERS);
    store.removeMember('first', { incarnation: 1, refutes: 3 }); // heard of again, reaped again: the newest now
    store.removeMember('one-more', { incarnation: 1, refutes: 0 });
    expect(store.reapedCount()).toBe(MAX_REAPED_MEMBERS);
    expect(store.reapedAt('second')).toBeUndefined();
    expect(store.reapedAt('first')).toEqual({ incarnation: 1, refutes: 3 });
    // A tombstone never goes back to an older incarnation.
    store.removeMember('first', { incarnation: 1, refutes: 1 });
    expect(store.reapedAt('first')).toEqual({ incarnation: 1, refutes: 3 });
  });

  it('nodesWithOpenWork: members that still have a subtask, a target, a step or a webhook delivery the leader must settle', () => {
    const store = RecordStore.inMemory(new FakeClock(0));
    store.apply([
      instance('open', ['a', 'b', 'c', 'd']),
      subtask('open', 'a', { status: 'running' }),
      subtask('open', 'b', { status: 'failed', reason: 'node-lost' }),
      // c: a target not released yet; d: none of its business once released and ended.
      subtask('open', 'd', { status: 'succeeded', exitCode: 0 }),
      { kind: 'step', record: { instanceId: 'open', step: 'pre', runnerNodeId: 'e', ...firstAttempt(stamp(1000)), status: 'running' } },
      instance('done', ['f'], { job: 'other' }),
      subtask('done', 'f', { status: 'succeeded', exitCode: 0 }),
      { kind: 'notify', record: { instanceId: 'done', index: 0, url: 'http://x', runner: 'g', generation: 1, status: 'pending', attempts: 0, lastError: null, firstTryAtMs: null, nextTryAtMs: null, deliveredAtMs: null, stamp: stamp(1000), sig: 'sig' } },
    ]);
    expect([...store.nodesWithOpenWork(new Set(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']))].sort()).toEqual(['a', 'c', 'e', 'g']);
  });
});

describe('persistence', () => {
  it('flush() resolves only once the data is on disk', async () => {
    const store = newStore();
    await store.load();
    store.apply([job('backup'), subtask('i1', 'n1')]);
    await store.flush();
    // Read straight after the promise resolved: no waiting.
    const state = await readState(store.path);
    expect(state.version).toBe(1);
    expect(state.records).toHaveLength(2);
    expect(state.records).toContainEqual(job('backup'));
    expect(state.records).toContainEqual(subtask('i1', 'n1'));
    // The changes went to the log (a fresh node has no snapshot yet); no temporary file is left behind.
    const { readdir } = await import('node:fs/promises');
    expect(await readdir(dir)).toEqual(['state.log']);
  });

  it('a flush covers changes applied while an earlier write is in flight', async () => {
    const store = newStore();
    await store.load();
    store.apply([job('a')]);
    const first = store.flush();
    store.apply([job('b')]);
    const second = store.flush();
    await first;
    expect((await readState(store.path)).records.map((r) => (r.record as JobRecord).name)).toContain('a');
    await second;
    expect((await readState(store.path)).records.map((r) => (r.record as JobRecord).name).sort()).toEqual(['a', 'b']);
  });

  it('batches many applies into few writes', async () => {
    const write = vi.spyOn(StateFilePersister.prototype, 'append');
    const store = newStore(60_000);
    await store.load();
    for (let i = 0; i < 200; i++) {
      store.apply([job(`job-${i}`)]);
      if (i % 50 === 0) await Promise.resolve();
    }
    expect(write).toHaveBeenCalledTimes(0);
    await store.flush();
    expect(write).toHaveBeenCalledTimes(1);
    expect((await readState(store.path)).records).toHaveLength(200);
    // Nothing new: flushing again writes nothing.
    await store.flush();
    expect(write).toHaveBeenCalledTimes(1);
  });

  it('writes a batch on its own after the flush delay', async () => {
    const write = vi.spyOn(StateFilePersister.prototype, 'append');
    const store = newStore(30);
    await store.load();
    for (let i = 0; i < 100; i++) store.apply([job(`job-${i}`)]);
    await waitFor(async () => {
      try {
        return (await readState(store.path)).records.length === 100;
      } catch {
        return false;
      }
    }, 'the batched write');
    // All hundred changes were applied synchronously inside one delay window: one write.
    expect(write).toHaveBeenCalledTimes(1);
  });

  it('a background write that fails is reported and tried again on the clock, so the change still reaches the disk', async () => {
    const clock = new FakeClock(1000);
    const persister = new MemoryPersister();
    const failures: string[] = [];
    let failNext = true;
    const append = persister.append.bind(persister);
    persister.append = async (change) => {
      if (failNext) {
        failNext = false;
        throw new Error('ENOSPC: no space left on device');
      }
      await append(change);
    };
    const store = new RecordStore({ persister, clock, flushDelayMs: 5, flushRetryMs: 1000, onFlushError: (err) => void failures.push((err as Error).message) });
    store.apply([job('a')]);
    await clock.advanceAsync(5);
    expect(failures).toEqual(['ENOSPC: no space left on device']);
    expect(persister.allWritten()).toEqual([]);
    await clock.advanceAsync(999);
    expect(persister.allWritten()).toEqual([]);
    await clock.advanceAsync(1);
    expect(persister.allWritten().map((r) => (r.record as JobRecord).name)).toEqual(['a']);
    expect(failures).toHaveLength(1);
  });

  it('reload from disk reproduces the state', async () => {
    const store = newStore();
    await store.load();
    store.apply([
      job('backup', 2000, { enabled: false }),
      job('gone', 2000, { deleted: true }),
      instance('i1', ['n1', 'n2']),
      cancel('i1', 4000),
      subtask('i1', 'n1', { status: 'failed', reason: 'exit-code', exitCode: 3, startedAtMs: 1100, finishedAtMs: 1200 }),
      subtask('i1', 'n2', { attempt: 2, status: 'running', reporter: 'n2', history: [{ attempt: 1, status: 'failed', reason: 'timeout', exitCode: null, startedAtMs: 1, finishedAtMs: 2 }] }),
      member('n1', 3, { tags: { role: 'web' }, addrs: ['/ip4/127.0.0.1/tcp/1'] }),
    ]);
    await store.close();

    const reloaded = newStore();
    await reloaded.load();
    const sortByKey = (records: AnyRecord[]) => [...records].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    expect(sortByKey(reloaded.all())).toEqual(sortByKey(store.all()));
    expect(reloaded.size()).toBe(7);
    expect(reloaded.cancelOf('i1')?.requestedAtMs).toBe(4000);
    expect(reloaded.job('backup')?.enabled).toBe(false);
    expect(reloaded.subtask('i1', 'n2')?.attempt).toBe(2);
    expect([...reloaded.subtasksOf('i1').keys()].sort()).toEqual(['n1', 'n2']);
    expect(reloaded.member('n1')?.tags).toEqual({ role: 'web' });
    // Loading reports nothing as a change and writes nothing.
    const logPath = join(dir, 'state.log');
    const before = await readFile(logPath, 'utf8');
    await reloaded.flush();
    expect(await readFile(logPath, 'utf8')).toBe(before);
  });

  it('a missing file loads as empty state', async () => {
    const store = newStore();
    await store.load();
    expect(store.size()).toBe(0);
  });

  it('one record changing appends that record, not the whole state; the log is folded into a snapshot once it outgrows it', async () => {
    const { stat } = await import('node:fs/promises');
    const store = new RecordStore({ persister: new StateFilePersister(dir), clock: systemClock, flushDelayMs: 60_000, flushRetryMs: 1000, minCompactBytes: 64 * 1024 });
    stores.push(store);
    await store.load();
    store.apply(Array.from({ length: 300 }, (_, i) => job(`job-${i}`)));
    await store.flush(); // the first batch goes to the log (there is no snapshot yet): about 100 KB
    const logAfterBatch = (await stat(join(dir, 'state.log'))).size;
    store.apply([job('job-7', 5000)]);
    await store.flush(); // it outgrew 64 KB: folded into a snapshot
    expect((await stat(join(dir, 'state.json'))).size).toBeGreaterThan(logAfterBatch);
    expect((await stat(join(dir, 'state.log'))).size).toBe(0);
    const snapshotBytes = (await stat(join(dir, 'state.json'))).size;
    // Now one change costs one line of about one record.
    store.apply([job('job-8', 6000)]);
    await store.flush();
    const line = (await stat(join(dir, 'state.log'))).size;
    expect(line).toBeGreaterThan(100);
    expect(line).toBeLessThan(2 * JSON.stringify(job('job-8', 6000)).length);
    expect((await stat(join(dir, 'state.json'))).size).toBe(snapshotBytes);
    const reloaded = newStore();
    await reloaded.load();
    expect(reloaded.size()).toBe(300);
    expect(reloaded.job('job-8')?.stamp.wallMs).toBe(6000);
    expect(reloaded.job('job-7')?.stamp.wallMs).toBe(5000);
  });

  it('a torn last line of the log (a crash mid-append, never acknowledged) is dropped and said; the next flush writes a clean snapshot', async () => {
    const store = newStore();
    await store.load();
    store.apply([job('kept')]);
    await store.flush();
    await store.close();
    const { appendFile, readFile: read } = await import('node:fs/promises');
    await appendFile(join(dir, 'state.log'), '{"records":[{"kind":"job","rec');
    const reloaded = newStore();
    await reloaded.load();
    expect(reloaded.tornLogLine).toBe(true);
    expect(reloaded.jobs().map((j) => j.name)).toEqual(['kept']);
    reloaded.apply([job('after')]);
    await reloaded.flush();
    expect(await read(join(dir, 'state.log'), 'utf8')).toBe('');
    expect((await readState(reloaded.path)).records.map((r) => (r.record as JobRecord).name).sort()).toEqual(['after', 'kept']);
  });

  it('a damaged line in the middle of the log stops the load, naming state.log, and changes nothing', async () => {
    const store = newStore();
    await store.load();
    store.apply([job('a')]);
    await store.flush();
    store.apply([job('b')]);
    await store.flush();
    await store.close();
    const path = join(dir, 'state.log');
    const lines = (await readFile(path, 'utf8')).split('\n');
    await writeFile(path, [lines[0]?.slice(0, 10), ...lines.slice(1)].join('\n'));
    const bytes = await readFile(path);
    const error = await newStore().load().then(() => null, (err: unknown) => err);
    expect(error).toBeInstanceOf(DataFileError);
    expect((error as DataFileError).message).toMatch(/state\.log is unreadable \(line 1 is not valid JSON/);
    expect((await readFile(path)).equals(bytes)).toBe(true);
  });

  it('NODE_ENV=test does not turn the store into memory', async () => {
    const previous = process.env.NODE_ENV;
    process.env.NODE_ENV = 'test';
    try {
      const store = newStore();
      await store.load();
      store.apply([job('backup')]);
      await store.flush();
      expect((await readState(join(dir, 'state.json'))).records).toEqual([job('backup')]);
    } finally {
      if (previous === undefined) delete process.env.NODE_ENV;
      else process.env.NODE_ENV = previous;
    }
  });
});

describe('a corrupt state file', () => {
  const validJob = job('backup');
  const cases: [string, string][] = [
    ['bad JSON', '{"version":1,"records":[{"kind":"job"'],
    ['an empty file', ''],
    ['JSON null', 'null'],
    ['a bare number', '0'],
    ['an array', '[]'],
    ['the wrong version', JSON.stringify({ version: 2, records: [] })],
    ['records that are not a list', JSON.stringify({ version: 1, records: {} })],
  ];

  it.each(cases)('%s: load() throws DataFileError naming the file and leaves it untouched', async (_what, content) => {
    const path = join(dir, 'state.json');
    await writeFile(path, content);
    const bytes = await readFile(path);
    const write = vi.spyOn(DurableJsonFile.prototype, 'write');

    const store = newStore(0);
    const error = await store.load().then(
      () => null,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(DataFileError);
    expect((error as DataFileError).path).toBe(path);
    expect((error as DataFileError).message).toContain(path);
    expect((error as DataFileError).message).toMatch(/left it untouched/);

    // Nothing the store does afterwards rewrites the file.
    await store.close();
    expect(write).not.toHaveBeenCalled();
    expect((await readFile(path)).equals(bytes)).toBe(true);
  });

  it('sets a malformed record aside (named, kept in state.rejected.json) and loads the rest', async () => {
    const path = join(dir, 'state.json');
    const poison = { kind: 'job', record: { ...validJob.record, name: 'poison', spec: { ...(validJob.record as JobRecord).spec, schedule: { kind: 'every', intervalMs: 8_640_000_000_000_000 } } } };
    await writeFile(path, JSON.stringify({ version: 1, records: [validJob, poison, { kind: 'subtask', record: { instanceId: 'i1', nodeId: '', attempt: 0 } }, { kind: 'nope', record: {} }] }));
    const store = newStore();
    await store.load();
    expect(store.jobs().map((j) => j.name)).toEqual(['backup']);
    expect(store.rejectedOnLoad.map((r) => [r.index, r.name])).toEqual([
      [1, 'job poison'],
      [2, 'subtask i1'],
      [3, 'nope'],
    ]);
    expect(store.rejectedOnLoad[0]?.error).toMatch(/intervalMs/);
    const kept = JSON.parse(await readFile(join(dir, 'state.rejected.json'), 'utf8')) as { name: string; record: unknown }[];
    expect(kept.map((k) => k.name)).toEqual(['job poison', 'subtask i1', 'nope']);
    expect(kept[0]?.record).toEqual(poison);
    await store.close();
  });

  it('a state file from before records were signed: its own records are signed now, the others set aside (nothing lost)', async () => {
    const path = join(dir, 'state.json');
    const unsigned = (r: AnyRecord) => {
      const { sig: _sig, ...rest } = r.record as unknown as Record<string, unknown>;
      return { kind: r.kind, record: rest };
    };
    const own = job('mine', 1000, { stamp: stamp(1000, 0, 'n1') });
    const foreign = job('theirs', 1000, { stamp: stamp(1000, 0, 'n2') });
    await writeFile(path, JSON.stringify({ version: 1, records: [unsigned(own), unsigned(foreign), unsigned(member('n1'))] }));
    const store = newStore();
    await store.load();
    const keys = new SimKeyring('test').keysFor('n1');
    expect(await store.adoptUnsigned('n1', keys)).toEqual({ signed: 2, setAside: ['job:theirs'] });
    expect(store.jobs().map((j) => j.name)).toEqual(['mine']);
    const mine = { kind: 'job', record: store.job('mine') } as AnyRecord;
    expect(authorityProblem(mine, keys)).toBeNull();
    const kept = JSON.parse(await readFile(join(dir, 'state.rejected.json'), 'utf8')) as { name: string; error: string }[];
    expect(kept.map((k) => k.name)).toEqual(['job:theirs']);
    expect(kept[0]?.error).toMatch(/before records were signed/);
    // Signed now: a second start has nothing to adopt.
    await store.close();
    const again = newStore();
    await again.load();
    expect(await again.adoptUnsigned('n1', keys)).toEqual({ signed: 0, setAside: [] });
  });

  it('says when the file is not JSON', async () => {
    await writeFile(join(dir, 'state.json'), 'garbage{');
    await expect(newStore().load()).rejects.toThrow(/not valid JSON/);
  });
});

describe('applyDurably: what a client asked for is on disk before it is applied', () => {
  it('applies the records once written, and a failed write applies nothing and says which file', async () => {
    const persister = new MemoryPersister();
    const store = RecordStore.inMemory(new FakeClock(1000), 60_000, persister);
    await store.load();
    const told: AnyRecord[][] = [];
    store.onChange((records) => told.push(records));
    expect(await store.applyDurably([job('a')])).toHaveLength(1);
    expect(persister.allWritten().map(recordKey)).toEqual(['job:a']);
    expect(store.job('a')).toBeDefined();

    vi.spyOn(persister, 'append').mockRejectedValueOnce(new StorageWriteError('/data/state.log', Object.assign(new Error('no space'), { code: 'ENOSPC' })));
    await expect(store.applyDurably([job('b')])).rejects.toThrow('cannot write /data/state.log (ENOSPC: no space left on device)');
    expect(store.job('b'), 'not applied').toBeUndefined();
    expect(told.map((records) => records.map(recordKey))).toEqual([['job:a']]);
    // Written once: the next flush does not write it again.
    await store.flush();
    expect(persister.changes).toHaveLength(1);
  });
});

describe.skipIf(smallDiskProblem !== null)(`the state files on a full disk${smallDiskProblem ? ` (not run: ${smallDiskProblem})` : ''}`, () => {
  let disk: SmallDisk;
  beforeEach(() => {
    disk = mountSmallDisk(256);
  });
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close().catch(() => undefined);
    disk.remove();
  });

  it('a refused append leaves whole lines and applies nothing; background writes retry; once space is back everything acknowledged is there after a restart', async () => {
    const flushErrors: string[] = [];
    const store = new RecordStore({ persister: new StateFilePersister(disk.dir), clock: systemClock, flushDelayMs: 10, flushRetryMs: 20, onFlushError: (err, path) => flushErrors.push(`${path}: ${(err as Error).message}`) });
    stores.push(store);
    await store.load();
    await store.applyDurably([job('before')]);
    disk.fill();
    const acknowledged = ['before'];
    let refused: unknown = null;
    for (let i = 0; i < 1000 && refused === null; i++) {
      try {
        await store.applyDurably([job(`full-${i}`)]);
        acknowledged.push(`full-${i}`);
      } catch (err) {
        refused = err;
        expect(store.job(`full-${i}`), 'a refused write is not applied').toBeUndefined();
      }
    }
    const logPath = join(disk.dir, 'state.log');
    expect((refused as Error).message).toBe(`cannot write ${logPath} (ENOSPC: no space left on device)`);
    const text = await readFile(logPath, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    for (const line of text.split('\n').filter(Boolean)) expect(() => JSON.parse(line) as unknown).not.toThrow();
    // Gossip still comes in while the disk is full (more than a page of it): applied in memory, written when it can be.
    store.apply(Array.from({ length: 30 }, (_, i) => member(`n${i + 2}`)));
    await waitFor(() => flushErrors.length >= 2, 'the background write failing and being retried');
    expect(flushErrors[0]).toBe(`${logPath}: cannot write ${logPath} (ENOSPC: no space left on device)`);
    disk.free();
    await waitFor(async () => (await readState(store.path)).records.some((r) => r.kind === 'member'), 'the retried write');
    await store.applyDurably([job('after')]);
    acknowledged.push('after');
    await store.close();

    const reloaded = new RecordStore({ persister: new StateFilePersister(disk.dir), clock: systemClock, flushDelayMs: 10, flushRetryMs: 20 });
    stores.push(reloaded);
    await reloaded.load();
    expect(reloaded.tornLogLine).toBe(false);
    expect(reloaded.jobs().map((j) => j.name).sort()).toEqual(acknowledged.sort());
    expect(reloaded.member('n2')).toBeDefined();
  });

  it('a snapshot the disk refuses leaves the old snapshot and log readable, and no temporary file behind', async () => {
    const store = new RecordStore({ persister: new StateFilePersister(disk.dir), clock: systemClock, flushDelayMs: 60_000, flushRetryMs: 60_000, minCompactBytes: 1 });
    stores.push(store);
    await store.load();
    for (let i = 0; i < 20; i++) await store.applyDurably([job(`j-${i}`)]);
    disk.fill();
    store.apply([member('n2')]);
    await expect(store.flush()).rejects.toThrow(/ENOSPC/);
    expect((await readdir(disk.dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    disk.free();
    await store.flush();
    await store.close();
    const reloaded = RecordStore.inDirectory(disk.dir, systemClock, 60_000);
    stores.push(reloaded);
    await reloaded.load();
    expect(reloaded.jobs()).toHaveLength(20);
    expect(reloaded.member('n2')).toBeDefined();
  });
});

describe('unfinishedOf: the unfinished instances of a job, kept up to date change by change', () => {
  it('counts an instance while a subtask is not terminal, drops it when all ended, and forgets a pruned one', async () => {
    const store = newStore();
    await store.load();
    store.apply([instance('i1', ['n1']), subtask('i1', 'n1'), instance('i2', ['n1']), subtask('i2', 'n1'), instance('i3', ['n1'], { job: 'other' })]);
    expect([...store.unfinishedOf('backup')].sort()).toEqual(['i1', 'i2']);
    expect([...store.unfinishedOf('other')]).toEqual(['i3']);
    store.apply([subtask('i1', 'n1', { status: 'succeeded', reporter: 'n1', finishedAtMs: 2000, stamp: stamp(2000) })]);
    expect([...store.unfinishedOf('backup')]).toEqual(['i2']);
    expect(store.mostUnfinishedOfAJob()).toBe(1);
    store.removeInstance('i2');
    expect(store.unfinishedOf('backup').size).toBe(0);
    // A subtask whose instance has not arrived yet is counted once the instance does.
    store.apply([subtask('i4', 'n1')]);
    expect(store.unfinishedOf('backup').size).toBe(0);
    store.apply([instance('i4', ['n1'])]);
    expect([...store.unfinishedOf('backup')]).toEqual(['i4']);
  });
});

describe('writes under a disk slower than the changes', () => {
  it('keeps at most one flush waiting behind the one in flight, so a client write waits for two writes at most, not for every change since', async () => {
    const persister = new MemoryPersister();
    const gates: (() => void)[] = [];
    const append = persister.append.bind(persister);
    let appends = 0;
    vi.spyOn(persister, 'append').mockImplementation(async (change) => {
      appends += 1;
      await new Promise<void>((resolve) => gates.push(resolve));
      return append(change);
    });
    const store = RecordStore.inMemory(new FakeClock(1000), 60_000, persister);
    await store.load();
    // 200 changes, each asking for its flush (as the 5 ms timer does under load) while the disk is stuck.
    const flushes: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      store.apply([job(`j-${i}`)]);
      flushes.push(store.flush());
      await Promise.resolve();
    }
    let written = false;
    void store.applyDurably([job('client')]).then(() => (written = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(appends, 'writes started').toBe(1);
    // The disk answers: the first write, then one more with every change since, then the client's.
    for (let i = 0; i < 3 && !written; i++) {
      gates.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(written).toBe(true);
    expect(appends).toBe(3);
    await Promise.all(flushes);
    expect(persister.allWritten().map((r) => (r.record as JobRecord).name).sort()).toEqual(['client', ...Array.from({ length: 200 }, (_, i) => `j-${i}`)].sort());
  });
});
