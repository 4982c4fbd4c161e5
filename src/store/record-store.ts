// The node's copy of the replicated state: every record merged in memory, indexed for
// the queries the daemon makes, and persisted through an injected StatePersister in
// batched writes timed on the node's clock.
import { createHash } from 'node:crypto';
import type { Clock, TimerHandle } from '../core/clock.js';
import { defaultConfig } from '../core/config.js';
import { recordBody } from '../records/canonical.js';
import { mergeRecord, recordKey } from '../records/merge.js';
import { isTerminal, type AnyRecord, type CancelRecord, type FireRecord, type InstanceRecord, type NotifyRecord, type InstanceStatus, type JobRecord, type MemberRecord, type PauseRecord, type StepName, type StepRecord, type SubtaskRecord } from '../records/types.js';
import { MAX_NOTIFY, parseRecord } from '../records/validate.js';
import { signRecord, UNSIGNED, type RecordKeys } from '../records/signature.js';
import { deriveInstanceProgress, emptyCounts, isInstanceFinished, statusOfCounts, type InstanceFacts, type InstanceProgress, type InstanceSteps } from '../records/status.js';
import { DataFileError, StorageWriteError } from './durable-file.js';
import { MemoryPersister, StateFilePersister, type ReapedMember, type StateChange, type StateFile, type StatePersister } from './state-file.js';
import { SyncIndex, WorkIndex } from './sync-index.js';
import { holderOf } from '../records/scope.js';
import { impliesSubtasks } from '../records/rollout.js';

interface RecordOfKind {
  job: JobRecord;
  instance: InstanceRecord;
  cancel: CancelRecord;
  subtask: SubtaskRecord;
  step: StepRecord;
  member: MemberRecord;
  pause: PauseRecord;
  fire: FireRecord;
  notify: NotifyRecord;
}

/** The change log is folded into a new snapshot once it is bigger than the snapshot and than this. */
const MIN_COMPACT_BYTES = 1024 * 1024;

const NOTIFY_INDEXES = Array.from({ length: MAX_NOTIFY }, (_, i) => i);

/** Status changes gathered before unfinishedByJob is brought up to date anyway. */
const MAX_STATUS_CHANGES = 10_000;
const NO_IDS: ReadonlySet<string> = new Set();

/** Pruned instance ids remembered. A peer that missed retention this long is long dead. */
export const MAX_PRUNED_IDS = 100_000;

/**
 * Reaped members remembered (about 100 bytes each). A tombstone matters while some peer may
 * still hold the member's record: seconds to minutes after this node reaped it (every node
 * reaps after the same reapAfterMs), or until a node that was down that long comes back with
 * it. One forgotten sooner costs little: its old record, taken back, is a member known from
 * records only, which does not answer, is held dead and is reaped again.
 */
export const MAX_REAPED_MEMBERS = 10_000;

/** What a tombstone remembers of a reaped member: its start (its member record's incarnation) and its refutes in that start (SWIM's). */
export type MemberTombstone = Omit<ReapedMember, 'nodeId'>;

export interface StoreOptions {
  persister: StatePersister;
  /** Times the batched writes. */
  clock: Clock;
  /** Changes within this window go to disk in one write. Trades write load for ack latency. */
  flushDelayMs: number;
  /** After a failed background write, when it is tried again. */
  flushRetryMs: number;
  /** Told of every failed background write (the next one is already scheduled). */
  onFlushError?: (err: unknown, path: string) => void;
  /** The log is folded into a snapshot only beyond this size (tests make it small). */
  minCompactBytes?: number;
  /** Told of every write of the state files, with its time and the files' size after it. */
  onFlushed?: (e: { durationMs: number; bytes: number; compacted: boolean; ok: boolean }) => void;
}

/** A record of the state file that did not validate: where it was and why. */
export interface RejectedRecord {
  index: number;
  /** Its kind and key as far as they can be read, e.g. `job poison`. */
  name: string;
  error: string;
  raw: unknown;
}

function describeRaw(raw: unknown): string {
  const r = raw as { kind?: unknown; record?: Record<string, unknown> } | null;
  const kind = typeof r?.kind === 'string' ? r.kind : 'record';
  const rec = r?.record ?? {};
  const key = [rec.name, rec.id, rec.instanceId, rec.nodeId].find((v) => typeof v === 'string');
  return key === undefined ? kind : `${kind} ${String(key)}`;
}

export type ChangeListener = (records: AnyRecord[]) => void;

interface Tally {
  counts: InstanceProgress['counts'];
  outside: number;
}

/** What anti-entropy compares: every record (between keepers) or the shared ones (records/scope.ts). */
export type SyncScope = 'all' | 'shared';

const EMPTY_WORK_ROOT = new WorkIndex().root();

