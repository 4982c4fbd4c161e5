// Reads a swarm key file (the format go-ipfs and js-libp2p use for private networks):
//   /key/swarm/psk/1.0.0/
//   /base16/
//   <64 hex digits>
import { readFile } from 'node:fs/promises';

export class SwarmKeyError extends Error {}

const FORMAT = /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-fA-F]{64}\s*$/;

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
        `(make one with: printf '/key/swarm/psk/1.0.0/\\n/base16/\\n%s\\n' "$(openssl rand -hex 32)" > swarm.key)`,
    );
  }
  return new TextEncoder().encode(text.trim());
}
