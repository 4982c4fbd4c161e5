// Record keys for simulations: one secret per node and SHA-256 over the secret and the
// data, far cheaper than ed25519 (and than an HMAC, whose key object Node builds at every
// call: a tenth of a 600-node simulation's time), so that a 1,000-node simulation can check
// every record it receives. A node signs only with its own secret; checking uses the
// signer's, which the simulated cluster (standing in for the public keys that node ids
// embed) knows for every node. Not a real MAC (a length extension could forge one): it
// only has to tell a record signed by its writer from one signed by another simulated node
// or altered after signing, which is what the simulations check.
import { signatureBytes } from '../records/signature.js';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { RecordKeys } from '../records/signature.js';

export class SimKeyring {
  private readonly secrets = new Map<string, Buffer>();

  constructor(private readonly seed: string) {}

  /** The keys a node signs with: its own secret, and everyone's for checking. */
  keysFor(nodeId: string): RecordKeys {
    return {
      sign: (data) => this.mac(nodeId, data).toString('base64url'),
      verify: (signer, data, sig) => {
        const expected = this.mac(signer, data);
        const given = signatureBytes(sig);
        return given !== null && given.byteLength === expected.byteLength && timingSafeEqual(given, expected);
      },
    };
  }

  private mac(nodeId: string, data: Uint8Array): Buffer {
    let secret = this.secrets.get(nodeId);
    if (!secret) this.secrets.set(nodeId, (secret = createHmac('sha256', this.seed).update(nodeId).digest()));
    return createHash('sha256').update(secret).update(data).digest();
  }
}
