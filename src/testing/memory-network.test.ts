// Tests for the simulation harness itself: seeded randomness, virtual time, and the
// in-memory network's loss, partitions, freezes and crashes.

import { describe, expect, it } from 'vitest';
import { every } from '../core/clock.js';
import type { TransportEvents } from '../core/transport.js';
import { FakeClock } from './fake-clock.js';
import { MemoryNetwork, MemoryTransportError, type MemoryNetworkOptions, type MemoryTransport, type TraceEvent } from './memory-network.js';
import { Rng } from './random.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

interface Recorded {
  messages: string[];
  events: string[];
}

/** Handlers that log what a node sees and echo requests back in upper case. */
function record(t: MemoryTransport, clock: { now(): number }, log: string[] = []): Recorded {
  const seen: Recorded = { messages: [], events: [] };
  const handlers: TransportEvents = {
    onMessage(topic, from, data) {
      const line = `${clock.now()} ${t.localId}<-${from} ${topic} ${dec(data)}`;
      seen.messages.push(line);
      log.push(line);
    },
    async onRequest(from, data) {
      log.push(`${clock.now()} ${t.localId} req from ${from} ${dec(data)}`);
      return enc(dec(data).toUpperCase());
    },
    onPeerConnected: (peer) => seen.events.push(`connected ${peer}`),
    onPeerDisconnected: (peer) => seen.events.push(`disconnected ${peer}`),
  };
  t.setHandlers(handlers);
  return seen;
}

function cluster(ids: string[], options: Partial<MemoryNetworkOptions> = {}, seed = 1) {
  const clock = new FakeClock(1_000_000);
  const net = new MemoryNetwork({ clock, rng: new Rng(seed), ...options });
  const nodes = new Map(ids.map((id) => [id, net.endpoint(id)]));
  const seen = new Map(ids.map((id) => [id, record(nodes.get(id) as MemoryTransport, clock)]));
  net.connectAll();
  const node = (id: string) => nodes.get(id) as MemoryTransport;
  const saw = (id: string) => seen.get(id) as Recorded;
  return { clock, net, node, saw };
}

describe('Rng', () => {
  it('replays the same sequence from the same seed and differs across seeds', () => {
    const draw = (seed: number) => Array.from({ length: 20 }, (_, i) => new Rng(seed).fork().int(0, 1000) + i);
    const seq = (seed: number) => {
      const rng = new Rng(seed);
      return Array.from({ length: 50 }, () => rng.next());
    };
    expect(seq(7)).toEqual(seq(7));
    expect(seq(7)).not.toEqual(seq(8));
    expect(draw(3)).toEqual(draw(3));
  });

  it('keeps int in range, picks members, shuffles into a permutation', () => {
    const rng = new Rng(42);
    const ints = Array.from({ length: 2000 }, () => rng.int(-2, 3));
    expect(Math.min(...ints)).toBe(-2);
    expect(Math.max(...ints)).toBe(3);
    expect(['a', 'b']).toContain(rng.pick(['a', 'b']));
    const xs = Array.from({ length: 30 }, (_, i) => i);
    expect([...rng.shuffle([...xs])].sort((a, b) => a - b)).toEqual(xs);
    expect(rng.chance(0)).toBe(false);
    expect(rng.chance(1)).toBe(true);
  });
});

