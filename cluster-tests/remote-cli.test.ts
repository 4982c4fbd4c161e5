// A remote CLI that is safe: an API beyond loopback without TLS is refused at start; over
// TLS (here on 127.0.0.1, as tests listen nowhere else) the CLI needs the CA (--ca or
// CHORUS_CACERT), a read token can look but not act (403, exit 4), a wrong token is
// exit 4, and a revoked token stops working, along with the dashboard sessions and the
// unused login codes made with it (issue 27.4); a session cannot mint a token.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JobView } from '../src/api/views.js';
import { EXIT, cli, expectExit, startDaemon, tempDir, useProcessCleanup } from './support/index.js';

useProcessCleanup();

const TEST_TIMEOUT_MS = 120_000;

/** A request as a browser holding the dashboard's session cookie makes it (the page sends X-Chorus-UI). */
async function withCookie(api: string, cookie: string, method: string, path: string, body?: unknown): Promise<number> {
  const res = await fetch(`${api}${path}`, {
    method,
    headers: { cookie, 'x-chorus-ui': '1', 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  await res.text();
  return res.status;
}

/** Opens a login URL (`chorus ui`): the session cookie it sets (`name=value`), or the status when it sets none. */
async function logIn(url: string): Promise<string | number> {
  const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(10_000) });
  await res.text();
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith('chorus_session='));
  return cookie ? (cookie.split(';')[0] as string) : res.status;
}

async function selfSigned(): Promise<{ cert: string; key: string }> {
  const dir = await tempDir('chorus-tls-');
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
  expect(r.status, `openssl is needed (npm test installs it with scripts/test-deps.mjs): ${r.stderr ?? r.error?.message}`).toBe(0);
  return { cert, key };
}

