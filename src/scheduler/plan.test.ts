import { describe, expect, it } from 'vitest';
import type { MemberInfo } from '../cluster/view.js';
import { jobSpec } from '../testing/fixtures.js';
import { formatPlan } from '../cli/format.js';
import { planOf } from './plan.js';

function member(nodeId: string, over: Partial<MemberInfo> = {}): MemberInfo {
  return { nodeId, name: `host-${nodeId}`, tags: { role: 'web' }, addrs: [], incarnation: 1, state: 'alive', leader: false, keeper: false, draining: false, lastSeenMs: 0, ...over };
}

const members = [
  member('e'),
  member('a'),
  member('B'), // code-unit order: 'B' < 'a'
  member('c', { tags: { role: 'db' } }),
  member('d', { draining: true }),
  member('f', { state: 'suspect' }),
  member('g', { state: 'dead' }),
  member('h', { state: 'left' }),
];

describe('plans', () => {
  it('targets the alive, matching, undrained members in the order instances keep, with shards and waves; names the others and why', () => {
    const plan = planOf('deploy', jobSpec({ tags: { role: 'web' }, waves: [1, '100%'], maxParallel: 2 }), members);
    expect(plan.targets.map((t) => [t.nodeId, t.shardIndex, t.wave])).toEqual([['B', 0, 1], ['a', 1, 2], ['e', 2, 2]]);
    expect(plan.leftOut.map((l) => [l.nodeId, l.reason])).toEqual([['c', 'tag-mismatch'], ['d', 'draining'], ['f', 'suspect']]);
    expect(plan.leftOut[0]?.detail).toBe('lacks role=web');
    expect(plan).toMatchObject({ waveSizes: [1, 2], parallelLimit: 2, failure: null });
    const text = formatPlan(plan);
    expect(text).toMatch(/^plan for job deploy: 3 node\(s\) in 2 waves of 1, 2, at most 2 at once \(nothing was run\)/);
    expect(text).toMatch(/left out \(3\):/);
    expect(text).toMatch(/host-c .*tag-mismatch .*lacks role=web/);
  });

  it('says why nothing would run', () => {
    expect(planOf(null, jobSpec({ tags: { role: 'cache' } }), members).failure).toBe('no alive node matches the tags role=cache');
    expect(planOf(null, jobSpec(), [member('d', { draining: true })]).failure).toBe('every alive node is draining (1)');
    expect(formatPlan(planOf(null, jobSpec({ cmd: 'uptime', tags: { role: 'cache' } }), members))).toMatch(/^plan for run of uptime: nothing would run: no alive node matches the tags role=cache/);
  });

  it('a standalone job runs on one of the eligible nodes', () => {
    expect(formatPlan(planOf('one', jobSpec({ type: 'standalone' }), members))).toMatch(/^plan for job one: one of 4 eligible node\(s\), the least busy when it runs/);
  });
});
