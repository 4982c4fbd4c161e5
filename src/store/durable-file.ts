// Writes that survive a crash: write a temporary file, fsync it, rename it over the
// target and fsync the directory, so a reader sees the old or the new file, never half.
// The one way a file of the data directory is replaced (state, tokens, keys, node files).
import { open, rename, readFile, unlink } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import type { Adapter } from 'lowdb';

/**
 * Replaces `path` with `data`, on disk before it returns. Any failure, the directory's fsync
 * included, is a StorageWriteError: a write that is not surely on disk is not acknowledged
 * (guarantee 8). A caller that can do without it catches it, and says why.
 */
export async function writeFileDurable(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmpPath = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    const file = await open(tmpPath, 'w', mode);
    try {
      await file.writeFile(data);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmpPath, path);
  } catch (err) {
    // A full disk must not keep the half-written copy: it holds the very space the next try needs.
    await unlink(tmpPath).catch(() => undefined);
    throw new StorageWriteError(path, err);
  }
  await syncDirectory(dirname(path)).catch((err: unknown) => {
    throw new StorageWriteError(path, err);
  });
}

/** What an errno means, for an operator reading a message. */
const ERRNO_MEANING: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EIO: 'input/output error',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EFBIG: 'file too large',
};

/**
 * A file of the data directory could not be written (a full disk, an I/O error...): an
 * operating error, named with the file, never an invariant. Whoever gets it knows that
 * what it tried to write is not on disk, and did not apply it.
 */
export class StorageWriteError extends Error {
  override readonly name = 'StorageWriteError';
  /** The errno code (ENOSPC, EIO...), when there was one. */
  readonly code: string | undefined;
  /** The cause, in words (`ENOSPC: no space left on device`). */
  readonly detail: string;

  constructor(
    readonly path: string,
    cause: unknown,
  ) {
    const code = cause instanceof StorageWriteError ? cause.code : (cause as NodeJS.ErrnoException | undefined)?.code;
    const detail = cause instanceof StorageWriteError ? cause.detail : code !== undefined && ERRNO_MEANING[code] ? `${code}: ${ERRNO_MEANING[code]}` : ((cause as Error | undefined)?.message ?? String(cause));
    super(`cannot write ${path} (${detail})`, { cause });
    this.code = code;
    this.detail = detail;
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export class DataFileError extends Error {
  constructor(
    readonly path: string,
    detail: string,
  ) {
    super(
      `the data file ${path} is unreadable (${detail}). chorus left it untouched; ` +
        'restore it from a backup, or move it away to start this node with empty state (the cluster will refill it).',
    );
  }
}

/** A lowdb adapter over one JSON file, written durably. A corrupt file is an error, never silently replaced. */
export class DurableJsonFile<T> implements Adapter<T> {
  private writing: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  async read(): Promise<T | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new DataFileError(this.path, (err as Error).message);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new DataFileError(this.path, `not valid JSON: ${(err as Error).message}`);
    }
    // lowdb treats a falsy read as "no file" and would later overwrite it: refuse it here.
    if (value === null || typeof value !== 'object') throw new DataFileError(this.path, `expected a JSON object, found ${text.trim().slice(0, 40)}`);
    return value as T;
  }

  /** Writes are serialised: a later write never lands before an earlier one. */
  write(data: T): Promise<void> {
    const text = JSON.stringify(data);
    this.writing = this.writing.catch(() => undefined).then(() => writeFileDurable(this.path, text));
    return this.writing;
  }
}
