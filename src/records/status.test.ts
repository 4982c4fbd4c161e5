// An instance's status, derived from its subtasks: every node holding the same records
// must report the same status, counts and times.
import { describe, expect, it } from 'vitest';
import { deriveInstanceProgress, isInstanceFinished } from './status.js';
import type { InstanceRecord, JobSpec, SubtaskRecord, SubtaskStatus } from './types.js';
import { jobSpec } from '../testing/fixtures.js';

const spec: JobSpec = jobSpec();

function instance(targets: string[], extra: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    id: 'i1',
    job: 'backup',
    spec,
    trigger: 'manual',
    scheduledAtMs: null,
    createdAtMs: 1_000,
    targets,
    failure: null,
    stamp: { wallMs: 1_000, counter: 0, nodeId: 'n1' },
    sig: '',
    ...extra,
  };
}

function subtask(nodeId: string, status: SubtaskStatus, extra: Partial<SubtaskRecord> = {}): SubtaskRecord {
  const started = status === 'pending' ? null : 2_000;
  const finished = status === 'pending' || status === 'running' ? null : 3_000;
  return {
    instanceId: 'i1',
    nodeId,
    attempt: 1,
    status,
    reason: status === 'failed' ? 'exit-code' : status === 'cancelled' ? 'cancelled' : null,
    exitCode: status === 'succeeded' ? 0 : status === 'failed' ? 1 : null,
    startedAtMs: started,
    finishedAtMs: finished,
    notBeforeMs: null,
    history: [],
    reporter: nodeId,
    stamp: { wallMs: 2_000, counter: 0, nodeId },
    sig: '',
    ...extra,
  };
}

function byNode(...subtasks: SubtaskRecord[]): Map<string, SubtaskRecord> {
  return new Map(subtasks.map((s) => [s.nodeId, s]));
}

const TARGETS = ['n1', 'n2', 'n3'];

/** The progress of an instance over its own targets (RecordStore.targetsOf adds other creations' nodes: record-store.test.ts). */
function progress(inst: InstanceRecord, subtasks: Map<string, SubtaskRecord>, cancelRequestedAtMs: number | null = null) {
  return deriveInstanceProgress(inst, { targets: inst.targets, subtasks, cancelRequestedAtMs });
}

