// The swarm guard over an in-memory connection pair: the same key connects, and a write
// far bigger than the cipher's WebAssembly memory (64 MB) passes whole and intact, where
// @libp2p/pnet 3.0.27 alone threw "WebAssembly.Memory.grow(): Maximum memory size exceeded".
import { randomBytes } from 'node:crypto';
import { multiaddrConnectionPair } from '@libp2p/utils';
import type { MessageStream } from '@libp2p/interface';
import { describe, expect, it } from 'vitest';
import { swarmGuard } from './swarm-guard.js';
import { generateSwarmKey } from './swarm-key.js';

const key = new TextEncoder().encode(generateSwarmKey().trim());

async function protectedPair(): Promise<[MessageStream, MessageStream]> {
  const guard = swarmGuard({ psk: key, handshakeTimeoutMs: 5_000, onRefused: () => undefined });
  const [outbound, inbound] = multiaddrConnectionPair();
  return Promise.all([guard().protect(outbound), guard().protect(inbound)]);
}

describe('swarmGuard', () => {
  it('passes a 96 MB write whole and intact through the protected connection', async () => {
    const [a, b] = await protectedPair();
    const big = randomBytes(96 * 1024 * 1024);
    a.maxReadBufferLength = b.maxReadBufferLength = 2 * big.byteLength;
    const received: Uint8Array[] = [];
    let receivedBytes = 0;
    const done = new Promise<void>((resolve) => {
      b.addEventListener('message', (evt) => {
        const chunk = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray();
        received.push(chunk.slice());
        receivedBytes += chunk.byteLength;
        if (receivedBytes >= big.byteLength) resolve();
      });
    });
    a.send(big);
    await done;
    expect(Buffer.concat(received).equals(big)).toBe(true);
    a.abort(new Error('done'));
    b.abort(new Error('done'));
  }, 60_000);

  it("finalizes a closed connection's ciphers, handing their slots of the shared cipher memory back, and new connections still work", async () => {
    const ciphersOf = (stream: MessageStream) => {
      const box = stream as unknown as { inboundXor: { _xor: unknown }; outboundXor: { _xor: unknown } };
      return [box.inboundXor, box.outboundXor];
    };
    for (let i = 0; i < 50; i++) {
      const [a, b] = await protectedPair();
      a.send(new Uint8Array(1024));
      expect(ciphersOf(a).every((c) => c._xor !== null)).toBe(true);
      a.abort(new Error('done'));
      b.abort(new Error('done'));
      // XSalsa20.finalize() clears its state (and returns its 64-byte slot to the pool).
      expect([...ciphersOf(a), ...ciphersOf(b)].map((c) => c._xor)).toEqual([null, null, null, null]);
    }
    const [a, b] = await protectedPair();
    const got = new Promise<number>((resolve) => b.addEventListener('message', (evt) => resolve(evt.data.byteLength)));
    a.send(new Uint8Array(10));
    expect(await got).toBe(10);
  }, 60_000);
});
