// Waiting for an instance to end: long-polls the daemon, reports each change (and why
// an attempt was retried) as progress lines, ends with each node's output tail, and
// maps the end to the exit codes of the contract.
import type { ChorusClient } from '../api/client.js';
import { EXIT } from '../api/client.js';
import type { LogView } from '../api/control-plane.js';
import type { InstanceView } from '../api/views.js';
import { isInstanceFinished } from '../records/status.js';
import type { InstanceStatus } from '../records/types.js';
import { versionOf } from '../api/version-of.js';
import { formatOutputTail, formatProgressLine, formatRetryLines, TAIL_MAX_NODES } from './format.js';

export interface WaitResult {
  view: InstanceView;
  timedOut: boolean;
}

const POLL_MS = 5000;
/** The output tail is a courtesy: a slow fetch of logs from every node must not hang the end. */
const TAIL_FETCH_TIMEOUT_MS = 10_000;

/** What a progress report last said of a node, so only changes are printed. */
interface Reported {
  line: string;
  attempt: number;
}

export async function waitForInstance(
  client: ChorusClient,
  initial: InstanceView,
  timeoutMs: number | null,
  progress: ((line: string) => void) | null,
): Promise<WaitResult> {
  const deadline = timeoutMs === null ? Infinity : Date.now() + timeoutMs;
  let view = initial;
  const seen = new Map<string, Reported>();
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

function report(view: InstanceView, seen: Map<string, Reported>, progress: ((line: string) => void) | null): void {
  if (!progress) return;
  const nowMs = Date.now();
  for (const s of view.subtasks) {
    const before = seen.get(s.nodeId);
    const line = formatProgressLine(s);
    if (before?.line === line) continue;
    seen.set(s.nodeId, { line, attempt: s.attempt });
    for (const retry of formatRetryLines(s, before?.attempt ?? 1, nowMs)) progress(retry);
    progress(line);
  }
}

/** Prints the end of each node's output (or where to find it) as progress lines. */
export async function reportOutputTail(client: ChorusClient, view: InstanceView, progress: (line: string) => void): Promise<void> {
  const logs = view.subtasks.length > TAIL_MAX_NODES ? null : await fetchLogs(client, view.id);
  for (const line of formatOutputTail(view, logs)) progress(line);
}

/** The instance's logs, or null when they cannot be had: the outcome is known already. */
async function fetchLogs(client: ChorusClient, instanceId: string): Promise<LogView[] | null> {
  try {
    return await client.request<LogView[]>('GET', `/v1/instances/${encodeURIComponent(instanceId)}/logs`, undefined, TAIL_FETCH_TIMEOUT_MS);
  } catch {
    return null;
  }
}

export function exitCodeFor(result: WaitResult): number {
  if (result.timedOut) return EXIT.timedOut;
  return exitCodeOfStatus(result.view.status);
}

/** How an instance that ended ends the command that waited for it: 0 when it succeeded, 1 when it failed or was cancelled. */
export function exitCodeOfStatus(status: InstanceStatus): number {
  return status === 'succeeded' ? EXIT.ok : EXIT.failed;
}
