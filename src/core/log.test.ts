// LogRepeats: a line said again and again is said once, then counted, then summed up.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../testing/fake-clock.js';
import { LogRepeats, type Logger } from './log.js';

function capture(): { log: Logger; lines: { msg: string; repeated?: number; n?: number }[] } {
  const lines: { msg: string; repeated?: number; n?: number }[] = [];
  return { log: pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) }), lines };
}

describe('LogRepeats', () => {
  it('logs the first line of a kind, counts the next ones in the window, and says how many with the last one\'s fields', async () => {
    const clock = new FakeClock(0);
    const repeats = new LogRepeats(clock, 60_000);
    const { log, lines } = capture();
    for (let n = 1; n <= 500; n++) repeats.log(log, 'warn', 'stall', { n }, 'this node was stalled');
    repeats.log(log, 'warn', 'other', { n: 1 }, 'another kind');
    expect(lines.map((l) => l.msg)).toEqual(['this node was stalled', 'another kind']);
    await clock.advanceAsync(60_000);
    expect(lines.slice(2)).toMatchObject([{ msg: 'this node was stalled (and 499 more like it in the last 60 s)', repeated: 499, n: 500 }]);
    // A new window: the next line is logged at once again.
    repeats.log(log, 'warn', 'stall', { n: 501 }, 'this node was stalled');
    expect(lines).toHaveLength(4);
    await clock.advanceAsync(60_000);
    expect(lines, 'no summary for a window with one line').toHaveLength(4);
  });
});
