// One daemon owns one data directory: a lock file holding the owner's pid. A lock
// left by a process that no longer exists is taken over.
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
      const ownerPid = readPid(path);
      if (ownerPid !== null && isRunning(ownerPid)) throw new DataDirLockedError(dataDir, ownerPid);
      // Only remove the lock we judged stale; a new owner may have replaced it meanwhile.
      if (readPid(path) === ownerPid) removeStale(path);
    }
    throw new Error(`could not take the lock ${path}: it keeps reappearing; is another daemon starting on ${dataDir}?`);
  }

  release(): void {
    if (readPid(this.path) === process.pid) removeStale(this.path);
  }
}

/** Creates the lock with our pid already inside (write a temp file, then link it into place), so nobody ever sees an empty lock. */
function tryCreate(path: string): boolean {
  const tmpPath = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmpPath, 'w', 0o644);
  try {
    writeSync(fd, `${process.pid}\n`);
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

function readPid(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function isRunning(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function removeStale(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
