import express, { type ErrorRequestHandler, type Request, type Response, Router } from 'express';
import { parseCookie, stringifySetCookie } from 'cookie';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Services } from '../composition.js';
import { DomainError, InvalidInput, NotFound, SsoRefused, TooManyRequests } from '../domain/errors.js';
import type { SsoRequestRow } from '../store/sso-store.js';
import type { BrowserConnection } from '../services/sign-in-service.js';
import { randomToken, sha256Hex } from '../services/secret-box.js';
import { carriedClientError, problemFor, sendProblem, internalProblem } from '../http/problem.js';
import { rejectUnstorableText } from '../http/unstorable-text.js';
import { page, html } from '../http/html.js';
import { createRateLimiter } from '../http/rate-limit.js';
import { buildSamlLoginRedirect, samlMetadataXml, type SamlConnection } from './saml/service-provider.js';
import { verifySamlResponse } from './saml/pool.js';
import type { OidcConnection } from './oidc/index.js';
import { mePage, refusalPage, testResultPage } from './pages.js';

export const SESSION_COOKIE = 'orgsync_session';
const FLOW_COOKIE = 'orgsync_flow';
/** saml-bindings §3.5: our cap on a POSTed SAMLResponse (the 256 KB), before any parsing. */
const ACS_BODY_LIMIT = 256 * 1024;

type SsoRequestConnection = Parameters<Services['signIn']['refuse']>[0];

export type SsoRouterDeps = { services: Services; config: Pick<Config, 'http' | 'sso'>; logger: Logger };

/**
 * The browser side of SSO (API.md "SSO"): POST /login, /me, the SAML SP and OIDC RP routes and
 * the rollout test link. The protocol checks live in ./saml and ./oidc; what follows them —
 * request match, replay, account, policy, session, audit — in the sign-in service.
 */