describe('deriveInstanceProgress', () => {
  it('is pending while every subtask is pending', () => {
    const p = progress(instance(TARGETS), byNode(subtask('n1', 'pending'), subtask('n2', 'pending'), subtask('n3', 'pending')));
    expect(p).toEqual({
      status: 'pending',
      startedAtMs: null,
      finishedAtMs: null,
      counts: { pending: 3, running: 0, succeeded: 0, failed: 0, cancelled: 0 },
    });
  });

  it('counts a target with no subtask record yet as pending', () => {
    const none = progress(instance(TARGETS), new Map());
    expect(none.status).toBe('pending');
    expect(none.counts.pending).toBe(3);

    // Two done, one not yet known: still running, not succeeded.
    const partial = progress(instance(TARGETS), byNode(subtask('n1', 'succeeded'), subtask('n2', 'succeeded')));
    expect(partial.status).toBe('running');
    expect(partial.counts).toEqual({ pending: 1, running: 0, succeeded: 2, failed: 0, cancelled: 0 });
    expect(partial.finishedAtMs).toBeNull();
  });

  it('ignores subtasks of nodes that are not targets', () => {
    const p = progress(instance(['n1']), byNode(subtask('n1', 'succeeded'), subtask('intruder', 'failed')));
    expect(p.status).toBe('succeeded');
    expect(p.counts).toEqual({ pending: 0, running: 0, succeeded: 1, failed: 0, cancelled: 0 });
  });

  it('is running as soon as one subtask runs or has finished', () => {
    const running = progress(instance(TARGETS), byNode(subtask('n1', 'running'), subtask('n2', 'pending'), subtask('n3', 'pending')));
    expect(running.status).toBe('running');
    expect(running.startedAtMs).toBe(2_000);
    expect(running.finishedAtMs).toBeNull();

    const oneFailed = progress(instance(TARGETS), byNode(subtask('n1', 'failed'), subtask('n2', 'pending'), subtask('n3', 'running')));
    expect(oneFailed.status).toBe('running');
    expect(oneFailed.counts).toEqual({ pending: 1, running: 1, succeeded: 0, failed: 1, cancelled: 0 });
  });

  it('succeeds only when every target succeeded', () => {
    const p = progress(
      instance(TARGETS),
      byNode(
        subtask('n1', 'succeeded', { startedAtMs: 2_500, finishedAtMs: 2_600 }),
        subtask('n2', 'succeeded', { startedAtMs: 2_100, finishedAtMs: 4_000 }),
        subtask('n3', 'succeeded', { startedAtMs: 2_200, finishedAtMs: 3_000 }),
      ),
    );
    expect(p).toEqual({
      status: 'succeeded',
      startedAtMs: 2_100,
      finishedAtMs: 4_000,
      counts: { pending: 0, running: 0, succeeded: 3, failed: 0, cancelled: 0 },
    });
    expect(isInstanceFinished(p.status)).toBe(true);
  });

  it('with --min-success, succeeds once enough succeeded and every subtask ended; the results stay as they were', () => {
    const quorum = instance(TARGETS, { spec: jobSpec({ minSuccess: 2 }) });
    const twoOk = byNode(subtask('n1', 'succeeded'), subtask('n2', 'failed'), subtask('n3', 'succeeded'));
    expect(progress(quorum, twoOk).status).toBe('succeeded');
    expect(progress(quorum, twoOk).counts).toMatchObject({ succeeded: 2, failed: 1 });
    expect(progress(quorum, byNode(subtask('n1', 'succeeded'), subtask('n2', 'succeeded'), subtask('n3', 'running'))).status).toBe('running');
    expect(progress(quorum, byNode(subtask('n1', 'succeeded'), subtask('n2', 'failed'), subtask('n3', 'failed'))).status).toBe('failed');
    const share = instance(TARGETS, { spec: jobSpec({ minSuccess: '67%' }) });
    expect(progress(share, twoOk).status).toBe('failed');
  });

  it('over the --max-failures budget is failed even when the quorum was met', () => {
    const both = instance(TARGETS, { spec: jobSpec({ minSuccess: 1, maxFailures: 0 }) });
    const aborted = subtask('n3', 'cancelled', { reason: 'aborted', reporter: 'n1', startedAtMs: null });
    expect(progress(both, byNode(subtask('n1', 'succeeded'), subtask('n2', 'failed'), aborted)).status).toBe('failed');
  });

  it('fails when every subtask ended and one failed', () => {
    const p = progress(
      instance(TARGETS),
      byNode(subtask('n1', 'succeeded'), subtask('n2', 'failed', { reason: 'node-lost', reporter: 'n1' }), subtask('n3', 'succeeded')),
    );
    expect(p.status).toBe('failed');
    expect(p.finishedAtMs).toBe(3_000);
  });

  it('a cancelled subtask without a cancel request makes the instance failed, not cancelled', () => {
    const p = progress(instance(TARGETS), byNode(subtask('n1', 'succeeded'), subtask('n2', 'cancelled'), subtask('n3', 'succeeded')));
    expect(p.status).toBe('failed');
  });

  it('is cancelled when a cancel was requested and a subtask was cancelled', () => {
    const p = progress(instance(TARGETS), byNode(subtask('n1', 'succeeded'), subtask('n2', 'cancelled', { reporter: 'n1' }), subtask('n3', 'failed')), 2_500);
    expect(p.status).toBe('cancelled');
    expect(p.counts).toEqual({ pending: 0, running: 0, succeeded: 1, failed: 1, cancelled: 1 });
    expect(isInstanceFinished(p.status)).toBe(true);
  });

  it('a cancel requested after every subtask ended by itself: no post step is waited for (none is created)', () => {
    const withPost = instance(TARGETS, { spec: jobSpec({ post: 'report' }) });
    const failed = byNode(subtask('n1', 'failed'), subtask('n2', 'failed'), subtask('n3', 'succeeded'));
    expect(progress(withPost, failed).status).toBe('running'); // no cancel: the post step is still to come
    expect(progress(withPost, failed, 5_000).status).toBe('failed');
  });

  it('stays running after a cancel request until every subtask has ended', () => {
    const p = progress(instance(TARGETS), byNode(subtask('n1', 'cancelled'), subtask('n2', 'running'), subtask('n3', 'cancelled')), 2_500);
    expect(p.status).toBe('running');
    expect(p.finishedAtMs).toBeNull();
    expect(isInstanceFinished(p.status)).toBe(false);
  });

  it('a cancel request that came too late (everything succeeded) leaves it succeeded', () => {
    const p = progress(instance(['n1']), byNode(subtask('n1', 'succeeded')), 9_000);
    expect(p.status).toBe('succeeded');
  });

  it('a cancel request where nothing was cancelled but something failed is failed', () => {
    const p = progress(instance(['n1', 'n2']), byNode(subtask('n1', 'succeeded'), subtask('n2', 'failed')), 2_500);
    expect(p.status).toBe('failed');
  });

  it('is failed when the instance could not start (no target), unless another creation of it gave it targets', () => {
    const couldNotStart = instance([], { failure: 'no node matched the tags role=db' });
    const p = progress(couldNotStart, new Map());
    expect(p.status).toBe('failed');
    expect(isInstanceFinished(p.status)).toBe(true);
    // The other side of a partition created it with n1 as target: n1's subtask decides.
    const merged = deriveInstanceProgress(couldNotStart, { targets: ['n1'], subtasks: byNode(subtask('n1', 'succeeded')) });
    expect(merged.status).toBe('succeeded');
  });

  it('is failed with no targets, finishing at its creation', () => {
    const p = progress(instance([], { createdAtMs: 1_234 }), new Map());
    expect(p).toEqual({
      status: 'failed',
      startedAtMs: null,
      finishedAtMs: 1_234,
      counts: { pending: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 },
    });
  });

  it('takes the start time from the first attempt when a retry is running', () => {
    const retry = subtask('n1', 'running', {
      attempt: 2,
      startedAtMs: 5_000,
      history: [{ attempt: 1, status: 'failed', reason: 'exit-code', exitCode: 1, startedAtMs: 2_000, finishedAtMs: 2_500 }],
    });
    const p = progress(instance(['n1']), byNode(retry));
    expect(p.status).toBe('running');
    expect(p.startedAtMs).toBe(2_000);
  });
});

describe('isInstanceFinished', () => {
  it('is true only for terminal statuses', () => {
    expect(['pending', 'running', 'succeeded', 'failed', 'cancelled'].map((s) => isInstanceFinished(s as never))).toEqual([false, false, true, true, true]);
  });
});
