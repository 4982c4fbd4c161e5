// The API under bad input and load: a body over 1 MiB is 413 with a message, a body that is
// not JSON (by its content type or its bytes) is 415 or 400, random bytes never make it
// fail (no 500, the daemon stays up), and 200 concurrent writes all land.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { JobView } from '../src/api/views.js';
import { jobSpec } from '../src/testing/fixtures.js';
import { startDaemon, useProcessCleanup } from './support/index.js';

useProcessCleanup();

const TEST_TIMEOUT_MS = 180_000;

type ErrorBody = { error?: string; message?: string } | null;

function parseBody(text: string): ErrorBody {
  try {
    return JSON.parse(text) as ErrorBody;
  } catch {
    return null; // a status without a JSON body is checked by the caller
  }
}

describe('the API under bad input and load', () => {
  it('413, 415 and 400 with messages; random bodies never a 500; 200 concurrent writes all land', { timeout: TEST_TIMEOUT_MS }, async () => {
    const d = await startDaemon({ name: 'abuse', logLevel: 'warn' });
    const { api, token } = d.api.endpoint;
    const send = async (method: string, path: string, body: Uint8Array | string | undefined, contentType: string | null = 'application/json') => {
      const res = await fetch(`${api}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(contentType === null ? {} : { 'content-type': contentType }) },
        body,
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      return { status: res.status, body: parseBody(text) };
    };

    const big = await send('PUT', '/v1/jobs/big', JSON.stringify({ spec: { ...jobSpec(), cmd: 'x'.repeat(2 * 1024 * 1024) } }));
    expect(big).toMatchObject({ status: 413, body: { error: 'too-large', message: 'the request body is over 1048576 bytes (1 MiB), the most the API takes' } });
    const form = await send('PUT', '/v1/jobs/form', 'spec=x', 'application/x-www-form-urlencoded');
    expect(form).toMatchObject({ status: 415, body: { message: 'the request body must be JSON sent with Content-Type: application/json, not application/x-www-form-urlencoded' } });
    const untyped = await send('POST', '/v1/run', '{}', null);
    expect(untyped.status).toBe(415);
    const broken = await send('PUT', '/v1/jobs/broken', '{"spec": {');
    expect(broken.status).toBe(400);
    expect(broken.body?.message).toMatch(/^the request body is not valid JSON \(/);
    const wrongShape = await send('POST', '/v1/run', JSON.stringify({ spec: { cmd: 42 } }));
    expect(wrongShape.status).toBe(400);

    // Random and mutated bodies on every endpoint that takes one: a 4xx (or 200 for one that
    // happens to be valid), never a 500, and the daemon answers after each.
    const valid = JSON.stringify({ spec: jobSpec({ cmd: 'true' }), replace: true });
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(['PUT', '/v1/jobs/fuzz'], ['POST', '/v1/run'], ['POST', '/v1/tokens'], ['POST', '/v1/nodes/abuse/drain']),
        fc.oneof(
          fc.uint8Array({ maxLength: 512 }),
          fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })).map(([at, byte]) => {
            const bytes = new TextEncoder().encode(valid);
            bytes[at] = byte;
            return bytes;
          }),
          fc.json().map((j) => new TextEncoder().encode(j)),
        ),
        async ([method, path], body) => {
          runs += 1;
          const r = await send(method as string, path as string, body);
          expect(r.status, `${method} ${path} -> ${r.status} ${JSON.stringify(r.body)}`).toBeLessThan(500);
        },
      ),
      { numRuns: 300 },
    );
    expect(runs).toBe(300);
    expect((await send('GET', '/v1/status', undefined)).status).toBe(200);

    // 200 writes at once: every one answered 200, every job there afterwards.
    const names = Array.from({ length: 200 }, (_, i) => `load-${String(i).padStart(3, '0')}`);
    const results = await Promise.all(names.map((name) => send('PUT', `/v1/jobs/${name}`, JSON.stringify({ spec: jobSpec({ cmd: `echo ${name}` }) }))));
    expect(results.filter((r) => r.status !== 200).map((r) => `${r.status} ${JSON.stringify(r.body)}`)).toEqual([]);
    const listed = (await d.json<JobView[]>(['job', 'list'])).map((j) => j.name).filter((n) => n.startsWith('load-'));
    expect(listed).toEqual(names);
    expect(d.running).toBe(true);
    expect(d.logs()).not.toMatch(/"level":50.*API/);
  });
});
