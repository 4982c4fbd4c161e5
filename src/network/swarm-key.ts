// Swarm keys: the pre-shared key of a libp2p private network, in the format go-ipfs and
// js-libp2p use:
//   /key/swarm/psk/1.0.0/
//   /base16/
//   <64 hex digits>
// A chorus cluster is always closed: a daemon given no --swarm-key creates one in its data
// directory (mode 0600) and uses it; every other node must be given that file to join.
import { randomBytes } from 'node:crypto';
import { chmod, readFile, stat } from 'node:fs/promises';
import { writeFileDurable } from '../store/durable-file.js';

export class SwarmKeyError extends Error {}

const FORMAT = /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-fA-F]{64}\s*$/;

/** A new key in the file format above, ending with a newline. */
export function generateSwarmKey(): string {
  return `/key/swarm/psk/1.0.0/\n/base16/\n${randomBytes(32).toString('hex')}\n`;
}

export async function readSwarmKey(path: string): Promise<Uint8Array> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new SwarmKeyError(`cannot read the swarm key ${path}: ${(err as Error).message}`);
  }
  if (!FORMAT.test(text)) {
    throw new SwarmKeyError(
      `${path} is not a swarm key: expected three lines, "/key/swarm/psk/1.0.0/", "/base16/" and 64 hex digits ` +
        `(make one with: chorus keygen > swarm.key)`,
    );
  }
  return new TextEncoder().encode(text.trim());
}

/** The key of a daemon started without --swarm-key: DIR/swarm.key, created (0600) on first start. */
export async function loadOrCreateSwarmKey(path: string): Promise<{ key: Uint8Array; created: boolean }> {
  let created = false;
  try {
    if ((await stat(path)).mode & 0o077) await chmod(path, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new SwarmKeyError(`cannot read the swarm key ${path}: ${(err as Error).message}`);
    await writeFileDurable(path, generateSwarmKey(), 0o600);
    created = true;
  }
  return { key: await readSwarmKey(path), created };
}
