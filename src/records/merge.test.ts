import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical.js';
import { mergeCancel, mergeInstance, mergeJob, mergeMember, mergePause, mergeRecord, mergeStep, mergeSubtask, MergeInvariantError } from './merge.js';
import type { CancelRecord, InstanceRecord, JobRecord, MemberRecord, PauseRecord, Stamp, StepRecord, SubtaskRecord } from './types.js';
import { parseRecord } from './validate.js';

const NODES = ['n1', 'n2', 'n3'];
const stampArb: fc.Arbitrary<Stamp> = fc.record({
  wallMs: fc.integer({ min: 1000, max: 1005 }),
  counter: fc.integer({ min: 0, max: 2 }),
  nodeId: fc.constantFrom(...NODES),
});
/** Signatures are opaque to a merge: it must keep the one that came with the record it picks. */
const sigArb = fc.constantFrom('sig-a', 'sig-b');
const specArb = fc.record({
  cmd: fc.constantFrom('true', 'echo hi', 'false'),
  type: fc.constantFrom('broadcast' as const, 'standalone' as const),
  schedule: fc.constant(null),
  tags: fc.constant({}),
  timeoutMs: fc.constantFrom(null, 1000),
  retries: fc.integer({ min: 0, max: 2 }),
  concurrency: fc.constantFrom('allow' as const, 'forbid' as const),
  pre: fc.constant(null),
  post: fc.constant(null),
});

const jobArb: fc.Arbitrary<JobRecord> = fc.record({
  name: fc.constant('backup'),
  spec: specArb,
  enabled: fc.boolean(),
  deleted: fc.boolean(),
  createdAtMs: fc.constant(1000),
  stamp: stampArb,
  sig: sigArb,
});

// Subtasks of one key: the owner is always n1, whatever else varies.
const subtaskFieldsArb: fc.Arbitrary<SubtaskRecord> = fc.record({
  instanceId: fc.constant('i1'),
  nodeId: fc.constant('n1'),
  attempt: fc.integer({ min: 1, max: 3 }),
  status: fc.constantFrom('pending' as const, 'running' as const, 'succeeded' as const, 'failed' as const, 'cancelled' as const),
  reason: fc.constantFrom(null, 'exit-code' as const, 'signal' as const, 'node-lost' as const, 'cancelled' as const),
  exitCode: fc.constantFrom(null, 0, 1),
  startedAtMs: fc.constantFrom(null, 1001),
  finishedAtMs: fc.constantFrom(null, 1002),
  notBeforeMs: fc.constant(null),
  history: fc.constant([]),
  reporter: fc.constantFrom(...NODES),
  stamp: stampArb,
  sig: sigArb,
});
// A `signal` only with reason `signal`, as the owner writes it (absent otherwise).
const subtaskArb: fc.Arbitrary<SubtaskRecord> = fc
  .tuple(subtaskFieldsArb, fc.constantFrom('SIGKILL', 'SIGSEGV'))
  .map(([s, signal]) => (s.reason === 'signal' ? { ...s, signal } : s));

const instanceArb: fc.Arbitrary<InstanceRecord> = fc.record({
  id: fc.constant('i1'),
  job: fc.constant('backup'),
  spec: specArb,
  trigger: fc.constantFrom('manual' as const, 'schedule' as const),
  scheduledAtMs: fc.constantFrom(null, 1000),
  createdAtMs: fc.constant(1000),
  targets: fc.subarray(NODES),
  failure: fc.constant(null),
  stamp: stampArb,
  sig: sigArb,
  // As the leader writes them: a failure (nobody to run on) exactly when there are no targets.
}).map((i) => ({ ...i, failure: i.targets.length === 0 ? 'no alive node to run on' : null }));

