// The start-of-execution journal: an append-only file, fsynced before a command is
// spawned, so a node never starts the same (instance, attempt) twice, even across a
// crash (DESIGN.md, guarantee 3). Ends are journalled too, so a result that had not
// yet reached the record store survives a crash.
import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import type { FailureReason, TerminalStatus } from '../records/types.js';
import { writeFileDurable } from './durable-file.js';

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

export class Journal {
  private fd: number | null = null;
  private readonly starts = new Map<string, JournalStart>();
  private readonly ends = new Map<string, JournalEnd>();
  private readonly spawns = new Map<string, JournalSpawn>();
  /** Lines that could not be parsed when the journal was opened (a torn last write). */
  skippedLines = 0;

  constructor(readonly path: string) {}

  open(): void {
    let text = '';
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const line of text.split('\n')) this.load(line);
    this.fd = openSync(this.path, 'a', 0o644);
    // A torn last write has no newline: end it, or the next entry would be glued to it and lost.
    if (text !== '' && !text.endsWith('\n')) {
      writeSync(this.fd, '\n');
      fsyncSync(this.fd);
    }
  }

  private load(line: string): void {
    if (line.trim() === '') return;
    try {
      const entry = JSON.parse(line) as JournalEntry;
      const key = attemptKey(entry.instanceId, entry.attempt);
      if (entry.type === 'start') this.starts.set(key, entry);
      else if (entry.type === 'end') this.ends.set(key, entry);
      else if (entry.type === 'spawn') this.spawns.set(key, entry);
      else this.skippedLines += 1;
    } catch {
      this.skippedLines += 1;
    }
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

  /** Durably records that an attempt is about to start. Throws if it already started. */
  recordStart(instanceId: string, attempt: number, atMs: number): void {
    const key = attemptKey(instanceId, attempt);
    if (this.starts.has(key)) throw new Error(`attempt ${attempt} of ${instanceId} was already started on this node`);
    const entry: JournalStart = { type: 'start', instanceId, attempt, atMs };
    this.append(entry);
    this.starts.set(key, entry);
  }

  /** Records the pid (= process group id) of a spawned attempt. Not fsynced: it only helps clean up. */
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
    this.append(full);
    this.ends.set(attemptKey(entry.instanceId, entry.attempt), full);
  }

  private append(entry: JournalEntry, durable = true): void {
    if (this.fd === null) throw new Error('journal is not open');
    writeSync(this.fd, `${JSON.stringify(entry)}\n`);
    if (durable) fsyncSync(this.fd);
  }

  /** Drops entries of instances that no longer exist, keeping the file bounded. */
  async compact(keepInstance: (instanceId: string) => boolean): Promise<number> {
    const before = this.starts.size + this.ends.size;
    for (const map of [this.starts, this.ends, this.spawns] as Map<string, JournalEntry>[]) {
      for (const [key, entry] of map) if (!keepInstance(entry.instanceId)) map.delete(key);
    }
    const lines = [...this.starts.values(), ...this.spawns.values(), ...this.ends.values()].map((e) => JSON.stringify(e)).join('\n');
    this.close();
    await writeFileDurable(this.path, lines === '' ? '' : `${lines}\n`);
    this.fd = openSync(this.path, 'a', 0o644);
    return before - (this.starts.size + this.ends.size);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
