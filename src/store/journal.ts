// The start-of-execution journal: an append-only record, durable before a command is
// spawned, so a node never starts the same (instance, attempt) twice, even across a
// crash (DESIGN.md, guarantee 3). Ends are journalled too, so a result that had not
// yet reached the record store survives a crash.
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { FailureReason, TerminalStatus } from '../records/types.js';
import { StorageWriteError } from './durable-file.js';
import { InvariantError } from '../core/assert.js';

export interface JournalStart {
  type: 'start';
  instanceId: string;
  attempt: number;
  atMs: number;
}

export interface JournalEnd {
  type: 'end';
  instanceId: string;
  attempt: number;
  atMs: number;
  status: TerminalStatus;
  reason: FailureReason | null;
  exitCode: number | null;
  /** With reason `signal`, the signal's name; absent in an end written before it was kept. */
  signal?: string | null;
  startedAtMs: number | null;
}

/** The process group an attempt runs in, so a restarted daemon can kill what a crash left behind. */
export interface JournalSpawn {
  type: 'spawn';
  instanceId: string;
  attempt: number;
  pid: number;
}

export type JournalEntry = JournalStart | JournalEnd | JournalSpawn;

const attemptKey = (instanceId: string, attempt: number) => `${instanceId}#${attempt}`;

const ENTRY_TYPES = new Set(['start', 'end', 'spawn']);

/** One journal line as an entry, or null when it is not one (garbage, a torn write, another shape). */
function parseEntry(line: string): JournalEntry | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const entry = value as Partial<JournalEntry>;
  if (!ENTRY_TYPES.has(entry.type as string) || typeof entry.instanceId !== 'string' || !Number.isInteger(entry.attempt)) return null;
  return entry as JournalEntry;
}

/**
 * What the worker needs of a journal. `FileJournal` is the daemon's fsynced file;
 * `MemoryJournal` is the simulator's, which a simulated crash keeps as a disk would.
 */
export interface AttemptJournal {
  /** Where it lives, for messages. */
  readonly path: string;
  /** Lines that could not be read when it was opened. */
  readonly skippedLines: number;
  readonly tornLastLine: boolean;
  readProblem(): string | null;
  hasStarted(instanceId: string, attempt: number): boolean;
  endOf(instanceId: string, attempt: number): JournalEnd | undefined;
  unfinished(): JournalStart[];
  finished(): JournalEnd[];
  /** Durably records that an attempt is about to start. A second start of one attempt is an invariant error (guarantee 3). */
  recordStart(instanceId: string, attempt: number, atMs: number): void;
  recordSpawn(instanceId: string, attempt: number, pid: number): void;
  spawnOf(instanceId: string, attempt: number): number | undefined;
  recordEnd(entry: Omit<JournalEnd, 'type'>): void;
  /** Drops entries of instances that no longer exist, keeping it bounded. */
  compact(keepInstance: (instanceId: string) => boolean): Promise<number>;
  close(): void;
}

/** The journal's index of entries; subclasses say where the entries are kept. */
abstract class JournalIndex implements AttemptJournal {
  protected readonly starts = new Map<string, JournalStart>();
  protected readonly ends = new Map<string, JournalEnd>();
  protected readonly spawns = new Map<string, JournalSpawn>();
  /** Lines that could not be read when the journal was opened (a torn last write, or corruption). */
  skippedLines = 0;
  /** Whether one of those is the file's unterminated last line: the normal trace of a crash in the middle of a write. */
  tornLastLine = false;

  constructor(readonly path: string) {}

  /** Writes one entry where it is kept; `durable`: on stable storage before this returns. */
  protected abstract append(entry: JournalEntry, durable: boolean): void;
  /** Replaces every entry kept with `entries` (compaction). */
  protected abstract rewrite(entries: JournalEntry[]): Promise<void>;
  abstract close(): void;

  /**
   * What went wrong reading the journal, for the operator: null when every line was read.
   * Lost lines matter (an attempt the journal lost can no longer be told from one never
   * started), so the daemon logs this with the journal's path at every start.
   */
  readProblem(): string | null {
    if (this.skippedLines === 0) return null;
    if (this.skippedLines === 1 && this.tornLastLine) {
      return `the last line of the journal ${this.path} was torn (a crash in the middle of a write); 1 line could not be read and was skipped`;
    }
    return `the journal ${this.path} has ${this.skippedLines} line(s) that could not be read; they were skipped, so attempts they recorded are unknown to it`;
  }