describe('a remote CLI that is safe', () => {
  it('an API beyond loopback without TLS is refused before anything starts', { timeout: TEST_TIMEOUT_MS }, async () => {
    const dataDir = join(await tempDir('chorus-exposed-'), 'data');
    const r = await cli(['daemon', '--data-dir', dataDir, '--api', '0.0.0.0:0', '--listen', '/ip4/127.0.0.1/tcp/0']);
    expectExit(r, EXIT.badInput);
    expect(r.stderr).toContain('--api 0.0.0.0:0: an API other hosts can reach needs TLS, or its tokens travel in clear: give --tls-cert FILE --tls-key FILE (or --insecure-api to accept clear text)');
    expect(existsSync(dataDir)).toBe(false);
    const half = await cli(['daemon', '--data-dir', dataDir, '--tls-key', '/nonexistent.pem']);
    expectExit(half, EXIT.badInput);
    expect(half.stderr).toContain('tls-key is given (from flag) without tls-cert');
  });

  it('over TLS: the CA is needed, a read token looks but cannot act, a wrong or revoked token is exit 4', { timeout: TEST_TIMEOUT_MS }, async () => {
    const { cert, key } = await selfSigned();
    const d = await startDaemon({ name: 'tls', extraArgs: ['--tls-cert', cert, '--tls-key', key] });
    const api = d.info.api;
    expect(api).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    // On the daemon's host, through the data directory: its own certificate is trusted.
    expectExit(await d.cli(['job', 'add', 'hello', '--cmd', 'true']), EXIT.ok);
    const created = await d.cli(['token', 'create', '--role', 'read', '--name', 'dashboard', '--json']);
    expectExit(created, EXIT.ok);
    const { token: read, id } = created.json<{ token: string; id: string }>();

    const remote = (args: string[], env: Record<string, string> = {}) => cli(args, { env: { CHORUS_API: api, CHORUS_TOKEN: read, ...env } });
    const untrusted = await remote(['job', 'list']);
    expectExit(untrusted, EXIT.unreachable);
    expect(untrusted.stderr).toMatch(/cannot trust the chorus daemon at https:\/\/127\.0\.0\.1:\d+ \(DEPTH_ZERO_SELF_SIGNED_CERT\): give its CA certificate with --ca FILE or CHORUS_CACERT/);

    const list = await remote(['job', 'list', '--json', '--ca', cert]);
    expectExit(list, EXIT.ok);
    expect(list.json<JobView[]>().map((j) => j.name)).toEqual(['hello']);
    expectExit(await remote(['status'], { CHORUS_CACERT: cert }), EXIT.ok);

    const run = await remote(['job', 'run', 'hello'], { CHORUS_CACERT: cert });
    expectExit(run, EXIT.unauthorised);
    expect(run.stderr).toContain('not allowed: a read token may not POST /v1/jobs/hello/run: it can only look');
    const tokens = await remote(['token', 'list'], { CHORUS_CACERT: cert });
    expectExit(tokens, EXIT.unauthorised);

    const wrong = await cli(['status', '--api', api, '--token', `${id}.not-the-secret`, '--ca', cert]);
    expectExit(wrong, EXIT.unauthorised);
    expect(wrong.stderr).toMatch(/refused the API token \(missing or wrong bearer token\)/);

    // Plain HTTP to the HTTPS port gets nowhere.
    const plain = await cli(['status', '--api', api.replace('https:', 'http:'), '--token', read]);
    expectExit(plain, EXIT.unreachable);

    expectExit(await d.cli(['token', 'revoke', id]), EXIT.ok);
    const revoked = await remote(['status'], { CHORUS_CACERT: cert });
    expectExit(revoked, EXIT.unauthorised);
  });

  it('revoking a token ends the dashboard sessions and unused login codes made with it; a session cannot mint a token; token revoke ends one session', { timeout: TEST_TIMEOUT_MS }, async () => {
    const d = await startDaemon({ name: 'sessions' });
    const api = d.info.api;
    const created = await d.cli(['token', 'create', '--role', 'operate', '--name', 'laptop', '--json']);
    expectExit(created, EXIT.ok);
    const { token, id } = created.json<{ token: string; id: string }>();
    const loginUrl = async (args: string[]) => {
      const r = await cli(['ui', '--json', ...args]);
      expectExit(r, EXIT.ok);
      return r.json<{ url: string }>().url;
    };
    const byToken = ['--api', api, '--token', token];
    const cookie = await logIn(await loginUrl(byToken));
    const unused = await loginUrl(byToken);
    expect(cookie).toMatch(/^chorus_session=[\w-]+$/);
    expect(await withCookie(api, cookie as string, 'GET', '/v1/whoami')).toBe(200);
    expect(await withCookie(api, cookie as string, 'POST', '/v1/tokens', { role: 'operate' })).toBe(403);

    type Entry = { kind: 'token' | 'session'; id: string; role: string; tokenId?: string; tokenName?: string | null };
    const listed = await d.cli(['token', 'list', '--json']);
    expectExit(listed, EXIT.ok);
    const entries = listed.json<Entry[]>();
    expect(entries.filter((e) => e.kind === 'token').map((e) => e.id)).toEqual([id]); // the one token: the session minted none
    expect(entries.filter((e) => e.kind === 'session').map((e) => [e.role, e.tokenId, e.tokenName])).toEqual([['operate', id, 'laptop']]);
    expect(listed.stdout).not.toContain((cookie as string).split('=')[1]);
    const table = await d.cli(['token', 'list']);
    expect(table.stdout).toMatch(new RegExp(`ui-[0-9a-f]{10} +│ operate +│ ${id} \\(laptop\\)`));

    const revoked = await d.cli(['token', 'revoke', id]);
    expectExit(revoked, EXIT.ok);
    expect(revoked.stdout).toContain(`revoked ${id} (1 dashboard session(s) ended, 1 unused login code(s) dropped)`);
    expect(await withCookie(api, cookie as string, 'GET', '/v1/whoami')).toBe(401);
    expect(await logIn(unused)).toBe(401);
    expect((await d.cli(['token', 'list', '--json'])).json<Entry[]>()).toEqual([]);

    // One session ended by its id, through the daemon's own token; an id no longer live is exit 2.
    const own = await logIn(await loginUrl(['--data-dir', d.dataDir]));
    const [session] = (await d.cli(['token', 'list', '--json'])).json<Entry[]>();
    expect([session?.kind, session?.tokenId]).toEqual(['session', 'daemon']);
    const ended = await d.cli(['token', 'revoke', session?.id as string]);
    expectExit(ended, EXIT.ok);
    expect(ended.stdout).toContain(`ended dashboard session ${session?.id}`);
    expect(await withCookie(api, own as string, 'GET', '/v1/whoami')).toBe(401);
    const again = await d.cli(['token', 'revoke', session?.id as string]);
    expectExit(again, EXIT.badInput);
    expect(again.stderr).toContain(`no live dashboard session ${session?.id} on this daemon`);
  });
});