describe('FakeClock', () => {
  it('fires timers by due time, then insertion order, including timers set by timers', () => {
    const clock = new FakeClock(100);
    const log: string[] = [];
    clock.setTimer(20, () => log.push(`b@${clock.now()}`));
    clock.setTimer(10, () => {
      log.push(`a@${clock.now()}`);
      clock.setTimer(10, () => log.push(`d@${clock.now()}`)); // due 120, after b and c
      clock.setTimer(0, () => log.push(`a2@${clock.now()}`));
    });
    clock.setTimer(20, () => log.push(`c@${clock.now()}`));
    const cancelled = clock.setTimer(15, () => log.push('never'));
    cancelled.cancel();
    expect(clock.pending()).toBe(3);
    expect(clock.advance(50)).toBe(5);
    expect(log).toEqual(['a@110', 'a2@110', 'b@120', 'c@120', 'd@120']);
    expect(clock.now()).toBe(150);
    expect(clock.pending()).toBe(0);
  });

  it('runNext jumps to the next timer only', () => {
    const clock = new FakeClock(0);
    const log: number[] = [];
    clock.setTimer(30, () => log.push(clock.now()));
    clock.setTimer(5, () => log.push(clock.now()));
    expect(clock.nextDueMs()).toBe(5);
    expect(clock.runNext()).toBe(true);
    expect(log).toEqual([5]);
    expect(clock.runNext()).toBe(true);
    expect(clock.runNext()).toBe(false);
    expect(log).toEqual([5, 30]);
  });

  it('advanceAsync settles promise chains at the instant of the fire that started them', async () => {
    const clock = new FakeClock(0);
    const log: string[] = [];
    const sleep = (ms: number) => new Promise<void>((resolve) => clock.setTimer(ms, resolve));
    const worker = async () => {
      await sleep(10);
      log.push(`woke@${clock.now()}`);
      await Promise.resolve();
      await sleep(5); // scheduled at 10 during settling, so due at 15
      log.push(`done@${clock.now()}`);
    };
    void worker();
    clock.setTimer(12, () => log.push(`other@${clock.now()}`));
    await clock.advanceAsync(100);
    expect(log).toEqual(['woke@10', 'other@12', 'done@15']);
    expect(clock.now()).toBe(100);
  });

  it('sync advance does not settle promises between fires (use the async methods for async code)', async () => {
    const clock = new FakeClock(0);
    const log: string[] = [];
    void new Promise<void>((resolve) => clock.setTimer(10, resolve)).then(() => log.push(`then@${clock.now()}`));
    clock.advance(50);
    await clock.settle();
    expect(log).toEqual(['then@50']);
  });

  it('advanceAsync with stepMs stops at every step even without timers', async () => {
    const sampled = async (stepMs?: number) => {
      const clock = new FakeClock(0);
      const seen = new Set<number>();
      let running = true;
      const poll = async () => {
        while (running) {
          seen.add(clock.now());
          await new Promise((resolve) => setImmediate(resolve));
        }
      };
      const polling = poll();
      await clock.advanceAsync(30, stepMs);
      running = false;
      await polling;
      return [...seen];
    };
    expect(await sampled(10)).toEqual([0, 10, 20, 30]);
    expect(await sampled()).toEqual([0, 30]);
  });

  it('waitFor returns the virtual time taken, or throws at the deadline', async () => {
    const clock = new FakeClock(0);
    let ready = false;
    clock.setTimer(250, () => (ready = true));
    await expect(clock.waitFor(() => ready, 1000)).resolves.toBe(250);
    await expect(clock.waitFor(() => false, 500, 'the impossible')).rejects.toThrow(/the impossible not met within 500 ms/);
    expect(clock.now()).toBe(750);
  });

  it('refuses to move time from inside a timer', () => {
    const clock = new FakeClock(0);
    clock.setTimer(1, () => clock.advance(1));
    expect(() => clock.advance(5)).toThrow(/already running timers/);
  });

  it('a view shifts now() and keeps its timers on the shared timeline', () => {
    const clock = new FakeClock(1000);
    const ahead = clock.view(500);
    const log: string[] = [];
    ahead.setTimer(10, () => log.push(`view@${clock.now()}`));
    clock.setTimer(10, () => log.push(`base@${clock.now()}`));
    expect(ahead.now()).toBe(1500);
    clock.advance(10);
    expect(log).toEqual(['view@1010', 'base@1010']);
    ahead.offsetMs = -200; // the node's clock jumps back
    expect(ahead.now()).toBe(810);
  });

  it('a frozen view fires nothing, then fires overdue timers late, in order, at thaw', () => {
    const clock = new FakeClock(0);
    const node = clock.view();
    const log: string[] = [];
    every(node, 100, () => log.push(`tick@${clock.now()}`));
    node.setTimer(150, () => log.push(`once@${clock.now()}`));
    clock.setTimer(150, () => log.push(`other@${clock.now()}`));
    clock.advance(100);
    node.freeze();
    clock.advance(900);
    expect(log).toEqual(['tick@100', 'other@150']);
    expect(node.pending()).toBe(2); // the held tick and once
    node.thaw();
    clock.advance(0);
    // once came due at 150, the tick at 200: that order, both at the thaw.
    expect(log).toEqual(['tick@100', 'other@150', 'once@1000', 'tick@1000']);
    clock.advance(100);
    expect(log.at(-1)).toBe('tick@1100');
  });

  it('a stopped view drops its timers and ignores new ones', () => {
    const clock = new FakeClock(0);
    const node = clock.view();
    let fired = 0;
    node.setTimer(10, () => fired++);
    node.stop();
    node.setTimer(10, () => fired++);
    clock.advance(100);
    expect(fired).toBe(0);
    expect(clock.pending()).toBe(0);
  });
});

