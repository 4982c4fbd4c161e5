// The API server's doors for credentials, over real HTTP on 127.0.0.1: a dashboard session
// made with a token ends when that token is revoked (its unused login codes too), sessions
// are listed and ended one by one, and a session cookie may not manage credentials at all.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../core/log.js';
import type { ControlPlane } from './control-plane.js';
import { ApiServer } from './server.js';
import { OWN_TOKEN_ID, TokenStore } from './tokens.js';
import { SESSION_COOKIE, type SessionView } from './ui-sessions.js';

const OWN = 'a'.repeat(64);
/** All the control plane these tests reach (GET /v1/whoami). */
const plane = { status: () => ({ nodeId: 'n1', name: 'alpha' }) } as unknown as ControlPlane;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Api {
  tokens: TokenStore;
  /** A request with `auth`: a bearer token, or a session cookie (sent as the dashboard sends it). */
  call(method: string, path: string, auth: { bearer: string } | { cookie: string; authorization?: string }, body?: unknown): Promise<{ status: number; body: unknown }>;
  /** A login code asked for with a bearer token. */
  code(bearer: string): Promise<string>;
  /** GET /ui/login: the session cookie it sets, or the status when it sets none. */
  login(code: string): Promise<string | number>;
}

async function serve(): Promise<Api> {
  const dir = await mkdtemp(join(tmpdir(), 'chorus-server-'));
  const tokens = await TokenStore.open(join(dir, 'tokens.json'), OWN);
  const server = new ApiServer(plane, tokens, silentLogger);
  const url = await server.listen('127.0.0.1', 0);
  cleanups.push(() => rm(dir, { recursive: true, force: true }), () => server.close());
  const call: Api['call'] = async (method, path, auth, body) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if ('bearer' in auth) headers.authorization = `Bearer ${auth.bearer}`;
    else Object.assign(headers, { cookie: `${SESSION_COOKIE}=${auth.cookie}`, 'x-chorus-ui': '1' }, auth.authorization ? { authorization: auth.authorization } : {});
    const res = await fetch(`${url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text === '' ? null : JSON.parse(text) };
  };
  return {
    tokens,
    call,
    async code(bearer) {
      const r = await call('POST', '/v1/ui/codes', { bearer }, {});
      expect(r.status).toBe(200);
      return (r.body as { code: string }).code;
    },
    async login(code) {
      const res = await fetch(`${url}/ui/login?code=${code}`, { redirect: 'manual' });
      await res.text();
      const cookie = res.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`));
      return cookie ? (cookie.split(';')[0] as string).slice(SESSION_COOKIE.length + 1) : res.status;
    },
  };
}

const own = { bearer: OWN };

describe('the API server and dashboard sessions', () => {
  it('revoking a token ends its sessions and its unused login codes at once; the list shows no session then', async () => {
    const api = await serve();
    const made = await api.tokens.create('operate', 'laptop', '2026-12-06T00:00:00.000Z');
    const cookie = await api.login(await api.code(made.token));
    const unused = await api.code(made.token);
    expect(typeof cookie).toBe('string');
    const session = { cookie: cookie as string };
    expect(await api.call('GET', '/v1/whoami', session)).toEqual({ status: 200, body: { role: 'operate', nodeId: 'n1', name: 'alpha' } });
    const listed = (await api.call('GET', '/v1/ui/sessions', own)).body as SessionView[];
    expect(listed.map((s) => [s.role, s.tokenId, s.tokenName])).toEqual([['operate', made.id, 'laptop']]);
    expect(listed[0]?.id).toMatch(/^ui-[0-9a-f]{10}$/);
    expect(JSON.stringify(listed)).not.toContain(cookie);

    const revoked = await api.call('DELETE', `/v1/tokens/${made.id}`, own);
    expect(revoked).toEqual({ status: 200, body: { kind: 'token', revoked: made.id, endedSessions: 1, droppedCodes: 1 } });
    expect(await api.call('GET', '/v1/whoami', session)).toEqual({ status: 401, body: { error: 'unauthorized', message: expect.stringMatching(/^the dashboard session has ended .*run chorus ui/) as unknown } });
    expect(await api.login(unused)).toBe(401);
    expect((await api.call('GET', '/v1/ui/sessions', own)).body).toEqual([]);
  });

  it('a session cookie may not create, list or revoke tokens, ask for login codes or touch sessions; a bearer token may', async () => {
    const api = await serve();
    const session = { cookie: (await api.login(await api.code(OWN))) as string };
    const reader = await api.tokens.create('read', null, '');
    for (const [method, path, body] of [
      ['POST', '/v1/tokens', { role: 'operate' }],
      ['GET', '/v1/tokens'],
      ['DELETE', `/v1/tokens/${reader.id}`],
      ['POST', '/v1/ui/codes', {}],
      ['GET', '/v1/ui/sessions'],
      ['DELETE', '/v1/ui/sessions/ui-0123456789'],
    ] as [string, string, unknown?][]) {
      const r = await api.call(method, path, session, body);
      expect([r.status, (r.body as { message: string }).message], `${method} ${path}`).toEqual([403, expect.stringContaining('a dashboard session may not') as unknown]);
    }
    expect(api.tokens.list().map((t) => t.id)).toEqual([reader.id]); // nothing minted, nothing revoked
    // Another authorization scheme beside the cookie does not make it a bearer.
    expect((await api.call('POST', '/v1/tokens', { ...session, authorization: 'Basic eDp5' }, { role: 'operate' })).status).toBe(403);
    expect((await api.call('GET', '/v1/whoami', session)).status).toBe(200); // the session itself still works
    expect((await api.call('POST', '/v1/tokens', own, { role: 'read' })).status).toBe(200);
  });

  it('ends one session by its id, leaving the others; an unknown id is 404; a read token may not see sessions; the daemon\'s own token is not revoked (400)', async () => {
    const api = await serve();
    const first = { cookie: (await api.login(await api.code(OWN))) as string };
    const second = { cookie: (await api.login(await api.code(OWN))) as string };
    const listed = (await api.call('GET', '/v1/ui/sessions', own)).body as SessionView[];
    expect(listed.map((s) => [s.tokenId, s.tokenName])).toEqual([[OWN_TOKEN_ID, null], [OWN_TOKEN_ID, null]]);
    const firstId = listed[0]?.id as string;
    expect(await api.call('DELETE', `/v1/ui/sessions/${firstId}`, own)).toEqual({ status: 200, body: { kind: 'session', revoked: firstId } });
    expect((await api.call('GET', '/v1/whoami', first)).status).toBe(401);
    expect((await api.call('GET', '/v1/whoami', second)).status).toBe(200);
    expect(((await api.call('GET', '/v1/ui/sessions', own)).body as SessionView[]).map((s) => s.id)).toEqual([listed[1]?.id]);
    const again = await api.call('DELETE', `/v1/ui/sessions/${firstId}`, own);
    expect([again.status, (again.body as { error: string }).error]).toEqual([404, 'unknown-session']);
    const reader = await api.tokens.create('read', null, '');
    expect((await api.call('GET', '/v1/ui/sessions', { bearer: reader.token })).status).toBe(403);
    const ownRevoked = await api.call('DELETE', `/v1/tokens/${OWN_TOKEN_ID}`, own);
    expect([ownRevoked.status, (ownRevoked.body as { error: string }).error]).toEqual([400, 'own-token']);
    expect((await api.call('GET', '/v1/whoami', second)).status).toBe(200);
  });
});
