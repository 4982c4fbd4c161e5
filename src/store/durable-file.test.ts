// The one durable write: the new file whole, or the old one and an error naming the file.
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDirs } from '../testing/temp-dirs.js';
import { StorageWriteError, writeFileDurable } from './durable-file.js';

const tempDir = tempDirs('chorus-durable-');

describe('writeFileDurable', () => {
  it('replaces the file whole, with the mode asked for, and leaves no temporary copy', async () => {
    const dir = await tempDir();
    const path = join(dir, 'token');
    await writeFile(path, 'old\n');
    await writeFileDurable(path, 'new\n', 0o600);
    expect(await readFile(path, 'utf8')).toBe('new\n');
    expect(await readdir(dir)).toEqual(['token']);
    await writeFileDurable(join(dir, 'key'), new Uint8Array([1, 2, 3]), 0o600);
    expect((await stat(join(dir, 'key'))).mode & 0o777).toBe(0o600);
  });

  it('throws a StorageWriteError naming the file when it cannot write', async () => {
    const missing = join(await tempDir(), 'no-such-dir', 'state.json');
    const err = await writeFileDurable(missing, 'x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageWriteError);
    expect((err as StorageWriteError).path).toBe(missing);
    expect((err as StorageWriteError).code).toBe('ENOENT');
    expect((err as Error).message).toContain(`cannot write ${missing}`);
  });
});