/** A busy, lossy little cluster; returns everything observable about the run. */
async function scenario(seed: number): Promise<{ log: string[]; trace: TraceEvent[] }> {
  const rng = new Rng(seed);
  const clock = new FakeClock(0);
  const trace: TraceEvent[] = [];
  const net = new MemoryNetwork({
    clock,
    rng: rng.fork(),
    lossRate: 0.2,
    duplicateRate: 0.1,
    minDelayMs: 1,
    maxDelayMs: 40,
    onTrace: (e) => trace.push(e),
  });
  const log: string[] = [];
  const ids = ['n1', 'n2', 'n3', 'n4'];
  for (const id of ids) {
    const t = net.endpoint(id);
    record(t, clock, log);
    const nodeRng = rng.fork();
    let n = 0;
    every(t.clock, 25, () => {
      t.publish('state', enc(`${id}#${n++}`));
      const peer = nodeRng.pick(ids.filter((p) => p !== id));
      t.request(peer, enc(`hi ${peer}`), 100).then(
        (reply) => log.push(`${clock.now()} ${id} got ${dec(reply)}`),
        (err: MemoryTransportError) => log.push(`${clock.now()} ${id} failed ${err.code}`),
      );
    });
  }
  net.connectAll();
  await clock.advanceAsync(300);
  net.partition(['n1'], ['n2', 'n3']);
  net.freeze('n4');
  await clock.advanceAsync(300);
  net.heal();
  net.thaw('n4');
  await clock.advanceAsync(300);
  return { log, trace };
}

describe('MemoryNetwork determinism', () => {
  it('replays the same deliveries from the same seed', async () => {
    const a = await scenario(1234);
    const b = await scenario(1234);
    expect(a.log.length).toBeGreaterThan(100);
    expect(b.log).toEqual(a.log);
    expect(b.trace).toEqual(a.trace);
  });

  it('a different seed gives a different run', async () => {
    const a = await scenario(1234);
    const c = await scenario(99);
    expect(c.log).not.toEqual(a.log);
  });
});