  protected load(line: string): void {
    if (line.trim() === '') return;
    const entry = parseEntry(line);
    if (entry === null) {
      this.skippedLines += 1;
      return;
    }
    this.index(entry);
  }

  protected index(entry: JournalEntry): void {
    const key = attemptKey(entry.instanceId, entry.attempt);
    if (entry.type === 'start') this.starts.set(key, entry);
    else if (entry.type === 'end') this.ends.set(key, entry);
    else this.spawns.set(key, entry);
  }

  hasStarted(instanceId: string, attempt: number): boolean {
    return this.starts.has(attemptKey(instanceId, attempt));
  }

  endOf(instanceId: string, attempt: number): JournalEnd | undefined {
    return this.ends.get(attemptKey(instanceId, attempt));
  }

  /** Attempts that were started and never reported an end: the process died under them. */
  unfinished(): JournalStart[] {
    return [...this.starts.entries()].filter(([key]) => !this.ends.has(key)).map(([, start]) => start);
  }

  /** Finished attempts, for re-applying results the record store may have lost. */
  finished(): JournalEnd[] {
    return [...this.ends.values()];
  }

  recordStart(instanceId: string, attempt: number, atMs: number): void {
    const key = attemptKey(instanceId, attempt);
    if (this.starts.has(key)) throw new InvariantError(3, `attempt ${attempt} of ${instanceId} was already started on this node`);
    const entry: JournalStart = { type: 'start', instanceId, attempt, atMs };
    this.append(entry, true);
    this.starts.set(key, entry);
  }

  /** Records the pid (= process group id) of a spawned attempt. Not durable: it only helps clean up. */
  recordSpawn(instanceId: string, attempt: number, pid: number): void {
    const entry: JournalSpawn = { type: 'spawn', instanceId, attempt, pid };
    try {
      this.append(entry, false);
    } catch (err) {
      // Only a help to clean up after a crash (the attempt's variables find it too): a full disk must not fail the attempt.
      if (!(err instanceof StorageWriteError)) throw err;
    }
    this.spawns.set(attemptKey(instanceId, attempt), entry);
  }

  spawnOf(instanceId: string, attempt: number): number | undefined {
    return this.spawns.get(attemptKey(instanceId, attempt))?.pid;
  }

  recordEnd(entry: Omit<JournalEnd, 'type'>): void {
    const full: JournalEnd = { type: 'end', ...entry };
    this.append(full, true);
    this.ends.set(attemptKey(entry.instanceId, entry.attempt), full);
  }

  async compact(keepInstance: (instanceId: string) => boolean): Promise<number> {
    const before = this.starts.size + this.ends.size;
    for (const map of [this.starts, this.ends, this.spawns] as Map<string, JournalEntry>[]) {
      for (const [key, entry] of map) if (!keepInstance(entry.instanceId)) map.delete(key);
    }
    const removed = before - (this.starts.size + this.ends.size);
    await this.rewrite([...this.starts.values(), ...this.spawns.values(), ...this.ends.values()]);
    return removed;
  }
}

/**
 * The daemon's journal: a file of JSON lines, fsynced at every start and end.
 *
 * Every append leaves whole lines: a write or fsync that fails (a full disk, an I/O error)
 * is cut back to the last whole line and that cut is fsynced before the error is thrown,
 * so the entry is not on disk and the next one starts on a line of its own. When even the
 * cut fails, the journal can no longer say what it holds: the next append refuses with
 * an invariant error naming guarantee 3, and the daemon stops.
 *
 * Compaction writes the kept entries to a file beside the journal while appends go on to
 * the journal itself; the entries appended meanwhile are then copied over and the file
 * swapped in, synchronously, so an append never meets a closed journal.
 */
export class FileJournal extends JournalIndex {
  private fd: number | null = null;
  /** The file's length in whole lines: where a failed append is cut back to. */
  private sizeBytes = 0;
  /** Lines appended while a compaction writes its file, to be copied into it at the swap. */
  private appendedDuringCompaction: string[] | null = null;
  /** Set when a failed append could not be cut back: the file's content is unknown. */
  private broken: StorageWriteError | null = null;

