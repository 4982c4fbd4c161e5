// The daemon's record keys: a record is signed with the node's ed25519 libp2p key, and a
// node id (a libp2p peer id) embeds its public key, so anyone can check a record's
// signature from the writer's id alone. Node's own crypto does the work (about 110 µs a
// check on the reference machine, 37 µs a signature); public keys are parsed once per
// node and cached. Large batches (a page of anti-entropy: 1,500 records) are checked on a
// worker thread, so that a node catching up checks one page while it merges the last.
import { signatureBytes } from '../records/signature.js';
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { peerIdFromString } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import type { RecordKeys, SignatureCheck } from '../records/signature.js';

/** DER prefixes that wrap a raw ed25519 key for Node's crypto (RFC 8410). */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
/**
 * Threads that check large batches: two where there are two cores. Catching up with
 * 200,000 records on the 2-core reference machine (both daemons on it) took 31-36 s with
 * two, 40 s with one: a check is about 110 µs, so it is 22 s of CPU either way.
 */
const VERIFY_WORKERS = Math.max(1, Math.min(2, availableParallelism()));
/** Public keys cached; past this many the cache starts again (it only saves parsing). */
const MAX_CACHED_KEYS = 10_000;

export class Ed25519RecordKeys implements RecordKeys {
  private readonly privateKey: KeyObject;
  private readonly publicKeys = new Map<string, KeyObject | null>();

  constructor(key: PrivateKey) {
    if (key.type !== 'Ed25519') throw new TypeError(`records are signed with an Ed25519 node key, not ${key.type}`);
    this.privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, key.raw.subarray(0, 32)]), format: 'der', type: 'pkcs8' });
  }

  sign(data: Uint8Array): string {
    return sign(null, data, this.privateKey).toString('base64url');
  }

  verify(signer: string, data: Uint8Array, sig: string): boolean {
    const publicKey = this.publicKeyOf(signer);
    if (publicKey === null) return false;
    const signature = signatureBytes(sig);
    if (signature === null || signature.byteLength !== 64) return false;
    try {
      return verify(null, data, publicKey, signature);
    } catch {
      return false;
    }
  }

  /** Checks many signatures on the worker thread (in order); a check the worker cannot make is made here. */
  async verifyMany(checks: SignatureCheck[]): Promise<boolean[]> {
    // A signature that is not in its canonical text fails without a worker's check (an empty one never verifies).
    const items = checks.map((c) => ({ spki: this.spkiOf(c.signer), data: c.data, sig: signatureBytes(c.sig) ?? Buffer.alloc(0) }));
    try {
      // Split over the workers; each answers for its share, in order.
      const workers = this.pool();
      const share = Math.ceil(items.length / workers.length);
      const parts = await Promise.all(workers.map((w, i) => w.verify(items.slice(i * share, (i + 1) * share))));
      return parts.flat();
    } catch {
      return checks.map((c) => this.verify(c.signer, c.data, c.sig));
    }
  }

  /** Stops the worker threads (the daemon is stopping). */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
    this.workers = [];
  }

  private workers: VerifyWorker[] = [];

  private pool(): VerifyWorker[] {
    if (this.workers.length === 0) this.workers = Array.from({ length: VERIFY_WORKERS }, () => new VerifyWorker());
    return this.workers;
  }

  private publicKeyOf(nodeId: string): KeyObject | null {
    const cached = this.publicKeys.get(nodeId);
    if (cached !== undefined) return cached;
    const spki = this.spkiOf(nodeId);
    const key = spki === null ? null : createPublicKey({ key: spki, format: 'der', type: 'spki' });
    if (this.publicKeys.size >= MAX_CACHED_KEYS) this.publicKeys.clear();
    this.publicKeys.set(nodeId, key);
    return key;
  }

  /** The DER of a node id's embedded ed25519 public key, or null if it has none (parsing a peer id costs more than a check: cached). */
  private spkiOf(nodeId: string): Buffer | null {
    const cached = this.spkis.get(nodeId);
    if (cached !== undefined) return cached;
    let spki: Buffer | null = null;
    try {
      const publicKey = peerIdFromString(nodeId).publicKey;
      if (publicKey?.type === 'Ed25519') spki = Buffer.concat([SPKI_ED25519, publicKey.raw]);
    } catch {
      spki = null; // not a peer id, or not one with an embedded ed25519 key
    }
    if (this.spkis.size >= MAX_CACHED_KEYS) this.spkis.clear();
    this.spkis.set(nodeId, spki);
    return spki;
  }

  private readonly spkis = new Map<string, Buffer | null>();
}

/**
 * One worker thread that checks signatures. Its code is a string (no file of its own), so
 * it runs in the single executable too; it is unref'd, so it never keeps a process alive.
 */
class VerifyWorker {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (ok: boolean[]) => void; reject: (err: Error) => void }>();
  private nextId = 1;

  constructor() {
    this.worker = new Worker(WORKER_CODE, { eval: true });
    this.worker.unref();
    this.worker.on('message', (msg: { id: number; ok: boolean[] }) => {
      this.waiting.get(msg.id)?.resolve(msg.ok);
      this.waiting.delete(msg.id);
    });
    const failAll = (err: Error) => {
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    };
    this.worker.on('error', failAll);
    this.worker.on('exit', () => failAll(new Error('the signature worker stopped')));
  }

  verify(items: { spki: Buffer | null; data: Uint8Array; sig: Buffer }[]): Promise<boolean[]> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, items });
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

const WORKER_CODE = `
const { parentPort } = require('node:worker_threads');
const { createPublicKey, verify } = require('node:crypto');
const keys = new Map();
parentPort.on('message', ({ id, items }) => {
  const ok = items.map(({ spki, data, sig }) => {
    if (!spki || sig.length !== 64) return false;
    const name = Buffer.from(spki).toString('base64');
    let key = keys.get(name);
    try {
      if (!key) {
        if (keys.size >= ${MAX_CACHED_KEYS}) keys.clear();
        keys.set(name, (key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' })));
      }
      return verify(null, data, key, sig);
    } catch {
      return false;
    }
  });
  parentPort.postMessage({ id, ok });
});
`;
