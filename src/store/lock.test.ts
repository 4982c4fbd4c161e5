// The data directory lock: one daemon per directory, a clear error naming the owner,
// and a lock left by a dead process (or holding garbage) is taken over.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../testing/wait.js';
import { DataDirLock, DataDirLockedError } from './lock.js';

let dir: string;
let lockPath: string;
const held: DataDirLock[] = [];

function acquire(): DataDirLock {
  const lock = DataDirLock.acquire(dir);
  held.push(lock);
  return lock;
}

/** The pid of a process that has certainly exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  const exited = once(child, 'exit');
  const pid = child.pid;
  await exited;
  if (pid === undefined) throw new Error('the child process did not start');
  return pid;
}

/** The pid the lock file names (its first word; the holder's start time follows). */
function lockPid(): number {
  return Number(readFileSync(lockPath, 'utf8').trim().split(/\s+/)[0]);
}

/** A process's start time as the kernel counts it (/proc/PID/stat field 22). */
function startTicksOf(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[19]);
}

const children: ChildProcess[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chorus-lock-'));
  lockPath = join(dir, 'daemon.lock');
});

afterEach(async () => {
  for (const lock of held.splice(0)) lock.release();
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

describe('DataDirLock', () => {
  it('writes our pid into the lock file', () => {
    const lock = acquire();
    expect(lock.path).toBe(lockPath);
    expect(lockPid()).toBe(process.pid);
  });

  it('a second acquire in the same directory throws DataDirLockedError naming the pid', () => {
    acquire();
    let error: unknown;
    try {
      acquire();
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(DataDirLockedError);
    const locked = error as DataDirLockedError;
    expect(locked.ownerPid).toBe(process.pid);
    expect(locked.dataDir).toBe(dir);
    expect(locked.message).toContain(`pid ${process.pid}`);
    expect(locked.message).toContain(dir);
    // The owner's lock is untouched.
    expect(lockPid()).toBe(process.pid);
  });

  it('takes over a lock left by a process that has exited', async () => {
    const pid = await deadPid();
    expect(pid).not.toBe(process.pid);
    writeFileSync(lockPath, `${pid}\n`);
    const lock = acquire();
    expect(lockPid()).toBe(process.pid);
    lock.release();
    expect(existsSync(lockPath)).toBe(false);
  });

  it('refuses a lock held by another live process', async () => {
    // This test's parent process (the vitest runner, or the shell) is alive and is not us.
    const livePid = process.ppid;
    writeFileSync(lockPath, `${livePid}\n`);
    expect(() => acquire()).toThrow(DataDirLockedError);
    expect(() => acquire()).toThrow(`pid ${livePid}`);
    expect(readFileSync(lockPath, 'utf8').trim()).toBe(String(livePid));
  });

  it('release removes the lock, and the directory can be locked again', () => {
    const lock = acquire();
    expect(existsSync(lockPath)).toBe(true);
    lock.release();
    expect(existsSync(lockPath)).toBe(false);
    held.splice(0);
    acquire();
    expect(lockPid()).toBe(process.pid);
  });

  it('release does not remove a lock that another process now owns', async () => {
    const lock = acquire();
    writeFileSync(lockPath, `${process.ppid}\n`);
    lock.release();
    held.splice(0);
    expect(readFileSync(lockPath, 'utf8').trim()).toBe(String(process.ppid));
  });

  it.each([
    ['garbage', 'not a pid at all'],
    ['an empty file', ''],
    ['a negative pid', '-5\n'],
    ['zero', '0\n'],
  ])('treats %s in the lock file as stale', (_what, content) => {
    writeFileSync(lockPath, content);
    const lock = acquire();
    expect(lockPid()).toBe(process.pid);
    lock.release();
    expect(existsSync(lockPath)).toBe(false);
  });

  it.runIf(process.platform === 'linux')('writes its start time after its pid, and refuses a live holder whose start time matches', () => {
    acquire();
    expect(readFileSync(lockPath, 'utf8').trim()).toBe(`${process.pid} ${startTicksOf(process.pid)}`);
    held.splice(0);
    writeFileSync(lockPath, `${process.ppid} ${startTicksOf(process.ppid)}\n`);
    expect(() => acquire()).toThrow(`pid ${process.ppid}`);
  });

  it.runIf(process.platform === 'linux')('takes over a lock whose pid now names another process (it started at another time)', () => {
    writeFileSync(lockPath, `${process.ppid} ${startTicksOf(process.ppid) + 12345}\n`);
    acquire();
    expect(lockPid()).toBe(process.pid);
  });

  it.runIf(process.platform === 'linux')('takes over a lock held by a zombie: a daemon killed with kill -9 whose parent has not reaped it yet', async () => {
    // `sleep 0` exits at once, and its parent (exec'd into `sleep 30`) never waits for it: a zombie.
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(parent);
    const [line] = (await once(parent.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
    const zombie = Number(line.toString().trim());
    await waitFor(() => readFileSync(`/proc/${zombie}/stat`, 'utf8').includes(') Z '), 'the child to become a zombie');
    expect(() => process.kill(zombie, 0)).not.toThrow(); // to kill(2) a zombie still exists
    writeFileSync(lockPath, `${zombie}\n`);
    acquire();
    expect(lockPid()).toBe(process.pid);
  });
});
