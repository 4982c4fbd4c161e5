// The offset logic of `instance logs --follow`: a stream read in pieces, live or saved, gives
// each byte once; a piece never ends inside a character; bytes the node no longer holds are
// skipped and counted.
import { describe, expect, it } from 'vitest';
import { TailBuffer } from '../executor/executor.js';
import { POST_PART, PRE_PART, partOf, readFrom, savedPart, sliceStream, START, wholeCharactersLength, type PartOutput } from './follow.js';

const held = (text: string, startOffset = 0) => ({ bytes: Buffer.from(text), startOffset });

function part(attempt: number, stdout: string, stderr = '', ended = true, step: 'pre' | 'post' | null = null): PartOutput {
  return { part: partOf(step, attempt), step, attempt, ended, stdout: held(stdout), stderr: held(stderr) };
}

/** Reads everything from START in reads of at most `maxBytes`, as a follower would; the text of each part's stream. */
function readAll(parts: PartOutput[], maxBytes: number): Record<string, string> {
  let position = START;
  const text: Record<string, string> = {};
  for (let reads = 1; reads < 10_000; reads++) {
    const r = readFrom(parts, position, maxBytes);
    for (const c of r.chunks) {
      const key = `${c.step ?? 'attempt'} ${c.attempt} ${c.stream}`;
      text[key] = (text[key] ?? '') + c.text;
    }
    if (r.chunks.length === 0 && r.ended.length === 0) return text;
    position = r.position;
  }
  throw new Error('never caught up');
}

describe('partOf', () => {
  it('orders the pre step, the attempts and the post step', () => {
    expect([partOf('pre', 1), partOf(null, 1), partOf(null, 101), partOf('post', 1)]).toEqual([PRE_PART, 1, 101, POST_PART]);
  });
});

describe('sliceStream', () => {
  it('reads from an offset, at most maxBytes, and says where the next read starts', () => {
    expect(sliceStream(held('hello world'), 0, 5, false)).toEqual({ text: 'hello', skippedBytes: 0, sentBytes: 5, nextOffset: 5 });
    expect(sliceStream(held('hello world'), 5, 100, false)).toEqual({ text: ' world', skippedBytes: 0, sentBytes: 6, nextOffset: 11 });
    expect(sliceStream(held('hello world'), 11, 100, true)).toEqual({ text: '', skippedBytes: 0, sentBytes: 0, nextOffset: 11 });
  });

  it('never cuts a character: its first bytes wait for the rest, unless the stream ended', () => {
    const e = Buffer.from('é'); // 2 bytes
    const halfWritten = { bytes: Buffer.concat([Buffer.from('a'), e.subarray(0, 1)]), startOffset: 0 };
    expect(sliceStream(halfWritten, 0, 100, false)).toMatchObject({ text: 'a', nextOffset: 1 });
    // The budget ends inside "€" (3 bytes): it is left for the next read.
    expect(sliceStream(held('a€b'), 0, 3, false)).toMatchObject({ text: 'a', nextOffset: 1 });
    expect(sliceStream(held('a€b'), 1, 3, false)).toMatchObject({ text: '€', nextOffset: 4 });
    // Ended: what is there is all there will be.
    expect(sliceStream(halfWritten, 0, 100, true)).toMatchObject({ text: 'a\ufffd', nextOffset: 2 });
  });

  it('skips bytes no longer held, starting at the next whole character, and counts them', () => {
    // The node kept "x€yz" of "0123x€yz" but its buffer front cut the "€" too: held from offset 5.
    const cut = { bytes: Buffer.from('x€yz').subarray(2), startOffset: 6 };
    expect(sliceStream(cut, 2, 100, false)).toEqual({ text: 'yz', skippedBytes: 6, sentBytes: 2, nextOffset: 10 });
  });
});

describe('wholeCharactersLength', () => {
  it('drops only an unfinished last character', () => {
    const s = Buffer.from('a€😀');
    expect(wholeCharactersLength(s)).toBe(s.length);
    expect(wholeCharactersLength(s.subarray(0, s.length - 1))).toBe(4);
    expect(wholeCharactersLength(s.subarray(0, 3))).toBe(1);
    expect(wholeCharactersLength(Buffer.from([0x80, 0x80, 0x80, 0x80]))).toBe(4);
  });
});

