import { describe, expect, it } from 'vitest';
import { LOGIN_CODE_TTL_MS, SESSION_TTL_MS, sessionFromCookie, UiSessions } from './ui-sessions.js';

const READER = { tokenId: '0123456789ab', role: 'read' } as const;
const OPERATOR = { tokenId: 'ba9876543210', role: 'operate' } as const;
const names = (id: string) => (id === OPERATOR.tokenId ? 'ops' : null);

describe('dashboard logins', () => {
  it('a code is good once, within a minute, for a session with the role of its token', () => {
    let now = 1_000;
    const s = new UiSessions(() => now);
    const { code } = s.createCode(READER);
    const session = s.redeem(code);
    expect(session?.role).toBe('read');
    expect(s.redeem(code)).toBeNull(); // used
    expect(s.callerOf(session?.sessionId as string)).toEqual(READER);
    const late = s.createCode(OPERATOR);
    now += LOGIN_CODE_TTL_MS;
    expect(s.redeem(late.code)).toBeNull(); // expired
    expect(s.redeem('made-up')).toBeNull();
    now += SESSION_TTL_MS;
    expect(s.callerOf(session?.sessionId as string)).toBeNull(); // the session expired too
  });

  it('revoking a token ends its sessions and unused codes at once, and only its own', () => {
    const s = new UiSessions(() => 1_000);
    const mine = s.redeem(s.createCode(OPERATOR).code);
    const unused = s.createCode(OPERATOR);
    const other = s.redeem(s.createCode(READER).code);
    const otherUnused = s.createCode(READER);
    expect(s.endAllOf(OPERATOR.tokenId)).toEqual({ sessions: 1, codes: 1 });
    expect(s.callerOf(mine?.sessionId as string)).toBeNull();
    expect(s.redeem(unused.code)).toBeNull();
    expect(s.callerOf(other?.sessionId as string)).toEqual(READER);
    expect(s.redeem(otherUnused.code)?.role).toBe('read');
    expect(s.endAllOf(OPERATOR.tokenId)).toEqual({ sessions: 0, codes: 0 });
  });

  it('lists live sessions by a public id with the token that made each, never the cookie; ends one by that id', () => {
    let now = Date.parse('2026-12-06T00:00:00.000Z');
    const s = new UiSessions(() => now);
    const first = s.redeem(s.createCode(OPERATOR).code);
    now += 1_000;
    const second = s.redeem(s.createCode(OPERATOR).code);
    const listed = s.list(names);
    expect(listed).toEqual([
      { id: first?.publicId, role: 'operate', tokenId: OPERATOR.tokenId, tokenName: 'ops', createdAt: '2026-12-06T00:00:00.000Z', expiresAt: '2026-12-06T12:00:00.000Z' },
      { id: second?.publicId, role: 'operate', tokenId: OPERATOR.tokenId, tokenName: 'ops', createdAt: '2026-12-06T00:00:01.000Z', expiresAt: '2026-12-06T12:00:01.000Z' },
    ]);
    expect(first?.publicId).toMatch(/^ui-[0-9a-f]{10}$/);
    expect(first?.publicId).not.toBe(second?.publicId);
    expect(JSON.stringify(listed)).not.toContain(first?.sessionId);
    expect(s.end(first?.publicId as string)).toBe(true);
    expect(s.end(first?.publicId as string)).toBe(false);
    expect(s.end(first?.sessionId as string)).toBe(false); // the cookie is not an id
    expect(s.callerOf(first?.sessionId as string)).toBeNull();
    expect(s.callerOf(second?.sessionId as string)?.role).toBe('operate');
    now += SESSION_TTL_MS;
    expect(s.list(names)).toEqual([]); // expired sessions are not listed
  });

  it('reads the session cookie among others', () => {
    expect(sessionFromCookie('a=1; chorus_session=abc-_; b=2')).toBe('abc-_');
    expect(sessionFromCookie('a=1')).toBeNull();
    expect(sessionFromCookie(undefined)).toBeNull();
  });
});
