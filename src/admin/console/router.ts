import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Response, Router } from 'express';
import type { Config } from '../../config.js';
import type { Logger } from '../../log.js';
import type { Services } from '../../composition.js';
import { Conflict, DomainError, InvalidInput, NotFound, PolicyViolation, RULES, TooManyRequests, type FieldProblem } from '../../domain/errors.js';
import { parseEmail } from '../../domain/identity.js';
import type { RequestContext } from '../../services/context.js';
import { carriedClientError, problemFor } from '../../http/problem.js';
import { createRateLimiter } from '../../http/rate-limit.js';
import { rejectUnstorableText } from '../../http/unstorable-text.js';
import { fieldProblems } from '../../http/mount.js';
import { html } from '../../http/html.js';
import { createSsoConnectionBody } from '../schemas.js';
import { createConsoleSessions, isSession, type ConsoleSession, type NoSession } from './session.js';
import { consolePage, type ConsoleNav } from './pages-layout.js';
import { signInPage, type SignInMessage } from './pages-sign-in.js';
import {
  connectionPage, connectionsPage, testResultConsolePage, EMPTY_CONNECTION_FORM,
  type ConnectionForm, type ConnectionView, type FormError, type PolicyRef,
} from './pages-sso.js';
import { policiesPage, policyPage, type MoveForm, type PolicyView } from './pages-policies.js';

