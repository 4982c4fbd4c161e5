// The dashboard's calls to the daemon that served it: the /v1 API with the session cookie.
export class Unauthorized extends Error {}

/**
 * Ends the reads (long polls above all) of the page being left: a browser keeps about six
 * connections to a host, and each page left with a long poll pending would hold one for
 * up to 25 s. A change (POST) is never cut off.
 */
let pageReads = new AbortController();
export function leavePage(): void {
  pageReads.abort();
  pageReads = new AbortController();
}

export async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const read = !init.method || init.method === 'GET';
  if (!read) {
    headers['x-chorus-ui'] = '1'; // the API refuses a cookie request that changes something without it
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(path, { method: init.method ?? 'GET', headers, body: init.body === undefined ? undefined : JSON.stringify(init.body), ...(read ? { signal: pageReads.signal } : {}) });
  if (res.status === 401) throw new Unauthorized('This browser is not logged in (or the daemon restarted): run chorus ui again for a login link.');
  const body = (await res.json().catch(() => ({}))) as { message?: string };
  if (!res.ok) throw new Error(body.message ?? `HTTP ${res.status}`);
  return body as T;
}

export type Role = 'read' | 'operate';

export interface NodeView {
  nodeId: string;
  name: string;
  tags: Record<string, string>;
  state: 'alive' | 'suspect' | 'dead' | 'left';
  leader: boolean;
  draining: boolean;
  incarnation: number;
  lastSeen: string | null;
  /** While the serving daemon suspects the member. */
  suspicion: { since: string; deadAt: string; confirmations: number; expectedConfirmations: number; verified: boolean } | null;
}

export interface SubtaskView {
  nodeId: string;
  nodeName: string | null;
  shardIndex: number;
  wave: number;
  released: boolean;
  status: 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  reason: string | null;
  exitCode: number | null;
  signal: string | null;
  attempt: number;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface InstanceView {
  id: string;
  job: string;
  status: 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  trigger: string;
  cmd: string;
  createdAt: string;
  finishedAt: string | null;
  failure: string | null;
  paused: boolean;
  rollout: {
    maxParallel: number | string | null;
    maxFailures: number | string | null;
    minSuccess: number | string | null;
    waveSizes: number[];
    currentWave: number | null;
    released: number;
    aborted: boolean;
    parallelLimit: number | null;
  } | null;
  notifications: { url: string; status: string; attempts: number; lastError: string | null }[];
  /** Subtasks by status. */
  counts: Record<SubtaskView['status'], number>;
  subtasks: SubtaskView[];
}

/** An instance in a list asked with `summary=1`: no per-node parts. */
export type InstanceSummary = Omit<InstanceView, 'subtasks'>;

export interface JobView {
  name: string;
  cmd: string;
  type: string;
  scheduleText: string | null;
  nextRunAt: string | null;
  enabled: boolean;
  /** With `?recent=N`: the newest runs, newest first. */
  recent?: { id: string; status: InstanceView['status']; createdAt: string }[];
}

export interface FireView {
  scheduledAt: string;
  outcome: string;
  reason: string | null;
  instanceId: string | null;
  leaderName: string | null;
  leader: string;
}
