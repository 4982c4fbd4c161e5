import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareIncarnations, DisseminationQueue, MAX_UPDATES_PER_MESSAGE, parseEnvelope, parseProbeAnswer, retransmitLimit, suspicionTimeoutMs, type SwimUpdate } from './swim.js';

const update = (node: string, state: SwimUpdate['state'] = 'alive', inc: [number, number] = [1, 0]): SwimUpdate => ({ node, state, inc });

describe('incarnations', () => {
  it('order by process start first, then by refutations', () => {
    expect(compareIncarnations([2, 0], [1, 9])).toBeGreaterThan(0);
    expect(compareIncarnations([1, 3], [1, 2])).toBeGreaterThan(0);
    expect(compareIncarnations([1, 2], [1, 2])).toBe(0);
    expect(compareIncarnations([1, 2], [1, 3])).toBeLessThan(0);
  });
});

describe('parseEnvelope', () => {
  const good = { self: [3, 1], you: { state: 'suspect', inc: [2, 0] }, updates: [{ node: 'n1', state: 'dead', inc: [1, 0] }, { node: 'n2', state: 'suspect', inc: [4, 2], by: 'n3' }] };

  it('takes a well-formed message as it is', () => {
    expect(parseEnvelope(good)).toEqual(good);
    expect(parseEnvelope({ self: [1, 0], you: null, updates: [] })).toEqual({ self: [1, 0], you: null, updates: [] });
  });

  it.each([
    ['not an object', 'ping'],
    ['no incarnation', { ...good, self: undefined }],
    ['a negative incarnation', { ...good, self: [-1, 0] }],
    ['a fractional incarnation', { ...good, self: [1.5, 0] }],
    ['a state SWIM has no word for', { ...good, updates: [{ node: 'n1', state: 'left', inc: [1, 0] }] }],
    ['an empty node id', { ...good, updates: [{ node: '', state: 'alive', inc: [1, 0] }] }],
    ['an oversized node id', { ...good, updates: [{ node: 'x'.repeat(129), state: 'alive', inc: [1, 0] }] }],
    ['a bad suspecter', { ...good, updates: [{ node: 'n1', state: 'suspect', inc: [1, 0], by: 7 }] }],
    ['a bad view of the receiver', { ...good, you: { state: 'alive', inc: 'x' } }],
    ['too many updates', { ...good, updates: Array.from({ length: MAX_UPDATES_PER_MESSAGE + 1 }, (_, i) => ({ node: `n${i}`, state: 'alive', inc: [1, 0] })) }],
  ])('refuses %s', (_what, body) => {
    expect(parseEnvelope(body)).toBeNull();
  });

  it('never throws, whatever arrives', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        const parsed = parseEnvelope(value);
        if (parsed !== null) expect(parseEnvelope(JSON.parse(JSON.stringify(parsed)))).toEqual(parsed);
      }),
    );
  });
});

describe('parseProbeAnswer', () => {
  it('takes an ack, a nack, and a nack with the helper\'s dead verdict', () => {
    expect(parseProbeAnswer({ ack: true })).toEqual({ ack: true, verdict: null });
    expect(parseProbeAnswer({ ack: false })).toEqual({ ack: false, verdict: null });
    expect(parseProbeAnswer({ ack: false, verdict: { node: 'n4', state: 'dead', inc: [2, 1] } })).toEqual({ ack: false, verdict: { node: 'n4', state: 'dead', inc: [2, 1] } });
  });

  it.each([
    ['not an object', 'ack'],
    ['no ack', { verdict: { node: 'n4', state: 'dead', inc: [2, 1] } }],
    ['a verdict that is not a death', { ack: false, verdict: { node: 'n4', state: 'alive', inc: [2, 1] } }],
    ['a malformed verdict', { ack: false, verdict: { node: 'n4', state: 'dead', inc: [-1, 0] } }],
  ])('refuses %s', (_what, body) => {
    expect(parseProbeAnswer(body)).toBeNull();
  });
});