  open(): void {
    let text = '';
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const lines = text.split('\n');
    for (const line of lines) this.load(line);
    const unterminated = text !== '' && !text.endsWith('\n');
    const last = lines.at(-1) ?? '';
    this.tornLastLine = unterminated && last.trim() !== '' && parseEntry(last) === null;
    this.fd = openSync(this.path, 'a', 0o644);
    this.sizeBytes = fstatSync(this.fd).size;
    // A torn last write has no newline: end it, or the next entry would be glued to it and lost.
    if (unterminated) this.appendWhole('\n', true);
  }

  protected append(entry: JournalEntry, durable: boolean): void {
    const line = `${JSON.stringify(entry)}\n`;
    this.appendWhole(line, durable);
    this.appendedDuringCompaction?.push(line);
  }

  /** Appends `text` whole (looping over short writes), or not at all: see the class comment. */
  private appendWhole(text: string, durable: boolean): void {
    if (this.broken) throw new InvariantError(3, `the journal ${this.path} could not be repaired after a failed write (${this.broken.message}); no attempt can be started safely`);
    if (this.fd === null) throw new Error(`the journal ${this.path} is not open`);
    const bytes = Buffer.from(text);
    try {
      for (let done = 0; done < bytes.length; ) done += writeSync(this.fd, bytes, done, bytes.length - done);
      if (durable) fsyncSync(this.fd);
      this.sizeBytes += bytes.length;
    } catch (err) {
      try {
        ftruncateSync(this.fd, this.sizeBytes);
        fsyncSync(this.fd);
      } catch (cutErr) {
        this.broken = new StorageWriteError(this.path, cutErr);
        throw new InvariantError(3, `the journal ${this.path} could not be written (${new StorageWriteError(this.path, err).detail}) nor cut back to its last whole line (${this.broken.detail}); no attempt can be started safely`);
      }
      throw new StorageWriteError(this.path, err);
    }
  }

  protected async rewrite(entries: JournalEntry[]): Promise<void> {
    if (this.appendedDuringCompaction !== null) return; // one compaction at a time; the next retention pass does it
    const aside = join(dirname(this.path), `.${basename(this.path)}.compacting`);
    this.appendedDuringCompaction = [];
    try {
      const lines = entries.map((e) => `${JSON.stringify(e)}\n`).join('');
      const file = await open(aside, 'w', 0o644);
      try {
        await file.writeFile(lines);
        await file.sync();
      } finally {
        await file.close();
      }
      this.swapIn(aside);
    } catch (err) {
      unlinkQuietly(aside);
      throw new StorageWriteError(this.path, err);
    } finally {
      this.appendedDuringCompaction = null;
    }
  }

  /** Copies what was appended meanwhile into the compacted file, and makes it the journal: all synchronous, so no append falls between. */
  private swapIn(aside: string): void {
    const fd = openSync(aside, 'a', 0o644);
    try {
      const meanwhile = Buffer.from((this.appendedDuringCompaction ?? []).join(''));
      for (let done = 0; done < meanwhile.length; ) done += writeSync(fd, meanwhile, done, meanwhile.length - done);
      fsyncSync(fd);
      renameSync(aside, this.path);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    if (this.fd !== null) closeSync(this.fd);
    this.fd = fd;
    this.sizeBytes = fstatSync(fd).size;
    syncDirectory(dirname(this.path));
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The simulator's journal: entries in memory. A simulated crash keeps them, as a disk
 * keeps an fsynced file: the restarted node opens `MemoryJournal.reopen(old)`.
 */
export class MemoryJournal extends JournalIndex {
  private entries: JournalEntry[] = [];
  private closed = false;

  constructor(path = '(memory journal)') {
    super(path);
  }

  /** A journal holding what `previous` had written: the same disk after a crash. */
  static reopen(previous: MemoryJournal): MemoryJournal {
    const journal = new MemoryJournal(previous.path);
    journal.entries = [...previous.entries];
    for (const entry of journal.entries) journal.index(entry);
    return journal;
  }

  protected append(entry: JournalEntry): void {
    if (this.closed) throw new Error(`the journal ${this.path} is closed`);
    this.entries.push(entry);
  }

  protected async rewrite(entries: JournalEntry[]): Promise<void> {
    this.entries = [...entries];
  }

  close(): void {
    this.closed = true;
  }
}
