import { describe, expect, it } from 'vitest';
import type { InstanceView, SubtaskView } from '../api/views.js';
import { checkBroadcasts, parseHistory } from './checker.js';
import { instanceView, subtaskView } from './fixtures.js';

const sub = subtaskView;
const inst = (id: string, subtasks: SubtaskView[], over: Partial<InstanceView> = {}): InstanceView => instanceView(subtasks, { id, ...over });

const all = new Set(['a', 'b', 'c']);

describe('broadcast checker', () => {
  it('accepts a clean run, including a lost node that never ran', () => {
    const history = parseHistory('a i1 1\nb i1 1\n');
    const instances = [inst('i1', [sub('a'), sub('b'), sub('c', { status: 'failed', reason: 'node-lost' })], { status: 'failed' })];
    expect(checkBroadcasts({ history, instances, survivors: new Set(['a', 'b']) })).toEqual([]);
  });

  it('flags the PowerJob bug: a healthy node running a second time', () => {
    const history = parseHistory('a i1 1\nb i1 1\nb i1 1\n');
    const v = checkBroadcasts({ history, instances: [inst('i1', [sub('a'), sub('b')])], survivors: all });
    expect(v.join('\n')).toMatch(/ran 2 times.*i1 b 1/);
  });

  it('flags a node running a share that is not its own, and moved owners', () => {
    const history = parseHistory('a i1 1\nc i1 1\n');
    const moved = inst('i1', [sub('a'), sub('c')], { targets: ['a', 'b'] });
    const v = checkBroadcasts({ history, instances: [moved], survivors: all });
    expect(v.some((m) => m.includes('not a target'))).toBe(true);
    expect(v.some((m) => m.includes('differ from its targets'))).toBe(true);
  });

  it('flags a surviving target that never ran, an unfinished instance, a missing one, and node-lost on a live node', () => {
    const instances = [
      inst('i1', [sub('a'), sub('b', { status: 'failed', reason: 'node-lost' })], { status: 'failed' }),
      inst('i2', [sub('a', { status: 'running' })], { status: 'running' }),
    ];
    const v = checkBroadcasts({ history: parseHistory('a i2 1\n'), instances, survivors: all, expectedInstances: ['i1', 'i2', 'i3'] });
    expect(v.some((m) => m.includes('i1/a attempt 1 ran 0 times'))).toBe(true);
    expect(v.some((m) => m.includes('i1/b is node-lost although'))).toBe(true);
    expect(v.some((m) => m.includes('i2 did not end'))).toBe(true);
    expect(v.some((m) => m.includes('i3 is missing'))).toBe(true);
  });

  it('checks every attempt of a retried subtask once, and ignores torn lines', () => {
    const instances = [inst('i1', [sub('a', { attempt: 3 })])];
    expect(checkBroadcasts({ history: parseHistory('a i1 1\na i1 2\na i1 3\na i1'), instances, survivors: all })).toEqual([]);
    const v = checkBroadcasts({ history: parseHistory('a i1 1\na i1 3\n'), instances, survivors: all });
    expect(v).toEqual(['i1/a attempt 2 ran 0 times on a surviving node (expected once)']);
    const beyond = checkBroadcasts({ history: parseHistory('a i1 1\na i1 2\na i1 3\na i1 4\n'), instances, survivors: all });
    expect(beyond.some((m) => m.includes('beyond the recorded attempt'))).toBe(true);
  });
});
