import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../core/log.js';
import { FakeClock } from '../testing/fake-clock.js';
import { Leadership, type LeaderCandidate } from './leadership.js';
import type { MemberState } from './view.js';

const STABLE_MS = 1000;

interface Seen {
  id: string;
  state: MemberState;
  /** Alive since, relative to now (negative: in the past); null: never heard from. */
  aliveForMs: number | null;
}

/** One node's choice over a view of other members (the clock at 10 s). */
function choose(selfId: string, others: Seen[], keepers: number, selfEligible = true): Leadership {
  const clock = new FakeClock(10_000);
  const candidates = new Map<string, LeaderCandidate>(others.map((m) => [m.id, { state: m.state, aliveSinceMs: m.aliveForMs === null ? null : 10_000 - m.aliveForMs }]));
  const leadership = new Leadership({
    clock,
    config: { leaderStableMs: STABLE_MS, keepers },
    selfId,
    candidates: () => candidates.entries(),
    hasRecord: () => true,
    selfEligibleFromMs: () => (selfEligible ? 0 : null),
    hurry: () => undefined,
    onChange: () => undefined,
    log: silentLogger,
  });
  leadership.choose();
  return leadership;
}

describe('keepers', () => {
  it('are the leader, then the smallest stable ids, then the others', () => {
    const others: Seen[] = [
      { id: 'b', state: 'alive', aliveForMs: 100 }, // not stable yet
      { id: 'c', state: 'suspect', aliveForMs: 5000 }, // a suspect still counts
      { id: 'd', state: 'dead', aliveForMs: null },
      { id: 'e', state: 'alive', aliveForMs: 5000 },
      { id: 'f', state: 'alive', aliveForMs: 5000 },
    ];
    expect(choose('a', others, 3).keepers()).toEqual(['a', 'c', 'e']);
    expect(choose('a', others, 5).keepers()).toEqual(['a', 'c', 'e', 'f', 'b']);
    expect(choose('a', others, 1).keepers()).toEqual(['a']);
    // A node that is leaving keeps nothing and leads nothing.
    const leaving = choose('a', others, 3, false);
    expect(leaving.leaderId()).toBeNull();
    expect(leaving.keepers()).toEqual(['c', 'e', 'f']);
  });

  it('are named alike by every member that sees the same members, and the leader is always one', () => {
    const ids = fc.uniqueArray(fc.stringMatching(/^[a-z]{1,3}$/), { minLength: 1, maxLength: 12 });
    fc.assert(
      fc.property(ids, fc.integer({ min: 1, max: 7 }), fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }), (nodes, count, stable) => {
        const seen = (id: string, i: number): Seen => ({ id, state: 'alive', aliveForMs: stable[i] ? 5000 : 10 });
        // Every member is stable in its own eyes (it started long ago); the others see it as the flags say.
        const everyone = nodes.map((id, i) => ({ ...seen(id, i), aliveForMs: 5000 }));
        const choices = nodes.map((self) => choose(self, everyone.filter((m) => m.id !== self), count));
        const first = choices[0] as Leadership;
        for (const c of choices) {
          expect(c.keepers()).toEqual(first.keepers());
          expect(c.leaderId()).toBe(first.keepers()[0]);
        }
        expect(first.keepers()).toHaveLength(Math.min(count, nodes.length));
        expect(first.keepers()).toEqual([...nodes].sort().slice(0, count));
        // With some not yet stable, the stable come first, and the leader is still a keeper.
        const mixed = choose('~self', nodes.map(seen), count);
        expect(mixed.keepers()[0]).toBe(mixed.leaderId());
        const stableIds = new Set(['~self', ...nodes.filter((_, i) => stable[i])]);
        const rest = mixed.keepers().slice(1);
        const firstUnstable = rest.findIndex((id) => !stableIds.has(id));
        if (firstUnstable >= 0) expect(rest.slice(firstUnstable).every((id) => !stableIds.has(id))).toBe(true);
      }),
    );
  });

  it('replace a keeper that died with the next in line', () => {
    const others: Seen[] = ['b', 'c', 'd', 'e'].map((id) => ({ id, state: 'alive', aliveForMs: 5000 }));
    expect(choose('a', others, 3).keepers()).toEqual(['a', 'b', 'c']);
    const withoutB = others.map((m) => (m.id === 'b' ? { ...m, state: 'dead' as const } : m));
    expect(choose('a', withoutB, 3).keepers()).toEqual(['a', 'c', 'd']);
    expect(choose('z', withoutB, 3).keepers()).toEqual(['c', 'd', 'e']);
  });
});
