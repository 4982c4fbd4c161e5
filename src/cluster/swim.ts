// The pure parts of SWIM membership (membership.ts), after hashicorp/memberlist:
// incarnation numbers, the membership-change messages and their wire check, the
// retransmit-limited dissemination queue (memberlist's TransmitLimitedQueue) and the
// suspicion timeout that scales with the cluster and shrinks with confirmations
// (memberlist's suspicion.go, Lifeguard's "dynamic suspicion").

/**
 * A member's incarnation: [start, refutes]. `start` is the process incarnation kept in its
 * member record (bumped at every start); `refutes` counts, within one start, the times it
 * answered a suspicion about itself. Ordered lexicographically.
 */
export type Incarnation = readonly [start: number, refutes: number];

export function compareIncarnations(a: Incarnation, b: Incarnation): number {
  return a[0] - b[0] || a[1] - b[1];
}

export type SwimState = 'alive' | 'suspect' | 'dead';

/** A membership change: `node` is in `state` as of incarnation `inc`. `by`: who suspects it (suspect only). */
export interface SwimUpdate {
  node: string;
  state: SwimState;
  inc: Incarnation;
  by?: string;
}

/** What a ping or an ack says besides the updates: the sender's own incarnation and its view of the receiver. */
export interface SwimEnvelope {
  /** The sender's incarnation (direct evidence: a member speaks for itself). */
  self: Incarnation;
  /** How the sender sees the receiver; a receiver seen suspect or dead refutes at once. */
  you: { state: SwimState; inc: Incarnation } | null;
  updates: SwimUpdate[];
  /**
   * The sender's fingerprint of every record it holds (RecordStore.rootVersion): a probe
   * and its ack double as anti-entropy's first step, and a difference starts an exchange.
   */
  root?: string;
  /**
   * Whether the sender has a connection to the leader (or is it): a member without one
   * hands the records it writes to such a neighbour, which passes them on (Replicator).
   */
  leaderLink?: boolean;
  /** Whether the sender is a keeper or has a connection to one: a member with no route to the leader hands its records to such a neighbour. */
  keeperLink?: boolean;
}

/** Limits of what is accepted from the network; more is a malformed message. */
export const MAX_UPDATES_PER_MESSAGE = 64;
const MAX_NODE_ID_LENGTH = 128;
const STATES: ReadonlySet<string> = new Set(['alive', 'suspect', 'dead']);

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function incarnationOf(x: unknown): Incarnation | null {
  return Array.isArray(x) && x.length === 2 && isCount(x[0]) && isCount(x[1]) ? [x[0], x[1]] : null;
}

function nodeIdOf(x: unknown): string | null {
  return typeof x === 'string' && x.length > 0 && x.length <= MAX_NODE_ID_LENGTH ? x : null;
}

function updateOf(x: unknown): SwimUpdate | null {
  if (typeof x !== 'object' || x === null) return null;
  const u = x as Record<string, unknown>;
  const node = nodeIdOf(u.node);
  const inc = incarnationOf(u.inc);
  if (node === null || inc === null || typeof u.state !== 'string' || !STATES.has(u.state)) return null;
  const update: SwimUpdate = { node, state: u.state as SwimState, inc };
  if (u.by !== undefined) {
    const by = nodeIdOf(u.by);
    if (by === null) return null;
    update.by = by;
  }
  return update;
}

/**
 * A helper's answer to an indirect probe: whether the target acked, and, when the helper holds
 * it dead, that verdict (null when the answer is malformed).
 */
export function parseProbeAnswer(x: unknown): { ack: boolean; verdict: SwimUpdate | null } | null {
  if (typeof x !== 'object' || x === null || typeof (x as { ack?: unknown }).ack !== 'boolean') return null;
  const a = x as { ack: boolean; verdict?: unknown };
  if (a.verdict === undefined || a.verdict === null) return { ack: a.ack, verdict: null };
  const verdict = updateOf(a.verdict);
  return verdict === null || verdict.state !== 'dead' ? null : { ack: a.ack, verdict };
}

/** Checks an envelope from the network; null when anything in it is malformed (the whole message is dropped). */
export function parseEnvelope(x: unknown): SwimEnvelope | null {
  if (typeof x !== 'object' || x === null) return null;
  const e = x as Record<string, unknown>;
  const self = incarnationOf(e.self);
  if (self === null || !Array.isArray(e.updates) || e.updates.length > MAX_UPDATES_PER_MESSAGE) return null;
  let you: SwimEnvelope['you'] = null;
  if (e.you !== null && e.you !== undefined) {
    const y = e.you as Record<string, unknown>;
    const inc = incarnationOf(y.inc);
    if (inc === null || typeof y.state !== 'string' || !STATES.has(y.state)) return null;
    you = { state: y.state as SwimState, inc };
  }
  const updates: SwimUpdate[] = [];
  for (const raw of e.updates) {
    const update = updateOf(raw);
    if (update === null) return null;
    updates.push(update);
  }
  if (e.root !== undefined && (typeof e.root !== 'string' || e.root.length > 64)) return null;
  if (e.leaderLink !== undefined && typeof e.leaderLink !== 'boolean') return null;
  if (e.keeperLink !== undefined && typeof e.keeperLink !== 'boolean') return null;
  return {
    self,
    you,
    updates,
    ...(typeof e.root === 'string' ? { root: e.root } : {}),
    ...(typeof e.leaderLink === 'boolean' ? { leaderLink: e.leaderLink } : {}),
    ...(typeof e.keeperLink === 'boolean' ? { keeperLink: e.keeperLink } : {}),
  };
}

