// Replication of records. Local changes go out at once as gossip deltas; because
// gossip is lossy, every node also runs anti-entropy with one peer on connect and
// periodically: it sends a digest of what it holds and both sides exchange what the
// other lacks. Records from the network are validated and checked for authority
// before they are merged; a bad one is dropped and counted, never a crash.
import type { Clock, TimerHandle } from '../core/clock.js';
import { every } from '../core/clock.js';
import type { ChorusConfig } from '../core/config.js';
import type { Logger } from '../core/log.js';
import type { Transport } from '../core/transport.js';
import { recordKey } from '../records/merge.js';
import type { AnyRecord } from '../records/types.js';
import { runnerOf } from '../records/types.js';
import { parseRecord } from '../records/validate.js';
import type { RecordStore } from '../store/record-store.js';
import type { Rpc } from './rpc.js';
import { InvariantError } from '../core/assert.js';

export const RECORDS_TOPIC = 'chorus/records/1';

export interface ReplicatorDeps {
  transport: Transport;
  clock: Clock;
  config: ChorusConfig;
  store: RecordStore;
  rpc: Rpc;
  log: Logger;
  random: () => number;
  /** Called for every message that proves a peer is alive. */
  heardFrom: (peer: string) => void;
}

export interface ReplicationCounters {
  deltasSent: number;
  deltasReceived: number;
  recordsRejected: number;
  syncsCompleted: number;
  syncsFailed: number;
}

export class WriteNotReplicatedError extends Error {}

export class Replicator {
  private timer: TimerHandle | null = null;
  private outbox: AnyRecord[] = [];
  private flushQueued = false;
  readonly counters: ReplicationCounters = { deltasSent: 0, deltasReceived: 0, recordsRejected: 0, syncsCompleted: 0, syncsFailed: 0 };

  constructor(private readonly deps: ReplicatorDeps) {
    deps.rpc.handle('sync', (from, body) => this.onSync(from, body));
    deps.rpc.handle('push', (from, body) => this.onPush(from, body));
  }

  start(): void {
    this.timer = every(this.deps.clock, this.deps.config.antiEntropyIntervalMs, () => this.syncWithRandomPeer());
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
  }