export class RecordStore {
  private readonly records = new Map<string, AnyRecord>();
  /** The same records by kind: the leader scans instances every tick, not every record. */
  private readonly byKind = new Map<AnyRecord['kind'], Map<string, AnyRecord>>();
  private readonly subtasksByInstance = new Map<string, Map<string, SubtaskRecord>>();
  /** Per instance: its subtasks counted by state, and how many are of nodes its creation does not name (statusOf). */
  private readonly tallies = new Map<string, Tally>();
  /** What anti-entropy compares: bucket hashes over every (key, version). */
  private readonly syncIndex = new SyncIndex();
  /** The same over the records every member holds (records/scope.ts): what two members that are not both keepers compare. */
  private readonly sharedIndex = new SyncIndex();
  /** Work records (subtasks, steps) by the member that holds them besides the keepers. */
  private readonly workIndexes = new Map<string, WorkIndex>();
  /** Fingerprint of each record's content, for anti-entropy digests. */
  private readonly versions = new Map<string, string>();
  private readonly pruned = new Set<string>();
  /** Reaped members, oldest first: a record of theirs at the same or an older incarnation is refused. */
  private readonly reaped = new Map<string, MemberTombstone>();
  private readonly persister: StatePersister;
  private readonly listeners: ChangeListener[] = [];
  private flushTimer: TimerHandle | null = null;
  private flushing: Promise<void> = Promise.resolve();
  private dirty = false;
  /** Records changed since the last flush (written then in their state at that moment). */
  private readonly dirtyKeys = new Set<string>();
  /** Instances retention removed since the last flush. */
  private prunedSinceFlush: string[] = [];
  /** Members reaped since the last flush. */
  private reapedSinceFlush: ReapedMember[] = [];
  /** The next flush writes a whole snapshot (after a load that set records aside, or a torn log line). */
  private compactNext = false;

  constructor(private readonly options: StoreOptions) {
    this.persister = options.persister;
  }

  /** A store whose state lives in memory only (unit tests, simulations). */
  static inMemory(clock: Clock, flushDelayMs = defaultConfig.storeFlushDelayMs, persister: StatePersister = new MemoryPersister()): RecordStore {
    return new RecordStore({ persister, clock, flushDelayMs, flushRetryMs: defaultConfig.storeFlushRetryMs });
  }

  /** A store over `DIR/state.json` (tests of the file itself; the daemon assembles its own). */
  static inDirectory(dataDir: string, clock: Clock, flushDelayMs: number): RecordStore {
    return new RecordStore({ persister: new StateFilePersister(dataDir), clock, flushDelayMs, flushRetryMs: defaultConfig.storeFlushRetryMs });
  }

  get path(): string {
    return this.persister.path;
  }

  async load(): Promise<void> {
    const stored = await this.persister.read();
    const file = stored.snapshot as Partial<StateFile> | null;
    if (file !== null && (typeof file !== 'object' || file.version !== 1 || !Array.isArray(file.records))) {
      throw new DataFileError(this.path, 'it is not a chorus state file (expected {"version":1,"records":[...]})');
    }
    const rejected: RejectedRecord[] = [];
    const take = (raws: unknown[], where: string) => {
      for (const [index, raw] of raws.entries()) {
        const parsed = parseRecord(raw, { legacyUnsigned: true });
        if (parsed.ok) this.mergeOne(parsed.record);
        else rejected.push({ index, name: describeRaw(raw), error: `${parsed.error} (${where})`, raw });
      }
    };
    for (const id of Array.isArray(file?.pruned) ? file.pruned : []) if (typeof id === 'string') this.pruned.add(id);
    for (const reaped of reapedMembersOf(file?.reaped)) this.forgetMember(reaped);
    take(file?.records ?? [], this.path);
    // The changes logged after the snapshot, in order: records merge as they did then, and a
    // removal by retention or reaping removes again.
    for (const [line, change] of stored.changes.entries()) {
      const { records, pruned, reaped } = change as { records: unknown[]; pruned?: unknown; reaped?: unknown };
      take(records, `${this.persister.logPath} line ${line + 1}`);
      for (const id of Array.isArray(pruned) ? pruned : []) if (typeof id === 'string') this.forgetInstance(id);
      for (const member of reapedMembersOf(reaped)) this.forgetMember(member);
    }
    // One bad record must not keep the node down, nor be lost: it is set aside, durably,
    // and the next flush writes a snapshot without it (as it does after a torn last line).
    if (rejected.length > 0) {
      const rejectedAt = new Date(this.options.clock.now()).toISOString();
      await this.persister.setAside(rejected.map((r) => ({ rejectedAt, name: r.name, error: r.error, record: r.raw })));
    }
    this.rejectedOnLoad = rejected;
    this.tornLogLine = stored.tornLastLine;
    this.compactNext = rejected.length > 0 || stored.tornLastLine;
    this.dirtyKeys.clear();
  }

  /** The change log's last line was cut short by a crash (that batch was never acknowledged); the daemon says so. */
  tornLogLine = false;

  /** Records of the state file that failed validation at load, set aside in `quarantinePath`. */
  rejectedOnLoad: RejectedRecord[] = [];

  get quarantinePath(): string {
    return this.persister.quarantinePath;
  }

  onChange(listener: ChangeListener): void {
    this.listeners.push(listener);
  }

