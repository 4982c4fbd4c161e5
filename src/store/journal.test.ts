// The start-of-execution journal (guarantee 3): a start is on disk before recordStart
// returns, is never accepted twice, survives a reopen, a torn tail costs nothing, and
// what could not be read is counted and described for the operator.
import { randomBytes } from 'node:crypto';
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileJournal, MemoryJournal } from './journal.js';
import { InvariantError } from '../core/assert.js';
import { StorageWriteError } from './durable-file.js';
import { mountSmallDisk, smallDiskProblem, type SmallDisk } from '../testing/small-disk.js';

let dir: string;
let path: string;
const journals: FileJournal[] = [];

function openJournal(): FileJournal {
  const journal = new FileJournal(path);
  journals.push(journal);
  journal.open();
  return journal;
}

function lines(): string[] {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l !== '');
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chorus-journal-'));
  path = join(dir, 'journal.log');
});

afterEach(async () => {
  for (const journal of journals.splice(0)) journal.close();
  await rm(dir, { recursive: true, force: true });
});

describe('Journal', () => {
  it('recordStart is on disk when it returns, and a reopen sees it', () => {
    const journal = openJournal();
    expect(journal.hasStarted('i1', 1)).toBe(false);
    journal.recordStart('i1', 1, 1000);
    expect(journal.hasStarted('i1', 1)).toBe(true);
    // Read the file directly while the journal is still open: no buffering.
    expect(lines().map((l) => JSON.parse(l) as unknown)).toEqual([{ type: 'start', instanceId: 'i1', attempt: 1, atMs: 1000 }]);
    journal.close();

    const reopened = openJournal();
    expect(reopened.hasStarted('i1', 1)).toBe(true);
    expect(reopened.hasStarted('i1', 2)).toBe(false);
    expect(reopened.hasStarted('i2', 1)).toBe(false);
    expect(reopened.skippedLines).toBe(0);
  });

  it('refuses a second start of the same (instance, attempt), also after a reopen', () => {
    const journal = openJournal();
    journal.recordStart('i1', 1, 1000);
    expect(() => journal.recordStart('i1', 1, 2000)).toThrow(/attempt 1 of i1 was already started/);
    // Another attempt, or another instance, is fine.
    journal.recordStart('i1', 2, 3000);
    journal.recordStart('i2', 1, 3000);
    journal.close();
    expect(lines()).toHaveLength(3);

    const reopened = openJournal();
    expect(() => reopened.recordStart('i1', 1, 4000)).toThrow(/already started/);
    expect(() => reopened.recordStart('i1', 2, 4000)).toThrow(/already started/);
    // The refused starts were not written.
    expect(lines()).toHaveLength(3);
  });

  it('unfinished() and finished() survive a reopen', () => {
    const journal = openJournal();
    journal.recordStart('i1', 1, 1000);
    journal.recordStart('i2', 1, 1000);
    journal.recordStart('i2', 2, 1500);
    journal.recordEnd({ instanceId: 'i1', attempt: 1, atMs: 1100, status: 'succeeded', reason: null, exitCode: 0, startedAtMs: 1000 });
    journal.recordEnd({ instanceId: 'i2', attempt: 1, atMs: 1200, status: 'failed', reason: 'exit-code', exitCode: 7, startedAtMs: 1000 });
    journal.close();

    const reopened = openJournal();
    expect(reopened.unfinished()).toEqual([{ type: 'start', instanceId: 'i2', attempt: 2, atMs: 1500 }]);
    const finished = reopened.finished().sort((a, b) => a.instanceId.localeCompare(b.instanceId));
    expect(finished).toEqual([
      { type: 'end', instanceId: 'i1', attempt: 1, atMs: 1100, status: 'succeeded', reason: null, exitCode: 0, startedAtMs: 1000 },
      { type: 'end', instanceId: 'i2', attempt: 1, atMs: 1200, status: 'failed', reason: 'exit-code', exitCode: 7, startedAtMs: 1000 },
    ]);
    expect(reopened.endOf('i2', 1)?.exitCode).toBe(7);
    expect(reopened.endOf('i2', 2)).toBeUndefined();
  });

  it('skips and counts a torn last line, and later appends are not lost with it', () => {
    const journal = openJournal();
    journal.recordStart('i1', 1, 1000);
    journal.close();
    // A crash in the middle of a write: half a line, no newline.
    appendFileSync(path, '{"type":"start","instanceId":"i2","att');

    const reopened = openJournal();
    expect(reopened.skippedLines).toBe(1);
    expect(reopened.hasStarted('i1', 1)).toBe(true);
    expect(reopened.hasStarted('i2', 1)).toBe(false);
    // The next start must stay readable: it must not be glued to the torn line.
    reopened.recordStart('i3', 1, 2000);
    reopened.close();

    const third = openJournal();
    expect(third.hasStarted('i1', 1)).toBe(true);
    expect(third.hasStarted('i3', 1)).toBe(true);
    expect(third.skippedLines).toBe(1);
    expect(third.unfinished().map((s) => s.instanceId).sort()).toEqual(['i1', 'i3']);
  });

  it('reports what it could not read: nothing for a clean journal, a torn last line as such, corruption with the count', () => {
    const journal = openJournal();
    journal.recordStart('i1', 1, 1000);
    journal.close();
    expect(openJournal().readProblem()).toBeNull();
    journals.splice(0).forEach((j) => j.close());

    appendFileSync(path, '{"type":"end","instanceId":"i1","att');
    const torn = openJournal();
    expect([torn.skippedLines, torn.tornLastLine]).toEqual([1, true]);
    expect(torn.readProblem()).toBe(`the last line of the journal ${path} was torn (a crash in the middle of a write); 1 line could not be read and was skipped`);
    journals.splice(0).forEach((j) => j.close());

    // Reopened, the torn line is an ordinary unreadable line now (open() ended it with a newline).
    appendFileSync(path, 'garbage\n\u0000\u00ff\n');
    const corrupt = openJournal();
    expect([corrupt.skippedLines, corrupt.tornLastLine]).toEqual([3, false]);
    expect(corrupt.readProblem()).toBe(`the journal ${path} has 3 line(s) that could not be read; they were skipped, so attempts they recorded are unknown to it`);
    expect(corrupt.hasStarted('i1', 1)).toBe(true);
  });

  it('a journal replaced by random bytes: every line counted, nothing taken for an entry, and it keeps working', () => {
    const garbage = Array.from({ length: 10 }, () => Buffer.from(randomBytes(100).map((b) => (b === 0x0a ? 0x20 : b))));
    writeFileSync(path, Buffer.concat(garbage.flatMap((line, i) => (i < 9 ? [line, Buffer.from('\n')] : [line]))));
    const journal = openJournal();
    expect(journal.skippedLines).toBe(10);
    expect(journal.tornLastLine).toBe(true); // it cannot tell: the last line has no newline
    expect(journal.readProblem()).toContain(`${path} has 10 line(s) that could not be read`);
    expect([journal.unfinished(), journal.finished()]).toEqual([[], []]);
    journal.recordStart('i1', 1, 1000);
    journal.close();
    const reopened = openJournal();
    expect(reopened.hasStarted('i1', 1)).toBe(true);
    expect(reopened.skippedLines).toBe(10);
  });

  it('skips lines that are JSON of the wrong shape instead of taking them for entries', () => {
    writeFileSync(path, `${['{"type":"start"}', '{"type":"end","instanceId":7,"attempt":1}', '{"type":"start","instanceId":"i1","attempt":"1"}', '[1]', '5'].join('\n')}\n`);
    const journal = openJournal();
    expect(journal.skippedLines).toBe(5);
    expect(journal.unfinished()).toEqual([]);
  });

  it('counts lines that parse but are not entries', () => {
    appendFileSync(path, `${JSON.stringify({ type: 'start', instanceId: 'i1', attempt: 1, atMs: 1 })}\n{"type":"bogus"}\nnull\n\n`);
    const journal = openJournal();
    expect(journal.hasStarted('i1', 1)).toBe(true);
    expect(journal.skippedLines).toBe(2);
  });

  it('compact keeps only entries of kept instances, and the journal keeps working', async () => {
    const journal = openJournal();
    journal.recordStart('keep', 1, 1000);
    journal.recordEnd({ instanceId: 'keep', attempt: 1, atMs: 1100, status: 'failed', reason: 'timeout', exitCode: null, startedAtMs: 1000 });
    journal.recordStart('keep', 2, 1200);
    journal.recordStart('drop', 1, 1000);
    journal.recordEnd({ instanceId: 'drop', attempt: 1, atMs: 1100, status: 'succeeded', reason: null, exitCode: 0, startedAtMs: 1000 });
    journal.recordStart('drop2', 1, 1000);

    const removed = await journal.compact((id) => id === 'keep');
    expect(removed).toBe(3);
    expect(journal.hasStarted('drop', 1)).toBe(false);
    expect(journal.hasStarted('keep', 2)).toBe(true);
    const onDisk = lines().map((l) => JSON.parse(l) as { instanceId: string });
    expect(onDisk).toHaveLength(3);
    expect(onDisk.every((e) => e.instanceId === 'keep')).toBe(true);

    // Still works: appends go to the compacted file and survive a reopen.
    journal.recordStart('new', 1, 5000);
    expect(() => journal.recordStart('keep', 2, 5000)).toThrow(/already started/);
    journal.close();
    expect(lines()).toHaveLength(4);

    const reopened = openJournal();
    expect(reopened.skippedLines).toBe(0);
    expect(reopened.hasStarted('new', 1)).toBe(true);
    expect(reopened.hasStarted('keep', 1)).toBe(true);
    expect(reopened.hasStarted('drop', 1)).toBe(false);
    expect(reopened.unfinished().map((s) => `${s.instanceId}#${s.attempt}`).sort()).toEqual(['keep#2', 'new#1']);
    expect(reopened.finished().map((e) => e.instanceId)).toEqual(['keep']);
  });

  it('compacting everything away leaves an empty, usable journal', async () => {
    const journal = openJournal();
    journal.recordStart('a', 1, 1);
    expect(await journal.compact(() => false)).toBe(1);
    expect(readFileSync(path, 'utf8')).toBe('');
    journal.recordStart('a', 1, 2);
    journal.close();
    expect(openJournal().hasStarted('a', 1)).toBe(true);
  });

  it('never refuses an append while it compacts: starts and ends at a high rate around a compaction all land', async () => {
    const journal = openJournal();
    // Enough entries that writing the compacted file takes several turns of the event loop.
    for (let i = 0; i < 3000; i++) {
      journal.recordStart(`old-${i}`, 1, i);
      journal.recordEnd({ instanceId: `old-${i}`, attempt: 1, atMs: i + 1, status: 'succeeded', reason: null, exitCode: 0, startedAtMs: i });
    }
    journal.recordStart('kept', 1, 1);
    let settled = false;
    const compacting = journal.compact((id) => !id.startsWith('old-')).finally(() => (settled = true));
    const errors: unknown[] = [];
    let during = 0;
    while (!settled) {
      try {
        journal.recordStart(`new-${during}`, 1, during);
        journal.recordEnd({ instanceId: `new-${during}`, attempt: 1, atMs: during, status: 'failed', reason: 'exit-code', exitCode: 1, startedAtMs: during });
        during += 1;
      } catch (err) {
        errors.push(err);
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await compacting).toBe(6000);
    expect(errors).toEqual([]);
    expect(during, 'appends made while the compaction ran').toBeGreaterThan(0);
    journal.recordStart('after', 1, 1);
    journal.close();

    const reopened = openJournal();
    expect(reopened.skippedLines).toBe(0);
    expect(reopened.hasStarted('kept', 1)).toBe(true);
    expect(reopened.hasStarted('old-0', 1)).toBe(false);
    expect(reopened.hasStarted('after', 1)).toBe(true);
    for (let i = 0; i < during; i++) expect(reopened.endOf(`new-${i}`, 1)?.exitCode).toBe(1);
    expect(lines()).toHaveLength(1 + 2 * during + 1);
  });

  it('refuses to write when not open', () => {
    const journal = new FileJournal(path);
    expect(() => journal.recordStart('i1', 1, 1)).toThrow(/not open/);
  });
});

describe('MemoryJournal', () => {
  it('keeps what was written across a simulated crash, and a second start of an attempt is an invariant error (guarantee 3)', async () => {
    const journal = new MemoryJournal();
    journal.recordStart('i1', 1, 1000);
    journal.recordSpawn('i1', 1, 4242);
    journal.recordStart('i2', 1, 1000);
    journal.recordEnd({ instanceId: 'i2', attempt: 1, atMs: 1500, status: 'succeeded', reason: null, exitCode: 0, startedAtMs: 1000 });
    journal.close();
    expect(() => journal.recordStart('i3', 1, 1)).toThrow(/closed/);

    const reopened = MemoryJournal.reopen(journal);
    expect(reopened.unfinished().map((s) => s.instanceId)).toEqual(['i1']);
    expect(reopened.endOf('i2', 1)?.status).toBe('succeeded');
    expect(reopened.spawnOf('i1', 1)).toBe(4242);
    let err: unknown = null;
    try {
      reopened.recordStart('i1', 1, 2000);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvariantError);
    expect((err as InvariantError).guarantee).toBe(3);

    expect(await reopened.compact((id) => id !== 'i2')).toBe(2);
    expect(MemoryJournal.reopen(reopened).finished()).toEqual([]);
    expect(MemoryJournal.reopen(reopened).hasStarted('i1', 1)).toBe(true);
  });
});

describe.skipIf(smallDiskProblem !== null)(`Journal on a full disk${smallDiskProblem ? ` (not run: ${smallDiskProblem})` : ''}`, () => {
  let disk: SmallDisk;
  beforeEach(() => {
    disk = mountSmallDisk(128);
  });
  afterEach(() => {
    for (const journal of journals.splice(0)) journal.close();
    disk.remove();
  });

  it('a start the disk refuses is not recorded, leaves whole lines, is named with the file, and is recorded once space is back', () => {
    const journalPath = join(disk.dir, 'journal.log');
    const journal = new FileJournal(journalPath);
    journals.push(journal);
    journal.open();
    journal.recordStart('before', 1, 1);
    disk.fill();
    // The journal's last page still has room for a few entries; the one that crosses it is cut short by the disk.
    let refused: unknown = null;
    let n = 0;
    for (; n < 1000 && refused === null; n++) {
      try {
        journal.recordStart(`full-${n}`, 1, n);
      } catch (err) {
        refused = err;
      }
    }
    expect(refused).toBeInstanceOf(StorageWriteError);
    expect((refused as Error).message).toBe(`cannot write ${journalPath} (ENOSPC: no space left on device)`);
    const failed = `full-${n - 1}`;
    expect(journal.hasStarted(failed, 1)).toBe(false);
    const text = readFileSync(journalPath, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    for (const line of text.split('\n').filter(Boolean)) expect(() => JSON.parse(line) as unknown).not.toThrow();
    // Refused again while the disk is full; accepted once it is not (it was never started).
    expect(() => journal.recordStart(failed, 1, 0)).toThrow(StorageWriteError);
    disk.free();
    journal.recordStart(failed, 1, 0);
    journal.close();

    const reopened = new FileJournal(journalPath);
    journals.push(reopened);
    reopened.open();
    expect(reopened.skippedLines).toBe(0);
    expect(reopened.hasStarted('before', 1)).toBe(true);
    expect(reopened.hasStarted(failed, 1)).toBe(true);
    expect(reopened.unfinished()).toHaveLength(n + 1);
  });

  it('a compaction the disk refuses leaves the journal whole and working, and no file behind', async () => {
    const journalPath = join(disk.dir, 'journal.log');
    const journal = new FileJournal(journalPath);
    journals.push(journal);
    journal.open();
    for (let i = 0; i < 50; i++) journal.recordStart(`i-${i}`, 1, i);
    disk.fill();
    await expect(journal.compact((id) => id !== 'i-0')).rejects.toThrow(`cannot write ${journalPath} (ENOSPC: no space left on device)`);
    disk.free();
    journal.recordStart('after', 1, 1);
    journal.close();
    expect(readdirSync(disk.dir), 'the compacted copy was removed').toEqual(['journal.log']);
    const reopened = new FileJournal(journalPath);
    journals.push(reopened);
    reopened.open();
    expect(reopened.skippedLines).toBe(0);
    expect(reopened.hasStarted('i-49', 1)).toBe(true);
    expect(reopened.hasStarted('after', 1)).toBe(true);
  });
});
