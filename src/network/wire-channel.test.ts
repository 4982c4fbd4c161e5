// The request channel over an in-memory stream pair: replies match their requests, the
// in-flight limit, timeouts, and bytes from a peer that is not speaking the protocol.
import { streamPair } from '@libp2p/utils';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { RemoteHandlerError, WireChannel, type WireChannelOptions } from './wire-channel.js';

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);
const open: WireChannel[] = [];

afterEach(() => {
  for (const channel of open.splice(0)) channel.close(new Error('test over'));
});

async function pair(a: Partial<WireChannelOptions> = {}, b: Partial<WireChannelOptions> = {}): Promise<[WireChannel, WireChannel]> {
  const [left, right] = await streamPair();
  const options = (o: Partial<WireChannelOptions>): WireChannelOptions => ({
    maxMessageBytes: 64 * 1024,
    maxInFlight: 64,
    onRequest: async (data) => data,
    onClose: () => undefined,
    ...o,
  });
  const channels: [WireChannel, WireChannel] = [new WireChannel(left, options(a)), new WireChannel(right, options(b))];
  open.push(...channels);
  return channels;
}

describe('WireChannel', () => {
  it('answers each request with its own reply, both ways, out of order', async () => {
    const [a, b] = await pair(
      { onRequest: async (data) => text(`a saw ${str(data)}`) },
      {
        onRequest: async (data) => {
          await new Promise((resolve) => setTimeout(resolve, Number(str(data)) % 7));
          return text(`b saw ${str(data)}`);
        },
      },
    );
    const fromA = Promise.all(Array.from({ length: 50 }, (_, i) => a.request(text(String(i)), 5_000)));
    const fromB = Promise.all(Array.from({ length: 50 }, (_, i) => b.request(text(String(i)), 5_000)));
    expect((await fromA).map(str)).toEqual(Array.from({ length: 50 }, (_, i) => `b saw ${i}`));
    expect((await fromB).map(str)).toEqual(Array.from({ length: 50 }, (_, i) => `a saw ${i}`));
  });

  it('turns a handler error into an error reply, and refuses requests beyond the in-flight limit', async () => {
    let release: () => void = () => undefined;
    const [a] = await pair(
      {},
      {
        maxInFlight: 1,
        onRequest: async (data) => {
          if (str(data) === 'fail') throw new Error('no such job: nightly');
          await new Promise<void>((resolve) => (release = resolve));
          return data;
        },
      },
    );
    await expect(a.request(text('fail'), 5_000)).rejects.toThrow(new RemoteHandlerError('no such job: nightly'));
    const first = a.request(text('first'), 5_000);
    await expect(a.request(text('second'), 5_000)).rejects.toThrow(/busy: 1 requests/);
    release();
    expect(str(await first)).toBe('first');
  });

  it('times out a request whose reply does not come, and drops the reply when it does', async () => {
    const [a] = await pair({}, { onRequest: (data) => new Promise((resolve) => setTimeout(() => resolve(data), 200)) });
    await expect(a.request(text('slow'), 50)).rejects.toThrow(/timed out after 50 ms/);
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(str(await a.request(text('next'), 5_000))).toBe('next');
  });

  it('refuses to send more than maxMessageBytes, and closes on a bigger frame from the peer', async () => {
    const closed: string[] = [];
    const [a] = await pair({ maxMessageBytes: 100, onClose: () => closed.push('a') }, { onRequest: async () => new Uint8Array(101) });
    await expect(a.request(new Uint8Array(101), 5_000)).rejects.toThrow(/request of 101 bytes exceeds the limit of 100 bytes/);
    expect(a.isOpen).toBe(true);
    await expect(a.request(text('reply too big'), 5_000)).rejects.toThrow(/exceeds the limit of 100 bytes/);
    expect(a.isOpen).toBe(false);
    expect(closed).toEqual(['a']);
    await expect(a.request(text('after'), 5_000)).rejects.toThrow(/exceeds the limit/);
  });

  it('fails every waiting request when the stream closes', async () => {
    const [a, b] = await pair({}, { onRequest: () => new Promise(() => undefined) });
    const waiting = [a.request(text('1'), 5_000), a.request(text('2'), 5_000)];
    b.close(new Error('peer went away'));
    for (const request of waiting) await expect(request).rejects.toThrow();
    expect(a.isOpen).toBe(false);
  });

  it('never throws on bytes from a peer that does not speak the protocol: it closes, or ignores what answers nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ minLength: 0, maxLength: 64 }), { minLength: 1, maxLength: 8 }), async (chunks) => {
        const [left, right] = await streamPair();
        const handled: Uint8Array[] = [];
        const channel = new WireChannel(right, { maxMessageBytes: 1024, maxInFlight: 4, onRequest: async (d) => (handled.push(d), d), onClose: () => undefined });
        open.push(channel);
        for (const chunk of chunks) if (left.writeStatus === 'writable') left.send(chunk);
        await new Promise((resolve) => setTimeout(resolve, 5));
        // Whatever arrived, the channel is either closed or still answers a real request.
        if (channel.isOpen) {
          const peer = new WireChannel(left, { maxMessageBytes: 1024, maxInFlight: 4, onRequest: async (d) => d, onClose: () => undefined });
          open.push(peer);
          await peer.request(text('still there?'), 100).then(
            (reply) => expect(str(reply)).toBe('still there?'),
            () => undefined, // the garbage left a partial frame in front: the request is lost in it, the channel times out
          );
        }
        left.abort(new Error('done'));
      }),
      { numRuns: 40 },
    );
  });
});
