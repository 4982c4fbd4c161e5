// Where a RecordStore keeps its records between starts. The daemon's is a snapshot,
// `DIR/state.json` (lowdb over a durably written JSON file), plus an append-only log of
// the changes since, `DIR/state.log` (one fsynced JSON line per batch of changes): one
// record changing costs a line, not a rewrite of every record, and the log is folded
// into a new snapshot once it has grown as big as the snapshot (so the rewrite's cost is
// shared by as many changes as it holds). Simulations and unit tests keep it in memory.
import { open, readFile, stat, truncate, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Low } from 'lowdb';
import type { AnyRecord } from '../records/types.js';
import { DataFileError, DurableJsonFile, StorageWriteError, writeFileDurable } from './durable-file.js';

export interface StateFile {
  version: 1;
  records: AnyRecord[];
  /** Ids of instances removed by retention: never taken back from a peer that still has them. */
  pruned?: string[];
  /** Members reaped (dead or left for reapAfterMs), as they were last known: their old records are never taken back. */
  reaped?: ReapedMember[];
}

/** A member reaped, as it was last known: its start (its member record's incarnation) and its refutes within that start (SWIM's). */
export interface ReapedMember {
  nodeId: string;
  incarnation: number;
  refutes: number;
}

/** One line of the change log: records as they now are, instances retention removed, members reaped. */
export interface StateChange {
  records: AnyRecord[];
  pruned: string[];
  reaped?: ReapedMember[];
}

/** What was on disk: the snapshot and the changes logged after it. */
export interface StoredState {
  /** The snapshot as read; null when there is none yet. Unreadable content is an error. */
  snapshot: unknown;
  /** Each line of the log, parsed (not yet validated). */
  changes: unknown[];
  /** The last line of the log was cut short (a crash in the middle of an append that was never acknowledged). */
  tornLastLine: boolean;
}

/** A record of the state file that did not validate, as it is set aside. */
export interface SetAsideEntry {
  rejectedAt: string;
  name: string;
  error: string;
  record: unknown;
}

export interface StatePersister {
  /** Where the snapshot lives, for messages. */
  readonly path: string;
  /** Where the change log lives, for messages. */
  readonly logPath: string;
  /** Where records that fail validation at load are kept. */
  readonly quarantinePath: string;
  /** Bytes in the snapshot and in the log now: the store folds the log in when it outgrows the snapshot. */
  readonly snapshotBytes: number;
  readonly logBytes: number;
  read(): Promise<StoredState>;
  /** Appends one batch of changes, durably (on disk when it resolves). */
  append(change: StateChange): Promise<void>;
  /** Replaces snapshot and log with one snapshot of `state`, durably: a crash leaves the old snapshot and log, or the new snapshot. */
  compact(state: StateFile): Promise<void>;
  /** Appends invalid records to the quarantine, durably, before the state is rewritten without them. */
  setAside(entries: SetAsideEntry[]): Promise<void>;
  /** Releases open files (the store is closed). */
  close?(): Promise<void>;
}

/** `DIR/state.json` through lowdb (never JSONFilePreset: it switches to memory under NODE_ENV=test), and `DIR/state.log`. */
export class StateFilePersister implements StatePersister {
  private readonly db: Low<StateFile>;
  private log: FileHandle | null = null;
  /** The log holds bytes past its last whole line (a failed append that could not be cut back, a torn line from a crash): cut them first. */
  private cutBeforeAppend = false;
  snapshotBytes = 0;
  logBytes = 0;

  constructor(private readonly dataDir: string) {
    this.db = new Low<StateFile>(new DurableJsonFile(this.path), { version: 1, records: [] });
  }

  get path(): string {
    return join(this.dataDir, 'state.json');
  }

  get logPath(): string {
    return join(this.dataDir, 'state.log');
  }

  get quarantinePath(): string {
    return join(this.dataDir, 'state.rejected.json');
  }

