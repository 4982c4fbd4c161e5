// How a browser logs in to the dashboard (`chorus ui`): the CLI, holding a token, asks the
// daemon for a login code; the code goes in the URL it prints, is good for one use within
// a minute, and is exchanged by GET /ui/login for a session cookie with the same role as
// the token that asked. The long-lived token never appears in a URL. Codes and sessions
// live in the daemon's memory only: a restart logs every browser out. Each code and
// session remembers the token that asked for it (by id), so revoking that token ends
// them at once; a session also has a short public id (`ui-` and 10 hex digits) by which
// `chorus token list` shows it and `chorus token revoke` ends it: the cookie is never shown.
import { randomBytes } from 'node:crypto';
import type { Caller, Role } from './tokens.js';

export const LOGIN_CODE_TTL_MS = 60_000;
export const SESSION_TTL_MS = 12 * 3_600_000;
/** Outstanding codes and live sessions kept at most (the oldest go first). */
export const MAX_CODES = 100;
export const MAX_SESSIONS = 1_000;
export const SESSION_COOKIE = 'chorus_session';
/** How a session's public id starts: never a token id (those are hex), so one `token revoke ID` serves both. */
export const SESSION_ID_PREFIX = 'ui-';

interface Grant extends Caller {
  expiresAtMs: number;
}

interface Session extends Grant {
  publicId: string;
  createdAtMs: number;
}

/** A live session as `chorus token list` shows it: never its cookie. */
export interface SessionView {
  id: string;
  role: Role;
  /** The token whose login code made it (`daemon`: the daemon's own, DIR/api-token). */
  tokenId: string;
  tokenName: string | null;
  createdAt: string;
  expiresAt: string;
}

export class UiSessions {
  private readonly codes = new Map<string, Grant>();
  /** By the cookie's value. */
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly now: () => number = Date.now) {}

  /** A one-use login code with the caller's role, valid for a minute. */
  createCode(caller: Caller): { code: string; expiresAtMs: number } {
    this.prune();
    const code = randomBytes(24).toString('base64url');
    const expiresAtMs = this.now() + LOGIN_CODE_TTL_MS;
    this.codes.set(code, { tokenId: caller.tokenId, role: caller.role, expiresAtMs });
    if (this.codes.size > MAX_CODES) this.codes.delete(this.codes.keys().next().value as string);
    return { code, expiresAtMs };
  }

  /** Exchanges a code (once) for a new session; null when it is unknown, used or expired. */
  redeem(code: string): { sessionId: string; publicId: string; role: Role; expiresAtMs: number } | null {
    const grant = this.codes.get(code);
    this.codes.delete(code);
    if (!grant || grant.expiresAtMs <= this.now()) return null;
    const sessionId = randomBytes(32).toString('base64url');
    const publicId = this.newPublicId();
    const createdAtMs = this.now();
    const expiresAtMs = createdAtMs + SESSION_TTL_MS;
    this.sessions.set(sessionId, { publicId, tokenId: grant.tokenId, role: grant.role, createdAtMs, expiresAtMs });
    if (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value as string);
    return { sessionId, publicId, role: grant.role, expiresAtMs };
  }

  /** The role of a live session and the token that made it; null when it is unknown, ended or expired. */
  callerOf(sessionId: string): Caller | null {
    const session = this.sessions.get(sessionId);
    if (!session) return null;
    if (session.expiresAtMs <= this.now()) {
      this.sessions.delete(sessionId);
      return null;
    }
    return { tokenId: session.tokenId, role: session.role };
  }

  /** The live sessions, oldest first; `nameOf` names the token that made each. */
  list(nameOf: (tokenId: string) => string | null): SessionView[] {
    this.prune();
    return [...this.sessions.values()].map((s) => ({
      id: s.publicId,
      role: s.role,
      tokenId: s.tokenId,
      tokenName: nameOf(s.tokenId),
      createdAt: new Date(s.createdAtMs).toISOString(),
      expiresAt: new Date(s.expiresAtMs).toISOString(),
    }));
  }

  /** Ends one session by its public id; false when there is none. */
  end(publicId: string): boolean {
    for (const [sessionId, session] of this.sessions) {
      if (session.publicId !== publicId) continue;
      this.sessions.delete(sessionId);
      return true;
    }
    return false;
  }

  /** Ends every session and drops every unused code made with a token (it was revoked). */
  endAllOf(tokenId: string): { sessions: number; codes: number } {
    const ended = { sessions: 0, codes: 0 };
    for (const [sessionId, session] of this.sessions) {
      if (session.tokenId !== tokenId) continue;
      this.sessions.delete(sessionId);
      ended.sessions += 1;
    }
    for (const [code, grant] of this.codes) {
      if (grant.tokenId !== tokenId) continue;
      this.codes.delete(code);
      ended.codes += 1;
    }
    return ended;
  }

  private newPublicId(): string {
    const taken = new Set([...this.sessions.values()].map((s) => s.publicId));
    for (;;) {
      const id = `${SESSION_ID_PREFIX}${randomBytes(5).toString('hex')}`;
      if (!taken.has(id)) return id;
    }
  }

  private prune(): void {
    const nowMs = this.now();
    for (const [code, grant] of this.codes) if (grant.expiresAtMs <= nowMs) this.codes.delete(code);
    for (const [sessionId, session] of this.sessions) if (session.expiresAtMs <= nowMs) this.sessions.delete(sessionId);
  }
}

/** The session id in a Cookie header, if any. */
export function sessionFromCookie(header: string | undefined): string | null {
  for (const part of (header ?? '').split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === SESSION_COOKIE) return value.join('=') || null;
  }
  return null;
}
