// The cursor of `instance logs --follow`: where the follower is in every node's output,
// carried by the client from one answer to the next request, so a daemon keeps nothing
// per follower and any daemon can serve the next request. Compact, since it travels in
// a URL: a bitmap of the nodes whose output is over, then one entry per node that is
// somewhere else than the start, by its index in the instance's list of nodes.
import type { StepName } from '../records/types.js';
import { START, type FollowPosition } from './follow.js';

export interface NodeCursor {
  position: FollowPosition;
  /** The node said, at its last answer, that nothing more was running or left to read there. */
  complete: boolean;
  /** The steps the node said it ran, at its last answer (a post step may come after it was complete). */
  steps: StepName[];
  /** Nothing more will come from this node: it is not asked again. */
  done: boolean;
}

export class CursorError extends Error {}

const COMPLETE = 1;
const RAN_PRE = 2;
const RAN_POST = 4;
const ENTRY = /^([0-9a-z]{1,6})-([0-9a-z]{1,4})-([0-9a-z]{1,10})-([0-9a-z]{1,10})-([0-7])$/;
const BITMAP = /^[A-Za-z0-9_-]*$/;

export function initialCursor(): NodeCursor {
  return { position: { ...START }, complete: false, steps: [], done: false };
}

/** `cursors[i]` is the node at index i of the instance's node list. */
export function encodeCursor(cursors: readonly NodeCursor[]): string {
  const bitmap = Buffer.alloc(Math.ceil(cursors.length / 8));
  const entries: string[] = [];
  cursors.forEach((c, i) => {
    if (c.done) {
      bitmap[i >> 3] = bitmap[i >> 3]! | (1 << (i & 7));
      return;
    }
    const flags = (c.complete ? COMPLETE : 0) | (c.steps.includes('pre') ? RAN_PRE : 0) | (c.steps.includes('post') ? RAN_POST : 0);
    const { part, stdout, stderr } = c.position;
    if (flags === 0 && part === START.part && stdout === 0 && stderr === 0) return;
    entries.push([i, part, stdout, stderr, flags].map((n) => n.toString(36)).join('-'));
  });
  return `${bitmap.toString('base64url')}~${entries.join('.')}`;
}

/** The cursors of `nodeCount` nodes ('' is the start of all of them); throws CursorError on anything else than what encodeCursor makes. */
export function decodeCursor(text: string, nodeCount: number): NodeCursor[] {
  const cursors = Array.from({ length: nodeCount }, initialCursor);
  if (text === '') return cursors;
  const [bitmapText, entriesText, ...rest] = text.split('~');
  if (bitmapText === undefined || entriesText === undefined || rest.length > 0 || !BITMAP.test(bitmapText)) throw new CursorError('malformed cursor');
  const bitmap = Buffer.from(bitmapText, 'base64url');
  // The list of nodes only grows (a step run by a node that is not a target comes last).
  if (bitmap.length > Math.ceil(nodeCount / 8)) throw new CursorError('the cursor names more nodes than the instance has');
  for (let i = 0; i < bitmap.length * 8; i++) {
    if ((bitmap[i >> 3]! & (1 << (i & 7))) === 0) continue;
    if (i >= nodeCount) throw new CursorError('the cursor names more nodes than the instance has');
    cursors[i]!.done = true;
  }
  for (const entry of entriesText === '' ? [] : entriesText.split('.')) {
    const match = ENTRY.exec(entry);
    if (!match) throw new CursorError(`malformed cursor entry "${entry.slice(0, 40)}"`);
    const [index, part, stdout, stderr, flags] = match.slice(1).map((n) => Number.parseInt(n, 36)) as [number, number, number, number, number];
    const cursor = cursors[index];
    if (cursor === undefined || cursor.done) throw new CursorError(`the cursor entry "${entry}" names no node of the instance that is still followed`);
    cursor.position = { part, stdout, stderr };
    cursor.complete = (flags & COMPLETE) !== 0;
    cursor.steps = [...((flags & RAN_PRE) !== 0 ? ['pre' as const] : []), ...((flags & RAN_POST) !== 0 ? ['post' as const] : [])];
  }
  return cursors;
}
