// Real libp2p nodes in one process on 127.0.0.1: gossip, request/response, connection
// events, restarts with the same identity, and the persisted peer key.

import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, connect as tcpConnect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import { afterEach, describe, expect, it } from 'vitest';
import type { TransportEvents } from '../core/transport.js';
import type { Logger } from '../core/log.js';
import { defaultConfig } from '../core/config.js';
import { DEFAULT_TRANSPORT_CONFIG, Libp2pTransport, RemoteHandlerError, transportConfigOf } from './libp2p-transport.js';
import type { Libp2pTransportConfig } from './libp2p-transport.js';
import { loadOrCreatePrivateKey, PEER_KEY_FILE } from './peer-key.js';
import { generateSwarmKey } from './swarm-key.js';
import { waitFor as waitUntil } from '../testing/wait.js';

const TOPIC = 'chorus/test/1';
const swarmKeyBytes = (text: string) => new TextEncoder().encode(text.trim());
const TEST_SWARM_KEY = swarmKeyBytes(generateSwarmKey());
const WAIT_MS = 20_000;

interface Received {
  topic: string;
  from: string;
  text: string;
}

/** A started transport plus everything its handlers saw. */
interface TestNode {
  transport: Libp2pTransport;
  key: PrivateKey;
  messages: Received[];
  connected: string[];
  disconnected: string[];
  onRequest: TransportEvents['onRequest'];
}

const running: Libp2pTransport[] = [];
const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  const toStop = running.splice(0);
  await Promise.allSettled(toStop.map((t) => t.stop()));
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function startNode(opts: { key?: PrivateKey; config?: Partial<Libp2pTransportConfig>; swarmKey?: Uint8Array; refused?: string[]; log?: Logger } = {}): Promise<TestNode> {
  const key = opts.key ?? (await generateKeyPair('Ed25519'));
  const transport = await Libp2pTransport.create({ privateKey: key, topics: [TOPIC], config: opts.config, swarmKey: opts.swarmKey ?? TEST_SWARM_KEY,
    onConnectionRefused: (addr, why) => opts.refused?.push(`${addr} ${why}`), ...(opts.log ? { log: opts.log } : {}) });
  const node: TestNode = {
    transport,
    key,
    messages: [],
    connected: [],
    disconnected: [],
    onRequest: async (_from, data) => data,
  };
  transport.setHandlers({
    onMessage: (topic, from, data) => node.messages.push({ topic, from, text: new TextDecoder().decode(data) }),
    onRequest: (from, data) => node.onRequest(from, data),
    onPeerConnected: (peer) => node.connected.push(peer),
    onPeerDisconnected: (peer) => node.disconnected.push(peer),
  });
  running.push(transport);
  await transport.start();
  return node;
}

async function stopNode(node: TestNode): Promise<void> {
  await node.transport.stop();
  running.splice(running.indexOf(node.transport), 1);
}

/** Polls `condition` until it holds; fails with `what` after the deadline. */
const waitFor = (what: string, condition: () => boolean | Promise<boolean>, timeoutMs = WAIT_MS) => waitUntil(condition, what, timeoutMs);

/** Dials b from a and waits until each has the other's subscription, so gossip flows both ways. */
async function connect(a: TestNode, b: TestNode, address = b.transport.addresses()[0]!): Promise<void> {
  const peer = await a.transport.dialAddr(address);
  expect(peer).toBe(b.transport.localId);
  await a.transport.waitForSubscriber(b.transport.localId, TOPIC, WAIT_MS);
  await b.transport.waitForSubscriber(a.transport.localId, TOPIC, WAIT_MS);
}

const text = (s: string) => new TextEncoder().encode(s);
const gotMessage = (node: TestNode, from: TestNode, body: string) =>
  node.messages.some((m) => m.from === from.transport.localId && m.text === body && m.topic === TOPIC);

/**
 * Keeps publishing numbered messages until `receiver` has one; gossip is best effort, so a
 * single publish during a reconnect may legitimately be lost.
 */
