// A remote CLI that is safe: an API beyond loopback without TLS is refused at start; over
// TLS (here on 127.0.0.1, as tests listen nowhere else) the CLI needs the CA (--ca or
// CHORUS_CACERT), a read token can look but not act (403, exit 4), a wrong token is
// exit 4, and a revoked token stops working.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JobView } from '../src/api/views.js';
import { EXIT, cli, expectExit, startDaemon, tempDir, useProcessCleanup } from './support/index.js';

useProcessCleanup();

const TEST_TIMEOUT_MS = 120_000;

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
});
