import { describe, expect, it } from 'vitest';
import { jobSpec } from '../testing/fixtures.js';
import { abortedSubtask, newSubtask } from '../scheduler/leader.js';
import type { SubtaskRecord, SubtaskStatus } from './types.js';
import { meetsQuorum, nextRelease, overFailureBudget, parallelLimit, waveEnds, waveOf } from './rollout.js';

const stamp = { wallMs: 1, counter: 0, nodeId: 'leader' };
const targets = ['a', 'b', 'c', 'd', 'e'];

function records(states: Record<string, SubtaskStatus>): Map<string, SubtaskRecord> {
  return new Map(Object.entries(states).map(([nodeId, status]) => [nodeId, { ...newSubtask('i', nodeId, stamp, 1), status }]));
}

describe('amounts', () => {
  it('parallel limit: a count, or a share rounded down and at least 1', () => {
    expect(parallelLimit(jobSpec(), 5)).toBeNull();
    expect(parallelLimit(jobSpec({ maxParallel: 2 }), 5)).toBe(2);
    expect(parallelLimit(jobSpec({ maxParallel: '50%' }), 5)).toBe(2);
    expect(parallelLimit(jobSpec({ maxParallel: '10%' }), 5)).toBe(1);
  });

  it('waves: cumulative, shares rounded up, empty waves dropped, the rest one last wave', () => {
    expect(waveEnds(jobSpec({ waves: [1, '50%', '100%'] }), 5)).toEqual([1, 3, 5]);
    expect(waveEnds(jobSpec({ waves: [1, '10%', '100%'] }), 5)).toEqual([1, 5]); // 10 % of 5 rounds up to 1: no new wave
    expect(waveEnds(jobSpec({ waves: [2] }), 5)).toEqual([2, 5]);
    expect(waveEnds(jobSpec({ waves: [10] }), 5)).toEqual([5]);
    expect(waveEnds(jobSpec(), 5)).toEqual([5]);
    expect(waveEnds(jobSpec({ waves: [1] }), 0)).toEqual([]);
    const ends = [1, 3, 5];
    expect([0, 1, 2, 3, 4].map((i) => waveOf(ends, i))).toEqual([0, 1, 1, 2, 2]);
  });

  it('failure budget: more failures than the count or the share', () => {
    expect(overFailureBudget(jobSpec(), 5, 5)).toBe(false);
    expect(overFailureBudget(jobSpec({ maxFailures: 1 }), 1, 5)).toBe(false);
    expect(overFailureBudget(jobSpec({ maxFailures: 1 }), 2, 5)).toBe(true);
    expect(overFailureBudget(jobSpec({ maxFailures: 0 }), 1, 5)).toBe(true);
    expect(overFailureBudget(jobSpec({ maxFailures: '20%' }), 1, 5)).toBe(false);
    expect(overFailureBudget(jobSpec({ maxFailures: '20%' }), 2, 5)).toBe(true);
  });

  it('quorum: all by default, else a count or a share', () => {
    expect(meetsQuorum(jobSpec(), 4, 5)).toBe(false);
    expect(meetsQuorum(jobSpec(), 5, 5)).toBe(true);
    expect(meetsQuorum(jobSpec({ minSuccess: 3 }), 3, 5)).toBe(true);
    expect(meetsQuorum(jobSpec({ minSuccess: 3 }), 2, 5)).toBe(false);
    expect(meetsQuorum(jobSpec({ minSuccess: 6 }), 5, 5)).toBe(false);
    expect(meetsQuorum(jobSpec({ minSuccess: '60%' }), 3, 5)).toBe(true);
    expect(meetsQuorum(jobSpec({ minSuccess: '61%' }), 3, 5)).toBe(false);
  });
});

describe('nextRelease', () => {
  it('releases everything at once without rolling options', () => {
    expect(nextRelease(jobSpec(), targets, new Map(), false)).toEqual({ release: targets, abort: [] });
  });

  it('keeps at most --max-parallel released and unended, counting retries-pending ones', () => {
    const spec = jobSpec({ maxParallel: 2 });
    expect(nextRelease(spec, targets, new Map(), false).release).toEqual(['a', 'b']);
    expect(nextRelease(spec, targets, records({ a: 'running', b: 'pending' }), false).release).toEqual([]);
    expect(nextRelease(spec, targets, records({ a: 'succeeded', b: 'running' }), false).release).toEqual(['c']);
    expect(nextRelease(spec, targets, records({ a: 'succeeded', b: 'failed' }), false).release).toEqual(['c', 'd']);
  });

  it('starts a wave only when every subtask of the earlier waves has ended', () => {
    const spec = jobSpec({ waves: [1, '50%', '100%'] });
    expect(nextRelease(spec, targets, new Map(), false).release).toEqual(['a']);
    expect(nextRelease(spec, targets, records({ a: 'running' }), false).release).toEqual([]);
    expect(nextRelease(spec, targets, records({ a: 'succeeded' }), false).release).toEqual(['b', 'c']);
    expect(nextRelease(spec, targets, records({ a: 'succeeded', b: 'succeeded', c: 'running' }), false).release).toEqual([]);
    expect(nextRelease(spec, targets, records({ a: 'succeeded', b: 'failed', c: 'cancelled' }), false).release).toEqual(['d', 'e']);
    // with a parallel limit inside the waves
    const both = jobSpec({ waves: [1, '100%'], maxParallel: 3 });
    expect(nextRelease(both, targets, records({ a: 'succeeded' }), false).release).toEqual(['b', 'c', 'd']);
    expect(nextRelease(both, targets, records({ a: 'succeeded', b: 'succeeded', c: 'running', d: 'running' }), false).release).toEqual(['e']);
  });

  it('releases nothing while paused', () => {
    expect(nextRelease(jobSpec({ maxParallel: 2 }), targets, records({ a: 'succeeded', b: 'succeeded' }), true)).toEqual({ release: [], abort: [] });
  });

  it('aborts every unreleased subtask once over the failure budget, paused or not, and releases nothing more', () => {
    const spec = jobSpec({ maxParallel: 2, maxFailures: 1 });
    expect(nextRelease(spec, targets, records({ a: 'failed', b: 'running' }), false)).toEqual({ release: ['c'], abort: [] });
    expect(nextRelease(spec, targets, records({ a: 'failed', b: 'running', c: 'failed' }), false)).toEqual({ release: [], abort: ['d', 'e'] });
    expect(nextRelease(spec, targets, records({ a: 'failed', b: 'running', c: 'failed' }), true)).toEqual({ release: [], abort: ['d', 'e'] });
    const aborted = records({ a: 'failed', b: 'running', c: 'failed' });
    for (const t of ['d', 'e']) aborted.set(t, abortedSubtask('i', t, stamp, 2));
    expect(nextRelease(spec, targets, aborted, false)).toEqual({ release: [], abort: [] });
  });
});