  /** Merges records in; returns those that changed the state (after merge). */
  apply(incoming: AnyRecord[]): AnyRecord[] {
    const changed: AnyRecord[] = [];
    for (const record of incoming) {
      const merged = this.mergeOne(record);
      if (merged) changed.push(merged);
    }
    if (changed.length > 0) {
      this.scheduleFlush();
      for (const listener of this.listeners) listener(changed);
    }
    return changed;
  }

  /**
   * Writes records to disk first and applies them only once they are there: what a client
   * asked for, which must have no effect at all when it cannot be made durable (guarantee 8).
   * Rejects with a StorageWriteError naming the file, having applied nothing. Ordered with
   * the background writes, so a snapshot never misses them.
   */
  applyDurably(records: AnyRecord[]): Promise<AnyRecord[]> {
    const write = this.flushing
      .catch(() => undefined)
      .then(async () => {
        await this.persister.append({ records, pruned: [] });
        const changed = this.apply(records);
        // What was just written is on disk as it now is: the next flush need not write it again.
        for (const r of records) if (this.records.get(recordKey(r)) === r) this.dirtyKeys.delete(recordKey(r));
        return changed;
      });
    this.flushing = write.then(
      () => undefined,
      () => undefined,
    );
    return write;
  }

  private mergeOne(record: AnyRecord): AnyRecord | null {
    if (this.isPruned(record)) return null;
    const key = recordKey(record);
    const current = this.records.get(key);
    const merged = current ? mergeRecord(current, record) : record;
    if (current === merged || (current && current.record === merged.record)) return null;
    const version = versionOf(merged);
    if (current && this.versions.get(key) === version) return null;
    // A member reaped at an older start is back (isPruned let only a newer start through).
    if (merged.kind === 'member') this.reaped.delete(merged.record.nodeId);
    this.records.set(key, merged);
    this.kindMap(merged.kind).set(key, merged);
    this.dirtyKeys.add(key);
    this.syncIndex.set(key, version, this.versions.get(key));
    this.indexScope(key, current, merged, version);
    this.versions.set(key, version);
    if (merged.kind === 'subtask') this.indexSubtask(merged.record);
    if (merged.kind === 'instance') this.recountOutside(merged.record);
    const instanceId = instanceIdOf(merged);
    if (instanceId !== null) this.statusMayHaveChanged(instanceId);
    if (merged.kind === 'fire') {
      const defKey = `${merged.record.job}/${merged.record.jobCreatedAtMs}`;
      this.lastFires.set(defKey, Math.max(this.lastFires.get(defKey) ?? Number.NEGATIVE_INFINITY, merged.record.scheduledAtMs));
    }
    return merged;
  }

  /** Per job: its unfinished instances (as of the last refresh), for `forbid` and the backlog bound: O(1) per fire, not a pass over every instance. */
  private readonly unfinishedByJob = new Map<string, Set<string>>();
  /** Instances whose status may have changed since the last refresh of unfinishedByJob. */
  private readonly statusChanged = new Set<string>();

  private statusMayHaveChanged(instanceId: string): void {
    this.statusChanged.add(instanceId);
    if (this.statusChanged.size >= MAX_STATUS_CHANGES) this.refreshUnfinished(); // a node that never asks keeps this bounded
  }

  private refreshUnfinished(): void {
    for (const id of this.statusChanged) {
      const instance = this.instance(id);
      if (!instance) continue; // its creation has not arrived yet: it is counted once it does
      let ids = this.unfinishedByJob.get(instance.job);
      if (!ids) this.unfinishedByJob.set(instance.job, (ids = new Set()));
      if (isInstanceFinished(this.statusOf(instance))) ids.delete(id);
      else ids.add(id);
      if (ids.size === 0) this.unfinishedByJob.delete(instance.job);
    }
    this.statusChanged.clear();
  }

  /** The job's unfinished instances (pending or running), oldest known first. */
  unfinishedOf(job: string): ReadonlySet<string> {
    this.refreshUnfinished();
    return this.unfinishedByJob.get(job) ?? NO_IDS;
  }

  /** The most unfinished instances any one job has (a bound `chorus status` shows). */
  mostUnfinishedOfAJob(): number {
    this.refreshUnfinished();
    let most = 0;
    for (const ids of this.unfinishedByJob.values()) most = Math.max(most, ids.size);
    return most;
  }

  /** Per job definition (name/createdAtMs): the latest due time a fire was decided for. */
  private readonly lastFires = new Map<string, number>();
  /** Per job: fires older than this were pruned (so a peer that has not pruned yet does not bring them back). */
  private readonly firesPrunedBelow = new Map<string, number>();

  /** The latest due time the leader decided a fire of this job definition for (null: none yet). */
  lastFireOf(job: string, jobCreatedAtMs: number): number | null {
    return this.lastFires.get(`${job}/${jobCreatedAtMs}`) ?? null;
  }

  /** Every fire decision held, of every job (`chorus job history` filters and sorts). */
  fires(): FireRecord[] {
    return this.ofKind('fire');
  }

