// The control API: HTTP on 127.0.0.1 (HTTPS with --tls-cert/--tls-key) with a bearer token
// or a dashboard session cookie. Thin on purpose: it checks the caller and its role,
// validates input (400 with what is wrong) and calls the ControlPlane.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { OWN_TOKEN_ID, ROLES, type Caller, type Role, type TokenStore } from './tokens.js';
import { SESSION_COOKIE, SESSION_ID_PREFIX, sessionFromCookie, UiSessions } from './ui-sessions.js';
import { REQUEST_ID_PATTERN } from '../records/ids.js';
import { StorageWriteError } from '../store/durable-file.js';
import { uiAssets } from './ui-assets.js';
import { z } from 'zod';
import { jobSpecSchema } from '../records/validate.js';
import { ApiError, CHANGE_KINDS, type ChangeKind, type ControlPlane, type Listing } from './control-plane.js';
import { instanceSummary, type InstanceView } from './views.js';
import type { Logger } from '../core/log.js';
import { CHORUS_VERSION } from '../core/version.js';

/** Set on every answer, so a client can tell a chorus daemon from another server. */
export const CHORUS_HEADER = 'x-chorus-version';
/** Records a listing had to leave out, as JSON ([{kind, key, message}]). */
export const ERRORS_HEADER = 'x-chorus-errors';
const MAX_ERRORS_HEADER_BYTES = 4096;

const MAX_BODY_BYTES = 1024 * 1024;
/** A body beyond the limit is drained (and dropped) up to this size before the 413. */
const DRAIN_LIMIT_BYTES = 16 * MAX_BODY_BYTES;
const MAX_WAIT_MS = 30_000;
/**
 * The request line and headers, together: four times Node's default, for the cursor of a
 * follow (`instance logs --follow`), about 15 characters per node still producing output.
 */
const MAX_HEADER_BYTES = 64 * 1024;

/** `Authorization: Bearer TOKEN`: the scheme is case-insensitive (RFC 9110 §11.1); the token is not. */
const BEARER = /^bearer +(.*)$/i;

/** A client's id for a write, the same on each of its retries: the daemon answers a retry with what the first did (ids.ts). */
const requestIdField = z.string().regex(REQUEST_ID_PATTERN, 'a request id is 8 to 128 letters, digits or ._:-').nullable().default(null);
const putJobBody = z.object({ spec: jobSpecSchema, replace: z.boolean().default(false), requestId: requestIdField });
const tokenBody = z.object({ role: z.enum(ROLES), name: z.string().min(1).max(100).nullable().default(null) });
/** How long one try of a run may wait for a busy leader (the CLI waits longer at each try). */
const leaderWaitField = z.number().int().min(100).max(MAX_WAIT_MS).optional();
const runBody = z.object({ spec: jobSpecSchema, requestId: requestIdField, leaderWaitMs: leaderWaitField });
const jobRunBody = z.object({ requestId: requestIdField, leaderWaitMs: leaderWaitField }).nullable();

/** Who made a request: a bearer token, or a dashboard session cookie (with the token that made it). */
type Requester = Caller & { by: 'token' | 'session' };

type Handler = (req: IncomingMessage, params: string[], query: URLSearchParams, requester: Requester) => Promise<unknown>;

export class ApiServer {
  private server: Server | null = null;
  private readonly ui = new UiSessions();
  private readonly routes: { method: string; pattern: RegExp; handler: Handler }[] = [];

  constructor(
    private readonly plane: ControlPlane,
    private readonly tokens: TokenStore,
    private readonly log: Logger,
  ) {
    this.accessRoutes();
    this.clusterRoutes();
    this.jobRoutes();
    this.instanceRoutes();
  }