describe('DisseminationQueue', () => {
  it('sends each change a bounded number of times, least sent first', () => {
    const queue = new DisseminationQueue();
    queue.push(update('a'));
    queue.push(update('b'));
    expect(queue.take(1, 3).map((u) => u.node)).toEqual(['b']); // newest first among the unsent
    expect(queue.take(1, 3).map((u) => u.node)).toEqual(['a']);
    const sends = new Map<string, number>();
    for (let i = 0; i < 10; i++) for (const u of queue.take(2, 3)) sends.set(u.node, (sends.get(u.node) ?? 0) + 1);
    expect(Object.fromEntries(sends)).toEqual({ a: 2, b: 2 }); // 3 in all, one each already
    expect(queue.size).toBe(0);
  });

  it('keeps only the newest change about a node', () => {
    const queue = new DisseminationQueue();
    queue.push(update('a', 'suspect', [1, 0]));
    queue.push(update('a', 'alive', [1, 1]));
    expect(queue.take(10, 5)).toEqual([update('a', 'alive', [1, 1])]);
  });

  it('forgets what is pending about a reaped node', () => {
    const queue = new DisseminationQueue();
    queue.push(update('a', 'dead', [1, 0]));
    queue.push(update('b', 'dead', [1, 0]));
    queue.forget('a');
    expect(queue.take(10, 5)).toEqual([update('b', 'dead', [1, 0])]);
  });
});

describe('DisseminationQueue bounds', () => {
  it('keeps at most its capacity, dropping the most-sent change first', () => {
    const queue = new DisseminationQueue(3);
    queue.push(update('a'));
    queue.take(1, 10); // a sent once
    queue.push(update('b'));
    queue.push(update('c'));
    queue.push(update('d')); // full: a (the most sent) makes room
    expect(queue.size).toBe(3);
    expect(queue.take(10, 10).map((u) => u.node)).toEqual(['d', 'c', 'b']);
  });

  it('picks the same changes as a full sort would', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 1, max: 5 })), { maxLength: 60 }), fc.integer({ min: 1, max: 8 }), (ops, max) => {
        const queue = new DisseminationQueue(1000);
        const model = new Map<string, { sent: number; seq: number }>();
        let seq = 0;
        for (const [node, takes] of ops) {
          queue.push(update(`n${node}`));
          model.set(`n${node}`, { sent: 0, seq: seq++ });
          for (let t = 0; t < takes % 2; t++) {
            const expected = [...model].sort(([, a], [, b]) => a.sent - b.sent || b.seq - a.seq).slice(0, max).map(([k]) => k);
            expect(queue.take(max, 100).map((u) => u.node)).toEqual(expected);
            for (const k of expected) model.get(k)!.sent += 1;
          }
        }
      }),
    );
  });
});

describe('retransmitLimit', () => {
  it('grows with log10 of the cluster size', () => {
    expect([1, 9, 10, 99, 100, 999].map((n) => retransmitLimit(4, n))).toEqual([4, 4, 8, 8, 12, 12]);
  });
});

describe('suspicionTimeoutMs', () => {
  const base = { suspicionMult: 2, maxMult: 3, probeIntervalMs: 500 };

  it('scales with log10 N, from at least one interval multiple', () => {
    expect(suspicionTimeoutMs({ ...base, members: 5, confirmations: 0, expected: 0 })).toBe(1000);
    expect(suspicionTimeoutMs({ ...base, members: 100, confirmations: 0, expected: 0 })).toBe(2000);
    expect(suspicionTimeoutMs({ ...base, members: 1000, confirmations: 0, expected: 0 })).toBe(3000);
  });

  it('starts at its maximum and falls to its minimum as the expected confirmations arrive', () => {
    const at = (confirmations: number) => suspicionTimeoutMs({ ...base, members: 100, confirmations, expected: 3 });
    expect(at(0)).toBe(6000);
    expect(at(1)).toBeLessThan(at(0));
    expect(at(2)).toBeLessThan(at(1));
    expect(at(3)).toBe(2000);
    expect(at(10)).toBe(2000);
  });
});
