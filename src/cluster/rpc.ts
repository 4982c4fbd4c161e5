// Typed request/response on top of the transport: one JSON request, one JSON reply,
// dispatched by `type`. Used for anti-entropy, acknowledged writes, run forwarding
// and fetching logs from the node that ran a subtask.
import type { Transport } from '../core/transport.js';
import { InvariantError } from '../core/assert.js';

export type RpcHandler = (from: string, body: unknown) => Promise<unknown>;

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder();

export class RpcError extends Error {
  constructor(
    message: string,
    /** Machine-readable reason, carried across the network (e.g. concurrency-forbid). */
    readonly code: string = 'rpc-error',
  ) {
    super(message);
  }
}

export class Rpc {
  private readonly handlers = new Map<string, RpcHandler>();

  /**
   * `connect`: how to reach a peer this node holds no connection to (with the connection
   * budget, most members are not connected); the call fails if it fails.
   */
  constructor(
    private readonly transport: Transport,
    private readonly connect: (peer: string) => Promise<void> = () => Promise.resolve(),
  ) {}

  handle(type: string, handler: RpcHandler): void {
    if (this.handlers.has(type)) throw new Error(`rpc handler for ${type} registered twice`);
    this.handlers.set(type, handler);
  }

  /**
   * `dial`: connect first when there is no connection (a request the user waits for: a run
   * forwarded to the leader, logs). `bulk`: a large transfer (see RequestOptions). Background protocol traffic (sync, membership) goes only
   * over connections the membership keeps, or a closed one would be reopened at once.
   */
  async call(peer: string, type: string, body: unknown, timeoutMs: number, options: { dial?: boolean; bulk?: boolean } = {}): Promise<unknown> {
    if (options.dial === true && !this.transport.connectedPeers().includes(peer)) await this.connect(peer);
    const reply = await this.transport.request(peer, ENCODER.encode(JSON.stringify({ type, body })), timeoutMs, { bulk: options.bulk });
    const parsed = JSON.parse(DECODER.decode(reply)) as { ok: boolean; body?: unknown; error?: string; code?: string };
    if (!parsed.ok) throw new RpcError(parsed.error ?? `${type} failed on ${peer}`, parsed.code);
    return parsed.body;
  }

  /** The transport's request handler. Errors become an error reply, never a crash. */
  async onRequest(from: string, data: Uint8Array): Promise<Uint8Array> {
    let reply: { ok: boolean; body?: unknown; error?: string; code?: string };
    try {
      const request = JSON.parse(DECODER.decode(data)) as { type?: unknown; body?: unknown };
      const handler = typeof request.type === 'string' ? this.handlers.get(request.type) : undefined;
      if (!handler) throw new RpcError(`unknown request type ${String(request.type)}`);
      reply = { ok: true, body: await handler(from, request.body) };
    } catch (err) {
      if (err instanceof InvariantError) throw err; // a bug here, not the caller's error: it stops the node
      const code = (err as { code?: unknown }).code;
      reply = { ok: false, error: (err as Error).message, code: typeof code === 'string' ? code : undefined };
    }
    return ENCODER.encode(JSON.stringify(reply));
  }
}