  /** Tokens, dashboard sessions and login codes, and who the caller is. */
  private accessRoutes(): void {
    this.route('GET', /^\/v1\/tokens$/, async () => this.tokens.list());
    this.route('POST', /^\/v1\/tokens$/, async (req) => {
      const body = parse(tokenBody, await readJson(req));
      return this.tokens.create(body.role, body.name, new Date().toISOString());
    });
    this.route('DELETE', /^\/v1\/tokens\/([^/]+)$/, async (_r, [id]) => {
      if (id === OWN_TOKEN_ID) throw new ApiError(400, 'own-token', `the daemon's own token (DIR/api-token) is not revoked through the API: end its dashboard sessions one by one (chorus token revoke ui-...), or stop the daemon, remove DIR/api-token and start it for a new one`);
      if (!(await this.tokens.revoke(id as string))) throw new ApiError(404, 'unknown-token', `no token with id ${id} on this daemon (chorus token list shows them)`);
      // What the token made ends with it, once the revocation is on disk: a code it asked for meanwhile is among them.
      const ended = this.ui.endAllOf(id as string);
      return { kind: 'token', revoked: id, endedSessions: ended.sessions, droppedCodes: ended.codes };
    });
    this.route('GET', /^\/v1\/ui\/sessions$/, async () => this.ui.list((tokenId) => this.tokens.nameOf(tokenId)));
    this.route('DELETE', /^\/v1\/ui\/sessions\/([^/]+)$/, async (_r, [id]) => {
      if (!this.ui.end(id as string)) throw new ApiError(404, 'unknown-session', `no live dashboard session ${id} on this daemon (chorus token list shows them; ids start with ${SESSION_ID_PREFIX})`);
      return { kind: 'session', revoked: id };
    });
    // Who the caller is to this daemon: the dashboard shows only the buttons its role allows.
    this.route('GET', /^\/v1\/whoami$/, async (_r, _p, _q, requester) => {
      const status = this.plane.status();
      return { role: requester.role, nodeId: status.nodeId, name: status.name };
    });
    // A login code for the dashboard (`chorus ui`), with the role of the token that asks.
    this.route('POST', /^\/v1\/ui\/codes$/, async (_r, _p, _q, requester) => {
      const { code, expiresAtMs } = this.ui.createCode(requester);
      return { code, expiresAt: new Date(expiresAtMs).toISOString(), path: `/ui/login?code=${code}` };
    });
  }

  /** This node, the members, and the changes a client follows. */
  private clusterRoutes(): void {
    this.route('GET', /^\/v1\/status$/, async () => this.plane.status());
    this.route('GET', /^\/v1\/nodes$/, async (_r, _p, q) => (boolParam(q, 'watch') ? this.plane.watchNodes(q.get('version'), intParam(q, 'waitMs', 0, 0, MAX_WAIT_MS)) : this.plane.nodes()));
    this.route('GET', /^\/v1\/nodes\/([^/]+)$/, async (_r, [ref]) => this.plane.getNode(ref as string));
    this.route('POST', /^\/v1\/nodes\/([^/]+)\/(drain|undrain)$/, async (_r, [ref, action]) => this.plane.drainNode(ref as string, action === 'drain'));
    this.route('GET', /^\/v1\/changes$/, async (_r, _p, q) => this.plane.watchChanges(q.get('cursor'), changeKinds(q.get('kinds')), intParam(q, 'waitMs', 0, 0, MAX_WAIT_MS)));
  }

  /** Stored jobs, and runs: of a job, or ad hoc. */
  private jobRoutes(): void {
    this.route('GET', /^\/v1\/jobs$/, async (_r, _p, q) => listed(await this.plane.listJobs(intParam(q, 'recent', 0, 0, 100))));
    this.route('GET', /^\/v1\/jobs\/([^/]+)$/, async (_r, [name]) => this.plane.getJob(name as string));
    this.route('GET', /^\/v1\/jobs\/([^/]+)\/plan$/, async (_r, [name]) => this.plane.planJob(name as string));
    this.route('GET', /^\/v1\/jobs\/([^/]+)\/history$/, async (_r, [name], q) => this.plane.jobHistory(name as string, intParam(q, 'limit', 1000, 1, 10_000)));
    this.route('PUT', /^\/v1\/jobs\/([^/]+)$/, async (req, [name]) => {
      const body = parse(putJobBody, await readJson(req));
      return this.plane.putJob(name as string, body.spec, body.replace, body.requestId);
    });
    this.route('DELETE', /^\/v1\/jobs\/([^/]+)$/, async (_r, [name]) => {
      await this.plane.removeJob(name as string);
      return { removed: name };
    });
    this.route('POST', /^\/v1\/jobs\/([^/]+)\/(enable|disable)$/, async (_r, [name, action]) =>
      this.plane.setJobEnabled(name as string, action === 'enable'),
    );
    this.route('POST', /^\/v1\/jobs\/([^/]+)\/run$/, async (req, [name]) => this.plane.runJob(name as string, parse(jobRunBody, await readJson(req)) ?? { requestId: null }));
    this.route('POST', /^\/v1\/run$/, async (req) => {
      const body = parse(runBody, await readJson(req));
      return this.plane.runAdhoc(body.spec, body);
    });
    this.route('POST', /^\/v1\/plan$/, async (req) => this.plane.planAdhoc(parse(runBody, await readJson(req)).spec));
  }

