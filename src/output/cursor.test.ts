// The follow cursor: what encodeCursor makes, decodeCursor gives back exactly; anything else is refused.
import { describe, expect, it } from 'vitest';
import { CursorError, decodeCursor, encodeCursor, initialCursor, type NodeCursor } from './cursor.js';

describe('the follow cursor', () => {
  it('round-trips the position, flags and done nodes, and leaves out nodes still at the start', () => {
    const cursors: NodeCursor[] = Array.from({ length: 20 }, initialCursor);
    cursors[0] = { position: { part: 2, stdout: 70_000, stderr: 5 }, complete: true, steps: ['pre', 'post'], done: false };
    cursors[9] = { ...initialCursor(), done: true };
    cursors[19] = { position: { part: 1000, stdout: 0, stderr: 0 }, complete: false, steps: ['post'], done: false };
    const text = encodeCursor(cursors);
    expect(text).toMatch(/^[A-Za-z0-9_~.-]+$/); // nothing to escape in a URL
    expect(text.split('.')).toHaveLength(2); // two entries; the done node is a bit
    expect(decodeCursor(text, 20)).toEqual(cursors);
  });

  it("'' is every node at the start; an instance whose node list grew keeps its old cursors", () => {
    expect(decodeCursor('', 3)).toEqual([initialCursor(), initialCursor(), initialCursor()]);
    const two = [{ ...initialCursor(), done: true }, { ...initialCursor(), complete: true }];
    expect(decodeCursor(encodeCursor(two), 3)).toEqual([...two, initialCursor()]);
  });

  it('stays short for a wide broadcast: about 15 characters per node still producing', () => {
    const cursors = Array.from({ length: 1000 }, (_, i): NodeCursor => ({ position: { part: 1, stdout: 60_000 + i, stderr: i % 3 }, complete: false, steps: [], done: false }));
    expect(encodeCursor(cursors).length).toBeLessThan(16 * 1000);
  });

  it('refuses what it did not make', () => {
    for (const bad of ['nonsense', 'AA~zz', '~0-1-0-0-9', 'AAA~', 'AA~5-1-0-0-0', 'AQ~0-1-0-0-0', '~0-1-0-0-0~']) {
      expect(() => decodeCursor(bad, 3), bad).toThrow(CursorError);
    }
  });
});