const memberArb: fc.Arbitrary<MemberRecord> = fc.record({
  nodeId: fc.constant('n1'),
  name: fc.constantFrom('a', 'b'),
  tags: fc.constant({}),
  addrs: fc.constant([]),
  incarnation: fc.integer({ min: 0, max: 2 }),
  left: fc.boolean(),
  stamp: stampArb,
  sig: sigArb,
});

const cancelArb: fc.Arbitrary<CancelRecord> = fc.record({
  instanceId: fc.constant('i1'),
  requestedAtMs: fc.constantFrom(1003, 1004),
  stamp: stampArb,
  sig: sigArb,
});

function lawsFor<T>(name: string, arb: fc.Arbitrary<T>, merge: (a: T, b: T) => T): void {
  const same = (a: T, b: T): true => {
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    return true;
  };
  describe(`${name} merge`, () => {
    it('is commutative', () => fc.assert(fc.property(arb, arb, (a, b) => same(merge(a, b), merge(b, a))), { numRuns: 2000 }));
    it('is associative', () =>
      fc.assert(fc.property(arb, arb, arb, (a, b, c) => same(merge(merge(a, b), c), merge(a, merge(b, c)))), { numRuns: 2000 }));
    it('picks one of its inputs as it is, signature included (it never builds a record nobody signed)', () =>
      fc.assert(fc.property(arb, arb, (a, b) => {
        const merged = merge(a, b);
        expect(merged === a || merged === b).toBe(true);
      }), { numRuns: 1000 }));
    it('is idempotent', () => fc.assert(fc.property(arb, arb, (a, b) => {
      same(merge(a, a), a);
      same(merge(merge(a, b), b), merge(a, b));
    }), { numRuns: 1000 }));
    it('converges whatever the order and duplication of delivery', () =>
      fc.assert(
        fc.property(fc.array(arb, { minLength: 1, maxLength: 8 }), fc.infiniteStream(fc.nat()), (records, picks) => {
          const reference = records.reduce(merge);
          // Deliver in a shuffled order with duplicates, as gossip does.
          const order = [...records, ...records.slice(0, 3)];
          const it = picks[Symbol.iterator]();
          for (let i = order.length - 1; i > 0; i--) {
            const j = it.next().value % (i + 1);
            [order[i], order[j]] = [order[j] as T, order[i] as T];
          }
          same(order.reduce(merge), reference);
        }),
        { numRuns: 500 },
      ));
  });
}

// Steps: two leaders on both sides of a partition may each have created one, with
// themselves as runner, so the runner varies here too.
const stepArb: fc.Arbitrary<StepRecord> = fc
  .tuple(subtaskArb, fc.constantFrom(...NODES))
  .map(([{ nodeId: _owner, ...s }, runner]) => ({ ...s, runnerNodeId: runner, step: 'post' as const }));

lawsFor('job', jobArb, mergeJob);
lawsFor('step', stepArb, mergeStep);
lawsFor('subtask', subtaskArb, mergeSubtask);
lawsFor('instance', instanceArb, mergeInstance);
lawsFor('member', memberArb, mergeMember);
lawsFor('cancel', cancelArb, mergeCancel);

const pauseArb: fc.Arbitrary<PauseRecord> = fc.record({ instanceId: fc.constant('i1'), paused: fc.boolean(), stamp: stampArb, sig: sigArb });
lawsFor('pause', pauseArb, mergePause);

