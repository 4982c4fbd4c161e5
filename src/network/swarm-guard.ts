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
        boundCiphers(boxed);
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

/** The largest piece XSalsa20 is given at once: it fits the cipher's initial WebAssembly memory, which so never grows. */
const CIPHER_CHUNK_BYTES = 64 * 1024;

interface Cipher {
  update(input: Uint8Array, output?: Uint8Array): Uint8Array;
  finalize(): void;
}

/**
 * Works around two faults of @libp2p/pnet 3.0.27 (fixed upstream in js-libp2p PR #3585, not
 * yet released): it gives its XSalsa20 ciphers whole write buffers at once, and the
 * ciphers share one WebAssembly memory of at most 64 MB per process, so a backlog of
 * writes to a slow peer crashed the daemon (RangeError: WebAssembly.Memory.grow(): Maximum
 * memory size exceeded, seen catching a node up with 200,000 records); and it never
 * finalizes its ciphers, so every connection kept two slots of that memory for good.
 * Here each cipher is given at most 64 KiB at a time (a stream cipher: the same bytes) and
 * is finalized when its connection closes. If pnet's internals change, nothing is done.
 */
function boundCiphers(boxed: MessageStream): void {
  const box = boxed as unknown as { inboundXor?: Cipher; outboundXor?: Cipher };
  const ciphers = [box.inboundXor, box.outboundXor].filter((c): c is Cipher => typeof c?.update === 'function' && typeof c.finalize === 'function');
  if (ciphers.length !== 2) return;
  for (const cipher of ciphers) {
    const update = cipher.update.bind(cipher);
    cipher.update = (input, output) => {
      if (input.byteLength <= CIPHER_CHUNK_BYTES) return update(input, output);
      const out = output ?? new Uint8Array(input.byteLength);
      for (let at = 0; at < input.byteLength; at += CIPHER_CHUNK_BYTES) {
        const end = Math.min(at + CIPHER_CHUNK_BYTES, input.byteLength);
        update(input.subarray(at, end), out.subarray(at, end));
      }
      return out;
    };
  }
  let finalized = false;
  boxed.addEventListener('close', () => {
    if (finalized) return;
    finalized = true;
    // After close no data passes; finalize hands the cipher's slot back and wipes its key.
    for (const cipher of ciphers) {
      cipher.update = (input, output) => output ?? new Uint8Array(input.byteLength); // nothing may run on a finalized cipher
      try {
        cipher.finalize();
      } catch {
        // already finalized by a pnet that does it itself
      }
    }
  });
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
