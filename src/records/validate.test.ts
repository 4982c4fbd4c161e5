// The record validator is the last gate for what peers and the state file bring: it
// refuses every value the API would refuse, so nobody can inject a poison record.
import { describe, expect, it } from 'vitest';
import { MAX_DURATION_MS, MAX_TIME_MS } from '../core/limits.js';
import type { JobRecord, JobSpec } from './types.js';
import { parseRecord } from './validate.js';
import { jobSpec } from '../testing/fixtures.js';

const SPEC: JobSpec = jobSpec();
const JOB: JobRecord = { name: 'j', spec: SPEC, enabled: true, deleted: false, createdAtMs: 1000, stamp: { wallMs: 1000, counter: 0, nodeId: 'n1' }, sig: '' };

const withSpec = (spec: Partial<JobSpec>) => ({ kind: 'job', record: { ...JOB, spec: { ...SPEC, ...spec } } });

describe('parseRecord bounds', () => {
  it.each([
    ['--every 100000000d', withSpec({ schedule: { kind: 'every', intervalMs: 100_000_000 * 86_400_000 } }), /intervalMs/],
    ['--every 500ms', withSpec({ schedule: { kind: 'every', intervalMs: 500 } }), /intervalMs/],
    ['atMs = MAX_SAFE_INTEGER', withSpec({ schedule: { kind: 'at', atMs: Number.MAX_SAFE_INTEGER } }), /atMs/],
    ['a timeout over 365d', withSpec({ timeoutMs: MAX_DURATION_MS + 1 }), /timeoutMs/],
    ['a bad cron', withSpec({ schedule: { kind: 'cron', expr: '99 * * * *', tz: null } }), /cron/],
    ['an unknown time zone', withSpec({ schedule: { kind: 'cron', expr: '* * * * *', tz: 'Mars/Olympus' } }), /time zone/],
    ['a bad job name', { kind: 'job', record: { ...JOB, name: '..' } }, /job name/],
    ['a live job without a spec', { kind: 'job', record: { ...JOB, spec: null } }, /needs a spec/],
    ['a stamp past year 9999', { kind: 'job', record: { ...JOB, stamp: { ...JOB.stamp, wallMs: MAX_TIME_MS + 1 } } }, /wallMs/],
  ])('refuses %s', (_what, value, message) => {
    const parsed = parseRecord(value);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toMatch(message);
  });

  it('accepts the edges, and a tombstone without a spec', () => {
    expect(parseRecord(withSpec({ schedule: { kind: 'every', intervalMs: 1000 }, timeoutMs: MAX_DURATION_MS })).ok).toBe(true);
    expect(parseRecord(withSpec({ schedule: { kind: 'at', atMs: MAX_TIME_MS } })).ok).toBe(true);
    expect(parseRecord({ kind: 'job', record: { ...JOB, deleted: true, spec: null } }).ok).toBe(true);
  });
});

describe('step records', () => {
  const attempt = { attempt: 1, status: 'succeeded', reason: null, exitCode: 0, startedAtMs: 1000, finishedAtMs: 1100, notBeforeMs: null, history: [], reporter: 'n1', stamp: { wallMs: 1100, counter: 0, nodeId: 'n1' }, sig: '' };

  it('name their runner runnerNodeId; one written before steps had their own type (nodeId) is read as such', () => {
    const current = parseRecord({ kind: 'step', record: { instanceId: 'i1', step: 'post', runnerNodeId: 'n1', ...attempt } });
    const legacy = parseRecord({ kind: 'step', record: { instanceId: 'i1', step: 'post', nodeId: 'n1', ...attempt } });
    expect(current.ok && legacy.ok).toBe(true);
    if (current.ok && legacy.ok) {
      expect(legacy.record).toEqual(current.record);
      expect(current.record.record).toMatchObject({ runnerNodeId: 'n1' });
      expect(current.record.record).not.toHaveProperty('nodeId');
    }
  });

  it('refuses a step without a runner', () => {
    const parsed = parseRecord({ kind: 'step', record: { instanceId: 'i1', step: 'pre', ...attempt } });
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toMatch(/runnerNodeId/);
  });

  it('accept spawn-failed as a reason', () => {
    expect(parseRecord({ kind: 'subtask', record: { instanceId: 'i1', nodeId: 'n1', ...attempt, status: 'failed', reason: 'spawn-failed', exitCode: null } }).ok).toBe(true);
  });
});

describe('an attempt killed by a signal', () => {
  const attempt = { attempt: 2, status: 'failed', reason: 'signal', exitCode: null, signal: 'SIGKILL', startedAtMs: 1000, finishedAtMs: 1100, notBeforeMs: null, reporter: 'n1', stamp: { wallMs: 1100, counter: 0, nodeId: 'n1' }, sig: '' };
  const earlier = { attempt: 1, status: 'failed', reason: 'signal', exitCode: null, signal: 'SIGSEGV', startedAtMs: 900, finishedAtMs: 950 };

  it('keeps its reason and signal, in the current attempt and in the history', () => {
    const parsed = parseRecord({ kind: 'subtask', record: { instanceId: 'i1', nodeId: 'n1', ...attempt, history: [earlier] } });
    expect(parsed.ok).toBe(true);
    if (parsed.ok) expect(parsed.record.record).toMatchObject({ reason: 'signal', signal: 'SIGKILL', history: [{ signal: 'SIGSEGV' }] });
  });

  it('a record without a signal (any writer before the field) is read without one: nothing is added to what its writer signed', () => {
    const { signal: _signal, ...old } = attempt;
    const parsed = parseRecord({ kind: 'subtask', record: { instanceId: 'i1', nodeId: 'n1', ...old, reason: 'exit-code', history: [] } });
    expect(parsed.ok).toBe(true);
    if (parsed.ok) expect(parsed.record.record).not.toHaveProperty('signal');
  });

  it.each([
    ['a null signal (absent is how none is written)', null],
    ['an empty signal', ''],
    ['a signal name of 33 characters', 'S'.repeat(33)],
  ])('refuses %s', (_what, signal) => {
    expect(parseRecord({ kind: 'subtask', record: { instanceId: 'i1', nodeId: 'n1', ...attempt, signal, history: [] } }).ok).toBe(false);
  });
});
