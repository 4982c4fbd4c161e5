// `chorus node drain|undrain`: ask the daemon, then (with --wait) poll until the node runs
// nothing, as the daemon the CLI talks to sees it (the drained node's records reach it by
// gossip).
import type { ChorusClient } from '../api/client.js';
import type { NodeDetailView } from '../api/views.js';

const POLL_MS = 500;

export async function drainNode(
  client: ChorusClient,
  ref: string,
  draining: boolean,
  options: { wait: boolean; timeoutMs: number | null; progress: (line: string) => void },
): Promise<{ node: NodeDetailView; timedOut: boolean }> {
  const path = `/v1/nodes/${encodeURIComponent(ref)}`;
  let node = await client.request<NodeDetailView>('POST', `${path}/${draining ? 'drain' : 'undrain'}`);
  if (!options.wait || node.unfinished === 0) return { node, timedOut: false };
  const deadline = options.timeoutMs === null ? Infinity : Date.now() + options.timeoutMs;
  options.progress(`node ${node.name} is draining; waiting for its ${node.unfinished} unfinished subtask(s)`);
  let last = node.unfinished;
  for (;;) {
    if (Date.now() >= deadline) return { node, timedOut: true };
    await new Promise((r) => setTimeout(r, Math.min(POLL_MS, Math.max(0, deadline - Date.now()))));
    node = await client.request<NodeDetailView>('GET', path);
    if (node.unfinished === 0) return { node, timedOut: false };
    if (node.unfinished !== last) options.progress(`node ${node.name}: ${node.unfinished} unfinished subtask(s)`);
    last = node.unfinished;
  }
}