describe('MemoryNetwork publish', () => {
  it('roughly honours loss and duplication rates, and counts every copy', async () => {
    const { clock, net, node, saw } = cluster(['a', 'b'], { lossRate: 0.3, duplicateRate: 0.2 }, 5);
    const total = 10_000;
    for (let i = 0; i < total; i++) node('a').publish('t', enc(String(i)));
    await clock.advanceAsync(100);
    const unique = new Set(saw('b').messages.map((m) => m.split(' ').at(-1))).size;
    const stats = net.stats;
    expect(unique / total).toBeGreaterThan(0.67);
    expect(unique / total).toBeLessThan(0.73);
    expect(stats.duplicated / (total - stats.dropped)).toBeGreaterThan(0.17);
    expect(stats.duplicated / (total - stats.dropped)).toBeLessThan(0.23);
    expect(stats.sent + stats.duplicated).toBe(stats.delivered + stats.dropped);
    expect(stats.delivered).toBe(saw('b').messages.length);
  });

  it('delivers to every connected peer but not to itself, within the delay range, as copies', async () => {
    const { clock, node, saw } = cluster(['a', 'b', 'c'], { minDelayMs: 5, maxDelayMs: 9 });
    const payload = enc('hello');
    const received: Uint8Array[] = [];
    node('c').setHandlers({ ...noopHandlers(), onMessage: (_t, _f, data) => received.push(data) });
    node('a').publish('t', payload);
    payload[0] = 0; // the sender reusing its buffer must not change what is delivered
    await clock.advanceAsync(4);
    expect(saw('b').messages).toEqual([]);
    await clock.advanceAsync(5);
    expect(saw('b').messages).toHaveLength(1);
    expect(saw('b').messages[0]).toMatch(/b<-a t hello$/);
    expect(saw('a').messages).toEqual([]);
    expect(dec(received[0] as Uint8Array)).toBe('hello');
  });

  it('only reaches connected peers', async () => {
    const clock = new FakeClock(0);
    const net = new MemoryNetwork({ clock, rng: new Rng(1) });
    const a = net.endpoint('a');
    const b = net.endpoint('b');
    const seenB = record(b, clock);
    record(a, clock);
    a.publish('t', enc('before'));
    await a.dial('b');
    a.publish('t', enc('after'));
    await clock.advanceAsync(50);
    expect(seenB.messages.map((m) => m.split(' ').at(-1))).toEqual(['after']);
    expect(seenB.events).toEqual(['connected a']);
    expect(a.connectedPeers()).toEqual(['b']);
  });

  it('relays as gossipsub does: once per node, to up to relayFanout others, with the publisher as sender', async () => {
    const clock = new FakeClock(0);
    const net = new MemoryNetwork({ clock, rng: new Rng(1), relayFanout: 6 });
    // A chain a - b - c - d: only b is a's peer, yet everyone hears a, once.
    const ids = ['a', 'b', 'c', 'd'];
    const nodes = ids.map((id) => net.endpoint(id));
    const seen = nodes.map((n) => record(n, clock));
    await nodes[0]!.dial('b');
    await nodes[1]!.dial('c');
    await nodes[2]!.dial('d');
    nodes[0]!.publish('t', enc('hello'));
    await clock.advanceAsync(100);
    expect(seen.map((s) => s.messages.map((m) => m.replace(/^\d+ /, '')))).toEqual([[], ['b<-a t hello'], ['c<-a t hello'], ['d<-a t hello']]);
    // A ring: the copy coming back is a duplicate the receiver drops, not a second delivery.
    await nodes[3]!.dial('a');
    nodes[1]!.publish('t', enc('again'));
    await clock.advanceAsync(100);
    expect(seen.map((s) => s.messages.filter((m) => m.endsWith('again')).length)).toEqual([1, 0, 1, 1]);
    const stats = net.stats;
    expect(stats.sent + stats.duplicated).toBe(stats.delivered + stats.dropped);
    expect(stats.dropped).toBeGreaterThan(0); // the seen copies
  });

  it('refuses oversized messages', () => {
    const { node } = cluster(['a', 'b'], { maxMessageBytes: 4 });
    expect(() => node('a').publish('t', new Uint8Array(5))).toThrow(/exceeds maxMessageBytes/);
  });
});

describe('MemoryNetwork requests', () => {
  it('answers reliably with the handler reply, after two one-way delays', async () => {
    const { clock, node } = cluster(['a', 'b'], { lossRate: 1, minDelayMs: 3, maxDelayMs: 3 });
    const reply = node('a').request('b', enc('ping me'), 1000);
    await clock.advanceAsync(6);
    expect(dec(await reply)).toBe('PING ME');
    expect(await pingAfter(clock, node('a').ping('b', 1000))).toBe(6);
  });

  it('turns a failing handler into a remote error', async () => {
    const { clock, node } = cluster(['a', 'b']);
    node('b').setHandlers({ ...noopHandlers(), onRequest: () => Promise.reject(new Error('disk full')) });
    const reply = node('a').request('b', enc('x'), 1000);
    const outcome = expect(reply).rejects.toMatchObject({ code: 'remote', message: /disk full/ });
    await clock.advanceAsync(100);
    await outcome;
  });

  it('records a handler that throws, with the peer, and goes on delivering (core/transport.ts)', async () => {
    const { clock, net, node, saw } = cluster(['a', 'b']);
    const got: string[] = [];
    node('b').setHandlers({
      ...noopHandlers(),
      onMessage: (_topic, _from, data) => {
        got.push(dec(data));
        if (dec(data) === 'boom') throw new Error('a bug in onMessage');
      },
    });
    node('a').publish('t', enc('boom'));
    await clock.advanceAsync(100);
    node('a').publish('t', enc('after'));
    await clock.advanceAsync(100);
    expect(got).toEqual(['boom', 'after']);
    expect(net.handlerErrors).toMatchObject([{ nodeId: 'b', peer: 'a', event: 'onMessage' }]);
    expect(saw('a').events).toEqual(['connected b']);
  });

  it('rejects at once when there is no connection', async () => {
    const clock = new FakeClock(0);
    const net = new MemoryNetwork({ clock, rng: new Rng(1) });
    const a = net.endpoint('a');
    net.endpoint('b');
    await expect(a.request('b', enc('x'), 1000)).rejects.toMatchObject({ code: 'not-connected' });
  });
});

