// Waiting for an instance to end: long-polls the daemon, reports each change on
// stderr when it is a terminal, and maps the end to the exit codes of the contract.
import type { ChorusClient } from '../api/client.js';
import { EXIT } from '../api/client.js';
import type { InstanceView } from '../api/views.js';
import { isInstanceFinished } from '../records/status.js';
import { versionOf } from '../api/version-of.js';
import { subtaskOutcome } from './format.js';

export interface WaitResult {
  view: InstanceView;
  timedOut: boolean;
}

const POLL_MS = 5000;

export async function waitForInstance(
  client: ChorusClient,
  initial: InstanceView,
  timeoutMs: number | null,
  progress: ((line: string) => void) | null,
): Promise<WaitResult> {
  const deadline = timeoutMs === null ? Infinity : Date.now() + timeoutMs;
  let view = initial;
  const seen = new Map<string, string>();
  report(view, seen, progress);
  while (!isInstanceFinished(view.status)) {
    const leftMs = deadline - Date.now();
    if (leftMs <= 0) return { view, timedOut: true };
    const waitMs = Math.max(1, Math.min(POLL_MS, Math.ceil(leftMs)));
    view = await client.request<InstanceView>(
      'GET',
      `/v1/instances/${encodeURIComponent(view.id)}?waitMs=${waitMs}&version=${versionOf(view)}`,
      undefined,
      waitMs + 30_000,
    );
    report(view, seen, progress);
  }
  return { view, timedOut: false };
}

function report(view: InstanceView, seen: Map<string, string>, progress: ((line: string) => void) | null): void {
  if (!progress) return;
  for (const s of view.subtasks) {
    const line = `${subtaskOutcome(s)}${s.attempt > 1 ? ` attempt ${s.attempt}` : ''}`;
    if (seen.get(s.nodeId) === line) continue;
    seen.set(s.nodeId, line);
    progress(`  ${s.nodeName ?? ''} ${s.nodeId.slice(-12)}: ${line}`);
  }
}

export function exitCodeFor(result: WaitResult): number {
  if (result.timedOut) return EXIT.timedOut;
  return result.view.status === 'succeeded' ? EXIT.ok : EXIT.failed;
}
