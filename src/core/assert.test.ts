import { describe, expect, it } from 'vitest';
import { GUARANTEES, InvariantError, invariant } from './assert.js';

describe('invariant', () => {
  it('passes when the condition holds and evaluates no message', () => {
    let built = false;
    invariant(true, 3, () => {
      built = true;
      return 'x';
    });
    expect(built).toBe(false);
  });

  it('throws an InvariantError naming the guarantee and its text', () => {
    const err = (() => {
      try {
        invariant(false, 1, 'subtask i1/n1 rewritten as n2');
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(InvariantError);
    expect((err as InvariantError).guarantee).toBe(1);
    expect((err as Error).message).toBe(`invariant broken (guarantee 1: ${GUARANTEES[1]}): subtask i1/n1 rewritten as n2`);
  });

  it('an internal invariant names no guarantee', () => {
    expect(() => invariant(0, null, 'a step and a subtask mixed up')).toThrow('invariant broken: a step and a subtask mixed up');
  });
});