  /** Instances: list, show or wait, cancel, pause and resume, and their output. */
  private instanceRoutes(): void {
    this.route('GET', /^\/v1\/instances$/, async (_r, _p, q) =>
      summarised(await this.plane.listInstances({ job: q.get('job') ?? undefined, limit: intParam(q, 'limit', 50, 1, 10_000) }), boolParam(q, 'summary')),
    );
    this.route('GET', /^\/v1\/instances\/([^/]+)$/, async (_r, [id], q) => {
      const waitMs = intParam(q, 'waitMs', 0, 0, MAX_WAIT_MS);
      if (waitMs === 0) return this.plane.getInstance(id as string);
      return this.plane.watchInstance(id as string, q.get('version'), waitMs);
    });
    this.route('POST', /^\/v1\/instances\/([^/]+)\/cancel$/, async (_r, [id]) => this.plane.cancelInstance(id as string));
    this.route('POST', /^\/v1\/instances\/([^/]+)\/(pause|resume)$/, async (_r, [id, verb]) => this.plane.pauseInstance(id as string, verb === 'pause'));
    this.route('GET', /^\/v1\/instances\/([^/]+)\/logs$/, async (_r, [id], q) => {
      const follow = boolParam(q, 'follow');
      const group = boolParam(q, 'group');
      if (follow && group) throw new ApiError(400, 'bad-request', 'follow and group cannot be asked together: a group compares whole outputs, known once the attempts ended');
      if (follow) return this.plane.followLogs(id as string, q.get('node'), q.get('cursor') ?? '', intParam(q, 'waitMs', 0, 0, MAX_WAIT_MS));
      if (group) return this.plane.logGroups(id as string, q.get('node'));
      return this.plane.logs(id as string, q.get('node'));
    });
  }

  private route(method: string, pattern: RegExp, handler: Handler): void {
    this.routes.push({ method, pattern, handler });
  }

  /** Whether the API is served over TLS (the dashboard's session cookie is then Secure). */
  private tls = false;

