// The anti-entropy buckets: hashes kept up to date change by change equal those of an
// index built from the final state; equal contents give equal roots; a difference shows
// in exactly the bucket of the key that differs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bucketOf, SYNC_BUCKETS, SyncIndex } from './sync-index.js';

type Op = { key: string; version: string | null };
const opArb: fc.Arbitrary<Op> = fc.record({ key: fc.constantFrom(...Array.from({ length: 40 }, (_, i) => `job:j${i}`)), version: fc.option(fc.constantFrom('v1', 'v2', 'v3'), { nil: null }) });

/** Applies set/remove operations as the store does, returning the final key → version map. */
function apply(index: SyncIndex, ops: Op[]): Map<string, string> {
  const held = new Map<string, string>();
  for (const { key, version } of ops) {
    const previous = held.get(key);
    if (version === null) {
      if (previous !== undefined) index.remove(key, previous);
      held.delete(key);
    } else if (previous !== version) {
      index.set(key, version, previous);
      held.set(key, version);
    }
  }
  return held;
}

describe('SyncIndex', () => {
  it('kept change by change, equals an index built from the final state (property)', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 200 }), (ops) => {
        const incremental = new SyncIndex();
        const held = apply(incremental, ops);
        const fresh = new SyncIndex();
        for (const [key, version] of [...held].reverse()) fresh.set(key, version, undefined);
        expect(incremental.root()).toBe(fresh.root());
        expect(incremental.bucketHashes()).toBe(fresh.bucketHashes());
        for (let b = 0; b < SYNC_BUCKETS; b++) expect([...incremental.keysIn(b)].sort()).toEqual([...fresh.keysIn(b)].sort());
      }),
      { numRuns: 300 },
    );
  });

  it('shows a difference in the bucket of the key that differs, and nowhere else', () => {
    const a = new SyncIndex();
    const b = new SyncIndex();
    for (let i = 0; i < 1000; i++) {
      a.set(`subtask:i/${i}`, 'v1', undefined);
      b.set(`subtask:i/${i}`, 'v1', undefined);
    }
    expect(a.root()).toBe(b.root());
    expect(a.differingBuckets(b.bucketHashes())).toEqual([]);
    b.set('subtask:i/7', 'v2', 'v1');
    b.set('job:new', 'v1', undefined);
    expect(a.root()).not.toBe(b.root());
    expect(a.differingBuckets(b.bucketHashes())).toEqual([...new Set([bucketOf('subtask:i/7'), bucketOf('job:new')])].sort((x, y) => x - y));
  });

  it('refuses malformed bucket hashes instead of guessing', () => {
    const index = new SyncIndex();
    expect(index.differingBuckets('not base64 of the right size')).toBeNull();
    expect(index.differingBuckets('')).toBeNull();
  });

  it('spreads keys over every bucket', () => {
    const counts = new Array<number>(SYNC_BUCKETS).fill(0);
    for (let i = 0; i < 100_000; i++) counts[bucketOf(`subtask:${(i * 7919).toString(16)}/12D3KooW${i}`)]! += 1;
    expect(Math.min(...counts)).toBeGreaterThan(250); // 390 each if even
    expect(Math.max(...counts)).toBeLessThan(550);
  });
});
