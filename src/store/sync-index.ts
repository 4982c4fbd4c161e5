// What anti-entropy compares: the records' keys spread over SYNC_BUCKETS buckets, and a
// hash of each bucket's (key, version) pairs, kept up to date at every change in O(1)
// (an XOR of 128-bit entry hashes, so adding or removing one entry is one XOR). Two nodes
// compare one root, then 256 bucket hashes, then list the entries of the buckets that
// differ only: Cassandra's and Riak's Merkle exchange cut to two levels. At 200,000
// records a bucket holds about 800 entries, so no message grows with the whole state.
import { createHash } from 'node:crypto';
import { fnv1a } from '../records/canonical.js';

/** Buckets of the exchange. A protocol constant: every node must split keys the same way. */
export const SYNC_BUCKETS = 256;
const HASH_BYTES = 16; // 128 bits per bucket hash

export function bucketOf(key: string): number {
  return fnv1a(key) % SYNC_BUCKETS;
}

export class SyncIndex {
  private readonly hashes = Buffer.alloc(SYNC_BUCKETS * HASH_BYTES);
  private readonly keys: Set<string>[] = Array.from({ length: SYNC_BUCKETS }, () => new Set<string>());
  private rootCache: string | null = null;

  /** A record's version changed (from `previous`, undefined if it is new). */
  set(key: string, version: string, previous: string | undefined): void {
    const bucket = bucketOf(key);
    if (previous !== undefined) this.xor(bucket, key, previous);
    this.xor(bucket, key, version);
    this.keys[bucket]?.add(key);
    this.rootCache = null;
  }

  remove(key: string, version: string): void {
    const bucket = bucketOf(key);
    this.xor(bucket, key, version);
    this.keys[bucket]?.delete(key);
    this.rootCache = null;
  }

  /** One fingerprint of every (key, version) held: two nodes with equal roots hold the same records. */
  root(): string {
    this.rootCache ??= createHash('sha256').update(this.hashes).digest('base64url').slice(0, 22);
    return this.rootCache;
  }

  /** Every bucket's hash, as one base64 string (SYNC_BUCKETS × 16 bytes). */
  bucketHashes(): string {
    return this.hashes.toString('base64');
  }

  /** Buckets whose hash differs from those in `theirs` (from bucketHashes()), or null if it is malformed. */
  differingBuckets(theirs: string): number[] | null {
    const other = Buffer.from(theirs, 'base64');
    if (other.byteLength !== this.hashes.byteLength) return null;
    const out: number[] = [];
    for (let b = 0; b < SYNC_BUCKETS; b++) {
      const at = b * HASH_BYTES;
      if (this.hashes.compare(other, at, at + HASH_BYTES, at, at + HASH_BYTES) !== 0) out.push(b);
    }
    return out;
  }

  keysIn(bucket: number): ReadonlySet<string> {
    return this.keys[bucket] ?? new Set();
  }

  private xor(bucket: number, key: string, version: string): void {
    xorEntry(this.hashes, bucket * HASH_BYTES, key, version);
  }
}

/**
 * One member's work records as a keeper or the member holds them: their keys and one hash of
 * their (key, version) pairs, kept as SyncIndex keeps a bucket's. A member and a keeper
 * compare it to find whether the member's own subtasks and steps agree (Replicator.syncOwnWork).
 */
export class WorkIndex {
  private readonly hash = Buffer.alloc(HASH_BYTES);
  readonly keys = new Set<string>();

  set(key: string, version: string, previous: string | undefined): void {
    if (previous !== undefined) xorEntry(this.hash, 0, key, previous);
    xorEntry(this.hash, 0, key, version);
    this.keys.add(key);
  }

  remove(key: string, version: string): void {
    xorEntry(this.hash, 0, key, version);
    this.keys.delete(key);
  }

  root(): string {
    return this.hash.toString('base64url');
  }
}

function xorEntry(hashes: Buffer, at: number, key: string, version: string): void {
  const digest = createHash('md5').update(`${key}=${version}`).digest();
  for (let i = 0; i < HASH_BYTES; i++) hashes[at + i] = (hashes[at + i] as number) ^ (digest[i] as number);
}