  fire(job: string, scheduledAtMs: number): FireRecord | undefined {
    const r = this.records.get(`fire:${job}/${scheduledAtMs}`);
    return r?.kind === 'fire' ? r.record : undefined;
  }

  /** Removes fire decisions (retention); `below` per job keeps older copies from coming back. Not replicated: every node prunes by the same rule. */
  removeFires(fires: FireRecord[], below: Map<string, number>, goneDefinitions: readonly FireRecord[] = []): void {
    for (const f of fires) this.forget(`fire:${f.job}/${f.scheduledAtMs}`);
    // A definition deleted (or replaced by a new one of the same name) decides no more fires: forget its mark too.
    for (const f of goneDefinitions) this.lastFires.delete(`${f.job}/${f.jobCreatedAtMs}`);
    for (const [job, ms] of below) this.firesPrunedBelow.set(job, Math.max(this.firesPrunedBelow.get(job) ?? 0, ms));
    if (fires.length > 0) {
      this.compactNext = true; // the next snapshot leaves them out
      this.scheduleFlush();
    }
  }

  private kindMap(kind: AnyRecord['kind']): Map<string, AnyRecord> {
    let map = this.byKind.get(kind);
    if (!map) this.byKind.set(kind, (map = new Map()));
    return map;
  }

  private isPruned(record: AnyRecord): boolean {
    if (record.kind === 'fire') return record.record.scheduledAtMs < (this.firesPrunedBelow.get(record.record.job) ?? Number.NEGATIVE_INFINITY);
    if (record.kind === 'member') return record.record.incarnation <= (this.reaped.get(record.record.nodeId)?.incarnation ?? -1);
    if (this.pruned.size === 0) return false;
    const id = instanceIdOf(record);
    return id !== null && this.pruned.has(id);
  }

  private indexSubtask(subtask: SubtaskRecord): void {
    let byNode = this.subtasksByInstance.get(subtask.instanceId);
    if (!byNode) this.subtasksByInstance.set(subtask.instanceId, (byNode = new Map()));
    const previous = byNode.get(subtask.nodeId);
    byNode.set(subtask.nodeId, subtask);
    const tally = this.tallyOf(subtask.instanceId);
    if (previous) tally.counts[previous.status] -= 1;
    else if (!this.isCreationTarget(subtask.instanceId, subtask.nodeId)) tally.outside += 1;
    tally.counts[subtask.status] += 1;
  }

  private unindexSubtask(subtask: SubtaskRecord): void {
    const byNode = this.subtasksByInstance.get(subtask.instanceId);
    if (byNode?.get(subtask.nodeId) !== subtask) return;
    byNode.delete(subtask.nodeId);
    const tally = this.tallyOf(subtask.instanceId);
    tally.counts[subtask.status] -= 1;
    if (!this.isCreationTarget(subtask.instanceId, subtask.nodeId)) tally.outside -= 1;
  }

  private tallyOf(instanceId: string): Tally {
    let tally = this.tallies.get(instanceId);
    if (!tally) this.tallies.set(instanceId, (tally = { counts: emptyCounts(), outside: 0 }));
    return tally;
  }

  /** Whether the instance's creation (as held) names the node; an instance not held yet names nobody. */
  private isCreationTarget(instanceId: string, nodeId: string): boolean {
    const r = this.records.get(`instance:${instanceId}`);
    return r?.kind === 'instance' && sortedHas(r.record.targets, nodeId);
  }

  /** The creation held changed (it arrived, or another leader's won the merge): count the subtasks outside its targets again. */
  private recountOutside(instance: InstanceRecord): void {
    const tally = this.tallyOf(instance.id);
    tally.outside = 0;
    for (const nodeId of this.subtasksByInstance.get(instance.id)?.keys() ?? []) if (!sortedHas(instance.targets, nodeId)) tally.outside += 1;
  }

  private scheduleFlush(delayMs = this.options.flushDelayMs): void {
    this.dirty = true;
    if (this.flushTimer) return;
    this.flushTimer = this.options.clock.setTimer(delayMs, () => {
      this.flushTimer = null;
      this.flush().catch((err: unknown) => {
        this.options.onFlushError?.(err, err instanceof StorageWriteError ? err.path : this.path);
        if (!this.closed) this.scheduleFlush(this.options.flushRetryMs);
      });
    });
  }

  /**
   * Resolves once every change applied so far is on disk: the changed records appended to
   * the log (O(change)), or, when the log has outgrown the snapshot, one new snapshot.
   *
   * Writes go one at a time, and at most one flush waits behind the one in flight; it takes
   * every change made until it starts. A flush queued at every change (every 5 ms under
   * load, each with its fsync) grew a queue without bound when the disk was slower than
   * the changes, and a client's write (applyDurably), queued behind it, waited over a minute.
   */
  flush(): Promise<void> {
    this.flushTimer?.cancel();
    this.flushTimer = null;
    if (this.queuedFlush) return this.queuedFlush; // not started yet: it takes these changes too
    if (!this.dirty) return this.flushing;
    const step = this.flushing
      .catch(() => undefined)
      .then(() => {
        this.queuedFlush = null;
        return this.writeDirty();
      });
    this.queuedFlush = step;
    this.flushing = step;
    return step;
  }

