// The start-of-execution journal: an append-only record, durable before a command is
// spawned, so a node never starts the same (instance, attempt) twice, even across a
// crash (DESIGN.md, guarantee 3). Ends are journalled too, so a result that had not
// yet reached the record store survives a crash.
import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import type { FailureReason, TerminalStatus } from '../records/types.js';
import { writeFileDurable } from './durable-file.js';
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
    this.append(entry, false);
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
    await this.rewrite([...this.starts.values(), ...this.spawns.values(), ...this.ends.values()]);
    return before - (this.starts.size + this.ends.size);
  }
}

/** The daemon's journal: a file of JSON lines, fsynced at every start and end. */
export class FileJournal extends JournalIndex {
  private fd: number | null = null;

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
    // A torn last write has no newline: end it, or the next entry would be glued to it and lost.
    if (unterminated) {
      writeSync(this.fd, '\n');
      fsyncSync(this.fd);
    }
  }

  protected append(entry: JournalEntry, durable: boolean): void {
    if (this.fd === null) throw new Error(`the journal ${this.path} is not open`);
    writeSync(this.fd, `${JSON.stringify(entry)}\n`);
    if (durable) fsyncSync(this.fd);
  }

  protected async rewrite(entries: JournalEntry[]): Promise<void> {
    const lines = entries.map((e) => JSON.stringify(e)).join('\n');
    this.close();
    await writeFileDurable(this.path, lines === '' ? '' : `${lines}\n`);
    this.fd = openSync(this.path, 'a', 0o644);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
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
