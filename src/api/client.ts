// The one HTTP client of the control API, used by every CLI command. It finds the
// daemon from a data directory (node.json + api-token) or from --api/--token, and
// turns every failure into a message and an exit code of the CLI contract.
import { processAlive } from '../core/proc.js';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { dataPaths, type NodeInfo } from '../store/paths.js';
import { escapeControl } from '../output/escape.js';

export const EXIT = { ok: 0, failed: 1, badInput: 2, unreachable: 3, unauthorised: 4, timedOut: 124 } as const;

/** Header every chorus daemon sets on its answers; one without it is another server. */
const CHORUS_HEADER = 'x-chorus-version';
const ERRORS_HEADER = 'x-chorus-errors';

const NO_LEADER_RETRY_MS = 5000;

export class ClientError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly code = 'error',
  ) {
    super(message);
  }
}

export interface Endpoint {
  api: string;
  token: string;
  /** Where the endpoint came from, for error messages. */
  source: string;
  /**
   * PEM certificates to trust for an https:// API: --ca (the host name is checked), or the
   * daemon's own certificate named in node.json (pinned: that very certificate, whatever
   * name it was issued for; the CLI reached it through the data directory).
   */
  ca?: { pem: string; from: string; pinned?: boolean };
}

export interface EndpointFlags {
  dataDir?: string;
  api?: string;
  token?: string;
  /** --ca FILE (or CHORUS_CACERT). */
  ca?: string;
}

/** The CA file the CLI trusts for https://, or undefined. */
async function readCa(path: string | undefined, flag: string): Promise<{ pem: string; from: string } | undefined> {
  if (path === undefined || path.trim() === '') return undefined;
  try {
    const pem = await readFile(path, 'utf8');
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM certificate in it');
    return { pem, from: `${flag} ${path}` };
  } catch (err) {
    throw new ClientError(`${flag} ${path}: cannot use it as a CA certificate (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, EXIT.badInput, 'bad-input');
  }
}

export function defaultDataDir(): string {
  return process.env.CHORUS_DATA_DIR ?? join(homedir(), '.chorus');
}

export async function resolveEndpoint(flags: EndpointFlags, note: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<Endpoint> {
  const api = flags.api ?? process.env.CHORUS_API;
  if (api !== undefined) normaliseApi(api); // a bad --api is bad input, whichever else is given
  const ca = flags.ca !== undefined ? await readCa(flags.ca, '--ca') : await readCa(process.env.CHORUS_CACERT, 'CHORUS_CACERT');
  if (api !== undefined && flags.dataDir === undefined) {
    const token = flags.token ?? process.env.CHORUS_TOKEN;
    if (!token) throw new ClientError(`--api ${api} needs a token: pass --token or set CHORUS_TOKEN`, EXIT.badInput);
    return { api: normaliseApi(api), token, source: `--api ${api}`, ...(ca ? { ca } : {}) };
  }
  const dataDir = resolve(flags.dataDir ?? defaultDataDir());
  if (api !== undefined) {
    const tokenFrom = (flags.token ?? process.env.CHORUS_TOKEN) ? '--token' : `the token in ${dataDir}`;
    note(`note: both --api and --data-dir are given: using the daemon at --api ${api}, with ${tokenFrom}`);
  }
  const paths = dataPaths(dataDir);
  let info: NodeInfo;
  try {
    info = JSON.parse(await readFile(paths.nodeInfo, 'utf8')) as NodeInfo;
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new ClientError(
      missing
        ? `no chorus daemon is running for ${dataDir} (there is no node.json). Start one with: chorus daemon --data-dir ${dataDir}`
        : `cannot read ${paths.nodeInfo}: ${(err as Error).message}`,
      EXIT.unreachable,
      'unreachable',
    );
  }
  if (api === undefined && typeof info.pid === 'number' && !processAlive(info.pid)) {
    throw new ClientError(
      `the chorus daemon of ${dataDir} is not running: ${paths.nodeInfo} names pid ${info.pid}, which is gone ` +
        `(the daemon was killed and left the file behind). Start it again with: chorus daemon --data-dir ${dataDir}`,
      EXIT.unreachable,
      'unreachable',
    );
  }
  let token = flags.token ?? process.env.CHORUS_TOKEN;
  if (!token) {
    try {
      token = (await readFile(paths.token, 'utf8')).trim();
    } catch (err) {
      throw new ClientError(`cannot read the API token ${paths.token}: ${(err as Error).message}`, EXIT.unreachable);
    }
  }
  // A daemon on this host with its own certificate: trusted for itself, unless --ca says otherwise.
  const pinned = api === undefined && typeof info.tlsCert === 'string' ? await readCa(info.tlsCert, `the certificate named in ${paths.nodeInfo}`).catch(() => undefined) : undefined;
  const own = ca ?? (pinned ? { ...pinned, pinned: true } : undefined);
  return { api: normaliseApi(flags.api ?? info.api), token, source: `--data-dir ${dataDir}`, ...(own ? { ca: own } : {}) };
}

function normaliseApi(api: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(api) ? api : `http://${api}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new ClientError(`--api ${api} is not a URL: write it like http://127.0.0.1:7410 or 127.0.0.1:7410`, EXIT.badInput, 'bad-input');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ClientError(`--api ${api}: only http:// and https:// URLs are understood`, EXIT.badInput, 'bad-input');
  }
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    throw new ClientError(`--api ${api}: give only the scheme, host and port (like http://127.0.0.1:7410), no path`, EXIT.badInput, 'bad-input');
  }
  return `${url.protocol}//${url.host}`;
}