  /** The flush that waits for the write in flight, if any. */
  private queuedFlush: Promise<void> | null = null;

  /** Writes what changed since the last write (run by flush(), one at a time). */
  private async writeDirty(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    // Everything changed was written already (applyDurably): nothing to add.
    if (this.dirtyKeys.size === 0 && this.prunedSinceFlush.length === 0 && this.reapedSinceFlush.length === 0 && !this.compactNext) return;
    const change: StateChange = { records: [], pruned: this.prunedSinceFlush, ...(this.reapedSinceFlush.length > 0 ? { reaped: this.reapedSinceFlush } : {}) };
    for (const key of this.dirtyKeys) {
      const record = this.records.get(key);
      if (record) change.records.push(record);
    }
    const keys = [...this.dirtyKeys];
    this.dirtyKeys.clear();
    this.prunedSinceFlush = [];
    this.reapedSinceFlush = [];
    const compact = this.compactNext || this.persister.logBytes > Math.max(this.options.minCompactBytes ?? MIN_COMPACT_BYTES, this.persister.snapshotBytes);
    this.compactNext = false;
    const startedMs = performance.now();
    const told = (ok: boolean) => this.options.onFlushed?.({ durationMs: performance.now() - startedMs, bytes: this.persister.snapshotBytes + this.persister.logBytes, compacted: compact, ok });
    try {
      if (compact) await this.persister.compact(this.snapshot());
      else await this.persister.append(change);
      told(true);
    } catch (err) {
      told(false);
      // The next flush writes these changes again.
      this.dirty = true;
      for (const key of keys) this.dirtyKeys.add(key);
      this.prunedSinceFlush.push(...change.pruned);
      this.reapedSinceFlush.push(...(change.reaped ?? []));
      if (compact) this.compactNext = true;
      throw err;
    }
  }

  private snapshot(): StateFile {
    return { version: 1, records: [...this.records.values()], pruned: [...this.pruned], reaped: [...this.reaped].map(([nodeId, t]) => ({ nodeId, ...t })) };
  }

  /** One fingerprint of everything held (`all`), or of the records every member holds (`shared`): two stores with equal roots hold the same records. */
  rootVersion(scope: SyncScope = 'all'): string {
    return this.syncOf(scope).root();
  }

  /** The anti-entropy buckets (sync-index.ts): their hashes, and the keys in one. */
  get sync(): Pick<SyncIndex, 'bucketHashes' | 'differingBuckets' | 'keysIn'> {
    return this.syncIndex;
  }

  /** The same over every record (`all`, what two keepers compare) or over the shared ones (records/scope.ts). */
  syncOf(scope: SyncScope): Pick<SyncIndex, 'bucketHashes' | 'differingBuckets' | 'keysIn' | 'root'> {
    return scope === 'all' ? this.syncIndex : this.sharedIndex;
  }

  /** The work records held for one member (its subtasks and the steps it runs), and their fingerprint. */
  workOf(nodeId: string): { root: string; keys: ReadonlySet<string> } {
    const index = this.workIndexes.get(nodeId);
    return { root: index?.root() ?? EMPTY_WORK_ROOT, keys: index?.keys ?? new Set() };
  }

  /** Members with work records held here: one on a member that is not a keeper, every member with work on a keeper. */
  workHolders(): number {
    return this.workIndexes.size;
  }

  /**
   * Forgets every work record that is not `selfId`'s (this node stopped being a keeper, or
   * started as a member with a keeper's state): its memory is bounded by its own work. The
   * file is rewritten without them at the next flush. Returns how many went.
   */
  forgetWorkOfOthers(selfId: string): number {
    let removed = 0;
    for (const [holder, index] of [...this.workIndexes]) {
      if (holder === selfId) continue;
      for (const key of [...index.keys]) {
        this.forget(key);
        removed += 1;
      }
    }
    if (removed > 0) {
      this.compactNext = true;
      this.dirty = true;
      this.scheduleFlush();
    }
    return removed;
  }

  /** Whether this exact record (same content and signature) is the one held under its key. */
  holds(record: AnyRecord): boolean {
    const key = recordKey(record);
    const version = this.versions.get(key);
    if (version === undefined) return false;
    // Another signature is another version (it is part of the fingerprint): no need to hash the body.
    if (this.records.get(key)?.record.sig !== record.record.sig) return false;
    return version === versionOf(record);
  }

  versionOf(key: string): string | undefined {
    return this.versions.get(key);
  }

  get(key: string): AnyRecord | undefined {
    return this.records.get(key);
  }

  all(): AnyRecord[] {
    return [...this.records.values()];
  }

  size(): number {
    return this.records.size;
  }

  /** Whether retention removed this instance (its records are refused from now on). */
  wasPruned(instanceId: string): boolean {
    return this.pruned.has(instanceId);
  }

  /** Ids of pruned instances remembered, so that no peer brings them back (at most MAX_PRUNED_IDS). */
  prunedCount(): number {
    return this.pruned.size;
  }

