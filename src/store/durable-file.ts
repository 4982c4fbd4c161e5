// Writes that survive a crash: write a temporary file, fsync it, rename it over the
// target and fsync the directory, so a reader sees the old or the new file, never half.
import { open, rename, readFile } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import type { Adapter } from 'lowdb';

export async function writeFileDurable(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmpPath = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const file = await open(tmpPath, 'w', mode);
  try {
    await file.writeFile(data);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmpPath, path);
  await syncDirectory(dirname(path));
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
