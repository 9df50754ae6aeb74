import type { Request, Response } from 'express';
import { parseCookie, stringifySetCookie } from 'cookie';
import type { Config } from '../../config.js';
import type { Services } from '../../composition.js';
import type { RequestContext } from '../../services/context.js';
import { randomToken } from '../../services/secret-box.js';

/**
 * Console sessions and CSRF tokens.
 *
 * The session lives in the database (src/services/console-session-service.ts). The cookie
 * carries only its random token, signed (HMAC-SHA-256, SECRET_KEY) so a forged or truncated
 * cookie is refused before any database read; the database keeps the token's sha256. No admin
 * key, sealed or not, is in the cookie (issue 12 §4: it used to be, and signing out could not
 * end a session). The session ends at sign-out, when its admin key is revoked, and at expiry.
 *
 * CSRF: each POST form carries `box.sign("console-csrf.session." + session id)` (HMAC-SHA-256),
 * checked against the session. Before sign-in there is no session, so the sign-in form is bound
 * the same way to a short-lived random cookie (login CSRF). Both cookies are SameSite=Strict and
 * HttpOnly.
 */
export const CONSOLE_COOKIE = 'orgsync_console';
export const CONSOLE_LOGIN_COOKIE = 'orgsync_console_login';
const COOKIE_PATH = '/console';
const LOGIN_COOKIE_SECONDS = 30 * 60;
const NONCE = /^[\w-]{43}$/;

export type ConsoleSession = {
  orgId: string;
  keyId: string;
  sessionId: string;
  /** The cookie's token (sign-out ends the session it names). */
  token: string;
  expiresAt: Date;
  csrf: string;
  ctx: RequestContext;
};

/** Why there is no session (shown on the sign-in page). */
export type NoSession = { reason: 'none' | 'expired' | 'ended' | 'revoked' | 'unreadable' };

export type ConsoleSessions = ReturnType<typeof createConsoleSessions>;

export function createConsoleSessions(deps: { services: Services; config: Pick<Config, 'sso'> }) {
  const { box, consoleSessions } = deps.services;
  const secure = deps.config.sso.secureCookies;
  const ttlMs = deps.config.sso.consoleSessionMinutes * 60_000;
  const cookies = (req: Request) => parseCookie(req.headers.cookie ?? '');
  const csrfFor = (scope: string, id: string) => box.sign(`console-csrf.${scope}.${id}`);
  const csrfMatches = (token: unknown, scope: string, id: string) =>
    typeof token === 'string' && token.length < 512 && box.verify(token) === `console-csrf.${scope}.${id}`;

  function clear(res: Response): void {
    res.append('Set-Cookie', stringifySetCookie(CONSOLE_COOKIE, '', { httpOnly: true, secure, sameSite: 'strict', path: COOKIE_PATH, maxAge: 0 }));
  }

  /** The token of a validly signed session cookie; null when absent, '' when present but not ours. */
  function cookieToken(req: Request): string | null {
    const raw = cookies(req)[CONSOLE_COOKIE];
    if (!raw) return null;
    const token = raw.length < 256 ? box.verify(raw) : null;
    return token && NONCE.test(token) ? token : '';
  }

  return {
    /** Signs in with an admin key: null when the key is not valid now. */
    async open(res: Response, adminKey: string, now: Date): Promise<{ orgId: string; keyId: string } | null> {
      const s = await consoleSessions.open(adminKey, now, ttlMs);
      if (!s) return null;
      res.append('Set-Cookie', stringifySetCookie(CONSOLE_COOKIE, box.sign(s.token), {
        httpOnly: true, secure, sameSite: 'strict', path: COOKIE_PATH, maxAge: Math.floor(ttlMs / 1000),
      }));
      // The pre-sign-in binding has served its purpose.
      res.append('Set-Cookie', stringifySetCookie(CONSOLE_LOGIN_COOKIE, '', { httpOnly: true, secure, sameSite: 'strict', path: COOKIE_PATH, maxAge: 0 }));
      return { orgId: s.orgId, keyId: s.keyId };
    },

    /**
     * The session of this request. A cookie that is not ours (forged, or SECRET_KEY rotated), or
     * names a session that expired, was signed out or whose key was revoked, is cleared.
     */
    async current(req: Request, res: Response, now: Date): Promise<ConsoleSession | NoSession> {
      const token = cookieToken(req);
      if (token === null) return { reason: 'none' };
      if (!token) {
        clear(res);
        return { reason: 'unreadable' };
      }
      const s = await consoleSessions.resume(token, now);
      if (!s.ok) {
        clear(res);
        return { reason: s.reason === 'unknown' ? 'ended' : s.reason };
      }
      return {
        orgId: s.orgId, keyId: s.keyId, sessionId: s.sessionId, token, expiresAt: s.expiresAt, csrf: csrfFor('session', s.sessionId),
        ctx: { orgId: s.orgId, actor: { kind: 'admin-key', keyId: s.keyId }, requestId: String(req.id ?? ''), now },
      };
    },

    /** Ends the session in the database and clears the cookie. */
    async close(res: Response, session: ConsoleSession | null, now: Date): Promise<void> {
      if (session) await consoleSessions.close(session.token, now);
      clear(res);
    },

    /** The session's CSRF token matches the one the form sent. */
    csrfOk: (session: ConsoleSession, token: unknown) => csrfMatches(token, 'session', session.sessionId),

    /** The token for the sign-in form, bound to a random cookie set (or kept) here. */
    loginCsrf(req: Request, res: Response): string {
      let nonce = cookies(req)[CONSOLE_LOGIN_COOKIE];
      if (!nonce || !NONCE.test(nonce)) {
        nonce = randomToken();
        res.append('Set-Cookie', stringifySetCookie(CONSOLE_LOGIN_COOKIE, nonce, {
          httpOnly: true, secure, sameSite: 'strict', path: COOKIE_PATH, maxAge: LOGIN_COOKIE_SECONDS,
        }));
      }
      return csrfFor('login', nonce);
    },

    loginCsrfOk(req: Request, token: unknown): boolean {
      const nonce = cookies(req)[CONSOLE_LOGIN_COOKIE];
      return Boolean(nonce && NONCE.test(nonce)) && csrfMatches(token, 'login', nonce!);
    },
  };
}

export const isSession = (s: ConsoleSession | NoSession): s is ConsoleSession => 'orgId' in s;
