// A failed start stops what started, the last first, even past a part that fails to stop.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { StartedParts } from './started-parts.js';

describe('StartedParts', () => {
  it('stops every part in the reverse order of start, once, and logs a part that fails to stop', async () => {
    const logged: { msg: string; part: string }[] = [];
    const log = pino({ level: 'error' }, { write: (line: string) => void logged.push(JSON.parse(line) as { msg: string; part: string }) });
    const stopped: string[] = [];
    const parts = new StartedParts(log);
    parts.add('the lock', () => stopped.push('lock'));
    parts.add('the transport', async () => {
      await new Promise((r) => setTimeout(r, 5));
      stopped.push('transport');
    });
    parts.add('the node', () => {
      throw new Error('node would not stop');
    });
    parts.add('the API', () => stopped.push('api'));
    await parts.stopAll();
    expect(stopped).toEqual(['api', 'transport', 'lock']);
    expect(logged).toEqual([expect.objectContaining({ part: 'the node', msg: 'the start failed, and stopping the node failed too: node would not stop' })]);
    await parts.stopAll();
    expect(stopped).toEqual(['api', 'transport', 'lock']);
  });
});
