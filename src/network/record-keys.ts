// The daemon's record keys: a record is signed with the node's ed25519 libp2p key, and a
// node id (a libp2p peer id) embeds its public key, so anyone can check a record's
// signature from the writer's id alone. Node's own crypto does the work (about 50 µs a
// verification); public keys are parsed once per node and cached.
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { peerIdFromString } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import type { RecordKeys } from '../records/signature.js';

/** DER prefixes that wrap a raw ed25519 key for Node's crypto (RFC 8410). */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
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
    const signature = Buffer.from(sig, 'base64url');
    if (signature.byteLength !== 64) return false;
    try {
      return verify(null, data, publicKey, signature);
    } catch {
      return false;
    }
  }

  private publicKeyOf(nodeId: string): KeyObject | null {
    const cached = this.publicKeys.get(nodeId);
    if (cached !== undefined) return cached;
    let key: KeyObject | null = null;
    try {
      const publicKey = peerIdFromString(nodeId).publicKey;
      if (publicKey?.type === 'Ed25519') key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, publicKey.raw]), format: 'der', type: 'spki' });
    } catch {
      key = null; // not a peer id, or not one with an embedded ed25519 key
    }
    if (this.publicKeys.size >= MAX_CACHED_KEYS) this.publicKeys.clear();
    this.publicKeys.set(nodeId, key);
    return key;
  }
}