describe('subtask merge rules', () => {
  it('never changes the node id (guarantee 1)', () =>
    fc.assert(fc.property(fc.array(subtaskArb, { minLength: 1, maxLength: 6 }), (xs) => {
      expect(xs.reduce(mergeSubtask).nodeId).toBe('n1');
    })));

  it('refuses to merge subtasks of different nodes instead of moving one', () => {
    const a = fc.sample(subtaskArb, 1)[0] as SubtaskRecord;
    expect(() => mergeSubtask(a, { ...a, nodeId: 'n2' })).toThrow(MergeInvariantError);
    expect(() => mergeRecord({ kind: 'subtask', record: a }, { kind: 'job', record: fc.sample(jobArb, 1)[0] as JobRecord })).toThrow(
      MergeInvariantError,
    );
  });

  const base = fc.sample(subtaskArb, 1)[0] as SubtaskRecord;
  const at = (over: Partial<SubtaskRecord>): SubtaskRecord => ({ ...base, attempt: 1, reason: null, ...over });
  const stamp = (wallMs: number, nodeId = 'n1'): Stamp => ({ wallMs, counter: 0, nodeId });

  it('moves status only forward within an attempt', () => {
    const running = at({ status: 'running', reporter: 'n1', stamp: stamp(2000) });
    const stalePending = at({ status: 'pending', reporter: 'n2', stamp: stamp(9000, 'n2') });
    expect(mergeSubtask(running, stalePending).status).toBe('running');
  });

  it("lets the owner's own terminal report outrank the leader's node-lost verdict", () => {
    const lost = at({ status: 'failed', reason: 'node-lost', reporter: 'n2', stamp: stamp(5000, 'n2') });
    const own = at({ status: 'succeeded', exitCode: 0, reporter: 'n1', stamp: stamp(3000) });
    expect(mergeSubtask(lost, own)).toBe(own);
    expect(mergeSubtask(own, lost)).toBe(own);
  });

  it('prefers a higher attempt over any state of a lower one', () => {
    const done = at({ status: 'failed', reason: 'exit-code', reporter: 'n1', stamp: stamp(5000) });
    const retry = at({ attempt: 2, status: 'pending', reporter: 'n1', stamp: stamp(4000) });
    expect(mergeSubtask(done, retry).attempt).toBe(2);
  });
});

describe('instance and cancel merge rules', () => {
  it('keeps the earliest creation', () => {
    const [a] = fc.sample(instanceArb, 1) as [InstanceRecord];
    const early = { ...a, trigger: 'schedule' as const, targets: ['n1'], failure: null, stamp: { wallMs: 1, counter: 0, nodeId: 'n2' } };
    const late = { ...a, trigger: 'manual' as const, targets: ['n1'], failure: null, stamp: { wallMs: 2, counter: 0, nodeId: 'n1' } };
    expect(mergeInstance(late, early)).toBe(early);
    expect(mergeInstance(early, late)).toBe(early);
  });

  it('keeps the earliest cancel request, whoever asked', () => {
    const first: CancelRecord = { instanceId: 'i1', requestedAtMs: 1000, stamp: { wallMs: 5, counter: 0, nodeId: 'n3' }, sig: 'x' };
    const second: CancelRecord = { instanceId: 'i1', requestedAtMs: 2000, stamp: { wallMs: 1, counter: 0, nodeId: 'n1' }, sig: 'y' };
    expect(mergeCancel(second, first)).toBe(first);
    expect(() => mergeCancel(first, { ...second, instanceId: 'i2' })).toThrow(MergeInvariantError);
  });
});

describe('record validation', () => {
  it('accepts generated records and rejects malformed ones with a message', () => {
    fc.assert(fc.property(subtaskArb, (s) => parseRecord({ kind: 'subtask', record: s }).ok));
    const bad = parseRecord({ kind: 'subtask', record: { instanceId: 'i1' } });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error).toMatch(/nodeId/);
    expect(parseRecord('garbage').ok).toBe(false);
    expect(parseRecord({ kind: 'job', record: { ...fc.sample(jobArb, 1)[0], stamp: { wallMs: -1 } } }).ok).toBe(false);
    const { sig: _sig, ...unsigned } = fc.sample(jobArb, 1)[0] as JobRecord;
    expect(parseRecord({ kind: 'job', record: unsigned }).ok).toBe(false);
    expect(parseRecord({ kind: 'job', record: unsigned }, { legacyUnsigned: true })).toMatchObject({ ok: true, record: { record: { sig: '' } } });
  });
});
