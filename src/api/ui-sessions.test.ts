import { describe, expect, it } from 'vitest';
import { LOGIN_CODE_TTL_MS, SESSION_TTL_MS, sessionFromCookie, UiSessions } from './ui-sessions.js';

describe('dashboard logins', () => {
  it('a code is good once, within a minute, for a session with the role of its token', () => {
    let now = 1_000;
    const s = new UiSessions(() => now);
    const { code } = s.createCode('read');
    const session = s.redeem(code);
    expect(session?.role).toBe('read');
    expect(s.redeem(code)).toBeNull(); // used
    expect(s.roleOf(session?.sessionId as string)).toBe('read');
    const late = s.createCode('operate');
    now += LOGIN_CODE_TTL_MS;
    expect(s.redeem(late.code)).toBeNull(); // expired
    expect(s.redeem('made-up')).toBeNull();
    now += SESSION_TTL_MS;
    expect(s.roleOf(session?.sessionId as string)).toBeNull(); // the session expired too
  });

  it('reads the session cookie among others', () => {
    expect(sessionFromCookie('a=1; chorus_session=abc-_; b=2')).toBe('abc-_');
    expect(sessionFromCookie('a=1')).toBeNull();
    expect(sessionFromCookie(undefined)).toBeNull();
  });
});
