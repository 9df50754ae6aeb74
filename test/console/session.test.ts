import type { Request, Response } from 'express';
import { describe, expect, it } from 'vitest';
import { createSecretBox } from '../../src/services/secret-box.js';
import type { Services } from '../../src/composition.js';
import { CONSOLE_COOKIE, createConsoleSessions, isSession } from '../../src/admin/console/session.js';

/** The console session cookie without HTTP or a database: sealing, expiry, re-authentication, Secure, CSRF binding. */
const KEY = 'osk_valid_key_for_tests';
const box = createSecretBox('x'.repeat(32));

function harness(opts: { secure: boolean; minutes?: number }) {
  const valid = new Set([KEY]);
  const services = {
    box,
    orgs: { authenticateAdminKey: async (token: string) => (valid.has(token) ? { orgId: 'org-1', keyId: 'key-1' } : null) },
  } as unknown as Services;
  const sessions = createConsoleSessions({ services, config: { sso: { secureCookies: opts.secure, consoleSessionMinutes: opts.minutes ?? 30 } as never } });
  const response = () => {
    const cookies: string[] = [];
    return { cookies, res: { append: (_h: string, v: string) => { cookies.push(v); } } as unknown as Response };
  };
  const requestWith = (cookie: string) => ({ headers: { cookie }, id: 'req-1' }) as unknown as Request;
  return { sessions, valid, response, requestWith };
}

const cookieValue = (setCookie: string) => setCookie.split(';')[0]!;
/** One character of the sealed value changed (inside the ciphertext, so every bit counts). */
const flip = (cookie: string) => {
  const i = cookie.length - 10;
  return cookie.slice(0, i) + (cookie[i] === 'A' ? 'B' : 'A') + cookie.slice(i + 1);
};

describe('console session cookie', () => {
  it('seals the key (not readable, Secure when PUBLIC_URL is https), and re-authenticates it on every request', async () => {
    const h = harness({ secure: true });
    const { res, cookies } = h.response();
    const now = new Date('2030-01-01T00:00:00Z');
    expect(await h.sessions.open(res, KEY, now)).toEqual({ orgId: 'org-1', keyId: 'key-1' });
    const set = cookies.find((c) => c.startsWith(`${CONSOLE_COOKIE}=`))!;
    expect(set).toMatch(/HttpOnly/);
    expect(set).toMatch(/Secure/);
    expect(set).toMatch(/SameSite=Strict/);
    expect(set).toMatch(/Max-Age=1800/);
    expect(set).not.toContain(KEY);

    const s = await h.sessions.current(h.requestWith(cookieValue(set)), h.response().res, new Date(now.getTime() + 60_000));
    expect(isSession(s)).toBe(true);
    if (!isSession(s)) return;
    expect(s.ctx).toMatchObject({ orgId: 'org-1', actor: { kind: 'admin-key', keyId: 'key-1' }, requestId: 'req-1' });
    expect(h.sessions.csrfOk(s, s.csrf)).toBe(true);
    expect(h.sessions.csrfOk(s, box.sign('console-csrf.session.other-sid'))).toBe(false);
    expect(h.sessions.csrfOk(s, undefined)).toBe(false);

    // Expired, revoked, tampered: no session, and the cookie is cleared.
    for (const [label, cookie, at, reason] of [
      ['expired', cookieValue(set), new Date(now.getTime() + 31 * 60_000), 'expired'],
      ['tampered', flip(cookieValue(set)), now, 'unreadable'],
    ] as const) {
      const out = h.response();
      const r = await h.sessions.current(h.requestWith(cookie), out.res, at);
      expect(r, label).toEqual({ reason });
      expect(out.cookies.join(), label).toMatch(/Max-Age=0/);
    }
    h.valid.delete(KEY);
    expect(await h.sessions.current(h.requestWith(cookieValue(set)), h.response().res, now)).toEqual({ reason: 'revoked' });
  });

  it('a wrong key opens nothing; no cookie at all is "none"', async () => {
    const h = harness({ secure: false });
    const { res, cookies } = h.response();
    expect(await h.sessions.open(res, 'osk_wrong', new Date())).toBeNull();
    expect(cookies).toEqual([]);
    expect(await h.sessions.current(h.requestWith(''), h.response().res, new Date())).toEqual({ reason: 'none' });
  });

  it('binds the sign-in form to its own cookie (login CSRF)', () => {
    const h = harness({ secure: false });
    const { res, cookies } = h.response();
    const token = h.sessions.loginCsrf(h.requestWith(''), res);
    const nonceCookie = cookieValue(cookies[0]!);
    expect(h.sessions.loginCsrfOk(h.requestWith(nonceCookie), token)).toBe(true);
    const other = h.response();
    h.sessions.loginCsrf(h.requestWith(''), other.res);
    expect(h.sessions.loginCsrfOk(h.requestWith(cookieValue(other.cookies[0]!)), token), 'another browser\'s token').toBe(false);
    expect(h.sessions.loginCsrfOk(h.requestWith(''), token), 'no cookie').toBe(false);
  });
});
