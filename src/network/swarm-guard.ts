// The door of a chorus cluster: libp2p's private network (pnet, XSalsa20 with the swarm
// key) plus a proof that the other side has the same key. pnet alone cannot tell a wrong
// key from line noise: a peer with another key shows up later as a garbled noise
// handshake ("Message length length too long"). Here both sides send a fixed marker through
// the protected channel right away; a peer whose marker does not decrypt is refused at the
// connection, before noise, identify or any chorus protocol, and the refusal is reported
// with its address.
import { preSharedKey } from '@libp2p/pnet';
import { byteStream } from '@libp2p/utils';
import type { AbortOptions, ConnectionProtector, MessageStream } from '@libp2p/interface';

/** 16 bytes every holder of the key sends first; it decrypts to this only with the same key. */
const MARKER = new TextEncoder().encode('chorus/swarm/1.0');

export class SwarmRefusedError extends Error {
  override readonly name = 'SwarmRefusedError';
}

export interface SwarmGuardOptions {
  /** Contents of the swarm key file. */
  psk: Uint8Array;
  /** How long the other side gets to prove the key. */
  handshakeTimeoutMs: number;
  /** Called once per refused connection, with the peer's address and why. */
  onRefused: (remoteAddr: string, why: string) => void;
}

export function swarmGuard(options: SwarmGuardOptions): () => ConnectionProtector {
  const pnet = preSharedKey({ psk: options.psk, timeout: options.handshakeTimeoutMs });
  return () => {
    const inner = pnet();
    return {
      async protect(connection: MessageStream, abort?: AbortOptions): Promise<MessageStream> {
        const remoteAddr = String((connection as { remoteAddr?: unknown }).remoteAddr ?? 'an unknown address');
        const timeout = AbortSignal.timeout(options.handshakeTimeoutMs);
        const signal = abort?.signal ? AbortSignal.any([abort.signal, timeout]) : timeout;
        const refuse = (why: string, cause?: unknown): never => {
          options.onRefused(remoteAddr, why);
          throw new SwarmRefusedError(`refused the connection with ${remoteAddr}: ${why}`, { cause });
        };
        let boxed: MessageStream;
        try {
          boxed = await inner.protect(connection, { signal });
        } catch (err) {
          return refuse(`no swarm key handshake (${(err as Error).message})`, err);
        }
        const bytes = byteStream(boxed);
        let reply: Uint8Array;
        try {
          const [read] = await Promise.all([bytes.read({ bytes: MARKER.length, signal }), bytes.write(MARKER, { signal })]);
          reply = read.subarray();
        } catch (err) {
          return refuse('it did not prove the swarm key (no answer to the key check; it may run without --swarm-key)', err);
        }
        if (!equalBytes(reply, MARKER)) return refuse('it has a different swarm key');
        return bytes.unwrap();
      },
    };
  };
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
