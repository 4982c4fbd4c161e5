import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataFileError } from '../store/durable-file.js';
import { isLoopback } from '../daemon/daemon.js';
import { allows } from './server.js';
import { OWN_TOKEN_ID, TokenStore } from './tokens.js';
import { tempDirs } from '../testing/temp-dirs.js';

const OWN = 'a'.repeat(64);
const tempDir = tempDirs('chorus-tokens-');
async function fresh(): Promise<string> {
  return join(await tempDir(), 'tokens.json');
}

describe('API tokens', () => {
  it('a created token has its role, is kept only hashed (mode 0600), survives a reopen, and is gone once revoked', async () => {
    const path = await fresh();
    const store = await TokenStore.open(path, OWN);
    expect(store.callerOf(OWN)).toEqual({ tokenId: OWN_TOKEN_ID, role: 'operate' });
    const read = await store.create('read', 'ci', '2026-12-06T00:00:00.000Z');
    const operate = await store.create('operate', null, '2026-12-06T00:00:00.000Z');
    expect(read.token).toMatch(/^[0-9a-f]{12}\.[A-Za-z0-9_-]{43}$/);
    expect(store.callerOf(read.token)).toEqual({ tokenId: read.id, role: 'read' });
    expect(store.callerOf(operate.token)).toEqual({ tokenId: operate.id, role: 'operate' });
    expect([store.nameOf(read.id), store.nameOf(operate.id), store.nameOf(OWN_TOKEN_ID)]).toEqual(['ci', null, null]);
    const onDisk = await readFile(path, 'utf8');
    expect(onDisk).not.toContain(read.token.split('.')[1]);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const reopened = await TokenStore.open(path, OWN);
    expect(reopened.callerOf(read.token)).toEqual({ tokenId: read.id, role: 'read' });
    expect(reopened.list()).toEqual([
      { id: read.id, role: 'read', name: 'ci', createdAt: '2026-12-06T00:00:00.000Z' },
      { id: operate.id, role: 'operate', name: null, createdAt: '2026-12-06T00:00:00.000Z' },
    ]);
    expect(await reopened.revoke(read.id)).toBe(true);
    expect(await reopened.revoke(read.id)).toBe(false);
    expect(reopened.callerOf(read.token)).toBeNull();
    expect((await TokenStore.open(path, OWN)).callerOf(read.token)).toBeNull();
  });

  it('refuses what is not a token: wrong secret, unknown id, empty, the own token altered', async () => {
    const store = await TokenStore.open(await fresh(), OWN);
    const t = await store.create('operate', null, '');
    const [id, secret] = t.token.split('.') as [string, string];
    for (const bad of ['', '.', `${id}.`, `${id}.${secret.slice(0, -1)}x`, `ffffffffffff.${secret}`, `${OWN}b`, OWN.slice(1), 'Bearer x']) expect(store.callerOf(bad), bad).toBeNull();
  });

  it('a corrupt tokens.json stops the daemon naming the file, untouched', async () => {
    const path = await fresh();
    await writeFile(path, '{"tokens": [{"id": "x", "role": "admin"}]}');
    await expect(TokenStore.open(path, OWN)).rejects.toThrow(DataFileError);
    await expect(TokenStore.open(path, OWN)).rejects.toThrow(path);
    expect(await readFile(path, 'utf8')).toBe('{"tokens": [{"id": "x", "role": "admin"}]}');
  });

  it('a read token may only look; operate may do everything', () => {
    for (const [method, path] of [['GET', '/v1/status'], ['GET', '/v1/nodes'], ['GET', '/v1/jobs/x'], ['GET', '/v1/instances/i/logs'], ['GET', '/v1/instances/i']]) expect(allows('read', method as string, path as string)).toBe(true);
    for (const [method, path] of [['POST', '/v1/run'], ['PUT', '/v1/jobs/x'], ['DELETE', '/v1/jobs/x'], ['POST', '/v1/nodes/n/drain'], ['GET', '/v1/tokens'], ['POST', '/v1/tokens'], ['GET', '/v1/ui/sessions'], ['DELETE', '/v1/ui/sessions/ui-0123456789'], ['POST', '/v1/instances/i/cancel']]) {
      expect(allows('read', method as string, path as string), `${method} ${path}`).toBe(false);
      expect(allows('operate', method as string, path as string)).toBe(true);
    }
  });

  it('loopback is 127.0.0.0/8, ::1 and localhost; anything else needs TLS', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.1', 'example.com', '128.0.0.1']) expect(isLoopback(h), h).toBe(false);
  });
});