  /**
   * Removes a member's record (the membership reaped it: dead or left for reapAfterMs) and
   * remembers it at `at`, so that a peer that has not reaped it yet does not bring the record
   * back; a newer start of the member is taken. Not replicated: every node reaps by its own view.
   */
  removeMember(nodeId: string, at: MemberTombstone): void {
    const reaped = { nodeId, incarnation: Math.max(at.incarnation, this.member(nodeId)?.incarnation ?? 0), refutes: at.refutes };
    this.forgetMember(reaped);
    this.reapedSinceFlush.push(reaped);
    this.scheduleFlush();
  }

  /** The tombstone of a reaped member, while it is remembered and the member has not come back. */
  reapedAt(nodeId: string): MemberTombstone | undefined {
    return this.reaped.get(nodeId);
  }

  /**
   * A reaped member is back in the same start (a process frozen or cut off longer than
   * reapAfterMs, that refuted its death): its record is taken again. Rare: the next write is
   * a snapshot without the tombstone.
   */
  unreap(nodeId: string): void {
    if (!this.reaped.delete(nodeId)) return;
    this.compactNext = true;
    this.scheduleFlush();
  }

  /** Reaped members remembered, so that no peer brings an old record of theirs back (at most MAX_REAPED_MEMBERS). */
  reapedCount(): number {
    return this.reaped.size;
  }

  /**
   * Of `nodeIds`, those that still have work the leader must give a verdict on: a subtask not
   * ended (or a target not released yet) or a step they run, in an unfinished instance, or a
   * webhook delivery they run. Their member is not reaped yet: the leader finds lost work
   * through the members it holds gone.
   */
  nodesWithOpenWork(nodeIds: ReadonlySet<string>): Set<string> {
    const busy = new Set<string>();
    this.refreshUnfinished();
    for (const ids of this.unfinishedByJob.values()) {
      for (const id of ids) {
        const instance = this.instance(id);
        if (!instance) continue;
        const subtasks = this.subtasksOf(id);
        for (const nodeId of nodeIds) {
          const subtask = subtasks.get(nodeId);
          if (subtask ? !isTerminal(subtask.status) : sortedHas(instance.targets, nodeId)) busy.add(nodeId);
        }
        for (const step of [this.step(id, 'pre'), this.step(id, 'post')]) if (step && !isTerminal(step.status) && nodeIds.has(step.runnerNodeId)) busy.add(step.runnerNodeId);
      }
    }
    for (const n of this.notifications()) if (n.status === 'pending' && nodeIds.has(n.runner)) busy.add(n.runner);
    return busy;
  }

  job(name: string): JobRecord | undefined {
    const r = this.records.get(`job:${name}`);
    return r?.kind === 'job' ? r.record : undefined;
  }

  jobs(): JobRecord[] {
    return this.ofKind('job');
  }

  instance(id: string): InstanceRecord | undefined {
    const r = this.records.get(`instance:${id}`);
    return r?.kind === 'instance' ? r.record : undefined;
  }

  instances(): InstanceRecord[] {
    return this.ofKind('instance');
  }

  subtasksOf(instanceId: string): ReadonlyMap<string, SubtaskRecord> {
    return this.subtasksByInstance.get(instanceId) ?? new Map();
  }

  step(instanceId: string, step: StepName): StepRecord | undefined {
    const r = this.records.get(`step:${instanceId}/${step}`);
    return r?.kind === 'step' ? r.record : undefined;
  }

  stepsOf(instanceId: string): InstanceSteps {
    return { pre: this.step(instanceId, 'pre'), post: this.step(instanceId, 'post') };
  }

  /**
   * The instance's status in O(1), from counts kept up to date as subtasks change: what the
   * leader, retention and `forbid` ask of every instance. progressOf adds times and walks
   * every subtask (for views).
   */
  statusOf(instance: InstanceRecord): InstanceStatus {
    const tally = this.tallies.get(instance.id);
    const total = this.targetCount(instance);
    const counts = { ...(tally?.counts ?? emptyCounts()) };
    counts.pending = total - counts.running - counts.succeeded - counts.failed - counts.cancelled;
    return statusOfCounts(instance, total, counts, this.stepsOf(instance.id), this.cancelOf(instance.id) !== undefined);
  }

  /** How many of the instance's targets have a terminal subtask, and how many targets it has. */
  endedOf(instance: InstanceRecord): { ended: number; total: number } {
    const tally = this.tallies.get(instance.id);
    return { ended: tally ? tally.counts.succeeded + tally.counts.failed + tally.counts.cancelled : 0, total: this.targetCount(instance) };
  }

  /** The creation's targets plus the nodes outside them that hold a subtask (targetsOf's length, without building it). */
  private targetCount(instance: InstanceRecord): number {
    return instance.targets.length + (this.tallies.get(instance.id)?.outside ?? 0);
  }

  /** The instance's derived status, from its subtasks, steps and cancel request. */
  progressOf(instance: InstanceRecord): InstanceProgress {
    return deriveInstanceProgress(instance, this.factsOf(instance));
  }

