// The lines `instance logs --follow` prints from the daemon's answers: whole lines, each
// after its node's name once, stderr marked, an attempt's unfinished last line at its end.
import { describe, expect, it } from 'vitest';
import type { LogFollowChunk, LogFollowView } from '../api/control-plane.js';
import { FollowPrinter, MAX_PARTIAL_LINE_CHARS } from './follow.js';

function answer(chunks: Partial<LogFollowChunk>[], over: Partial<LogFollowView> = {}): LogFollowView {
  return {
    instanceId: 'i1',
    status: 'running',
    chunks: chunks.map((c) => ({ nodeId: 'id-1', name: 'web-1', step: null, attempt: 1, stream: 'stdout', text: '', skippedBytes: 0, ...c })),
    ended: [],
    unavailable: [],
    cursor: 'x',
    done: false,
    ...over,
  };
}

function printer(json = false) {
  const lines: string[] = [];
  const warnings: string[] = [];
  const p = new FollowPrinter({ line: (l) => lines.push(l), warn: (w) => warnings.push(w) }, json, new Map([['id-1', 'web-1'], ['id-22', 'web-22']]));
  return { p, lines, warnings };
}

describe('FollowPrinter', () => {
  it('prints whole lines after the padded node name, "|" for stdout and "!" for stderr', () => {
    const { p, lines } = printer();
    p.take(answer([{ text: 'one\ntw' }, { nodeId: 'id-22', name: 'web-22', text: 'one\n' }, { stream: 'stderr', text: 'careful\n' }]));
    // Node by node, in the order the answer first names them.
    expect(lines).toEqual(['web-1  | one', 'web-1  ! careful', 'web-22 | one']);
    p.take(answer([{ text: 'o\r\nthree' }]));
    expect(lines.slice(3)).toEqual(['web-1  | two']);
    // The attempt ended: its last line is whole, newline or not.
    p.take(answer([], { ended: [{ nodeId: 'id-1', step: null, attempt: 1 }] }));
    expect(lines.slice(4)).toEqual(['web-1  | three']);
  });

  it('names attempts after the first and the steps, and ends an attempt\'s last line before the next attempt\'s output', () => {
    const { p, lines } = printer();
    p.take(answer([{ text: 'no newline' }, { attempt: 2, text: 'retry\n' }, { step: 'post', text: 'cleanup\n' }]));
    expect(lines).toEqual(['web-1  | no newline', 'web-1#2 | retry', 'web-1[post] | cleanup']);
  });

  it('with json: one object per line', () => {
    const { p, lines } = printer(true);
    p.take(answer([{ text: 'one\n', stream: 'stderr' }, { text: 'last' }], { done: true, status: 'succeeded' }));
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([
      { nodeId: 'id-1', name: 'web-1', stream: 'stderr', step: null, attempt: 1, text: 'one' },
      { nodeId: 'id-1', name: 'web-1', stream: 'stdout', step: null, attempt: 1, text: 'last' },
    ]);
  });

  it('warns of skipped bytes (the line they cut starts with …) and of an unreachable node (once), and breaks a line that never ends', () => {
    const { p, lines, warnings } = printer();
    const unavailable = [{ nodeId: 'id-3', name: null, message: 'not connected' }];
    p.take(answer([{ text: 'before the gap' }]));
    p.take(answer([{ text: '56\ntail\n', skippedBytes: 70_000 }], { unavailable }));
    expect(lines).toEqual(['web-1  | before the gap', 'web-1  | …56', 'web-1  | tail']);
    p.take(answer([], { unavailable }));
    expect(warnings).toEqual([
      'warning: 70000 bytes of the stdout of web-1 were no longer kept on the node (it keeps the last of each stream) and are left out',
      'warning: the output of id-3 cannot be had now: not connected',
    ]);
    p.take(answer([{ text: 'x'.repeat(MAX_PARTIAL_LINE_CHARS + 1) }]));
    expect(lines.at(-1)).toBe(`web-1  | ${'x'.repeat(MAX_PARTIAL_LINE_CHARS + 1)}`);
  });

  it('prints output, node names and messages from the cluster escaped; with json, the raw text', () => {
    const evil = '\x1b]0;pwned\x07\x1b[2J';
    const chunks = [
      { text: `${evil}\nall good\rrm -rf /\r\n` },
      { nodeId: 'id-9', name: 'db\x1b[8m', text: '\u202eoops\n', stream: 'stderr' as const },
    ];
    const over = { unavailable: [{ nodeId: 'id-3', name: 'x\x07', message: `refused \x9b2J` }] };
    const human = printer();
    human.p.take(answer(chunks, over));
    expect(human.lines).toEqual(['web-1  | \\x1b]0;pwned\\x07\\x1b[2J', 'web-1  | all good\\rrm -rf /', 'db\\x1b[8m ! \\u202eoops']);
    expect(human.warnings).toEqual(['warning: the output of x\\x07 cannot be had now: refused \\u009b2J']);
    const json = printer(true);
    json.p.take(answer(chunks, over));
    expect(json.lines.map((l) => (JSON.parse(l) as { name: string; text: string }))).toMatchObject([
      { name: 'web-1', text: evil },
      { name: 'web-1', text: 'all good\rrm -rf /' },
      { name: 'db\x1b[8m', text: '\u202eoops' },
    ]);
  });
});