export type ConsoleRouterDeps = { services: Services; config: Pick<Config, 'http' | 'sso'>; logger: Logger };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Metadata XML may be up to 512 KiB (the API's limit), plus a certificate and the small fields. */
const FORM_LIMIT = 640 * 1024;
const MAX_EMAILS = 100;
const TESTS_ON_OVERVIEW = 5;
const MEMBERS_ON_OVERVIEW = 10;
const PAGE = 50;

type Handler = (req: Request, res: Response, s: ConsoleSession) => Promise<unknown>;

/**
 * The admin console (`/console`): server-rendered HTML over the same services as the admin API,
 * signed in with an admin key (see ./session.ts for the cookie and CSRF scheme). No script runs
 * on these pages; every form works without it.
 */
export function createConsoleRouter(deps: ConsoleRouterDeps): Router {
  const { services, config } = deps;
  const sessions = createConsoleSessions({ services, config });
  const outer = Router();
  const r = Router();
  // Unstorable text (NUL, lone surrogates) in a field is the form's 400 page, not a 500 (issue 12 §1).
  const parseForm = express.urlencoded({ extended: false, limit: FORM_LIMIT, parameterLimit: 20 });
  const form: RequestHandler = (req, res, next) => parseForm(req, res, (err?: unknown) => (err ? next(err) : rejectUnstorableText(req, res, next)));

  /**
   * Console pages allow no script and submit forms only to themselves — and, for the Test
   * buttons, to the identity providers the rollout test redirects to (Chromium applies
   * `form-action` to every redirect after a form submission).
   */
  function send(res: Response, status: number, body: string, formTargets: string[] = []) {
    const targets = [...new Set(formTargets)].join(' ');
    res.setHeader('Content-Security-Policy', [
      "default-src 'none'", "base-uri 'none'", `form-action 'self'${targets ? ` ${targets}` : ''}`, "frame-ancestors 'none'",
      "img-src 'self' data:", "style-src 'unsafe-inline'", "script-src 'none'",
      ...(config.sso.secureCookies ? ['upgrade-insecure-requests'] : []),
    ].join('; '));
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Referrer-Policy', 'same-origin');
    res.status(status).type('html').send(body);
  }

  /** The frame's facts; the org's name is read per page (issue 14 §3: every page says which org it is). */
  const nav = async (s: ConsoleSession, current: ConsoleNav['current']): Promise<ConsoleNav> =>
    ({ csrf: s.csrf, current, orgId: s.orgId, orgName: (await services.orgs.getOrg(s.orgId)).name, expiresAt: s.expiresAt });

  function noSessionMessage(s: NoSession): SignInMessage | null {
    switch (s.reason) {
      case 'expired': return { kind: 'error', text: 'Your console session has expired. Sign in again.' };
      case 'ended': return { kind: 'error', text: 'Your console session has ended (you signed out). Sign in again.' };
      case 'revoked': return { kind: 'error', text: 'Your console session has ended: its admin key is no longer valid (it was revoked). Sign in with a valid key.' };
      case 'unreadable': return { kind: 'error', text: 'Your console session could not be read (the service key may have changed). Sign in again.' };
      case 'none': return null;
    }
  }

  const signIn = (req: Request, res: Response, status: number, message: SignInMessage | null) =>
    send(res, status, signInPage({ csrf: sessions.loginCsrf(req, res), message }));

  /** Runs `handler` with the request's session; no session → the sign-in page (401); a POST must carry the session's CSRF token. */
  const authed = (handler: Handler) => async (req: Request, res: Response) => {
    const s = await sessions.current(req, res, new Date());
    if (!isSession(s)) return signIn(req, res, 401, noSessionMessage(s) ?? { kind: 'info', text: 'Sign in to continue.' });
    if (req.method === 'POST' && !sessions.csrfOk(s, (req.body as Record<string, unknown> | undefined)?.csrf)) {
      return send(res, 403, consolePage('Form refused', html`<div class="notice bad" role="alert"><p><strong>This form did not come from your console session</strong>
(its security token is missing or stale), so nothing was changed.</p><p>Go back, reload the page and try again.</p></div>`, await nav(s, null)));
    }
    return handler(req, res, s);
  };

  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const uuidParam = (req: Request, name: string, what: string) => {
    const v = String(req.params[name] ?? '');
    if (!UUID.test(v)) throw new NotFound(what, v);
    return v.toLowerCase();
  };
  const cursorOf = (req: Request) => (typeof req.query.cursor === 'string' && req.query.cursor ? req.query.cursor : undefined);

  async function allPolicies(ctx: RequestContext): Promise<PolicyView[]> {
    const out: PolicyView[] = [];
    let cursor: string | undefined;
    do {
      const page = await services.policies.list(ctx, { limit: 100, ...(cursor ? { cursor } : {}) });
      out.push(...page.items);
      cursor = page.next ?? undefined;
    } while (cursor);
    return out;
  }
  const policyRefs = (ps: PolicyView[]): PolicyRef[] => ps.map((p) => ({ id: p.id, name: p.name, enforceSso: p.enforceSso, ssoConnectionId: p.ssoConnectionId }));

  async function connectionNames(ctx: RequestContext): Promise<Map<string, string>> {
    const names = new Map<string, string>();
    let cursor: string | undefined;
    do {
      const page = await services.ssoConnections.list(ctx, { limit: 100, ...(cursor ? { cursor } : {}) });
      for (const c of page.items) names.set(c.id, c.name);
      cursor = page.next ?? undefined;
    } while (cursor);
    return names;
  }

  /** Where a Test button's redirects lead: the IdP's origin. */
  function idpOrigin(c: ConnectionView): string | null {
    const u = (c as { ssoUrl?: string | null; issuer?: string | null }).ssoUrl ?? (c as { issuer?: string | null }).issuer;
    try {
      return u ? new URL(u).origin : null;
    } catch {
      return null;
    }
  }

  // --- sign-in -------------------------------------------------------------------------------

  r.use(rejectUnstorableText);
  r.get('/', async (req, res) => {
    const s = await sessions.current(req, res, new Date());
    if (isSession(s)) return res.redirect(303, '/console/sso');
    const message = noSessionMessage(s);
    return signIn(req, res, message ? 401 : 200, message);
  });

  /**
   * Failed sign-ins per client address (issue 12 §4). Checked before anything else, so an address
   * that used up its attempts learns nothing more about any key until the bucket refills; only
   * failures spend, so admins signing in again and again are never throttled.
   */
  const signInFailures = createRateLimiter({
    perSecond: config.sso.consoleSignInFailuresPerMinute / 60, burst: config.sso.consoleSignInFailuresBurst, per: 'this address',
  });

  r.post('/sign-in', async (req, res, next) => {
    try {
      signInFailures.check(req.socket.remoteAddress ?? 'unknown');
      return next();
    } catch (err) {
      if (!(err instanceof TooManyRequests)) throw err;
      res.setHeader('Retry-After', String(err.retryAfterSeconds));
      return signIn(req, res, 429, {
        kind: 'error', text: `Too many failed sign-ins from your address. Wait ${err.retryAfterSeconds} second${err.retryAfterSeconds === 1 ? '' : 's'} and try again.`,
      });
    }
  }, form, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (!sessions.loginCsrfOk(req, body.csrf)) {
      return signIn(req, res, 403, { kind: 'error', text: 'The sign-in form expired or did not come from this console. Try again.' });
    }
    const key = str(body.adminKey).trim();
    if (!key) return signIn(req, res, 400, { kind: 'error', text: 'Enter an admin key.' });
    const ok = key.length <= 512 ? await sessions.open(res, key, new Date()) : null;
    if (!ok) {
      signInFailures.spend(req.socket.remoteAddress ?? 'unknown');
      return signIn(req, res, 401, { kind: 'error', text: 'That admin key is not valid: it is wrong, or it was revoked. Check it and try again.' });
    }
    req.log?.info({ orgId: ok.orgId, keyId: ok.keyId }, 'console sign-in');
    return res.redirect(303, '/console/sso');
  });

  r.post('/sign-out', form, async (req, res) => {
    const now = new Date();
    const s = await sessions.current(req, res, now);
    if (isSession(s) && !sessions.csrfOk(s, (req.body as Record<string, unknown> | undefined)?.csrf)) {
      return send(res, 403, consolePage('Form refused', html`<div class="notice bad" role="alert"><p>The sign-out form did not come from your console session; you are still signed in.</p></div>`, await nav(s, null)));
    }
    // The session ends in the database: the cookie, if kept or copied, opens nothing any more.
    await sessions.close(res, isSession(s) ? s : null, now);
    return res.redirect(303, '/console');
  });

  // --- SSO connections -----------------------------------------------------------------------

  async function renderConnections(req: Request, res: Response, s: ConsoleSession, status: number, f: ConnectionForm, formError: FormError | null, message?: string) {
    const cursor = cursorOf(req);
    const page = await services.ssoConnections.list(s.ctx, { limit: 20, ...(cursor ? { cursor } : {}) });
    const connections = [];
    for (const c of page.items) {
      const tests = await services.ssoConnections.tests(s.ctx, c.id, { limit: TESTS_ON_OVERVIEW });
      connections.push({ c, tests: tests.items, more: tests.next !== null });
    }
    const policies = policyRefs(await allPolicies(s.ctx));
    return send(res, status, connectionsPage({
      nav: await nav(s, 'sso'), connections, policies, next: page.next, form: f, formError, ...(message ? { status: message } : {}),
    }), page.items.map(idpOrigin).filter((o): o is string => o !== null));
  }

  r.get('/sso', authed(async (req, res, s) => {
    const added = req.query.added === '1' ? 'The connection was added. Paste its SP settings into the identity provider, then press Test.' : undefined;
    return renderConnections(req, res, s, 200, EMPTY_CONNECTION_FORM, null, added);
  }));

  r.post('/sso', form, authed(async (req, res, s) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    const f: ConnectionForm = {
      name: str(b.name), metadataXml: str(b.metadataXml), entityId: str(b.entityId), ssoUrl: str(b.ssoUrl), certificate: str(b.certificate),
      jit: b.jit === 'on', allowIdpInitiated: b.allowIdpInitiated === 'on', rolloutPolicyId: str(b.rolloutPolicyId),
    };
    const opt = (v: string) => (v.trim() ? v : undefined);
    const hand = [f.entityId, f.ssoUrl, f.certificate].some((v) => v.trim());
    const refuse = (status: number, title: string, problems: FieldProblem[]) => renderConnections(req, res, s, status, f, { title, problems });
    if (f.metadataXml.trim() && hand) {
      return refuse(400, 'The connection was not added.', [{ path: 'metadataXml', message: 'paste the metadata XML or fill in the three settings by hand, not both' }]);
    }
    const parsed = createSsoConnectionBody.safeParse({
      type: 'saml', name: f.name, jit: f.jit, allowIdpInitiated: f.allowIdpInitiated, rolloutPolicyId: opt(f.rolloutPolicyId) ?? null,
      ...(opt(f.metadataXml) ? { metadataXml: f.metadataXml } : {}),
      ...(opt(f.entityId) ? { entityId: f.entityId } : {}), ...(opt(f.ssoUrl) ? { ssoUrl: f.ssoUrl } : {}), ...(opt(f.certificate) ? { certificate: f.certificate } : {}),
    });
    if (!parsed.success) return refuse(400, 'The connection was not added.', fieldProblems(parsed.error, ''));
    try {
      await services.ssoConnections.create(s.ctx, parsed.data);
    } catch (err) {
      if (err instanceof InvalidInput) return refuse(400, 'The connection was not added.', err.problems.length ? err.problems : [{ path: '', message: err.message }]);
      if (err instanceof Conflict) return refuse(409, 'The connection was not added.', [{ path: err.reason === 'sso-connection-name-taken' ? 'name' : '', message: err.message }]);
      throw err;
    }
    return res.redirect(303, '/console/sso?added=1');
  }));

  r.get('/sso/:id', authed(async (req, res, s) => {
    const id = uuidParam(req, 'id', 'SSO connection');
    const c = await services.ssoConnections.get(s.ctx, id);
    const cursor = cursorOf(req);
    const tests = await services.ssoConnections.tests(s.ctx, id, { limit: PAGE, ...(cursor ? { cursor } : {}) });
    const policies = policyRefs(await allPolicies(s.ctx));
    const origin = idpOrigin(c);
    return send(res, 200, connectionPage({ nav: await nav(s, 'sso'), c, policies, tests: tests.items, next: tests.next, cursor }), origin ? [origin] : []);
  }));

  /** The Test button: a one-time test link, and straight to it (it leads on to the IdP). */
  r.post('/sso/:id/test', form, authed(async (req, res, s) => {
    const id = uuidParam(req, 'id', 'SSO connection');
    const started = await services.ssoConnections.startTest(s.ctx, id);
    res.setHeader('Cache-Control', 'no-store');
    return res.redirect(303, started.url);
  }));

  r.get('/sso/:id/tests/:testId', authed(async (req, res, s) => {
    const id = uuidParam(req, 'id', 'SSO connection');
    const testId = uuidParam(req, 'testId', 'SSO test run');
    const c = await services.ssoConnections.get(s.ctx, id);
    const t = await services.ssoConnections.test(s.ctx, id, testId);
    const account = t.accountId ? await services.accounts.get(s.ctx, t.accountId).catch((e) => (e instanceof NotFound ? null : Promise.reject(e))) : null;
    const policy = t.policyId ? await services.policies.get(s.ctx, t.policyId).catch((e) => (e instanceof NotFound ? null : Promise.reject(e))) : null;
    return send(res, 200, testResultConsolePage({
      nav: await nav(s, 'sso'), c, t, account: account ? { id: account.id, email: account.email } : null, policy: policy ? { id: policy.id, name: policy.name } : null,
    }));
  }));

  // --- policies ------------------------------------------------------------------------------

  async function renderPolicies(res: Response, s: ConsoleSession, status: number, f: MoveForm | null, formError: FormError | null, message?: string) {
    const all = await allPolicies(s.ctx);
    const policies = [];
    for (const p of all) {
      const members = await services.policies.members(s.ctx, p.id, { limit: MEMBERS_ON_OVERVIEW });
      policies.push({ p, members: members.items, more: members.next !== null });
    }
    const target = f ?? { policyId: (all.find((p) => !p.isDefault && p.enforceSso) ?? all.find((p) => !p.isDefault) ?? all[0])?.id ?? '', emails: '' };
    return send(res, status, policiesPage({
      nav: await nav(s, 'policies'), policies, connections: await connectionNames(s.ctx), form: target, formError, ...(message ? { status: message } : {}),
    }));
  }

  const movedMessage = (req: Request) => {
    const moved = Number(req.query.moved);
    const given = Number(req.query.given);
    if (!Number.isInteger(moved) || !Number.isInteger(given) || moved < 0 || given < moved) return undefined;
    const already = given - moved;
    return `Moved ${moved} account${moved === 1 ? '' : 's'} into this policy${already ? ` (${already} already ${already === 1 ? 'was' : 'were'} in it)` : ''}.`;
  };

  r.get('/policies', authed(async (req, res, s) => renderPolicies(res, s, 200, null, null, movedMessage(req))));

  r.get('/policies/:id', authed(async (req, res, s) => {
    const id = uuidParam(req, 'id', 'policy');
    const p = await services.policies.get(s.ctx, id);
    const cursor = cursorOf(req);
    const members = await services.policies.members(s.ctx, id, { limit: PAGE, ...(cursor ? { cursor } : {}) });
    const message = movedMessage(req);
    return send(res, 200, policyPage({
      nav: await nav(s, 'policies'), p, all: await allPolicies(s.ctx), members: members.items, next: members.next, cursor,
      connections: await connectionNames(s.ctx), ...(message ? { status: message } : {}),
    }));
  }));

  /** Moves a few accounts, named by email, into a policy: all of them or none. */
  r.post('/policies/members', form, authed(async (req, res, s) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    const f: MoveForm = { policyId: str(b.policyId), emails: str(b.emails) };
    const refuse = (status: number, title: string, problems: FieldProblem[]) => renderPolicies(res, s, status, f, { title, problems });
    if (!UUID.test(f.policyId)) return refuse(400, 'Nobody was moved.', [{ path: 'policyId', message: 'choose a policy' }]);
    const policyId = f.policyId.toLowerCase();
    const given = [...new Map(f.emails.split(/[\s,;]+/).filter(Boolean).map((e) => [e.toLowerCase(), e])).values()];
    if (!given.length) return refuse(400, 'Nobody was moved.', [{ path: 'emails', message: 'enter at least one email address' }]);
    if (given.length > MAX_EMAILS) return refuse(400, 'Nobody was moved.', [{ path: 'emails', message: `at most ${MAX_EMAILS} addresses at a time (got ${given.length})` }]);

    const problems: FieldProblem[] = [];
    const ids = new Map<string, string>(); // account id → email as found
    for (const e of given) {
      try {
        parseEmail(e);
      } catch {
        problems.push({ path: 'emails', message: `"${e}" is not an email address` });
        continue;
      }
      const found = (await services.accounts.list(s.ctx, { limit: 1 }, { email: e })).items[0];
      if (found) ids.set(found.id, found.email);
      else problems.push({ path: 'emails', message: `no account with the email ${e} in this org` });
    }
    if (problems.length) return refuse(400, 'Nobody was moved: fix these addresses first.', problems);

    try {
      const out = await services.policies.addMembers(s.ctx, policyId, [...ids.keys()]);
      return res.redirect(303, `/console/policies/${policyId}?moved=${out.moved}&given=${ids.size}`);
    } catch (err) {
      if (err instanceof PolicyViolation) {
        // The rule's message names account ids; the admin typed emails.
        let message = err.message;
        for (const [id, email] of ids) message = message.split(id).join(email);
        return refuse(409, `Nobody was moved: ${RULES[err.rule]}`, [{ path: 'emails', message: `${message} (rule ${err.rule})` }]);
      }
      if (err instanceof NotFound) return refuse(404, 'Nobody was moved.', [{ path: 'policyId', message: err.message }]);
      if (err instanceof InvalidInput) return refuse(400, 'Nobody was moved.', err.problems.length ? err.problems : [{ path: '', message: err.message }]);
      throw err;
    }
  }));

  r.use((req, res) => send(res, 404, consolePage('Not found', html`<p>There is no console page at <code>${req.originalUrl.split('?')[0]}</code>.</p>
<p><a href="/console">Back to the console</a></p>`, null)));
  r.use(errorHandler(deps, send));
  outer.use('/console', r);
  return outer;
}