describe('MemoryNetwork partitions', () => {
  it('block publish, request and dial both ways until healed, without closing connections', async () => {
    const { clock, net, node, saw } = cluster(['a', 'b', 'c']);
    await clock.settle();
    net.partition(['a'], ['b']);
    node('a').publish('t', enc('1'));
    node('b').publish('t', enc('2'));
    await expectTimeout(clock, node('a').request('b', enc('x'), 500), 600);
    expect(saw('b').messages.filter((m) => m.includes('<-a'))).toEqual([]);
    expect(saw('a').messages.filter((m) => m.includes('<-b'))).toEqual([]);
    expect(saw('c').messages).toHaveLength(2); // c is on neither side
    expect(node('a').connectedPeers()).toEqual(['b', 'c']);
    expect(saw('a').events).not.toContain('disconnected b');

    net.heal();
    const healed = node('a').request('b', enc('x'), 500);
    await clock.advanceAsync(50);
    expect(dec(await healed)).toBe('X');
  });

  it('drops messages already in flight when the partition starts', async () => {
    const { clock, net, node, saw } = cluster(['a', 'b'], { minDelayMs: 10, maxDelayMs: 10 });
    node('a').publish('t', enc('in flight'));
    await clock.advanceAsync(5);
    net.partition(['a'], ['b']);
    await clock.advanceAsync(10);
    expect(saw('b').messages).toEqual([]);
    expect(net.stats.dropped).toBe(1);
  });
});

describe('MemoryNetwork freeze and thaw', () => {
  it('a frozen node receives nothing, sends nothing, and requests to it time out', async () => {
    const { clock, net, node, saw } = cluster(['a', 'b']);
    await clock.settle();
    net.freeze('b');
    node('a').publish('t', enc('lost'));
    node('b').publish('t', enc('never sent'));
    await expectTimeout(clock, node('a').request('b', enc('x'), 300), 400);
    net.thaw('b');
    await clock.advanceAsync(100);
    expect(saw('b').messages).toEqual([]);
    expect(saw('a').messages).toEqual([]);
    // Like SIGSTOP: the connection stayed open the whole time.
    expect(saw('a').events).toEqual(['connected b']);
    expect(node('a').connectedPeers()).toEqual(['b']);
    node('a').publish('t', enc('back'));
    await clock.advanceAsync(50);
    expect(saw('b').messages).toHaveLength(1);
  });

  it("a frozen node's timers and request timeouts fire late, after thaw", async () => {
    const { clock, net, node } = cluster(['a', 'b']);
    await clock.settle();
    const fired: number[] = [];
    node('a').clock.setTimer(100, () => fired.push(clock.now()));
    let failedAtMs = -1;
    node('a')
      .request('b', enc('x'), 50)
      .catch(() => (failedAtMs = clock.now()));
    net.freeze('a'); // the request leaves before the freeze, but its reply finds a frozen node
    await clock.advanceAsync(1000);
    expect(fired).toEqual([]);
    expect(failedAtMs).toBe(-1);
    net.thaw('a');
    await clock.advanceAsync(0);
    expect(fired).toEqual([1_001_000]);
    expect(failedAtMs).toBe(1_001_000);
  });

  it('a frozen node learns of a peer crash only when thawed', async () => {
    const { clock, net, saw } = cluster(['a', 'b']);
    await clock.settle();
    net.freeze('a');
    net.crash('b');
    await clock.advanceAsync(100);
    expect(saw('a').events).toEqual(['connected b']);
    net.thaw('a');
    await clock.settle();
    expect(saw('a').events).toEqual(['connected b', 'disconnected b']);
  });
});