async function publishUntilReceived(sender: TestNode, receiver: TestNode, label: string): Promise<void> {
  let n = 0;
  await waitFor(`${label} to be delivered`, () => {
    if (receiver.messages.some((m) => m.from === sender.transport.localId && m.text.startsWith(label))) return true;
    sender.transport.publish(TOPIC, text(`${label}-${n++}`));
    return false;
  });
}

describe('Libp2pTransport', () => {
  it('reports a handler that throws with the peer, counts it, and goes on delivering (core/transport.ts)', async () => {
    const errors: { fields: Record<string, unknown>; message: string }[] = [];
    const log = { error: (fields: Record<string, unknown>, message: string) => errors.push({ fields, message }) } as unknown as Logger;
    const a = await startNode({ log });
    const b = await startNode();
    a.transport.setHandlers({
      onMessage: (topic, from, data) => {
        a.messages.push({ topic, from, text: new TextDecoder().decode(data) });
        if (new TextDecoder().decode(data).startsWith('boom')) throw new Error('a bug in onMessage');
      },
      onRequest: (from, data) => a.onRequest(from, data),
      onPeerConnected: () => {
        throw new Error('a bug in onPeerConnected');
      },
      onPeerDisconnected: (peer) => a.disconnected.push(peer),
    });
    await connect(a, b);
    await waitFor('the connect handler error to be counted', () => a.transport.stats().handlerErrors >= 1);
    expect(errors[0]?.fields).toMatchObject({ peer: b.transport.localId, event: 'onPeerConnected' });
    expect(errors[0]?.message).toMatch(/onPeerConnected handler threw \(a bug\): a bug in onPeerConnected/);
    await publishUntilReceived(b, a, 'boom');
    await waitFor('the message handler error to be logged', () => errors.some((e) => e.fields.event === 'onMessage' && e.fields.peer === b.transport.localId));
    // Delivery went on: a later message still arrives.
    await publishUntilReceived(b, a, 'after');
    expect(a.transport.stats().handlerErrors).toBeGreaterThanOrEqual(2);
  });

  it('connects via dialAddr and delivers a publish to the other two nodes', async () => {
    const [a, b, c] = await Promise.all([startNode(), startNode(), startNode()]);
    const t0 = performance.now();
    await connect(a, b);
    await connect(a, c);
    await connect(b, c);
    const tConnected = performance.now();

    expect(a.transport.addresses()[0]).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//);
    expect(a.transport.connectedPeers().sort()).toEqual([b.transport.localId, c.transport.localId].sort());
    expect(a.connected.sort()).toEqual([b.transport.localId, c.transport.localId].sort());

    a.transport.publish(TOPIC, text('hello'));
    await waitFor('b and c to receive hello', () => gotMessage(b, a, 'hello') && gotMessage(c, a, 'hello'));
    const tDelivered = performance.now();
    expect(a.messages).toEqual([]); // emitSelf is off
    console.info(
      `3-node mesh connected + subscribed in ${Math.round(tConnected - t0)} ms; ` +
        `first publish delivered in ${Math.round(tDelivered - tConnected)} ms`,
    );
  });

  it('publishes without throwing when nobody is subscribed', async () => {
    const a = await startNode();
    expect(() => a.transport.publish(TOPIC, text('into the void'))).not.toThrow();
    await waitFor('the lost publish to be counted', () => a.transport.stats().publishedToNobody === 1);
  });

  it('round-trips a request, propagates handler errors and times out', async () => {
    const [a, b] = await Promise.all([startNode(), startNode()]);
    await a.transport.dialAddr(b.transport.addresses()[0]!);

    b.onRequest = async (from, data) => text(`${from}:${new TextDecoder().decode(data)}`);
    const reply = await a.transport.request(b.transport.localId, text('ping'), 5_000);
    expect(new TextDecoder().decode(reply)).toBe(`${a.transport.localId}:ping`);

    b.onRequest = async () => {
      throw new Error('no such job: nightly');
    };
    const failed = a.transport.request(b.transport.localId, text('x'), 5_000);
    await expect(failed).rejects.toBeInstanceOf(RemoteHandlerError);
    await expect(failed).rejects.toThrow('no such job: nightly');

    let release: () => void = () => {};
    cleanups.push(() => release());
    b.onRequest = () => new Promise<Uint8Array>((resolve) => (release = () => resolve(text('late'))));
    const started = Date.now();
    await expect(a.transport.request(b.transport.localId, text('slow'), 300)).rejects.toThrow(/timed out after 300 ms/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('sends a request only over an open connection, and hangs up on purpose', async () => {
    const [a, b] = await Promise.all([startNode(), startNode()]);
    b.onRequest = async (_from, data) => data;
    // b's address is known (a dialled it once), but there is no connection: no implicit dial.
    await connect(a, b);
    await a.transport.hangUp(b.transport.localId);
    await waitFor('a and b to see the connection closed', () => a.disconnected.includes(b.transport.localId) && b.disconnected.includes(a.transport.localId));
    await expect(a.transport.request(b.transport.localId, text('x'), 3_000)).rejects.toThrow(/not connected/);
    expect(a.transport.connectedPeers()).not.toContain(b.transport.localId);
    await a.transport.dial(b.transport.localId, b.transport.addresses());
    expect(new TextDecoder().decode(await a.transport.request(b.transport.localId, text('y'), 3_000))).toBe('y');
  });

  it('carries a frame of maxMessageBytes (1 MiB) and refuses larger ones on both sides', async () => {
    const limit = 64 * 1024;
    const [a, small] = await Promise.all([startNode(), startNode({ config: { maxMessageBytes: limit } })]);
    await a.transport.dialAddr(small.transport.addresses()[0]!);
    const b = await startNode();
    await a.transport.dialAddr(b.transport.addresses()[0]!);

    const oneMiB = new Uint8Array(1024 * 1024).fill(7);
    expect(oneMiB.byteLength).toBe(DEFAULT_TRANSPORT_CONFIG.maxMessageBytes);
    const echoed = await a.transport.request(b.transport.localId, oneMiB, 15_000);
    expect(echoed.byteLength).toBe(oneMiB.byteLength);

    // Sender-side check: never put an oversized frame on the wire.
    await expect(a.transport.request(b.transport.localId, new Uint8Array(oneMiB.byteLength + 1), 5_000)).rejects.toThrow(
      /exceeds the limit/,
    );
    // Receiver-side check: a peer with a smaller limit refuses the frame from its length prefix.
    await expect(a.transport.request(small.transport.localId, new Uint8Array(limit + 1), 5_000)).rejects.toThrow(
      /request exceeds the limit of 65536 bytes/,
    );
    // A reply larger than the requester's limit is refused too.
    a.onRequest = async () => new Uint8Array(limit * 2);
    await expect(small.transport.request(a.transport.localId, text('big please'), 5_000)).rejects.toThrow(/exceed/);
    // And the connection is still usable afterwards.
    a.onRequest = async (_from, data) => data;
    expect((await small.transport.request(a.transport.localId, text('ok'), 5_000)).byteLength).toBe(2);
  });

  it('reports a disconnect when a node stops, and rejects requests and pings to it', async () => {
    const [a, b, c] = await Promise.all([startNode(), startNode(), startNode()]);
    await connect(a, c);
    await connect(b, c);
    expect(await a.transport.ping(c.transport.localId, 5_000)).toBeGreaterThanOrEqual(0);

    const cId = c.transport.localId;
    await stopNode(c);
    await waitFor('a and b to see c disconnect', () => a.disconnected.includes(cId) && b.disconnected.includes(cId));
    expect(a.transport.connectedPeers()).not.toContain(cId);
    await expect(a.transport.request(cId, text('anyone?'), 3_000)).rejects.toThrow(/request to .* (failed|timed out)/);
    await expect(a.transport.ping(cId, 1_000)).rejects.toThrow();
  });

  it('reaches a node restarted with the same key on a new port', async () => {
    const [a, b] = await Promise.all([startNode(), startNode()]);
    await connect(a, b);
    const key = b.key;
    const oldAddress = b.transport.addresses()[0];
    await stopNode(b);
    await waitFor('a to see b leave', () => a.disconnected.includes(b.transport.localId));

    const b2 = await startNode({ key });
    expect(b2.transport.localId).toBe(b.transport.localId);
    expect(b2.transport.addresses()[0]).not.toBe(oldAddress);
    await connect(b2, a);
    await publishUntilReceived(a, b2, 'from-a');
    await publishUntilReceived(b2, a, 'from-b2');
    expect(new TextDecoder().decode(await a.transport.request(b2.transport.localId, text('hi'), 5_000))).toBe('hi');
  });

  it('recovers gossip when a restarted node meets a lingering dead connection', async () => {
    // a reaches b through a TCP proxy; freezing the proxy keeps a's old connection open
    // but silent, which is what a frozen host or an unreported crash leaves behind.
    const [a, b] = await Promise.all([startNode(), startNode()]);
    const proxy = await startProxy(portOf(b.transport.addresses()[0]!));
    cleanups.push(() => proxy.close());
    await connect(a, b, `/ip4/127.0.0.1/tcp/${proxy.port}/p2p/${b.transport.localId}`);

    proxy.freeze();
    await stopNode(b);
    expect(a.transport.connectedPeers()).toContain(b.transport.localId); // the lingering connection

    const b2 = await startNode({ key: b.key });
    await b2.transport.dialAddr(a.transport.addresses()[0]!);
    await publishUntilReceived(a, b2, 'a-after-restart');
    await publishUntilReceived(b2, a, 'b2-after-restart');
    expect(a.transport.stats().staleConnectionRepairs).toBeGreaterThanOrEqual(1);
  });
});

describe('its config', () => {
  it('is the transport part of ChorusConfig, with its defaults', () => {
    expect(DEFAULT_TRANSPORT_CONFIG).toEqual(transportConfigOf(defaultConfig));
    for (const [key, value] of Object.entries(DEFAULT_TRANSPORT_CONFIG)) expect(defaultConfig).toHaveProperty(key, value);
    const picked = transportConfigOf({ ...defaultConfig, dialTimeoutMs: 1234, probeIntervalMs: 1 });
    expect(picked.dialTimeoutMs).toBe(1234);
    expect(picked).not.toHaveProperty('probeIntervalMs');
  });

  it('refuses requests beyond maxRpcStreamsPerConnection, on the channel and on streams of their own', async () => {
    const [a, b] = await Promise.all([startNode(), startNode({ config: { maxRpcStreamsPerConnection: 1 } })]);
    await a.transport.dialAddr(b.transport.addresses()[0]!);
    let arrived = 0;
    const releases: Array<() => void> = [];
    cleanups.push(() => releases.forEach((release) => release()));
    b.onRequest = () => {
      arrived++;
      return new Promise<Uint8Array>((resolve) => releases.push(() => resolve(new TextEncoder().encode('done'))));
    };
    const first = a.transport.request(b.transport.localId, new TextEncoder().encode('one'), WAIT_MS);
    first.catch(() => undefined); // awaited below; handled if the test fails before that
    await waitUntil(() => arrived === 1, 'the first request to arrive');
    // On the channel, a request beyond the limit gets an error reply at once (with room for it, it would wait).
    await expect(a.transport.request(b.transport.localId, new TextEncoder().encode('two'), 5_000)).rejects.toThrow(/busy: 1 requests/);
    // A bulk request gets a stream of its own; the second such stream on the connection is reset at once.
    const bulk = a.transport.request(b.transport.localId, new TextEncoder().encode('bulk one'), WAIT_MS, { bulk: true });
    bulk.catch(() => undefined);
    await waitUntil(() => arrived === 2, 'the first bulk request to arrive');
    await expect(a.transport.request(b.transport.localId, new TextEncoder().encode('bulk two'), 5_000, { bulk: true })).rejects.toThrow(/request to .* failed: could not read reply/);
    expect(arrived).toBe(2);
    releases.forEach((release) => release());
    expect(new TextDecoder().decode(await first)).toBe('done');
    expect(new TextDecoder().decode(await bulk)).toBe('done');
  });
});

describe('the request channel', () => {
  it('carries many requests at once over one stream, each answered by its own reply', async () => {
    const [a, b] = await Promise.all([startNode(), startNode()]);
    await connect(a, b);
    b.onRequest = async (from, data) => {
      await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 20)));
      return text(`${from.slice(-4)}:${new TextDecoder().decode(data)}`);
    };
    a.onRequest = async (_from, data) => data;
    const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => a.transport.request(b.transport.localId, text(`n${i}`), WAIT_MS)));
    expect(replies.map((r) => new TextDecoder().decode(r))).toEqual(Array.from({ length: 200 }, (_, i) => `${a.transport.localId.slice(-4)}:n${i}`));
    // The other side sends its own requests over a channel too, answered as well.
    expect(new TextDecoder().decode(await b.transport.request(a.transport.localId, text('back'), WAIT_MS))).toBe('back');
    expect(a.transport.openChannels()).toBeLessThanOrEqual(2);
  });

  it('opens a new channel after the old one closed, and a late reply is dropped', async () => {
    const [a, b] = await Promise.all([startNode(), startNode()]);
    await connect(a, b);
    let slow = true;
    b.onRequest = async (_from, data) => {
      if (slow) await new Promise((resolve) => setTimeout(resolve, 400));
      return data;
    };
    await expect(a.transport.request(b.transport.localId, text('slow'), 100)).rejects.toThrow(/timed out after 100 ms/);
    slow = false;
    await new Promise((resolve) => setTimeout(resolve, 500)); // the late reply arrives and is dropped
    expect(new TextDecoder().decode(await a.transport.request(b.transport.localId, text('again'), WAIT_MS))).toBe('again');
    a.transport.closeChannels(b.transport.localId);
    expect(new TextDecoder().decode(await a.transport.request(b.transport.localId, text('after close'), WAIT_MS))).toBe('after close');
  });

  it('closes a channel whose peer sends a malformed or oversized frame, and keeps serving others', async () => {
    const limit = 1024;
    const [a, b] = await Promise.all([startNode({ config: { maxMessageBytes: limit } }), startNode()]);
    await connect(a, b);
    b.onRequest = async () => new Uint8Array(limit + 1); // a reply too big for a
    await expect(a.transport.request(b.transport.localId, text('big please'), WAIT_MS)).rejects.toThrow(/exceeds the limit of 1024 bytes/);
    b.onRequest = async (_from, data) => data;
    expect(new TextDecoder().decode(await a.transport.request(b.transport.localId, text('ok'), WAIT_MS))).toBe('ok');
  });
});