  /** Listens on host:port, over TLS when `tls` is given; resolves with the URL. */
  async listen(host: string, port: number, tls: { cert: Buffer; key: Buffer } | null = null): Promise<string> {
    this.tls = tls !== null;
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    const server: Server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key, maxHeaderSize: MAX_HEADER_BYTES }, handler) : createServer({ maxHeaderSize: MAX_HEADER_BYTES }, handler);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const addr = server.address() as AddressInfo;
    return `${tls ? 'https' : 'http'}://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const path = url.pathname;
      if (path === '/ui' || path.startsWith('/ui/')) return this.serveUi(req, res, path, url.searchParams);
      const requester = this.requesterOf(req);
      if (requester === null) throw new ApiError(401, 'unauthorized', this.byCookie(req) ? 'the dashboard session has ended (it expired, its token was revoked, it was ended, or the daemon restarted): run chorus ui for a new login' : 'missing or wrong bearer token');
      const { role } = requester;
      if (requester.by === 'session') {
        // A request carried by the dashboard's cookie changes nothing unless the page itself
        // sent it (a header a cross-site form cannot set), on top of SameSite=Strict.
        if (req.method !== 'GET' && req.method !== 'HEAD' && req.headers['x-chorus-ui'] !== '1') {
          throw new ApiError(403, 'forbidden', 'a dashboard request that changes something must carry X-Chorus-UI: 1');
        }
        if (bearerOnly(path)) {
          throw new ApiError(403, 'forbidden', `a dashboard session may not ${req.method} ${path}: tokens, login codes and sessions are managed with a bearer token (chorus token, chorus ui), so that a stolen session cookie cannot make a lasting credential`);
        }
      }
      if (!allows(role, req.method ?? 'GET', path)) {
        throw new ApiError(403, 'forbidden', `a ${role} token may not ${req.method} ${path}: it can only look (status, nodes, jobs, instances and their logs); use an operate token`);
      }
      const matches = this.routes.filter((r) => r.pattern.test(path));
      if (matches.length === 0) throw new ApiError(404, 'not-found', `no such endpoint: ${path}`);
      const route = matches.find((r) => r.method === req.method);
      if (!route) throw new ApiError(405, 'method-not-allowed', `${req.method} is not allowed on ${path}`);
      const params = (route.pattern.exec(path) ?? []).slice(1).map(decodePathPart);
      const result = await route.handler(req, params, url.searchParams, requester);
      if (result instanceof ListedResult) return send(res, 200, result.listing.items, errorsHeader(result.listing));
      send(res, 200, result);
    } catch (thrown) {
      // A file of the data directory refused the write: nothing was applied (node.ts commitDurably).
      const err = thrown instanceof StorageWriteError ? new ApiError(507, 'storage-failed', `${thrown.message}; nothing was done`) : thrown;
      const status = err instanceof ApiError ? err.status : 500;
      if (status >= 500) this.log.error({ err, method: req.method, url: req.url, status }, `API ${req.method} ${req.url} failed with ${status}`);
      if (err instanceof ApiError) return send(res, err.status, { error: err.code, message: err.message });
      send(res, 500, { error: 'internal', message: (err as Error).message });
    }
  }

  /** A bearer token when one is given (then no cookie counts), else the session cookie; null when neither is good. */
  private requesterOf(req: IncomingMessage): Requester | null {
    const match = BEARER.exec(req.headers.authorization ?? '');
    if (match) {
      const caller = this.tokens.callerOf((match[1] as string).trim());
      return caller && { ...caller, by: 'token' };
    }
    const session = sessionFromCookie(req.headers.cookie);
    const caller = session === null ? null : this.ui.callerOf(session);
    return caller && { ...caller, by: 'session' };
  }

  /** Whether a request comes with a session cookie and no bearer token (then the cookie is what counts). */
  private byCookie(req: IncomingMessage): boolean {
    return !BEARER.test(req.headers.authorization ?? '') && sessionFromCookie(req.headers.cookie) !== null;
  }

  /** The dashboard: its files to anyone (they hold no data), and the login that turns a code into a session cookie. */
  private serveUi(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'method-not-allowed', message: `${req.method} is not allowed on ${path}` });
    if (path === '/ui') return redirect(res, '/ui/');
    if (path === '/ui/login') {
      const session = this.ui.redeem(query.get('code') ?? '');
      if (!session) return sendText(res, 401, 'This login link was used already or has expired (they last a minute, once). Run chorus ui again for a new one.\n');
      const secure = this.tls ? '; Secure' : '';
      const maxAge = Math.floor((session.expiresAtMs - Date.now()) / 1000);
      return redirect(res, '/ui/', { 'set-cookie': `${SESSION_COOKIE}=${session.sessionId}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAge}${secure}` });
    }
    const name = path === '/ui/' ? 'index.html' : path.slice('/ui/'.length);
    const asset = uiAssets().get(name);
    if (!asset) {
      const built = uiAssets().size > 0;
      return sendText(res, 404, built ? `no such page: ${path}\n` : 'the dashboard was not built: run npm run build\n');
    }
    res.writeHead(200, {
      'content-type': asset.type,
      'content-length': asset.body.length,
      'cache-control': 'no-cache',
      // Only this daemon: no CDN, no inline script, no framing.
      'content-security-policy': "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      [CHORUS_HEADER]: CHORUS_VERSION,
    });
    res.end(req.method === 'HEAD' ? undefined : asset.body);
  }
}

/** What a role may do: operate everything; read only looks (GET), and not at the tokens or sessions. */
export function allows(role: Role, method: string, path: string): boolean {
  if (role === 'operate') return true;
  if (method === 'POST' && path === '/v1/plan') return true; // a plan runs nothing
  if (method === 'POST' && path === '/v1/ui/codes') return true; // a dashboard login with the same role
  return (method === 'GET' || method === 'HEAD') && !path.startsWith('/v1/tokens') && !path.startsWith('/v1/ui/sessions');
}

/**
 * What a dashboard session may not ask at all, whatever its role: the credentials (tokens,
 * login codes, sessions). A stolen cookie then dies with its session (12 h at most, or
 * when its token is revoked) instead of minting a token or a fresh session.
 */
export function bearerOnly(path: string): boolean {
  return path.startsWith('/v1/tokens') || path.startsWith('/v1/ui/');
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), [CHORUS_HEADER]: CHORUS_VERSION });
  res.end(text);
}

function redirect(res: ServerResponse, location: string, extraHeaders: Record<string, string> = {}): void {
  res.writeHead(303, { location, 'content-length': 0, 'referrer-policy': 'no-referrer', [CHORUS_HEADER]: CHORUS_VERSION, ...extraHeaders });
  res.end();
}

function send(res: ServerResponse, status: number, body: unknown, extraHeaders: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    [CHORUS_HEADER]: CHORUS_VERSION,
    ...extraHeaders,
  });
  res.end(text);
}

/** A listing: its items are the body, the records it left out go in a header. */
class ListedResult {
  constructor(readonly listing: Listing<unknown>) {}
}

/** `kinds=job,instance`: the record kinds a change watch asks about (none: all of them). */
function changeKinds(text: string | null): ChangeKind[] {
  if (text === null || text === '') return [];
  return text.split(',').map((kind) => {
    if (!(CHANGE_KINDS as readonly string[]).includes(kind)) throw new ApiError(400, 'bad-request', `kinds: "${kind.slice(0, 40)}" is not a kind of record; use ${CHANGE_KINDS.join(', ')}`);
    return kind as ChangeKind;
  });
}

/** A list of instances, each without its per-node parts when a summary was asked (`summary=1`: a 1,000-node instance is then a few hundred bytes). */
function summarised(listing: Listing<InstanceView>, summary: boolean): ListedResult {
  return listed(summary ? { ...listing, items: listing.items.map(instanceSummary) } : listing);
}

function listed(listing: Listing<unknown>): ListedResult {
  return new ListedResult(listing);
}

function errorsHeader(listing: Listing<unknown>): Record<string, string> {
  if (listing.errors.length === 0) return {};
  const errors = [...listing.errors];
  let text = JSON.stringify(errors);
  while (Buffer.byteLength(text) > MAX_ERRORS_HEADER_BYTES && errors.length > 1) {
    errors.pop();
    text = JSON.stringify(errors);
  }
  // Header values are ASCII: escape everything else.
  return { [ERRORS_HEADER]: text.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) };
}

function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new ApiError(400, 'bad-request', `malformed percent-escape in the path: ${part}`);
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  const tooLarge = () => new ApiError(413, 'too-large', `the request body is over ${MAX_BODY_BYTES} bytes (1 MiB), the most the API takes`);
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    // Past the limit the rest is read and dropped, so that the client, still sending, gets
    // the 413 rather than a reset connection; far past it, the connection is cut.
    if (size > DRAIN_LIMIT_BYTES) throw tooLarge();
    if (size <= MAX_BODY_BYTES) chunks.push(chunk as Buffer);
  }
  if (size > MAX_BODY_BYTES) throw tooLarge();
  if (size > 0) {
    // A body is JSON, said so: a form or text sent by mistake is named, not half understood.
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    if (type !== 'application/json') {
      throw new ApiError(415, 'unsupported-media-type', `the request body must be JSON sent with Content-Type: application/json${type ? `, not ${type}` : ' (none was given)'}`);
    }
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text || 'null');
  } catch (err) {
    throw new ApiError(400, 'bad-request', `the request body is not valid JSON (${(err as Error).message})`);
  }
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new ApiError(400, 'bad-request', z.prettifyError(result.error));
  return result.data;
}

function boolParam(q: URLSearchParams, name: string): boolean {
  const raw = q.get(name);
  if (raw === null || raw === 'false' || raw === '0') return false;
  if (raw === '' || raw === 'true' || raw === '1') return true;
  throw new ApiError(400, 'bad-request', `query parameter ${name} must be true or false (1 or 0), not "${raw}"`);
}

function intParam(q: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = q.get(name);
  if (raw === null) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ApiError(400, 'bad-request', `query parameter ${name} must be an integer from ${min} to ${max}, not "${raw}"`);
  }
  return value;
}