  /** Queues locally written records for gossip (sent together at the end of this turn). */
  publish(records: AnyRecord[]): void {
    this.outbox.push(...records);
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => this.flushOutbox());
  }

  private flushOutbox(): void {
    this.flushQueued = false;
    const records = this.outbox;
    this.outbox = [];
    for (const batch of batches(records, this.deps.config.maxDeltaBytes)) {
      try {
        this.deps.transport.publish(RECORDS_TOPIC, encode({ records: batch }));
        this.counters.deltasSent += 1;
      } catch (err) {
        this.deps.log.warn({ err }, 'delta not published');
      }
    }
  }

  onGossip(from: string, data: Uint8Array): void {
    this.deps.heardFrom(from);
    const body = decode(data) as { records?: unknown } | null;
    this.counters.deltasReceived += 1;
    this.acceptRecords(from, body?.records, true);
  }

  /** Validates and merges records from `from`. `direct`: written by the sender itself (gossip), not relayed. */
  private acceptRecords(from: string, raw: unknown, direct: boolean): AnyRecord[] {
    if (!Array.isArray(raw)) {
      this.counters.recordsRejected += 1;
      return [];
    }
    const accepted: AnyRecord[] = [];
    for (const item of raw) {
      const parsed = parseRecord(item);
      if (!parsed.ok || !authorised(parsed.record, from, direct)) {
        this.counters.recordsRejected += 1;
        this.deps.log.debug({ from, error: parsed.ok ? 'not authorised' : parsed.error }, 'record rejected');
        continue;
      }
      accepted.push(parsed.record);
    }
    return this.deps.store.apply(accepted);
  }

  // ---- anti-entropy -----------------------------------------------------------------

  /** Pull-and-push exchange with one peer: afterwards each side holds the other's records. */
  async syncWith(peer: string): Promise<void> {
    try {
      // Most exchanges find nothing to do: compare one fingerprint before sending a digest.
      const probe = (await this.deps.rpc.call(peer, 'sync', { root: this.deps.store.rootVersion() }, this.deps.config.requestTimeoutMs)) as {
        same?: unknown;
      };
      if (probe?.same === true) {
        this.counters.syncsCompleted += 1;
        return;
      }
      const reply = (await this.deps.rpc.call(peer, 'sync', { digest: this.digest() }, this.deps.config.requestTimeoutMs, { bulk: true })) as {
        records?: unknown;
        want?: unknown;
      };
      this.acceptRecords(peer, reply.records, false);
      const want = Array.isArray(reply.want) ? reply.want.filter((k): k is string => typeof k === 'string') : [];
      const missing = want.map((k) => this.deps.store.get(k)).filter((r): r is AnyRecord => r !== undefined);
      if (missing.length > 0) await this.deps.rpc.call(peer, 'push', { records: missing, ack: false }, this.deps.config.requestTimeoutMs, { bulk: true });
      this.counters.syncsCompleted += 1;
    } catch (err) {
      if (err instanceof InvariantError) throw err; // a bug in merging what arrived, not a failed exchange
      this.counters.syncsFailed += 1;
      this.deps.log.debug({ peer, err: (err as Error).message }, 'anti-entropy failed');
    }
  }

  private syncWithRandomPeer(): void {
    const peers = this.deps.transport.connectedPeers();
    if (peers.length === 0) return;
    const peer = peers[Math.floor(this.deps.random() * peers.length)] as string;
    void this.syncWith(peer);
  }

  private digest(): Record<string, string> {
    const digest: Record<string, string> = {};
    for (const record of this.deps.store.all()) digest[recordKey(record)] = this.deps.store.versionOf(recordKey(record)) as string;
    return digest;
  }

  private async onSync(from: string, body: unknown): Promise<unknown> {
    this.deps.heardFrom(from);
    const root = (body as { root?: unknown })?.root;
    if (typeof root === 'string') return { same: root === this.deps.store.rootVersion() };
    const theirs = ((body as { digest?: unknown })?.digest ?? {}) as Record<string, unknown>;
    const records: AnyRecord[] = [];
    for (const record of this.deps.store.all()) {
      const key = recordKey(record);
      if (theirs[key] !== this.deps.store.versionOf(key)) records.push(record);
    }
    const want = Object.entries(theirs)
      .filter(([key, version]) => this.deps.store.versionOf(key) !== version)
      .map(([key]) => key);
    return { records, want };
  }

  private async onPush(from: string, body: unknown): Promise<unknown> {
    this.deps.heardFrom(from);
    const { records, ack } = (body ?? {}) as { records?: unknown; ack?: unknown };
    this.acceptRecords(from, records, false);
    if (ack === true) await this.deps.store.flush();
    return { ok: true };
  }

  /** Sends records straight to every connected peer at once (a leave must not wait for gossip). */
  async pushToAll(records: AnyRecord[], timeoutMs: number): Promise<number> {
    const peers = this.deps.transport.connectedPeers();
    const results = await Promise.allSettled(peers.map((peer) => this.deps.rpc.call(peer, 'push', { records, ack: false }, timeoutMs)));
    return results.filter((r) => r.status === 'fulfilled').length;
  }

  /**
   * Guarantee 8: returns once the records are on disk on at least one other alive member
   * (when there is one). Tries the given peers in turn.
   */
  async replicateTo(peers: string[], records: AnyRecord[]): Promise<string | null> {
    if (peers.length === 0) throw new WriteNotReplicatedError('no other alive member is connected');
    // All at once, first confirmation wins: one slow or dead peer must not hold up the answer.
    const attempts = peers.map((peer) =>
      this.deps.rpc.call(peer, 'push', { records, ack: true }, this.deps.config.requestTimeoutMs).then(
        () => peer,
        (err: Error) => Promise.reject(new Error(`${peer.slice(-8)}: ${err.message}`)),
      ),
    );
    try {
      return await Promise.any(attempts);
    } catch (err) {
      const reasons = (err as AggregateError).errors.map((e: Error) => e.message).join('; ');
      throw new WriteNotReplicatedError(`no other member confirmed the write (${reasons})`);
    }
  }

}

/**
 * Who may write what. Gossip deltas are signed by their sender, so the sender must be the
 * record's writer. A subtask's running or terminal state may come only from its owner,
 * except the leader's `node-lost` verdict. Relayed records (anti-entropy) are checked on
 * the same rules through their `reporter`.
 */
export function authorised(record: AnyRecord, from: string, direct: boolean): boolean {
  switch (record.kind) {
    case 'member':
      return !direct || record.record.nodeId === from;
    case 'job':
      return !direct || record.record.stamp.nodeId === from;
    case 'instance':
      // Any member may request a cancel; the creation itself cannot change by merge.
      return true;
    case 'subtask':
    case 'step': {
      const s = record.record;
      if (direct && s.reporter !== from) return false;
      if (s.reporter === runnerOf(s)) return true;
      if (s.status === 'pending') return true; // created by the leader
      return s.status === 'failed' && s.reason === 'node-lost';
    }
  }
}

/** Splits records into deltas of at most maxBytes of JSON (config.maxDeltaBytes, under the gossip limit); a bigger record goes alone. */
function batches(records: AnyRecord[], maxBytes: number): AnyRecord[][] {
  const out: AnyRecord[][] = [];
  let current: AnyRecord[] = [];
  let size = 0;
  for (const record of records) {
    const bytes = JSON.stringify(record).length;
    if (current.length > 0 && size + bytes > maxBytes) {
      out.push(current);
      current = [];
      size = 0;
    }
    current.push(record);
    size += bytes;
  }
  if (current.length > 0) out.push(current);
  return out;
}

export function encode(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

export function decode(data: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(data));
  } catch {
    return null;
  }
}