type BodyParserError = Error & { type?: string; status?: number; limit?: number };

/** Client errors are pages with their 4xx; anything else is logged and a 500 page names the request id. */
function errorHandler(deps: ConsoleRouterDeps, send: (res: Response, status: number, body: string) => void): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const requestId = String(req.id ?? '');
    const show = (status: number, title: string, detail: string) =>
      send(res, status, consolePage(title, html`<div class="notice bad" role="alert"><p>${detail}</p><p>Request id <code>${requestId}</code></p></div>
<p><a href="/console">Back to the console</a></p>`, null));
    if (err instanceof DomainError) {
      const p = problemFor(err);
      if (p.status >= 500) (req.log ?? deps.logger).error({ err }, 'console request failed');
      return show(p.status, p.title, p.detail);
    }
    const bp = err as BodyParserError;
    if (bp?.type === 'entity.too.large') return show(413, 'Form too large', `the form is larger than ${bp.limit} bytes`);
    if (bp?.type && typeof bp.status === 'number' && bp.status < 500) return show(bp.status, 'Bad request', `the form could not be read: ${bp.message}`);
    const carried = carriedClientError(err);
    if (carried) return show(carried.status, 'Bad request', carried.detail);
    (req.log ?? deps.logger).error({ err }, 'unhandled console error');
    return show(500, 'Internal error', 'The console failed; the request id below finds it in the log.');
  };
}