/** Answers to a run that say the leader could not take it yet; the run is tried again (requestRun). */
const LEADER_WAIT_CODES = new Set(['no-leader', 'leader-busy', 'leader-lost', 'not-replicated', 'daemon-busy']);
const LEADER_WAIT_WHY: Record<string, string> = {
  'no-leader': 'none yet',
  'leader-busy': 'busy',
  'leader-lost': 'it is gone; the next one takes the request',
  'not-replicated': 'no other member confirmed the run yet',
  'daemon-busy': 'this daemon is busy',
};
/** The first try of a run waits this long for the leader (then it says it waits, and waits longer at each try, up to LEADER_MAX_WAIT_MS). */
const LEADER_FIRST_WAIT_MS = 2_500;
const LEADER_MAX_WAIT_MS = 20_000;
/** While a run waits for the leader, the CLI says so this often. */
const LEADER_WAIT_REPORT_MS = 10_000;
/** How long a run waits for a leader to take it when no --timeout is given. */
export const DEFAULT_LEADER_WAIT_MS = 60_000;

interface ErrorBody {
  error?: string;
  message?: string;
}

export class ChorusClient {
  constructor(readonly endpoint: Endpoint) {}

  /** Retries briefly while the cluster has no leader (a leader change takes about a second). */
  async request<T>(method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + NO_LEADER_RETRY_MS;
    for (;;) {
      try {
        return await this.requestOnce<T>(method, path, body, timeoutMs);
      } catch (err) {
        if (!(err instanceof ClientError) || err.code !== 'no-leader' || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /**
   * A run, which the leader must create: while there is no leader yet, the leader changed, or
   * it is alive but slow to answer (busy), the request is tried again with the same request
   * id (so at most one instance is made) until `deadlineMs` from now. `onWait` is told once
   * when the waiting starts and every LEADER_WAIT_REPORT_MS after (the CLI says so on stderr).
   */
  async requestRun<T>(path: string, body: { requestId: string } & Record<string, unknown>, deadlineMs: number, onWait: (line: string) => void, onRetry?: () => void): Promise<T> {
    const startedMs = Date.now();
    let reportedMs = Number.NEGATIVE_INFINITY;
    for (let tries = 1; ; tries++) {
      // A leader that answers in 4 s would never get through 2.5 s tries: each try waits
      // twice as long as the one before (a try joins the run the first one set going).
      const leftMs = deadlineMs - (Date.now() - startedMs);
      const leaderWaitMs = Math.max(LEADER_FIRST_WAIT_MS, Math.min(LEADER_FIRST_WAIT_MS * 2 ** (tries - 1), leftMs, LEADER_MAX_WAIT_MS));
      try {
        // The daemon forwards to the leader within leaderWaitMs; on a busy host it may take
        // longer itself to answer: its silence is a busy daemon, asked again like a busy leader.
        return await this.requestOnce<T>('POST', path, { ...body, leaderWaitMs }, Math.max(leaderWaitMs + 10_000, Math.min(leftMs, 30_000)));
      } catch (err) {
        if (!(err instanceof ClientError) || !LEADER_WAIT_CODES.has(err.code)) throw err;
        const waitedMs = Date.now() - startedMs;
        if (waitedMs >= deadlineMs) {
          throw new ClientError(
            `gave up after ${Math.round(waitedMs / 1000)} s waiting for the leader (${err.message}). If the leader got the request, it may still create the run: ` +
              `run the same command again with --idempotency-key ${body.requestId} to create it at most once, or see chorus instance list`,
            EXIT.failed,
            err.code,
          );
        }
        onRetry?.();
        if (Date.now() - reportedMs >= LEADER_WAIT_REPORT_MS) {
          reportedMs = Date.now();
          onWait(`${tries === 1 ? 'waiting for the leader' : `still waiting for the leader (${Math.round(waitedMs / 1000)} s)`} (${LEADER_WAIT_WHY[err.code] ?? err.code}): ${err.message}`);
        }
        await new Promise((r) => setTimeout(r, Math.min(250 * 2 ** Math.min(tries - 1, 3), Math.max(0, deadlineMs - waitedMs))));
      }
    }
  }

  private async requestOnce<T>(method: string, path: string, body: unknown, timeoutMs: number): Promise<T> {
    let response: Response;
    const init = {
      method,
      headers: { authorization: `Bearer ${this.endpoint.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    };
    try {
      response =
        this.endpoint.ca && this.endpoint.api.startsWith('https:') ? await this.fetchTrusting(this.endpoint.ca.pem, `${this.endpoint.api}${path}`, init) : await fetch(`${this.endpoint.api}${path}`, init);
    } catch (err) {
      throw this.unreachable(err as Error);
    }
    const text = await response.text();
    if (response.headers.get(CHORUS_HEADER) === null) {
      throw new ClientError(
        `${this.endpoint.api} (found from ${this.endpoint.source}) is not a chorus daemon: it answered HTTP ${response.status} without the ${CHORUS_HEADER} header`,
        EXIT.unreachable,
        'not-chorus',
      );
    }
    const parsed = parseJson(text);
    this.reportLeftOut(response.headers.get(ERRORS_HEADER));
    if (response.ok) return parsed as T;
    throw errorFromResponse(response.status, (parsed ?? {}) as ErrorBody, this.endpoint);
  }

  /** A listing that left records out says so on stderr (stdout keeps exactly one document). */
  private reportLeftOut(header: string | null): void {
    if (header === null) return;
    const errors = parseJson(header);
    if (!Array.isArray(errors)) return;
    for (const e of errors as { kind?: string; key?: string; message?: string }[]) {
      this.warn(`warning: ${e.kind} ${e.key} cannot be shown (${e.message}); it is left out. The daemon's log has the details.`);
    }
  }

  /** What the daemon said of records left out comes from the cluster: escaped for the terminal. */
  warn: (line: string) => void = (line) => process.stderr.write(`${escapeControl(line)}\n`);

  private agent: unknown = null;

  /** fetch over TLS trusting `ca` (undici's own fetch and Agent: the global fetch takes no CA). */
  private async fetchTrusting(ca: string, url: string, init: RequestInit): Promise<Response> {
    const undici = await import('undici');
    // A pinned certificate is trusted as itself: no host name to check (it may be issued for the host's DNS name, and the daemon reached on 127.0.0.1).
    this.agent ??= new undici.Agent({ connect: this.endpoint.ca?.pinned ? { ca, checkServerIdentity: () => undefined } : { ca } });
    return (await undici.fetch(url, { ...(init as object), dispatcher: this.agent as InstanceType<typeof undici.Agent> })) as unknown as Response;
  }

  private unreachable(err: Error): ClientError {
    const cause = (err.cause as NodeJS.ErrnoException | undefined)?.code ?? err.name;
    if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(String(cause))) {
      return new ClientError(
        `cannot trust the chorus daemon at ${this.endpoint.api} (${cause}): give its CA certificate with --ca FILE or CHORUS_CACERT${this.endpoint.ca ? ` (${this.endpoint.ca.from} did not verify it)` : ''}`,
        EXIT.unreachable,
        'untrusted',
      );
    }
    if (cause === 'TimeoutError') {
      // Connected (or connecting) but no answer in time: a busy daemon, not a missing one.
      return new ClientError(`the chorus daemon at ${this.endpoint.api} (found from ${this.endpoint.source}) did not answer in time (busy?)`, EXIT.unreachable, 'daemon-busy');
    }
    return new ClientError(
      `cannot reach the chorus daemon at ${this.endpoint.api} (${cause}), found from ${this.endpoint.source}. ` +
        'Is `chorus daemon` running for that data directory?',
      EXIT.unreachable,
      'unreachable',
    );
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function errorFromResponse(status: number, body: ErrorBody, endpoint: Endpoint): ClientError {
  const message = body.message ?? `the daemon answered HTTP ${status}`;
  const code = body.error ?? `http-${status}`;
  if (status === 401) {
    return new ClientError(`the daemon at ${endpoint.api} refused the API token (${message}); check --token or the data directory`, EXIT.unauthorised, code);
  }
  if (status === 403) return new ClientError(`not allowed: ${message}`, EXIT.unauthorised, code);
  if (status === 400 || status === 404 || status === 413) return new ClientError(message, EXIT.badInput, code);
  return new ClientError(message, EXIT.failed, code);
}
