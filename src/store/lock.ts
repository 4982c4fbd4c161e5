// One daemon owns one data directory: a lock file holding the owner's pid and its start
// time. A lock left by a process that no longer exists is taken over, and so is one whose
// holder is a zombie (killed, not yet reaped by its parent) or whose pid now names another
// process (it started at another time).
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export class DataDirLockedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly ownerPid: number,
  ) {
    super(
      `another chorus daemon (pid ${ownerPid}) is already using the data directory ${dataDir}. ` +
        'Stop it first, or give this daemon its own --data-dir.',
    );
  }
}

export class DataDirLock {
  private constructor(readonly path: string) {}

  static acquire(dataDir: string): DataDirLock {
    const path = join(dataDir, 'daemon.lock');
    for (let tries = 0; tries < 3; tries++) {
      if (tryCreate(path)) return new DataDirLock(path);
      const owner = readOwner(path);
      if (owner !== null && holds(owner)) throw new DataDirLockedError(dataDir, owner.pid);
      // Only remove the lock we judged stale; a new owner may have replaced it meanwhile.
      if (sameOwner(readOwner(path), owner)) removeStale(path);
    }
    throw new Error(`could not take the lock ${path}: it keeps reappearing; is another daemon starting on ${dataDir}?`);
  }

  release(): void {
    if (readOwner(this.path)?.pid === process.pid) removeStale(this.path);
  }
}

/** Who holds a lock: its pid, and when that process started (clock ticks since boot, /proc/PID/stat), when the lock says. */
interface Owner {
  pid: number;
  startTicks: number | null;
}

const sameOwner = (a: Owner | null, b: Owner | null) => a?.pid === b?.pid && a?.startTicks === b?.startTicks;

/** Creates the lock with our pid already inside (write a temp file, then link it into place), so nobody ever sees an empty lock. */
function tryCreate(path: string): boolean {
  const tmpPath = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmpPath, 'w', 0o644);
  try {
    const started = processStart(process.pid);
    writeSync(fd, started === null ? `${process.pid}\n` : `${process.pid} ${started}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmpPath, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(tmpPath);
  }
}

function readOwner(path: string): Owner | null {
  try {
    const [pidText, startText] = readFileSync(path, 'utf8').trim().split(/\s+/);
    const pid = Number.parseInt(pidText ?? '', 10);
    if (!Number.isInteger(pid) || pid <= 0) return null;
    const startTicks = startText === undefined ? null : Number.parseInt(startText, 10);
    return { pid, startTicks: Number.isInteger(startTicks) ? startTicks : null };
  } catch {
    return null;
  }
}

/** Whether the lock's owner still holds it: the process runs (not a zombie) and is the one that wrote it. */
function holds({ pid, startTicks }: Owner): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = procStat(pid);
  if (stat === null) return true; // no /proc to ask (not Linux): the pid alone decides
  if (stat.state === 'Z' || stat.state === 'X') return false; // killed, waiting for its parent to reap it
  return startTicks === null || stat.startTicks === startTicks; // else the pid was reused by another process
}

function processStart(pid: number): number | null {
  return procStat(pid)?.startTicks ?? null;
}

/** A process's state letter and start time from /proc/PID/stat; null where there is no /proc. */
function procStat(pid: number): { state: string; startTicks: number } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // "PID (COMM) STATE PPID ..." where COMM may hold spaces and parentheses: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const startTicks = Number.parseInt(fields[19] ?? '', 10);
  return { state: fields[0] ?? '?', startTicks: Number.isInteger(startTicks) ? startTicks : 0 };
}

function removeStale(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