describe('MemoryNetwork crash and restart', () => {
  it('closes connections at once, fails in-flight requests, and stops the dead node', async () => {
    const { clock, net, node, saw } = cluster(['a', 'b', 'c'], { minDelayMs: 10, maxDelayMs: 10 });
    await clock.settle();
    let deadTimerFired = false;
    node('b').clock.setTimer(5, () => (deadTimerFired = true));
    const inflight = node('a').request('b', enc('x'), 1000);
    const closed = expect(inflight).rejects.toMatchObject({ code: 'closed' });
    net.crash('b');
    expect(node('a').connectedPeers()).toEqual(['c']);
    await clock.settle();
    expect(saw('a').events).toEqual(['connected b', 'connected c', 'disconnected b']);
    expect(saw('c').events).toContain('disconnected b');
    await closed;
    node('a').publish('t', enc('to the living'));
    await clock.advanceAsync(100);
    expect(deadTimerFired).toBe(false);
    expect(saw('b').messages).toEqual([]);
    expect(saw('c').messages).toHaveLength(1);
  });

  it('restart gives a fresh, unconnected incarnation with the same id', async () => {
    const { clock, net, node } = cluster(['a', 'b'], { minDelayMs: 10, maxDelayMs: 10 });
    await clock.settle();
    node('a').publish('t', enc('for the old b'));
    net.crash('b');
    const b2 = net.restart('b');
    const seen = record(b2, clock);
    expect(b2.incarnation).toBe(1);
    expect(b2.localId).toBe('b');
    expect(b2.connectedPeers()).toEqual([]);
    expect(net.get('b')).toBe(b2);
    await b2.dial('a');
    await clock.advanceAsync(50);
    expect(seen.messages).toEqual([]); // in flight on the old connection: gone with it
    expect(seen.events).toEqual(['connected a']);
    node('a').publish('t', enc('for the new b'));
    await clock.advanceAsync(50);
    expect(seen.messages).toHaveLength(1);
  });

  it('dial fails to a crashed, frozen or partitioned peer', async () => {
    const clock = new FakeClock(0);
    const net = new MemoryNetwork({ clock, rng: new Rng(1) });
    const a = net.endpoint('a');
    for (const id of ['dead', 'stopped', 'apart']) net.endpoint(id);
    net.crash('dead');
    net.freeze('stopped');
    net.partition(['a'], ['apart']);
    for (const peer of ['dead', 'stopped', 'apart', 'nobody']) {
      await expect(a.dial(peer)).rejects.toBeInstanceOf(MemoryTransportError);
    }
    expect(a.connectedPeers()).toEqual([]);
  });

  it('remove forgets a crashed node for good (a churn of fresh identities); a running one cannot be removed', async () => {
    const clock = new FakeClock(0);
    const net = new MemoryNetwork({ clock, rng: new Rng(1) });
    const a = net.endpoint('a');
    net.endpoint('gone');
    expect(() => net.remove('gone')).toThrow(/running/);
    net.crash('gone');
    net.remove('gone');
    expect(net.nodeIds()).toEqual(['a']);
    expect(net.get('gone')).toBeUndefined();
    await expect(a.dial('gone')).rejects.toBeInstanceOf(MemoryTransportError);
  });
});

function noopHandlers(): TransportEvents {
  return {
    onMessage() {},
    onRequest: async () => new Uint8Array(0),
    onPeerConnected() {},
    onPeerDisconnected() {},
  };
}

async function pingAfter(clock: FakeClock, rtt: Promise<number>): Promise<number> {
  await clock.advanceAsync(100);
  return rtt;
}

/** Fails unless `request` rejects with a timeout once the clock moved on by `afterMs`. */
async function expectTimeout(clock: FakeClock, request: Promise<unknown>, afterMs: number): Promise<void> {
  const timedOut = expect(request).rejects.toMatchObject({ code: 'timeout' });
  await clock.advanceAsync(afterMs);
  await timedOut;
}
