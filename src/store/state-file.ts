// Where a RecordStore keeps its records between starts: the daemon's `DIR/state.json`
// (lowdb over a durably written JSON file) or, in simulations and unit tests, memory.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Low } from 'lowdb';
import type { AnyRecord } from '../records/types.js';
import { DurableJsonFile, writeFileDurable } from './durable-file.js';

export interface StateFile {
  version: 1;
  records: AnyRecord[];
  /** Ids of instances removed by retention: never taken back from a peer that still has them. */
  pruned?: string[];
}

/** A record of the state file that did not validate, as it is set aside. */
export interface SetAsideEntry {
  rejectedAt: string;
  name: string;
  error: string;
  record: unknown;
}

export interface StatePersister {
  /** Where the state lives, for messages. */
  readonly path: string;
  /** Where records that fail validation at load are kept. */
  readonly quarantinePath: string;
  /** The last state written; null when there is none yet. Unreadable content is an error. */
  read(): Promise<unknown>;
  /** Replaces the state, durably: the old or the new one survives a crash, never half. */
  write(state: StateFile): Promise<void>;
  /** Appends invalid records to the quarantine, durably, before the state is rewritten without them. */
  setAside(entries: SetAsideEntry[]): Promise<void>;
}

/** `DIR/state.json`, through lowdb (never JSONFilePreset: it switches to memory under NODE_ENV=test). */
export class StateFilePersister implements StatePersister {
  private readonly db: Low<StateFile>;

  constructor(private readonly dataDir: string) {
    this.db = new Low<StateFile>(new DurableJsonFile(this.path), { version: 1, records: [] });
  }

  get path(): string {
    return join(this.dataDir, 'state.json');
  }

  get quarantinePath(): string {
    return join(this.dataDir, 'state.rejected.json');
  }

  async read(): Promise<unknown> {
    await this.db.read();
    return this.db.data;
  }

  async write(state: StateFile): Promise<void> {
    this.db.data = state;
    await this.db.write();
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
}

/** State in memory: what was last written survives only as long as the object. */
export class MemoryPersister implements StatePersister {
  readonly path = '(memory)/state.json';
  readonly quarantinePath = '(memory)/state.rejected.json';
  /** The last state written (records are never mutated in place, so no copy is needed). */
  written: StateFile | null = null;
  readonly setAsideEntries: SetAsideEntry[] = [];

  constructor(initial: StateFile | null = null) {
    this.written = initial;
  }

  async read(): Promise<unknown> {
    return this.written === null ? { version: 1, records: [] } : structuredClone(this.written);
  }

  async write(state: StateFile): Promise<void> {
    this.written = state;
  }

  async setAside(entries: SetAsideEntry[]): Promise<void> {
    this.setAsideEntries.push(...entries);
  }
}
