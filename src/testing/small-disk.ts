// A small disk for tests of what chorus does when the disk fills up: a tmpfs of a few
// hundred KiB mounted on a fresh directory (root only, as CI runs), a filler file that
// takes every free byte, and its removal. Tests that need it run only where a tmpfs can
// be mounted and say so otherwise (`smallDiskProblem`).
import { execFileSync } from 'node:child_process';
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SmallDisk {
  /** The mount point: a data directory, or a parent of one. */
  readonly dir: string;
  /** Takes every free byte with a filler file; returns the bytes it took. */
  fill(): number;
  /** Removes the filler: the space is back. */
  free(): void;
  /** Bytes free now. */
  freeBytes(): number;
  /** Unmounts and removes the directory (safe to call twice). */
  remove(): void;
}

/** Why a small disk cannot be had here (not root, no mount), or null when it can. Checked once. */
export const smallDiskProblem: string | null = (() => {
  if (process.platform !== 'linux') return 'tmpfs mounts need Linux';
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root (CI runs as root)';
  let disk: SmallDisk | null = null;
  try {
    disk = mountSmallDisk(64);
    return null;
  } catch (err) {
    return `cannot mount a tmpfs here: ${(err as Error).message}`;
  } finally {
    disk?.remove();
  }
})();

/** Mounts a tmpfs of `sizeKiB` on a new directory under the system's temporary directory. */
export function mountSmallDisk(sizeKiB: number): SmallDisk {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(((err as { stderr?: Buffer }).stderr?.toString() || (err as Error).message).trim(), { cause: err });
  }
  const filler = join(dir, 'filler');
  let mounted = true;
  return {
    dir,
    fill() {
      const fd = openSync(filler, 'a');
      const chunk = Buffer.alloc(4096, 0x78);
      try {
        for (;;) {
          try {
            // Whole pages first, then byte by byte into the last one.
            writeSync(fd, chunk);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
            break;
          }
        }
        for (;;) {
          try {
            writeSync(fd, chunk, 0, 1);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
            break;
          }
        }
        return fstatSync(fd).size;
      } finally {
        closeSync(fd);
      }
    },
    free() {
      try {
        unlinkSync(filler);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    },
    freeBytes() {
      const fs = statfsSync(dir);
      return fs.bavail * fs.bsize;
    },
    remove() {
      if (!mounted) return;
      mounted = false;
      try {
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
