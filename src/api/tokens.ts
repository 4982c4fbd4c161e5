// API tokens and their roles. The daemon's own token (DIR/api-token, for the CLI on the
// same host) has the `operate` role; `chorus token create --role read|operate` makes more,
// kept hashed (SHA-256) in DIR/tokens.json, and `chorus token revoke ID` removes one. A
// token is `ID.SECRET`: the id finds its entry, the hash of the whole token is compared
// in constant time. Tokens belong to the daemon that made them. A caller is known by its
// token's id, so that what a token made (dashboard sessions) ends when it is revoked.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { DataFileError, writeFileDurable } from '../store/durable-file.js';

export const ROLES = ['read', 'operate'] as const;
export type Role = (typeof ROLES)[number];

export interface TokenEntry {
  id: string;
  role: Role;
  /** SHA-256 of the whole token, hex. */
  hash: string;
  name: string | null;
  createdAt: string;
}

/** What the API shows of a token: never its secret or hash. */
export type TokenView = Omit<TokenEntry, 'hash'>;

/**
 * The id the daemon's own token goes by (it has no entry in tokens.json). Token ids are
 * hex, so it is never one of theirs; it cannot be revoked through the API.
 */
export const OWN_TOKEN_ID = 'daemon';

/** Who presented a token: its id (OWN_TOKEN_ID for the daemon's own) and role. */
export interface Caller {
  tokenId: string;
  role: Role;
}

/** At most this many tokens per daemon. */
export const MAX_TOKENS = 1000;

const sha256 = (text: string) => createHash('sha256').update(text).digest();

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export class TokenStore {
  private entries: TokenEntry[] = [];

  private constructor(
    private readonly path: string,
    private readonly ownToken: string,
  ) {}

  static async open(path: string, ownToken: string): Promise<TokenStore> {
    const store = new TokenStore(path, ownToken);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return store;
      throw err;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new DataFileError(path, `not JSON: ${(err as Error).message}`);
    }
    const entries = (parsed as { tokens?: unknown })?.tokens;
    const valid = (e: unknown): e is TokenEntry => {
      const t = e as TokenEntry;
      return typeof t?.id === 'string' && /^[0-9a-f]{8,32}$/.test(t.id) && (ROLES as readonly string[]).includes(t.role) && typeof t.hash === 'string' && /^[0-9a-f]{64}$/.test(t.hash);
    };
    if (!Array.isArray(entries) || !entries.every(valid)) throw new DataFileError(path, 'expected {"tokens": [{"id", "role": "read"|"operate", "hash"}...]}');
    store.entries = entries.map((e) => ({ id: e.id, role: e.role, hash: e.hash, name: typeof e.name === 'string' ? e.name : null, createdAt: String(e.createdAt ?? '') }));
    return store;
  }

  /** The token a caller presented (its id and role), or null when it is not one of this daemon's. */
  callerOf(presented: string): Caller | null {
    if (presented === '') return null;
    if (sameBytes(Buffer.from(presented), Buffer.from(this.ownToken))) return { tokenId: OWN_TOKEN_ID, role: 'operate' };
    const dot = presented.indexOf('.');
    if (dot <= 0) return null;
    const entry = this.entries.find((e) => e.id === presented.slice(0, dot));
    if (!entry) return null;
    return sameBytes(sha256(presented), Buffer.from(entry.hash, 'hex')) ? { tokenId: entry.id, role: entry.role } : null;
  }

  /** A token's name by its id (null for none, for the daemon's own and for one revoked). */
  nameOf(id: string): string | null {
    return this.entries.find((e) => e.id === id)?.name ?? null;
  }

  list(): TokenView[] {
    return this.entries.map(({ hash: _hash, ...view }) => view);
  }

  /** A new token: returned once, stored hashed (on disk before it is returned). */
  async create(role: Role, name: string | null, nowIso: string): Promise<TokenView & { token: string }> {
    if (this.entries.length >= MAX_TOKENS) throw new Error(`this daemon holds ${MAX_TOKENS} tokens already; revoke some first`);
    const id = randomBytes(6).toString('hex');
    const token = `${id}.${randomBytes(32).toString('base64url')}`;
    const entry: TokenEntry = { id, role, hash: sha256(token).toString('hex'), name, createdAt: nowIso };
    await this.save([...this.entries, entry]);
    const { hash: _hash, ...view } = entry;
    return { ...view, token };
  }

  /** Removes a token by id; false when there was none. */
  async revoke(id: string): Promise<boolean> {
    const kept = this.entries.filter((e) => e.id !== id);
    if (kept.length === this.entries.length) return false;
    await this.save(kept);
    return true;
  }

  private async save(entries: TokenEntry[]): Promise<void> {
    await writeFileDurable(this.path, `${JSON.stringify({ tokens: entries }, null, 2)}\n`, 0o600);
    this.entries = entries;
  }
}