  /** Everything an instance's status and view are derived from, besides the instance itself. */
  factsOf(instance: InstanceRecord): InstanceFacts {
    return {
      targets: this.targetsOf(instance),
      subtasks: this.subtasksOf(instance.id),
      steps: this.stepsOf(instance.id),
      cancelRequestedAtMs: this.cancelOf(instance.id)?.requestedAtMs ?? null,
      paused: this.pausedOf(instance.id),
      notifications: this.notificationsOf(instance.id),
    };
  }

  /**
   * The nodes an instance runs on, sorted: those it was created with, and any other node
   * that holds a subtask of it (the other side's targets, when two leaders created it).
   */
  targetsOf(instance: InstanceRecord): string[] {
    const subtasks = this.subtasksByInstance.get(instance.id);
    if (!subtasks || subtasks.size === 0) return instance.targets;
    let extra: string[] | null = null;
    const created = subtasks.size > instance.targets.length ? new Set(instance.targets) : null;
    for (const nodeId of subtasks.keys()) {
      const known = created ? created.has(nodeId) : sortedHas(instance.targets, nodeId);
      if (!known) (extra ??= []).push(nodeId);
    }
    return extra === null ? instance.targets : [...instance.targets, ...extra].sort();
  }

  /** The webhook deliveries of an instance, by index. */
  notificationsOf(instanceId: string): NotifyRecord[] {
    const out: NotifyRecord[] = [];
    for (const i of NOTIFY_INDEXES) {
      const r = this.records.get(`notify:${instanceId}/${i}`);
      if (r?.kind === 'notify') out.push(r.record);
    }
    return out;
  }

  /** Every webhook delivery held (the notifier looks for its own unfinished ones). */
  notifications(): NotifyRecord[] {
    return this.ofKind('notify');
  }

  /** Whether the instance's rollout is paused (`chorus instance pause`). */
  pausedOf(instanceId: string): boolean {
    const r = this.records.get(`pause:${instanceId}`);
    return r?.kind === 'pause' && r.record.paused;
  }

  /** The cancel request of an instance, if any. */
  cancelOf(instanceId: string): CancelRecord | undefined {
    const r = this.records.get(`cancel:${instanceId}`);
    return r?.kind === 'cancel' ? r.record : undefined;
  }

  /**
   * Records of a state file written before records were signed (an empty `sig`): this
   * node's own are signed now; those of other writers, which it cannot sign for and no
   * peer would accept, are set aside in `quarantinePath` (nothing is lost) and dropped.
   */
  async adoptUnsigned(selfId: string, keys: RecordKeys): Promise<{ signed: number; setAside: string[] }> {
    const unsigned = [...this.records.values()].filter((r) => r.record.sig === UNSIGNED);
    const foreign = unsigned.filter((r) => r.record.stamp.nodeId !== selfId);
    if (foreign.length > 0) {
      const rejectedAt = new Date(this.options.clock.now()).toISOString();
      const error = 'written before records were signed, by another node: only its writer could sign it';
      await this.persister.setAside(foreign.map((r) => ({ rejectedAt, name: recordKey(r), error, record: r })));
    }
    for (const r of foreign) this.forget(recordKey(r));
    for (const r of unsigned) {
      if (r.record.stamp.nodeId !== selfId) continue;
      this.forget(recordKey(r));
      this.mergeOne(signRecord({ ...r, record: { ...r.record } } as AnyRecord, keys));
    }
    if (unsigned.length > 0) {
      this.compactNext = true; // a snapshot without the unsigned versions
      this.scheduleFlush();
    }
    return { signed: unsigned.length - foreign.length, setAside: foreign.map(recordKey) };
  }

  /** Keeps the shared index and the work indexes up to date (a step's runner can change in a merge). */
  private indexScope(key: string, current: AnyRecord | undefined, merged: AnyRecord, version: string): void {
    const previous = this.versions.get(key);
    const before = current === undefined ? undefined : holderOf(current);
    const after = holderOf(merged);
    if (before !== undefined && before !== after && previous !== undefined) this.unindexScope(key, current as AnyRecord, previous);
    const moved = before !== after;
    if (after === null) this.sharedIndex.set(key, version, moved ? undefined : previous);
    else {
      let index = this.workIndexes.get(after);
      if (index === undefined) this.workIndexes.set(after, (index = new WorkIndex()));
      index.set(key, version, moved ? undefined : previous);
    }
  }

  private unindexScope(key: string, record: AnyRecord, version: string): void {
    const holder = holderOf(record);
    if (holder === null) return this.sharedIndex.remove(key, version);
    const index = this.workIndexes.get(holder);
    index?.remove(key, version);
    if (index?.keys.size === 0) this.workIndexes.delete(holder);
  }

  private forget(key: string): void {
    const removed = this.records.get(key);
    if (!removed) return;
    this.kindMap(removed.kind).delete(key);
    this.records.delete(key);
    this.dirtyKeys.delete(key);
    this.syncIndex.remove(key, this.versions.get(key) as string);
    this.unindexScope(key, removed, this.versions.get(key) as string);
    this.versions.delete(key);
    if (removed.kind === 'subtask') this.unindexSubtask(removed.record);
  }

