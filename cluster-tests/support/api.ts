// A daemon's control API through the project's own client (src/api/client.ts), for
// probes that would otherwise start a CLI process each (a Node start per probe, which a
// loaded 2-core machine feels). Every call throws on failure, so it fits waitFor
// predicates. No vitest here.
import type { InstanceView, NodeView } from '../../src/api/views.js';
import type { Daemon } from './daemon.js';

const DEFAULT_TIMEOUT_MS = 10_000;

/** One request through `d.api` (ChorusClient); errors name the daemon and the request. */
export async function apiCall<T>(d: Daemon, method: string, path: string, body?: unknown, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<T> {
  try {
    return await d.api.request<T>(method, path, body, timeoutMs);
  } catch (err) {
    throw new Error(`${method} ${path} on ${d.label}: ${(err as Error).message}`, { cause: err });
  }
}

export function apiGet<T>(d: Daemon, path: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<T> {
  return apiCall<T>(d, 'GET', path, undefined, timeoutMs);
}

/** True when the request succeeds (a 2xx answer); false on any error. */
export async function apiOk(d: Daemon, method: string, path: string, body?: unknown, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<boolean> {
  try {
    await d.api.request(method, path, body, timeoutMs);
    return true;
  } catch {
    return false;
  }
}

/** The members as a daemon sees them (what `chorus nodes --json` prints). */
export function nodesOf(d: Daemon, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<NodeView[]> {
  return apiGet<NodeView[]>(d, '/v1/nodes', timeoutMs);
}

/** An instance as a daemon shows it now (what `chorus instance show ID --json` prints). */
export function instanceOn(d: Daemon, id: string): Promise<InstanceView> {
  return apiGet<InstanceView>(d, `/v1/instances/${encodeURIComponent(id)}`);
}

/** Every instance of a job, as a daemon lists them (`instance list --job JOB`). */
export function instancesOf(d: Daemon, job: string): Promise<InstanceView[]> {
  return apiGet<InstanceView[]>(d, `/v1/instances?job=${encodeURIComponent(job)}&limit=1000`);
}

/**
 * The one raw request, for the few tests that assert what the client hides on purpose
 * (the HTTP status, another authorization scheme): the same endpoint and token as
 * `d.api`, no interpretation of the answer.
 */
export async function rawRequest(
  d: Daemon,
  method: string,
  path: string,
  opts: { body?: unknown; scheme?: string } = {},
): Promise<{ status: number; body: unknown }> {
  const { api, token } = d.api.endpoint;
  const res = await fetch(`${api}${path}`, {
    method,
    headers: { authorization: `${opts.scheme ?? 'Bearer'} ${token}`, 'content-type': 'application/json' },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    signal: AbortSignal.timeout(DEFAULT_TIMEOUT_MS),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? null : JSON.parse(text) };
}
