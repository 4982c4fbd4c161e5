// Finding and killing what a crashed daemon left running (Linux /proc): by the recorded
// process group when its leader still carries the attempt's variables, otherwise by
// scanning every process's environment. Only the attempt named is ever touched.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isInvariantError } from '../core/assert.js';
import { killProcessesWithEnv, killRecordedGroup, signalProcessesWithEnv } from './leftovers.js';
import { processAlive, processGroupOf } from '../core/proc.js';
import { waitFor } from '../testing/wait.js';

/**
 * Unique per test and per run, so no other process on the machine can match, not even a
 * member of an earlier test's group that was SIGKILLed but is not yet scheduled to die
 * (on a loaded machine it keeps its environment for a while after its leader is gone).
 */
let INSTANCE = '';
let ATTEMPT_VARS: Record<string, string> = {};
let testNumber = 0;

beforeEach(() => {
  testNumber += 1;
  INSTANCE = `i-leftovers-${process.pid}-${Date.now()}-${testNumber}`;
  ATTEMPT_VARS = { CHORUS_INSTANCE_ID: INSTANCE, CHORUS_NODE_ID: 'n-self', CHORUS_ATTEMPT: '1' };
});

const spawned: number[] = [];

afterEach(async () => {
  const pids = spawned.splice(0);
  for (const pid of pids) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  await waitFor(() => pids.every((pid) => !processAlive(pid)), 'the spawned processes to die');
});

/**
 * A `sleep` with these variables, once it runs with them: detached, a shell leading its
 * own process group with the sleep as its child (like a job); else a lone sleep in ours.
 */
async function sleeper(env: Record<string, string>, detached = true): Promise<number> {
  const script = detached ? 'sleep 30; true' : 'exec sleep 30';
  const child = spawn('/bin/sh', ['-c', script], { detached, stdio: 'ignore', env: { ...process.env, ...env } });
  child.unref();
  const pid = child.pid as number;
  spawned.push(pid);
  // Until its exec, the child's /proc environ is still ours.
  await waitFor(() => environ(pid).includes(`CHORUS_INSTANCE_ID=${env.CHORUS_INSTANCE_ID}`), `pid ${pid} to start`);
  return pid;
}

function environ(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'utf8');
  } catch {
    return '';
  }
}


describe('killProcessesWithEnv', () => {
  it('kills the group of every process with all the variables, and no other', async () => {
    const target = await sleeper(ATTEMPT_VARS);
    const step = await sleeper({ ...ATTEMPT_VARS, CHORUS_STEP: 'pre' });
    const otherNode = await sleeper({ ...ATTEMPT_VARS, CHORUS_NODE_ID: 'n-other' });
    const otherAttempt = await sleeper({ ...ATTEMPT_VARS, CHORUS_ATTEMPT: '2' });

    expect(killProcessesWithEnv(ATTEMPT_VARS, ['CHORUS_STEP'])).toEqual([target]);
    await waitFor(() => !processAlive(target), 'the matching group to die');
    expect([processAlive(step), processAlive(otherNode), processAlive(otherAttempt)]).toEqual([true, true, true]);

    expect(killProcessesWithEnv({ ...ATTEMPT_VARS, CHORUS_STEP: 'pre' })).toEqual([step]);
    await waitFor(() => !processAlive(step), 'the step group to die');
    expect([processAlive(otherNode), processAlive(otherAttempt)]).toEqual([true, true]);
  });

  it('never kills its own process group, even when a process in it matches', async () => {
    const inOurGroup = await sleeper(ATTEMPT_VARS, false);
    expect(processGroupOf(inOurGroup)).toBe(processGroupOf(process.pid));
    expect(killProcessesWithEnv(ATTEMPT_VARS)).toEqual([]);
    expect(processAlive(inOurGroup)).toBe(true);
  });

  it('finds nothing when nothing matches', () => {
    expect(killProcessesWithEnv({ CHORUS_INSTANCE_ID: `${INSTANCE}-none` })).toEqual([]);
  });
});

describe('signalProcessesWithEnv', () => {
  it('signals the groups with the variables but the one it is told to spare (the caller signals that one)', async () => {
    const spared = await sleeper(ATTEMPT_VARS);
    const escaped = await sleeper(ATTEMPT_VARS);
    expect(signalProcessesWithEnv(ATTEMPT_VARS, ['CHORUS_STEP'], 'SIGTERM', spared)).toEqual([escaped]);
    await waitFor(() => !processAlive(escaped), 'the other group to die of SIGTERM');
    expect(processAlive(spared)).toBe(true);
  });

  it('refuses a search without variables, which would match every process', () => {
    let thrown: unknown;
    try {
      signalProcessesWithEnv({}, [], 'SIGTERM');
    } catch (err) {
      thrown = err;
    }
    expect(isInvariantError(thrown)).toBe(true);
  });
});

describe('killRecordedGroup', () => {
  it('kills the recorded group only while its leader still carries the attempt\'s variables', async () => {
    const reused = await sleeper({ ...ATTEMPT_VARS, CHORUS_INSTANCE_ID: `${INSTANCE}-else` }); // a pid now used by something else
    const target = await sleeper(ATTEMPT_VARS);
    expect(killRecordedGroup(reused, ATTEMPT_VARS)).toBe(false);
    expect(killRecordedGroup(target, ATTEMPT_VARS, ['CHORUS_STEP'])).toBe(true);
    await waitFor(() => !processAlive(target), 'the recorded group to die');
    expect(processAlive(reused)).toBe(true);
    expect(killRecordedGroup(target, ATTEMPT_VARS)).toBe(false); // gone now
  });

  it('refuses group ids that are not a job\'s', () => {
    expect(killRecordedGroup(1, {})).toBe(false);
    expect(killRecordedGroup(0, {})).toBe(false);
    expect(killRecordedGroup(process.pid, {})).toBe(false);
  });
});