describe('the swarm key (a closed cluster)', () => {
  it('refuses a peer with another key at the connection, and both sides say why with the address', async () => {
    const refusedA: string[] = [];
    const refusedB: string[] = [];
    const a = await startNode({ refused: refusedA });
    const b = await startNode({ swarmKey: swarmKeyBytes(generateSwarmKey()), refused: refusedB });
    await expect(b.transport.dialAddr(a.transport.addresses()[0]!)).rejects.toThrow();
    await waitFor('both refusals', () => refusedA.length > 0 && refusedB.length > 0);
    expect(refusedA[0]).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+ it has a different swarm key$/);
    expect(refusedB[0]).toContain('it has a different swarm key');
    expect(a.connected).toEqual([]);
    expect(a.transport.stats().refusedConnections).toBeGreaterThan(0);
    await expect(b.transport.request(a.transport.localId, new Uint8Array([1]), 2000)).rejects.toThrow();
  });

  it('refuses a client that speaks plain libp2p (no key) and logs its address', async () => {
    const refused: string[] = [];
    const a = await startNode({ refused, config: { swarmHandshakeTimeoutMs: 1000 } });
    const port = Number(a.transport.addresses()[0]!.split('/')[4]);
    const socket = tcpConnect({ host: '127.0.0.1', port });
    socket.on('error', () => {}); // the node resets it once it refuses
    cleanups.push(() => void socket.destroy());
    // What an unprotected libp2p node sends first: the multistream-select header and noise.
    socket.write('\x13/multistream/1.0.0\n\x07/noise\n');
    await waitFor('the refusal', () => refused.length > 0);
    expect(refused[0]).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+ /);
    expect(refused[0]).toMatch(/did not prove the swarm key|no swarm key handshake|different swarm key/);
    expect(a.connected).toEqual([]);
  });

  it('connects two nodes with the same key', async () => {
    const a = await startNode();
    const b = await startNode();
    expect(await b.transport.dialAddr(a.transport.addresses()[0]!)).toBe(a.transport.localId);
  });

  it('cannot be created without a key', async () => {
    await expect(Libp2pTransport.create({ privateKey: await generateKeyPair('Ed25519'), topics: [TOPIC], swarmKey: undefined as unknown as Uint8Array })).rejects.toThrow(/swarm key is required/);
  });
});

