// The node's libp2p identity: one Ed25519 key per data directory, so a restarted
// daemon comes back with the same peer id (which is its chorus node id).

import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { writeFileDurable } from '../store/durable-file.js';

export const PEER_KEY_FILE = 'peer-key';

/** Reads `dataDir/peer-key`, or creates it (mode 0600, atomically) if it does not exist. */
export async function loadOrCreatePrivateKey(dataDir: string): Promise<PrivateKey> {
  const path = join(dataDir, PEER_KEY_FILE);
  const existing = await readKeyFile(path);
  if (existing !== undefined) return decodeKey(path, existing);

  const key = await generateKeyPair('Ed25519');
  await mkdir(dataDir, { recursive: true });
  // The data-directory lock means only one daemon gets here for a given directory.
  await writeFileDurable(path, privateKeyToProtobuf(key), 0o600);
  return key;
}

async function readKeyFile(path: string): Promise<Uint8Array | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function decodeKey(path: string, bytes: Uint8Array): PrivateKey {
  try {
    return privateKeyFromProtobuf(bytes);
  } catch (err) {
    // Never replace a corrupt key silently: that would give the node a new identity
    // and orphan every subtask the cluster has tied to the old one.
    throw new Error(
      `peer key file ${path} is corrupt (${(err as Error).message}); ` +
        'restore it from a backup, or delete it to give this node a new identity',
      { cause: err },
    );
  }
}