/** How many times each change is sent on: retransmitMult × ceil(log10(n + 1)), memberlist's retransmit limit. */
export function retransmitLimit(retransmitMult: number, members: number): number {
  return retransmitMult * Math.ceil(Math.log10(members + 1));
}

/** Changes a node holds for dissemination; beyond it the most-sent are dropped (push/pull repairs what that loses). */
export const MAX_QUEUED_UPDATES = 256;

/**
 * Changes waiting to be piggybacked, each sent a bounded number of times: the least sent and
 * then the newest go first, and a newer change about a node replaces the older one. Bounded:
 * when full, the change sent most (the oldest news) makes room.
 */
export class DisseminationQueue {
  private readonly pending = new Map<string, { update: SwimUpdate; sent: number; seq: number }>();
  private seq = 0;

  constructor(private readonly capacity = MAX_QUEUED_UPDATES) {}

  get size(): number {
    return this.pending.size;
  }

  push(update: SwimUpdate): void {
    this.pending.delete(update.node);
    if (this.pending.size >= this.capacity) {
      let worst: { update: SwimUpdate; sent: number; seq: number } | undefined;
      for (const item of this.pending.values()) if (!worst || before(worst, item)) worst = item;
      if (worst) this.pending.delete(worst.update.node);
    }
    this.pending.set(update.node, { update, sent: 0, seq: this.seq++ });
  }

  /** Drops what is pending about a node (it was reaped: this node speaks of it no more). */
  forget(node: string): void {
    this.pending.delete(node);
  }

  /** Up to `max` updates to piggyback now; each counts as sent once, and is dropped at `limit` sends. */
  take(max: number, limit: number): SwimUpdate[] {
    if (this.pending.size === 0 || max <= 0) return [];
    // The best `max` by (fewest sends, newest), in one pass: the queue is bounded, `max` small.
    const chosen: { update: SwimUpdate; sent: number; seq: number }[] = [];
    for (const item of this.pending.values()) {
      if (chosen.length === max && !before(item, chosen[max - 1]!)) continue;
      let i = Math.min(chosen.length, max - 1);
      if (chosen.length < max) chosen.push(item);
      else chosen[i] = item;
      while (i > 0 && before(chosen[i]!, chosen[i - 1]!)) {
        [chosen[i], chosen[i - 1]] = [chosen[i - 1]!, chosen[i]!];
        i--;
      }
    }
    for (const item of chosen) {
      item.sent += 1;
      if (item.sent >= limit) this.pending.delete(item.update.node);
    }
    return chosen.map((item) => item.update);
  }
}

/** Whether `a` goes out before `b`: fewer sends first, then the newer. */
function before(a: { sent: number; seq: number }, b: { sent: number; seq: number }): boolean {
  return a.sent < b.sent || (a.sent === b.sent && a.seq > b.seq);
}

/**
 * The time a suspect gets to refute: `min` = suspicionMult × max(1, log10 n) × probeInterval;
 * it starts at `maxMult × min` and falls towards `min` as independent confirmations arrive
 * (k are expected), as Lifeguard's dynamic suspicion does.
 */
export function suspicionTimeoutMs(opts: { suspicionMult: number; maxMult: number; members: number; probeIntervalMs: number; confirmations: number; expected: number }): number {
  const scale = Math.max(1, Math.log10(Math.max(1, opts.members)));
  const minMs = opts.suspicionMult * scale * opts.probeIntervalMs;
  const maxMs = opts.maxMult * minMs;
  if (opts.expected <= 0) return Math.round(minMs);
  const fraction = Math.log(opts.confirmations + 1) / Math.log(opts.expected + 1);
  return Math.round(Math.max(minMs, maxMs - (maxMs - minMs) * fraction));
}

/** A push/pull exchange (memberlist's): the sender's incarnation and every member state it holds. */
export interface SwimStateMessage {
  self: Incarnation;
  states: SwimUpdate[];
}

/** Members one push/pull may list; more is a malformed message (about 100 bytes each, so well under 1 MiB). */
export const MAX_STATE_ENTRIES = 8192;

export function parseStateMessage(x: unknown): SwimStateMessage | null {
  if (typeof x !== 'object' || x === null) return null;
  const m = x as Record<string, unknown>;
  const self = incarnationOf(m.self);
  if (self === null || !Array.isArray(m.states) || m.states.length > MAX_STATE_ENTRIES) return null;
  const states: SwimUpdate[] = [];
  for (const raw of m.states) {
    const update = updateOf(raw);
    if (update === null) return null;
    states.push(update);
  }
  return { self, states };
}
