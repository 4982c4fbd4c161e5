// Which nodes an instance of a spec would target now, and why the others are left out
// (`chorus job plan NAME`, `chorus run --plan`). The leader's own choice (leader.ts) is
// made by the same function, so a plan shows what a run would do at that moment, as the
// answering node sees the members.
import type { MemberInfo } from '../cluster/view.js';
import { matchesTags } from '../cluster/view.js';
import { parallelLimit, waveEnds, waveOf } from '../records/rollout.js';
import type { JobSpec } from '../records/types.js';

export type LeftOutReason = 'tag-mismatch' | 'draining' | 'suspect';

export interface Eligibility {
  /** Alive members that match the tags and are not draining, sorted by node id. */
  eligible: MemberInfo[];
  /** Alive (or suspect) members that are not targeted, and why, sorted by node id. */
  leftOut: { member: MemberInfo; reason: LeftOutReason; detail: string }[];
}

/** The members a new instance of `spec` targets (a broadcast: all eligible; a standalone job: one of them). */
export function eligibility(members: readonly MemberInfo[], spec: Pick<JobSpec, 'tags'>): Eligibility {
  // Code-unit order, as instance targets are kept (RecordStore's sortedHas bisects them with <).
  const sorted = [...members].sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  const eligible: MemberInfo[] = [];
  const leftOut: Eligibility['leftOut'] = [];
  for (const m of sorted) {
    if (m.state !== 'alive' && m.state !== 'suspect') continue; // dead and left members are not candidates at all
    if (!matchesTags(m.tags, spec.tags)) {
      const missing = Object.entries(spec.tags).filter(([k, v]) => m.tags[k] !== v).map(([k, v]) => `${k}=${v}`);
      leftOut.push({ member: m, reason: 'tag-mismatch', detail: `lacks ${missing.join(', ')}` });
    } else if (m.state === 'suspect') {
      leftOut.push({ member: m, reason: 'suspect', detail: 'not answering probes: may be down' });
    } else if (m.draining) {
      leftOut.push({ member: m, reason: 'draining', detail: 'chorus node drain: takes no new work' });
    } else eligible.push(m);
  }
  return { eligible, leftOut };
}

export interface PlanTarget {
  nodeId: string;
  name: string;
  tags: Record<string, string>;
  state: MemberInfo['state'];
  shardIndex: number;
  /** 1 and up (1 for every target without --waves). */
  wave: number;
}

export interface PlanView {
  job: string | null;
  type: JobSpec['type'];
  cmd: string;
  tags: Record<string, string>;
  /** A broadcast: every one of these; a standalone job: one of them, the least busy when it runs. */
  targets: PlanTarget[];
  leftOut: { nodeId: string; name: string; tags: Record<string, string>; state: MemberInfo['state']; reason: LeftOutReason; detail: string }[];
  waveSizes: number[];
  parallelLimit: number | null;
  /** Why nothing would run, as the instance would record it (null: it would run). */
  failure: string | null;
}

export function planOf(job: string | null, spec: JobSpec, members: readonly MemberInfo[]): PlanView {
  const { eligible, leftOut } = eligibility(members, spec);
  const ends = spec.type === 'broadcast' ? waveEnds(spec, eligible.length) : [eligible.length];
  return {
    job,
    type: spec.type,
    cmd: spec.cmd,
    tags: spec.tags,
    targets: eligible.map((m, i) => ({ nodeId: m.nodeId, name: m.name, tags: m.tags, state: m.state, shardIndex: i, wave: waveOf(ends, i) + 1 })),
    leftOut: leftOut.map(({ member: m, reason, detail }) => ({ nodeId: m.nodeId, name: m.name, tags: m.tags, state: m.state, reason, detail })),
    waveSizes: ends.map((end, i) => end - (ends[i - 1] ?? 0)),
    parallelLimit: spec.type === 'broadcast' ? parallelLimit(spec, eligible.length) : null,
    failure: eligible.length === 0 ? noTargetFailure(spec, leftOut.filter((l) => l.reason === 'draining').length) : null,
  };
}

/** Why an instance has no target, as it records it in `failure`. */
export function noTargetFailure(spec: Pick<JobSpec, 'tags'>, draining: number): string {
  const tags = Object.entries(spec.tags).map(([k, v]) => `${k}=${v}`);
  if (draining > 0) return `${tags.length > 0 ? `every alive node matching ${tags.join(', ')}` : 'every alive node'} is draining (${draining})`;
  return tags.length > 0 ? `no alive node matches the tags ${tags.join(', ')}` : 'no alive node to run on';
}