export function createSsoRouter(deps: SsoRouterDeps): Router {
  const { services, config } = deps;
  const signIn = services.signIn;
  const publicUrl = config.http.publicUrl;
  const secure = config.sso.secureCookies;
  const r = Router();

  const cookies = (req: Request) => parseCookie(req.headers.cookie ?? '');
  const requestId = (req: Request) => String(req.id ?? '');
  const wantsJson = (req: Request) => req.accepts(['html', 'json']) === 'json';

  /** A random value in a cookie whose hash each request row keeps: the answer must come back to this browser. */
  function browserBinding(req: Request, res: Response): string {
    let v = cookies(req)[FLOW_COOKIE];
    if (!v || !/^[\w-]{43}$/.test(v)) {
      v = randomToken();
      // Lax is enough over http (same-site IdPs in tests); over https the IdP's cross-site form
      // POST (SAML ACS, OIDC form_post) needs SameSite=None, which browsers accept only with Secure.
      res.append('Set-Cookie', stringifySetCookie(FLOW_COOKIE, v, {
        httpOnly: true, secure, sameSite: secure ? 'none' : 'lax', path: '/sso', maxAge: config.sso.requestTtlSeconds,
      }));
    }
    return sha256Hex(v);
  }

  /** The hash of this browser's flow cookie, as `browserBinding` stored it in the request row. */
  const browserHashOf = (req: Request) => sha256Hex(cookies(req)[FLOW_COOKIE] ?? '');

  const samlConn = (c: BrowserConnection): SamlConnection => ({ id: c.id, entityId: c.entityId!, ssoUrl: c.ssoUrl!, certificates: c.certificates, allowIdpInitiated: c.allowIdpInitiated });
  const oidcConn = (c: BrowserConnection): OidcConnection => ({ id: c.id, issuer: c.issuer!, clientId: c.clientId!, clientSecret: c.clientSecret! });
  const redirectUri = (c: { id: string }) => `${publicUrl}/sso/${c.id}/oidc/callback`;

  async function connectionOf(req: Request, type: 'saml' | 'oidc'): Promise<BrowserConnection> {
    const c = await signIn.connection(String(req.params.id));
    if (c.type !== type) throw new NotFound(`${type.toUpperCase()} connection`, c.id);
    return c;
  }

  /** Starts a sign-in (or a test) at the IdP; the request row is written before the browser leaves. */
  async function start(res: Response, req: Request, c: BrowserConnection, purpose: 'login' | 'test', testId: string | null, loginHint: string | null) {
    const browserHash = browserBinding(req, res);
    const now = new Date();
    if (c.type === 'saml') {
      // RelayState names a test run so that even a refused answer can be recorded against it.
      const { url, requestId: id } = buildSamlLoginRedirect(samlConn(c), {
        publicUrl, signing: config.sso.spSigning, ...(testId ? { relayState: `test.${testId}` } : {}), ...(loginHint ? { loginHint } : {}),
      });
      await signIn.beginLogin(c, { id, purpose, browserHash, loginHint, testId }, now);
      return res.redirect(302, url);
    }
    const state = randomToken();
    const nonce = randomToken();
    const codeVerifier = randomToken(48);
    const url = await services.oidc.buildLoginUrl(oidcConn(c), { redirectUri: redirectUri(c), state, nonce, codeVerifier, ...(loginHint ? { loginHint } : {}) });
    await signIn.beginLogin(c, { id: state, purpose, browserHash, loginHint, nonce, codeVerifier, testId }, now);
    return res.redirect(302, url);
  }

  const emailHint = (req: Request): string | null => {
    const e = req.query.email;
    if (e === undefined) return null;
    if (typeof e !== 'string' || e.length > 320 || !e.includes('@')) throw new InvalidInput('invalid query', [{ path: 'email', message: 'must be an email address' }]);
    return e;
  };

  /**
   * Refusals are audited although nobody authenticated (issue 12 §4): per connection and client
   * address a burst of SSO_REFUSAL_AUDIT_BURST rows (20), then SSO_REFUSAL_AUDITS_PER_MINUTE (6); beyond
   * that the refusal page is still shown and the skip is logged. Answers to a rollout test are always
   * recorded (the admin is waiting for them).
   */
  const refusalAudits = createRateLimiter({ perSecond: config.sso.refusalAuditsPerMinute / 60, burst: config.sso.refusalAuditBurst, per: 'this address' });
  async function auditRefusal(req: Request, c: BrowserConnection | SsoRequestConnection, err: SsoRefused, request: SsoRequestRow | null) {
    if (request?.purpose !== 'test') {
      try {
        refusalAudits.take(`${c.id}|${req.socket.remoteAddress ?? ''}`);
      } catch {
        req.log?.warn({ connectionId: c.id, reason: err.reason }, 'SSO refusal not audited: too many refusals from this address');
        return null;
      }
    }
    return signIn.refuse(c, err, request, { now: new Date(), requestId: requestId(req) });
  }

  /** Ends an answer from the IdP: a session and /me, a test result page, or a refusal page (4xx, no cookie, audited). */
  async function finish(req: Response['req'], res: Response, c: BrowserConnection, run: () => Promise<{ answer: Awaited<ReturnType<typeof verifySamlResponse>>; request: SsoRequestRow | null }>, locate: () => Promise<SsoRequestRow | null>) {
    const now = new Date();
    try {
      const { answer, request } = await run();
      const result = await signIn.complete(c, answer, request, { now, requestId: requestId(req) });
      if (result.kind === 'test') {
        // API.md: a refused answer is a 4xx even when it only answered a test; the page is the test's result.
        return res.status(result.run.wouldSucceed ? 200 : 403).type('html')
          .send(testResultPage(result.run, { connectionName: c.name, accountEmail: result.accountEmail, policyName: result.policyName }));
      }
      // The cookie carries the session token signed (HMAC, SECRET_KEY): a forged or truncated cookie is
      // refused before any database read; the database keeps only the token's sha256.
      res.append('Set-Cookie', stringifySetCookie(SESSION_COOKIE, services.box.sign(result.token), { httpOnly: true, secure, sameSite: 'lax', path: '/', maxAge: result.maxAgeSeconds }));
      return res.redirect(303, '/me');
    } catch (err) {
      if (!(err instanceof SsoRefused)) throw err;
      const request = await locate().catch(() => null);
      const run = await auditRefusal(req, c, err, request);
      if (run) return res.status(err.status).type('html').send(testResultPage(run, { connectionName: c.name }));
      return sendRefusal(req, res, err);
    }
  }

  function sendRefusal(req: Request, res: Response, err: SsoRefused) {
    res.status(err.status);
    if (wantsJson(req)) {
      return sendProblem(res, { type: `https://orgsync.dev/problems/sso-refused`, title: 'Sign-in refused', status: err.status, detail: err.message, reason: err.reason, requestId: requestId(req) });
    }
    return res.type('html').send(refusalPage({ status: err.status, reason: err.reason, message: err.message, requestId: requestId(req), checks: err.checks }));
  }

  // --- sign-in decision and session -------------------------------------------------------

  const loginLimiter = createRateLimiter({ perSecond: config.sso.loginRatePerSecond, burst: config.sso.loginRateBurst, per: 'this address' });
  // Unstorable text (NUL, lone surrogates) in the path, query or a form: a 400 naming it (issue 12 §1).
  r.use(['/login', '/me', '/logout', '/sso'], rejectUnstorableText);
  r.post('/login', express.json({ limit: 4096 }), express.urlencoded({ extended: false, limit: 4096 }), rejectUnstorableText, async (req, res) => {
    loginLimiter.take(req.socket.remoteAddress ?? 'unknown');
    const email = (req.body as { email?: unknown } | undefined)?.email;
    if (typeof email !== 'string' || email.length > 320) throw new InvalidInput('invalid body', [{ path: 'email', message: 'required: the email address of the person signing in' }]);
    res.setHeader('Cache-Control', 'no-store');
    res.json(await signIn.decide(email, new Date()));
  });

  /** The session token from a validly signed cookie, else null. */
  const sessionToken = (req: Request): string | null => {
    const v = cookies(req)[SESSION_COOKIE];
    return v ? services.box.verify(v) : null;
  };

  r.get('/me', async (req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    const token = sessionToken(req);
    const me = token ? await signIn.me(token, new Date()) : null;
    if (!me) {
      if (wantsJson(req)) return sendProblem(res, { type: 'https://orgsync.dev/problems/unauthorized', title: 'Unauthorized', status: 401, detail: 'not signed in (no valid session cookie)' });
      return res.status(401).type('html').send(page('Not signed in', html`<p>You are not signed in. Start at your organization's sign-in page.</p>`));
    }
    if (wantsJson(req)) return res.json(me);
    return res.type('html').send(mePage(me));
  });

  r.post('/logout', async (req, res) => {
    const token = sessionToken(req);
    if (token) await signIn.logout(token, new Date());
    res.append('Set-Cookie', stringifySetCookie(SESSION_COOKIE, '', { httpOnly: true, secure, sameSite: 'lax', path: '/', maxAge: 0 }));
    if (wantsJson(req)) return res.status(204).end();
    return res.redirect(303, '/me');
  });

  // --- SAML 2.0 SP ---------------------------------------------------------------------------

  r.get('/sso/:id/saml/metadata', async (req, res) => {
    const c = await connectionOf(req, 'saml');
    res.type('application/samlmetadata+xml').send(samlMetadataXml(samlConn(c), { publicUrl, signing: config.sso.spSigning }));
  });

  r.get('/sso/:id/saml/login', async (req, res) => {
    const c = await connectionOf(req, 'saml');
    await start(res, req, c, 'login', null, emailHint(req));
  });

  r.post('/sso/:id/saml/acs', express.urlencoded({ extended: false, limit: ACS_BODY_LIMIT + 4096, parameterLimit: 10 }), rejectUnstorableText, async (req, res) => {
    const c = await connectionOf(req, 'saml');
    const body = (req.body ?? {}) as Record<string, unknown>;
    const relayState = typeof body.RelayState === 'string' ? body.RelayState : '';
    await finish(req, res, c, async () => {
      if (!req.is('application/x-www-form-urlencoded')) throw new SsoRefused('bad-request', 'the ACS takes an HTML form post (application/x-www-form-urlencoded) with SAMLResponse', [], 400);
      if (typeof body.SAMLResponse !== 'string' || !body.SAMLResponse) throw new SsoRefused('bad-request', 'no SAMLResponse in the form', [], 400);
      const answer = await verifySamlResponse(samlConn(c), body.SAMLResponse, {
        publicUrl, clockSkewSeconds: config.sso.clockSkewSeconds, allowSha1: config.sso.allowSha1, verifyTimeoutMs: config.sso.verifyTimeoutMs, now: new Date(),
      });
      let request: SsoRequestRow | null = null;
      if (answer.inResponseTo !== null) {
        request = await signIn.consumeRequest(c, answer.inResponseTo, new Date());
        if (!request) {
          throw new SsoRefused('unknown-request', `InResponseTo ${answer.inResponseTo} is not a sign-in we started (unknown, already answered, or older than ${config.sso.requestTtlSeconds} s)`,
            [...answer.checks, { name: 'request', passed: false, detail: `InResponseTo ${answer.inResponseTo} does not match an open request` }], 403);
        }
        // Login CSRF (issue 12 §4): an answer to an SP-initiated sign-in must come back to the browser
        // that started it — the flow cookie whose hash the request row keeps, as on the OIDC callback.
        // Else an answer obtained by an attacker, posted from the victim's browser, would sign the
        // victim in as the attacker.
        if (request.browserHash !== browserHashOf(req)) {
          throw new SsoRefused('browser-mismatch', 'this sign-in was started in another browser (or its cookie was lost); start again here',
            [...answer.checks, { name: 'request', passed: false, detail: 'the answer belongs to a sign-in started in another browser session' }], 403);
        }
      }
      return { answer, request };
    }, async () => {
      // A refused answer to a rollout test is still that test's result (RelayState names it).
      const m = /^test\.([0-9a-f-]{36})$/.exec(relayState);
      return m ? { id: '', orgId: c.orgId, connectionId: c.id, purpose: 'test', testId: m[1]!, browserHash: '', loginHint: null, nonce: null, codeVerifier: null, createdAt: new Date(), expiresAt: new Date(), consumedAt: null } : null;
    });
  });

  // --- OIDC RP -------------------------------------------------------------------------------

  r.get('/sso/:id/oidc/login', async (req, res) => {
    const c = await connectionOf(req, 'oidc');
    await start(res, req, c, 'login', null, emailHint(req));
  });

  const callback = async (req: Request, res: Response) => {
    const c = await connectionOf(req, 'oidc');
    // response_mode=form_post (OAuth 2.0 Form Post Response Mode) or the query (RFC 6749 §4.1.2).
    const params = req.method === 'POST'
      ? new URLSearchParams(Object.entries((req.body ?? {}) as Record<string, unknown>).filter(([, v]) => typeof v === 'string') as [string, string][])
      : new URLSearchParams(req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?') + 1) : '');
    const state = params.get('state');
    const browserHash = browserHashOf(req);
    await finish(req, res, c, async () => {
      if (!state) throw new SsoRefused('missing-state', 'the answer carries no state: it does not belong to a sign-in we started', [{ name: 'state', passed: false, detail: 'no state parameter' }], 400);
      const request = await signIn.consumeRequest(c, state, new Date());
      if (!request) throw new SsoRefused('state-mismatch', 'the state does not match a sign-in we started (unknown, already used, or expired)', [{ name: 'state', passed: false, detail: 'no open request with this state' }], 403);
      if (request.browserHash !== browserHash) {
        throw new SsoRefused('browser-mismatch', 'this sign-in was started in another browser (or its cookie was lost); start again here', [{ name: 'state', passed: false, detail: 'state belongs to another browser session' }], 403);
      }
      const answer = await services.oidc.completeCallback(oidcConn(c), {
        redirectUri: redirectUri(c), params, expectedState: state, expectedNonce: request.nonce!, codeVerifier: request.codeVerifier!, now: new Date(), clockSkewSeconds: config.sso.clockSkewSeconds,
      });
      return { answer, request };
    }, async () => (state ? signIn.findRequest(c, state) : null));
  };
  r.get('/sso/:id/oidc/callback', callback);
  r.post('/sso/:id/oidc/callback', express.urlencoded({ extended: false, limit: 64 * 1024, parameterLimit: 20 }), rejectUnstorableText, callback);

  // --- rollout test ------------------------------------------------------------------------

  r.get('/sso/test/:token', async (req, res) => {
    const { run, conn } = await signIn.pendingTest(String(req.params.token), new Date());
    await start(res, req, conn, 'test', run.id, null);
  });

  r.use(errorHandler(deps, sendRefusal, auditRefusal));
  return r;
}

type BodyParserError = Error & { type?: string; status?: number };

/**
 * One mapping for the browser routes: refusals and client errors are pages (or problem+json
 * for API clients) with a 4xx; a refused ACS body (too large, malformed) is audited as a
 * refusal of its connection too.
 */
function errorHandler(
  deps: SsoRouterDeps, sendRefusal: (req: Request, res: Response, err: SsoRefused) => unknown,
  auditRefusal: (req: Request, c: SsoRequestConnection, err: SsoRefused, request: null) => Promise<unknown>,
): ErrorRequestHandler {
  return async (err: unknown, req, res, next) => {
    if (!req.path.startsWith('/sso/') && !['/login', '/me', '/logout'].includes(req.path)) return next(err);
    const bp = err as BodyParserError;
    if (!req.path.startsWith('/sso/') && bp?.type && typeof bp.status === 'number' && bp.status < 500) {
      return sendProblem(res, { type: 'https://orgsync.dev/problems/bad-request', title: 'Bad request', status: bp.status, detail: bp.message, requestId: String(req.id ?? '') });
    }
    let refused: SsoRefused | null = err instanceof SsoRefused ? err : null;
    if (bp?.type === 'entity.too.large') refused = new SsoRefused('too-large', 'the answer is larger than 256 KB', [], 413);
    else if (bp?.type === 'entity.parse.failed' || bp?.type === 'parameters.too.many' || bp?.type === 'encoding.unsupported' || bp?.type === 'charset.unsupported') {
      refused = new SsoRefused('bad-request', `the form could not be read: ${bp.message}`, [], 400);
    }
    if (refused) {
      const m = /^\/sso\/([0-9a-f-]{36})\/(saml\/acs|oidc\/callback)$/.exec(req.path);
      if (m && !(err instanceof SsoRefused)) {
        const conn = await deps.services.signIn.connection(m[1]!).catch(() => null);
        if (conn) await auditRefusal(req, conn, refused, null).catch((e) => req.log?.error({ err: e }, 'could not audit a refused SSO answer'));
      }
      return sendRefusal(req, res, refused);
    }
    if (err instanceof DomainError) {
      const p = problemFor(err);
      if (err instanceof TooManyRequests) res.setHeader('Retry-After', String(err.retryAfterSeconds));
      if (p.status >= 500) (req.log ?? deps.logger).error({ err }, 'request failed');
      if (req.accepts(['html', 'json']) === 'json' || req.method === 'POST' && req.path === '/login') return sendProblem(res, { ...p, requestId: String(req.id ?? '') });
      return res.status(p.status).type('html').send(page(p.title, html`<p>${p.detail}</p><p>Request id <code>${String(req.id ?? '')}</code></p>`));
    }
    const carried = carriedClientError(err);
    if (carried) return sendProblem(res, { type: 'https://orgsync.dev/problems/bad-request', title: 'Bad request', status: carried.status, detail: carried.detail, requestId: String(req.id ?? '') });
    (req.log ?? deps.logger).error({ err }, 'unhandled error');
    return sendProblem(res, { ...internalProblem(), requestId: String(req.id ?? '') });
  };
}
