import type { Request, Response } from 'express';
import { parseCookie, stringifySetCookie } from 'cookie';
import type { Config } from '../../config.js';
import type { Services } from '../../composition.js';
import type { RequestContext } from '../../services/context.js';
import { randomToken } from '../../services/secret-box.js';

/**
 * Console sessions and CSRF tokens.
 *
 * The session cookie holds the admin key itself, sealed with the service's secret box
 * (AES-256-GCM, so it can be neither read nor altered), with an expiry and a random session id.
 * Nothing is stored server-side: every request opens the cookie and authenticates the key again,
 * so revoking the key (DELETE admin-keys/{id}) ends every console session that uses it.
 *
 * CSRF: each POST form carries `box.sign("console-csrf." + sid)` (HMAC-SHA-256), checked against
 * the session's id. Before sign-in there is no session, so the sign-in form is bound the same way
 * to a short-lived random cookie (login CSRF). Both cookies are SameSite=Strict and HttpOnly.
 */
export const CONSOLE_COOKIE = 'orgsync_console';
export const CONSOLE_LOGIN_COOKIE = 'orgsync_console_login';
const COOKIE_PATH = '/console';
const LOGIN_COOKIE_SECONDS = 30 * 60;
const NONCE = /^[\w-]{43}$/;

type Sealed = { v: 1; key: string; sid: string; exp: number };

export type ConsoleSession = {
  orgId: string;
  keyId: string;
  sid: string;
  expiresAt: Date;
  csrf: string;
  ctx: RequestContext;
};

/** Why there is no session (shown on the sign-in page). */
export type NoSession = { reason: 'none' | 'expired' | 'revoked' | 'unreadable' };

export type ConsoleSessions = ReturnType<typeof createConsoleSessions>;

export function createConsoleSessions(deps: { services: Services; config: Pick<Config, 'sso'> }) {
  const { box, orgs } = deps.services;
  const secure = deps.config.sso.secureCookies;
  const ttlMs = deps.config.sso.consoleSessionMinutes * 60_000;
  const cookies = (req: Request) => parseCookie(req.headers.cookie ?? '');
  const csrfFor = (scope: string, id: string) => box.sign(`console-csrf.${scope}.${id}`);
  const csrfMatches = (token: unknown, scope: string, id: string) =>
    typeof token === 'string' && token.length < 512 && box.verify(token) === `console-csrf.${scope}.${id}`;

  function clear(res: Response): void {
    res.append('Set-Cookie', stringifySetCookie(CONSOLE_COOKIE, '', { httpOnly: true, secure, sameSite: 'strict', path: COOKIE_PATH, maxAge: 0 }));
  }

  return {
    /** Signs in with an admin key: null when the key is not valid now. */
    async open(res: Response, adminKey: string, now: Date): Promise<{ orgId: string; keyId: string } | null> {
      const key = await orgs.authenticateAdminKey(adminKey, now);
      if (!key) return null;
      const sealed: Sealed = { v: 1, key: adminKey, sid: randomToken(), exp: now.getTime() + ttlMs };
      res.append('Set-Cookie', stringifySetCookie(CONSOLE_COOKIE, box.encrypt(JSON.stringify(sealed)), {
        httpOnly: true, secure, sameSite: 'strict', path: COOKIE_PATH, maxAge: Math.floor(ttlMs / 1000),
      }));
      // The pre-sign-in binding has served its purpose.
      res.append('Set-Cookie', stringifySetCookie(CONSOLE_LOGIN_COOKIE, '', { httpOnly: true, secure, sameSite: 'strict', path: COOKIE_PATH, maxAge: 0 }));
      return key;
    },

    /**
     * The session of this request, re-authenticating the sealed key. A cookie that is expired,
     * unreadable (e.g. SECRET_KEY rotated) or holds a revoked key is cleared.
     */
    async current(req: Request, res: Response, now: Date): Promise<ConsoleSession | NoSession> {
      const raw = cookies(req)[CONSOLE_COOKIE];
      if (!raw) return { reason: 'none' };
      let sealed: Sealed;
      try {
        sealed = JSON.parse(box.decrypt(raw)) as Sealed;
        if (sealed.v !== 1 || typeof sealed.key !== 'string' || typeof sealed.sid !== 'string' || typeof sealed.exp !== 'number') throw new Error('shape');
      } catch {
        clear(res);
        return { reason: 'unreadable' };
      }
      if (sealed.exp <= now.getTime()) {
        clear(res);
        return { reason: 'expired' };
      }
      const key = await orgs.authenticateAdminKey(sealed.key, now);
      if (!key) {
        clear(res);
        return { reason: 'revoked' };
      }
      return {
        orgId: key.orgId, keyId: key.keyId, sid: sealed.sid, expiresAt: new Date(sealed.exp), csrf: csrfFor('session', sealed.sid),
        ctx: { orgId: key.orgId, actor: { kind: 'admin-key', keyId: key.keyId }, requestId: String(req.id ?? ''), now },
      };
    },

    close: clear,

    /** The session's CSRF token matches the one the form sent. */
    csrfOk: (session: ConsoleSession, token: unknown) => csrfMatches(token, 'session', session.sid),

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
