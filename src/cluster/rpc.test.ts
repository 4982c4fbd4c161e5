// A handler's error is the caller's answer; a broken invariant is not: it escapes, to stop the node.
import { describe, expect, it } from 'vitest';
import { InvariantError } from '../core/assert.js';
import type { Transport } from '../core/transport.js';
import { Rpc, RpcError } from './rpc.js';

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const decode = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes)) as unknown;

describe('Rpc.onRequest', () => {
  const rpc = new Rpc({} as Transport);
  rpc.handle('refuse', async () => {
    throw new RpcError('not the leader', 'no-leader');
  });
  rpc.handle('bug', async () => {
    throw new InvariantError(1, 'subtask i1/n1 rewritten as n2');
  });

  it('turns a handler error into an error reply with its code', async () => {
    expect(decode(await rpc.onRequest('peer', encode({ type: 'refuse', body: {} })))).toEqual({ ok: false, error: 'not the leader', code: 'no-leader' });
    expect(decode(await rpc.onRequest('peer', encode({ type: 'nope' })))).toMatchObject({ ok: false, error: 'unknown request type nope' });
  });

  it('lets a broken invariant through instead of answering it', async () => {
    await expect(rpc.onRequest('peer', encode({ type: 'bug', body: {} }))).rejects.toThrow(/guarantee 1: a subtask belongs to one node forever/);
  });
});
