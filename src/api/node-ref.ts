// A node named on the command line (`--node`, `NODE`): its full id, the id suffix the
// tables show (with or without the leading '…'), or its name. One rule everywhere.
import { ApiError } from './control-plane.js';

export interface NodeCandidate {
  nodeId: string;
  name: string | null;
}

/** The one node `ref` names among `candidates`; a 404 when none, a 400 listing them when several. */
export function resolveNodeRef(ref: string, candidates: NodeCandidate[], within: string): string {
  const wanted = ref.trim().replace(/^…/, '');
  if (wanted === '') throw new ApiError(400, 'bad-request', 'an empty node name or id');
  const exact = candidates.filter((c) => c.nodeId === wanted);
  if (exact.length === 1) return (exact[0] as NodeCandidate).nodeId;
  const byName = candidates.filter((c) => c.name === wanted);
  const bySuffix = candidates.filter((c) => c.nodeId.endsWith(wanted));
  const matches = [...new Map([...byName, ...bySuffix].map((c) => [c.nodeId, c])).values()];
  if (matches.length === 1) return (matches[0] as NodeCandidate).nodeId;
  const list = (cs: NodeCandidate[]) => cs.map((c) => `${c.name ?? '?'} (${c.nodeId})`).join(', ');
  if (matches.length === 0) throw new ApiError(404, 'unknown-node', `no node named or ending in "${ref}" in ${within}; known: ${list(candidates)}`);
  throw new ApiError(400, 'ambiguous-node', `"${ref}" matches ${matches.length} nodes of ${within}: ${list(matches)}; give more of the id`);
}