  subtask(instanceId: string, nodeId: string): SubtaskRecord | undefined {
    return this.subtasksByInstance.get(instanceId)?.get(nodeId);
  }

  /**
   * A node's subtask: its record, or, when the instance releases every subtask at its
   * creation (records/rollout.ts impliesSubtasks) and names the node, the pending first
   * attempt it implies: written by the instance's creator at its creation, never stored.
   */
  subtaskOrImplied(instance: InstanceRecord, nodeId: string): SubtaskRecord | undefined {
    const held = this.subtask(instance.id, nodeId);
    if (held !== undefined || !impliesSubtasks(instance) || !sortedHas(instance.targets, nodeId)) return held;
    return impliedSubtask(instance, nodeId);
  }

  members(): MemberRecord[] {
    return this.ofKind('member');
  }

  member(nodeId: string): MemberRecord | undefined {
    const r = this.records.get(`member:${nodeId}`);
    return r?.kind === 'member' ? r.record : undefined;
  }

  private ofKind<K extends keyof RecordOfKind>(kind: K): RecordOfKind[K][] {
    const out: unknown[] = [];
    for (const r of this.kindMap(kind).values()) out.push(r.record);
    return out as RecordOfKind[K][];
  }

  /** Removes an instance and its subtasks (retention). Not replicated: every node prunes by the same rule. */
  removeInstance(id: string): void {
    this.forgetInstance(id);
    this.prunedSinceFlush.push(id);
    this.scheduleFlush();
  }

  private forgetInstance(id: string): void {
    const job = this.instance(id)?.job;
    if (job !== undefined) this.unfinishedByJob.get(job)?.delete(id);
    this.statusChanged.delete(id);
    for (const key of [`instance:${id}`, `cancel:${id}`, `pause:${id}`, ...NOTIFY_INDEXES.map((i) => `notify:${id}/${i}`), `step:${id}/pre`, `step:${id}/post`, ...[...(this.subtasksByInstance.get(id)?.keys() ?? [])].map((n) => `subtask:${id}/${n}`)]) {
      this.forget(key);
    }
    this.subtasksByInstance.delete(id);
    this.tallies.delete(id);
    this.pruned.add(id);
    if (this.pruned.size > MAX_PRUNED_IDS) this.pruned.delete(this.pruned.values().next().value as string);
  }

  private forgetMember(reaped: ReapedMember): void {
    this.forget(`member:${reaped.nodeId}`);
    const before = this.reaped.get(reaped.nodeId);
    const newer = before === undefined || reaped.incarnation > before.incarnation || (reaped.incarnation === before.incarnation && reaped.refutes > before.refutes);
    // Re-inserted, so that the map stays oldest first and the oldest goes past the bound.
    this.reaped.delete(reaped.nodeId);
    this.reaped.set(reaped.nodeId, newer ? { incarnation: reaped.incarnation, refutes: reaped.refutes } : before);
    if (this.reaped.size > MAX_REAPED_MEMBERS) this.reaped.delete(this.reaped.keys().next().value as string);
  }

  private closed = false;

  /** Writes what is left; no background write is scheduled after this. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
    await this.persister.close?.();
  }
}

/** The instance a record belongs to (itself, for an instance), or null for jobs and members. */
export function instanceIdOf(record: AnyRecord): string | null {
  switch (record.kind) {
    case 'instance':
      return record.record.id;
    case 'cancel':
    case 'pause':
    case 'notify':
    case 'subtask':
    case 'step':
      return record.record.instanceId;
    default:
      return null;
  }
}

/** The well-formed entries of a stored list of reaped members (anything else is skipped: a tombstone is an optimisation, not a record). */
function reapedMembersOf(raw: unknown): ReapedMember[] {
  if (!Array.isArray(raw)) return [];
  const count = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  return raw.filter((r): r is ReapedMember => typeof r === 'object' && r !== null && typeof r.nodeId === 'string' && count(r.incarnation) && count(r.refutes));
}

/** Whether a sorted list (an instance's targets) holds `value`, by bisection. */
export function sortedHas(sorted: readonly string[], value: string): boolean {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const at = sorted[mid] as string;
    if (at === value) return true;
    if (at < value) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

/** The pending first attempt an instance that releases every subtask at its creation implies for one of its targets. */
export function impliedSubtask(instance: InstanceRecord, nodeId: string): SubtaskRecord {
  const stamp = instance.stamp;
  return { instanceId: instance.id, nodeId, attempt: 1, status: 'pending', reason: null, exitCode: null, startedAtMs: null, finishedAtMs: null, notBeforeMs: null, history: [], reporter: stamp.nodeId, stamp, sig: UNSIGNED, releasedAtMs: instance.createdAtMs };
}

/** A record version's fingerprint: its kind, canonical body and signature. */
function versionOf(r: AnyRecord): string {
  return fingerprint(`${r.kind}\n${recordBody(r.record)}\n${r.record.sig}`);
}

/** A short hash of a text. */
function fingerprint(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 16);
}