describe('readFrom', () => {
  it('reads the parts in order, each stream from its offset, and moves past a part only once it ended and was read whole', () => {
    const parts = [part(2, 'two\n'), part(1, 'one\n', 'err\n'), part(1, 'pre\n', '', true, 'pre')];
    const r = readFrom(parts, START, 1000);
    expect(r.chunks.map((c) => [c.step, c.attempt, c.stream, c.text])).toEqual([
      ['pre', 1, 'stdout', 'pre\n'],
      [null, 1, 'stdout', 'one\n'],
      [null, 1, 'stderr', 'err\n'],
      [null, 2, 'stdout', 'two\n'],
    ]);
    expect(r.ended).toEqual([
      { step: 'pre', attempt: 1 },
      { step: null, attempt: 1 },
      { step: null, attempt: 2 },
    ]);
    expect(r.position).toEqual({ part: 3, stdout: 0, stderr: 0 });
    expect(readFrom(parts, r.position, 1000)).toEqual({ chunks: [], ended: [], position: r.position });
  });

  it('stays in a running part, and gives only what came since', () => {
    const running = part(1, 'one\n', '', false);
    const first = readFrom([running], START, 1000);
    expect(first.position).toEqual({ part: 1, stdout: 4, stderr: 0 });
    expect(first.ended).toEqual([]);
    const later = part(1, 'one\ntwo\n', 'oops\n', false);
    expect(readFrom([later], first.position, 1000).chunks.map((c) => c.text)).toEqual(['two\n', 'oops\n']);
  });

  it('a running part that ends and is then read from its saved log gives the rest, once', () => {
    // Live: the executor's buffers while the command runs; the follower reads part of it.
    const tail = new TailBuffer(1000);
    tail.push(Buffer.from('one\ntw'));
    const live: PartOutput = { part: 1, step: null, attempt: 1, ended: false, stdout: tail.snapshot(), stderr: held('') };
    const first = readFrom([live], START, 1000);
    tail.push(Buffer.from('o\nthree\n'));
    // Ended and saved: the log holds the kept tail.
    const done = tail.finish();
    const saved = savedPart({ attempt: 1, stdout: done.text, stderr: '', stdoutDroppedBytes: done.droppedBytes, stderrDroppedBytes: 0 });
    const rest = readFrom([saved], first.position, 1000);
    expect(first.chunks.map((c) => c.text).join('') + rest.chunks.map((c) => c.text).join('')).toBe('one\ntwo\nthree\n');
    expect(rest.ended).toEqual([{ step: null, attempt: 1 }]);
  });

  it('whatever the size of the reads, the output comes whole, in order, and never twice', () => {
    const parts = [part(1, 'première ligne\n€€€\n', 'erreur ✗\n'), part(2, '😀 two\n', '', true), part(1, 'post\n', '', true, 'post')];
    const whole = { 'attempt 1 stdout': 'première ligne\n€€€\n', 'attempt 1 stderr': 'erreur ✗\n', 'attempt 2 stdout': '😀 two\n', 'post 1 stdout': 'post\n' };
    expect(readAll(parts, 1_000_000)).toEqual(whole);
    for (const maxBytes of [4, 5, 7, 13]) expect(readAll(parts, maxBytes), `reads of ${maxBytes} bytes`).toEqual(whole);
  });

  it('says how many bytes a slow follower missed when the node kept only the newest', () => {
    const tail = new TailBuffer(8);
    tail.push(Buffer.from('0123456789abcdefghij')); // 20 bytes; the buffer holds the last 8 to 16
    const { text, droppedBytes } = tail.finish();
    const r = readFrom([savedPart({ attempt: 1, stdout: text, stderr: '', stdoutDroppedBytes: droppedBytes, stderrDroppedBytes: 0 })], { part: 1, stdout: 3, stderr: 0 }, 100);
    expect(r.chunks).toEqual([{ step: null, attempt: 1, stream: 'stdout', text: 'cdefghij', skippedBytes: 9 }]);
  });
});