describe('loadOrCreatePrivateKey', () => {
  async function tempDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'chorus-peer-key-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }

  it('creates the key once, with mode 0600, and returns the same identity afterwards', async () => {
    const dir = await tempDir();
    const first = await loadOrCreatePrivateKey(dir);
    const second = await loadOrCreatePrivateKey(dir);
    expect(first.type).toBe('Ed25519');
    expect(peerIdFromPrivateKey(second).toString()).toBe(peerIdFromPrivateKey(first).toString());
    expect((await stat(join(dir, PEER_KEY_FILE))).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual([PEER_KEY_FILE]); // no temp file left behind
  });

  it('creates the data directory if needed', async () => {
    const dir = join(await tempDir(), 'nested', 'data');
    await loadOrCreatePrivateKey(dir);
    expect(await readdir(dir)).toEqual([PEER_KEY_FILE]);
  });

  it('refuses a corrupt key file instead of replacing it', async () => {
    const dir = await tempDir();
    const path = join(dir, PEER_KEY_FILE);
    await writeFile(path, 'not a key', { mode: 0o600 });
    await expect(loadOrCreatePrivateKey(dir)).rejects.toThrow(`peer key file ${path} is corrupt`);
    await writeFile(path, '');
    await expect(loadOrCreatePrivateKey(dir)).rejects.toThrow(path);
  });
});

// ---- a TCP proxy that can be frozen -------------------------------------------------------

interface Proxy {
  port: number;
  /** Stop forwarding in both directions without closing anything. */
  freeze(): void;
  close(): Promise<void>;
}

function portOf(address: string): number {
  const match = /\/tcp\/(\d+)/.exec(address);
  if (match === null) throw new Error(`no tcp port in ${address}`);
  return Number(match[1]);
}

async function startProxy(targetPort: number): Promise<Proxy> {
  let frozen = false;
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  };
  const pipeUnlessFrozen = (from: Socket, to: Socket) => {
    from.on('data', (chunk) => {
      if (!frozen && to.writable) to.write(chunk);
    });
    from.on('close', () => {
      if (!frozen) to.destroy();
    });
  };
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(targetPort, '127.0.0.1');
    track(client);
    track(upstream);
    pipeUnlessFrozen(client, upstream);
    pipeUnlessFrozen(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');
  return {
    port: address.port,
    freeze: () => {
      frozen = true;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
