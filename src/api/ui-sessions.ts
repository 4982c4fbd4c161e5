// How a browser logs in to the dashboard (`chorus ui`): the CLI, holding a token, asks the
// daemon for a login code; the code goes in the URL it prints, is good for one use within
// a minute, and is exchanged by GET /ui/login for a session cookie with the same role as
// the token that asked. The long-lived token never appears in a URL. Codes and sessions
// live in the daemon's memory only: a restart logs every browser out.
import { randomBytes } from 'node:crypto';
import type { Role } from './tokens.js';

export const LOGIN_CODE_TTL_MS = 60_000;
export const SESSION_TTL_MS = 12 * 3_600_000;
/** Outstanding codes and live sessions kept at most (the oldest go first). */
export const MAX_CODES = 100;
export const MAX_SESSIONS = 1_000;
export const SESSION_COOKIE = 'chorus_session';

interface Grant {
  role: Role;
  expiresAtMs: number;
}

export class UiSessions {
  private readonly codes = new Map<string, Grant>();
  private readonly sessions = new Map<string, Grant>();

  constructor(private readonly now: () => number = Date.now) {}

  /** A one-use login code for `role`, valid for a minute. */
  createCode(role: Role): { code: string; expiresAtMs: number } {
    this.prune();
    const code = randomBytes(24).toString('base64url');
    const expiresAtMs = this.now() + LOGIN_CODE_TTL_MS;
    this.codes.set(code, { role, expiresAtMs });
    if (this.codes.size > MAX_CODES) this.codes.delete(this.codes.keys().next().value as string);
    return { code, expiresAtMs };
  }

  /** Exchanges a code (once) for a new session id; null when it is unknown, used or expired. */
  redeem(code: string): { sessionId: string; role: Role; expiresAtMs: number } | null {
    const grant = this.codes.get(code);
    this.codes.delete(code);
    if (!grant || grant.expiresAtMs <= this.now()) return null;
    const sessionId = randomBytes(32).toString('base64url');
    const expiresAtMs = this.now() + SESSION_TTL_MS;
    this.sessions.set(sessionId, { role: grant.role, expiresAtMs });
    if (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value as string);
    return { sessionId, role: grant.role, expiresAtMs };
  }

  roleOf(sessionId: string): Role | null {
    const grant = this.sessions.get(sessionId);
    if (!grant) return null;
    if (grant.expiresAtMs <= this.now()) {
      this.sessions.delete(sessionId);
      return null;
    }
    return grant.role;
  }

  private prune(): void {
    const nowMs = this.now();
    for (const [code, grant] of this.codes) if (grant.expiresAtMs <= nowMs) this.codes.delete(code);
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
