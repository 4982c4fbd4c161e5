import { describe, expect, it } from 'vitest';
import { ApiError } from './control-plane.js';
import { resolveNodeRef } from './node-ref.js';

const NODES = [
  { nodeId: '12D3KooWAAAAaaaa1111', name: 'web-1' },
  { nodeId: '12D3KooWBBBBbbbb2222', name: 'web-2' },
  { nodeId: '12D3KooWCCCCcccc2222', name: 'web-2' },
];

function errorOf(ref: string): ApiError {
  try {
    resolveNodeRef(ref, NODES, 'instance x');
  } catch (err) {
    return err as ApiError;
  }
  throw new Error(`${ref} resolved`);
}

describe('resolveNodeRef', () => {
  it('takes the full id, the suffix the tables show (with or without …), or a unique name', () => {
    expect(resolveNodeRef('12D3KooWAAAAaaaa1111', NODES, 'x')).toBe('12D3KooWAAAAaaaa1111');
    expect(resolveNodeRef('…aaaa1111', NODES, 'x')).toBe('12D3KooWAAAAaaaa1111');
    expect(resolveNodeRef('bbbb2222', NODES, 'x')).toBe('12D3KooWBBBBbbbb2222');
    expect(resolveNodeRef('web-1', NODES, 'x')).toBe('12D3KooWAAAAaaaa1111');
  });

  it('an ambiguous name or suffix is an error that lists the matches', () => {
    const err = errorOf('web-2');
    expect(err.status).toBe(400);
    expect(err.message).toContain('12D3KooWBBBBbbbb2222');
    expect(err.message).toContain('12D3KooWCCCCcccc2222');
    expect(errorOf('2222').status).toBe(400);
    expect(errorOf('…2222').message).toMatch(/matches 2 nodes/);
  });

  it('an unknown node is a 404 naming the known ones', () => {
    const err = errorOf('db-1');
    expect(err.status).toBe(404);
    expect(err.message).toMatch(/web-1 \(12D3KooWAAAAaaaa1111\)/);
  });
});