  async read(): Promise<StoredState> {
    await this.db.read();
    this.snapshotBytes = await sizeOf(this.path);
    let text = '';
    try {
      text = await readFile(this.logPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new DataFileError(this.logPath, (err as Error).message);
    }
    const { changes, tornLastLine } = parseLog(this.logPath, text);
    // A torn last line is cut off before the next append, so nothing is ever glued to it.
    const whole = tornLastLine ? text.slice(0, text.lastIndexOf('\n') + 1) : text;
    this.logBytes = Buffer.byteLength(whole);
    this.cutBeforeAppend = tornLastLine;
    return { snapshot: this.db.data, changes, tornLastLine };
  }

  /**
   * Appends one line, whole or not at all: a write or fsync that fails (a full disk, an I/O
   * error) is cut back to the last whole line, and when even that cut fails, it is made
   * before the next append. So a batch that was not acknowledged never leaves half a line
   * in the middle of the log, and the node starts again by itself once space is back.
   */
  async append(change: StateChange): Promise<void> {
    const line = Buffer.from(`${JSON.stringify(change)}\n`);
    try {
      this.log ??= await open(this.logPath, 'a', 0o600);
      if (this.cutBeforeAppend) {
        await this.log.truncate(this.logBytes);
        this.cutBeforeAppend = false;
      }
      for (let done = 0; done < line.length; ) done += (await this.log.write(line, done, line.length - done)).bytesWritten;
      await this.log.sync();
    } catch (err) {
      this.cutBeforeAppend = true;
      await this.log
        ?.truncate(this.logBytes)
        .then(() => this.log?.sync())
        .then(() => (this.cutBeforeAppend = false))
        .catch(() => undefined);
      throw new StorageWriteError(this.logPath, err);
    }
    this.logBytes += line.length;
  }

  async compact(state: StateFile): Promise<void> {
    this.db.data = state;
    await this.db.write(); // durable: tmp, fsync, rename (a StorageWriteError naming state.json when it fails)
    // Only now may the log go: until the snapshot is on disk, the log is what holds the changes.
    try {
      await this.log?.close();
      this.log = null;
      await truncate(this.logPath).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    } catch (err) {
      throw new StorageWriteError(this.logPath, err);
    }
    this.cutBeforeAppend = false;
    this.snapshotBytes = await sizeOf(this.path);
    this.logBytes = 0;
  }

  async setAside(entries: SetAsideEntry[]): Promise<void> {
    let kept: unknown[] = [];
    try {
      const previous: unknown = JSON.parse(await readFile(this.quarantinePath, 'utf8'));
      if (Array.isArray(previous)) kept = previous;
    } catch {
      // none yet (or unreadable: start a new one; the old bytes were not ours to keep)
    }
    await writeFileDurable(this.quarantinePath, `${JSON.stringify([...kept, ...entries], null, 2)}\n`, 0o600);
  }

  async close(): Promise<void> {
    await this.log?.close();
    this.log = null;
  }
}

/**
 * The log's lines. A line cut short at the end is a crash in the middle of an append: that
 * batch was never acknowledged (the answer waits for the fsync), so it is dropped and said.
 * A bad line anywhere else means the file was damaged: the node refuses it, naming the file.
 */
export function parseLog(path: string, text: string): { changes: unknown[]; tornLastLine: boolean } {
  const lines = text.split('\n');
  const complete = text.endsWith('\n') || text === '';
  const changes: unknown[] = [];
  let tornLastLine = false;
  for (const [i, line] of lines.entries()) {
    if (line === '') continue;
    const last = i === lines.length - 1 || (i === lines.length - 2 && lines[lines.length - 1] === '');
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      if (last && !complete) {
        tornLastLine = true;
        continue;
      }
      throw new DataFileError(path, `line ${i + 1} is not valid JSON: ${(err as Error).message}`);
    }
    if (last && !complete) {
      tornLastLine = true; // parsed, but its newline never made it: never fsynced whole
      continue;
    }
    if (typeof value !== 'object' || value === null || !Array.isArray((value as { records?: unknown }).records)) {
      throw new DataFileError(path, `line ${i + 1} is not a batch of changes (expected {"records":[...],"pruned":[...]})`);
    }
    changes.push(value);
  }
  return { changes, tornLastLine };
}

/**
 * The records a data directory holds on disk, as a restart would read them (the snapshot,
 * then the logged changes, the last version of each key winning), unvalidated: for tools
 * and tests that look at a stopped or running node's disk.
 */
export async function readStateRecords(dataDir: string): Promise<AnyRecord[]> {
  const persister = new StateFilePersister(dataDir);
  const stored = await persister.read();
  const byKey = new Map<string, AnyRecord>();
  const keyOf = (r: AnyRecord) => `${r.kind}:${JSON.stringify([(r.record as { id?: string }).id, (r.record as { name?: string }).name, (r.record as { instanceId?: string }).instanceId, (r.record as { nodeId?: string }).nodeId, (r.record as { step?: string }).step])}`;
  for (const r of (stored.snapshot as StateFile | null)?.records ?? []) byKey.set(keyOf(r), r);
  for (const change of stored.changes as StateChange[]) for (const r of change.records) byKey.set(keyOf(r), r);
  return [...byKey.values()];
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** About what a record takes in JSON, for the memory persister's sizes. */
const APPROX_RECORD_BYTES = 500;

/** State in memory: what was last written survives only as long as the object. */
export class MemoryPersister implements StatePersister {
  readonly path = '(memory)/state.json';
  readonly logPath = '(memory)/state.log';
  readonly quarantinePath = '(memory)/state.rejected.json';
  /** The last snapshot written (records are never mutated in place, so no copy is needed). */
  written: StateFile | null = null;
  /** Changes appended since that snapshot. */
  readonly changes: StateChange[] = [];
  readonly setAsideEntries: SetAsideEntry[] = [];
  snapshotBytes = 0;
  logBytes = 0;

  constructor(initial: StateFile | null = null) {
    this.written = initial;
  }

  async read(): Promise<StoredState> {
    return { snapshot: this.written === null ? { version: 1, records: [] } : structuredClone(this.written), changes: structuredClone(this.changes), tornLastLine: false };
  }

  async append(change: StateChange): Promise<void> {
    this.changes.push(change);
    // Sizes are estimated (serialising every batch would cost a simulation dearly), so the
    // store folds the log in about as often as it would on disk, and memory stays bounded.
    this.logBytes += change.records.length * APPROX_RECORD_BYTES;
  }

  async compact(state: StateFile): Promise<void> {
    this.written = state;
    this.changes.length = 0;
    this.snapshotBytes = state.records.length * APPROX_RECORD_BYTES;
    this.logBytes = 0;
  }

  /** Every record now: the snapshot with the logged changes over it (last one wins per key is the store's job; this lists them in order). */
  allWritten(): AnyRecord[] {
    return [...(this.written?.records ?? []), ...this.changes.flatMap((c) => c.records)];
  }

  async setAside(entries: SetAsideEntry[]): Promise<void> {
    this.setAsideEntries.push(...entries);
  }
}
