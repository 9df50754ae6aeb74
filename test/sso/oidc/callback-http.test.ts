import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, startTestApp, verifyDomain, type TestApp } from '../../support/app.js';
import { startOidcProvider, type RunningOidcProvider } from '../../support/oidc-provider.js';

/**
 * The OIDC routes end to end: an admin creates an OIDC connection through the API, a browser
 * (a supertest agent keeping cookies) starts at /sso/{id}/oidc/login, signs in at a real
 * provider (oidc-provider), comes back to /sso/{id}/oidc/callback and lands on /me. Refused
 * callbacks answer 4xx, set no session cookie and leave an audit row.
 */

const CLIENT = { clientId: 'orgsync-e2e', clientSecret: 'e2e-client-secret-0123456789abcdef' };

let app: TestApp;
let op: RunningOidcProvider;
let org: { id: string; key: string };
let connId: string;
let publicUrl: string;

beforeAll(async () => {
  op = await startOidcProvider({
    users: {
      alice: { email: 'alice@oidc-e2e.test', email_verified: true, name: 'Alice E2E', given_name: 'Alice', family_name: 'E2E' },
      eve: { email: 'eve@elsewhere.test', email_verified: true, name: 'Eve' },
    },
  });
  // The browser never goes to PUBLIC_URL: the test stops where the provider redirects and calls the service itself.
  publicUrl = 'http://orgsync.test';
  app = await startTestApp({ PUBLIC_URL: publicUrl });
  org = await createOrg(app, 'OIDC E2E');
  await verifyDomain(app, org, 'oidc-e2e.test');
  const res = await app.http.post(`/api/v1/orgs/${org.id}/sso-connections`).set(bearer(org.key))
    .send({ type: 'oidc', name: 'Test OP', issuer: op.issuer, ...CLIENT, jit: true });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  expect(JSON.stringify(res.body), 'the secret is never echoed').not.toContain(CLIENT.clientSecret);
  connId = res.body.id;
  // The redirect URI the service registers with the provider (API.md: under PUBLIC_URL).
  await op.registerClient({ ...CLIENT, redirectUris: [`${publicUrl}/sso/${connId}/oidc/callback`] });
});

afterAll(async () => {
  await app?.close();
  await op?.close();
});

/** A browser: its cookies at the service, and a login driven through the provider. */
async function startLogin(email = 'alice@oidc-e2e.test', account = 'alice', o: { deny?: boolean } = {}) {
  const browser = request.agent(app.svc.url);
  const start = await browser.get(`/sso/${connId}/oidc/login`).query({ email });
  expect(start.status, start.text).toBe(302);
  const location = start.headers.location as string;
  expect(location.startsWith(`${op.issuer}/auth?`)).toBe(true);
  expect(new URL(location).searchParams.get('login_hint')).toBe(email);
  const answer = await op.authorize(location, { account, deny: o.deny ?? false });
  expect(answer.url.pathname).toBe(`/sso/${connId}/oidc/callback`);
  return { browser, params: answer.params };
}

const sessionCookie = (res: { headers: Record<string, unknown> }) =>
  ([] as string[]).concat((res.headers['set-cookie'] as string[] | undefined) ?? []).filter((c) => c.startsWith('orgsync_session='));

async function refusals(): Promise<{ after: { reason: string } }[]> {
  const res = await app.http.get(`/api/v1/orgs/${org.id}/audit`).query({ action: 'sso.login.refused', targetId: connId }).set(bearer(org.key)).expect(200);
  return res.body.items;
}

describe('OIDC sign-in over HTTP', () => {
  it('signs in through the provider: session cookie, /me names the account', async () => {
    const { browser, params } = await startLogin();
    const cb = await browser.get(`/sso/${connId}/oidc/callback`).query(params.toString());
    expect(cb.status, cb.text).toBe(303);
    expect(cb.headers.location).toBe('/me');
    const cookie = sessionCookie(cb);
    expect(cookie.length).toBe(1);
    expect(cookie[0]).toMatch(/HttpOnly/i);
    const me = await browser.get('/me').set('Accept', 'application/json');
    expect(me.status, me.text).toBe(200);
    expect(me.body.account.email).toBe('alice@oidc-e2e.test');
    expect(me.body.session.method).toBe('oidc');
  });

  it('accepts the answer as a form_post body too', async () => {
    const { browser, params } = await startLogin();
    const cb = await browser.post(`/sso/${connId}/oidc/callback`).type('form').send(params.toString());
    expect(cb.status, cb.text).toBe(303);
    expect(sessionCookie(cb).length).toBe(1);
  });

  it.each([
    ['state-mismatch', (p: URLSearchParams) => p.set('state', 'x'.repeat(43))],
    ['missing-state', (p: URLSearchParams) => p.delete('state')],
    ['issuer-mismatch', (p: URLSearchParams) => p.set('iss', 'https://idp.attacker.example')],
  ])('refuses %s: 4xx, no session cookie, audited', async (reason, edit) => {
    const before = (await refusals()).length;
    const { browser, params } = await startLogin();
    edit(params);
    const cb = await browser.get(`/sso/${connId}/oidc/callback`).query(params.toString()).set('Accept', 'application/json');
    expect(cb.status, cb.text).toBeGreaterThanOrEqual(400);
    expect(cb.status).toBeLessThan(500);
    expect(cb.body.reason).toBe(reason);
    expect(sessionCookie(cb)).toEqual([]);
    const rows = await refusals();
    expect(rows.length).toBe(before + 1);
    expect(rows[0]?.after.reason).toBe(reason);
  });

  it('refuses a denied login (error=access_denied) and a replayed callback', async () => {
    const denied = await startLogin('alice@oidc-e2e.test', 'alice', { deny: true });
    const cb1 = await denied.browser.get(`/sso/${connId}/oidc/callback`).query(denied.params.toString()).set('Accept', 'application/json');
    expect(cb1.status).toBe(403);
    expect(cb1.body.reason).toBe('idp-error');
    expect(sessionCookie(cb1)).toEqual([]);

    const { browser, params } = await startLogin();
    expect((await browser.get(`/sso/${connId}/oidc/callback`).query(params.toString())).status).toBe(303);
    const again = await browser.get(`/sso/${connId}/oidc/callback`).query(params.toString()).set('Accept', 'application/json');
    expect(again.status).toBeGreaterThanOrEqual(400);
    expect(again.status).toBeLessThan(500);
    expect(sessionCookie(again)).toEqual([]);
    expect((await refusals())[0]?.after.reason).toBe(again.body.reason);
  });

  it('refuses a callback from another browser (state bound to the browser)', async () => {
    const { params } = await startLogin();
    const stranger = request.agent(app.svc.url);
    const cb = await stranger.get(`/sso/${connId}/oidc/callback`).query(params.toString()).set('Accept', 'application/json');
    expect(cb.status).toBe(403);
    expect(sessionCookie(cb)).toEqual([]);
  });

  it('refuses a person whose email domain the org has not verified', async () => {
    const { browser, params } = await startLogin('eve@elsewhere.test', 'eve');
    const cb = await browser.get(`/sso/${connId}/oidc/callback`).query(params.toString()).set('Accept', 'application/json');
    expect(cb.status).toBe(403);
    expect(cb.body.reason).toBe('domain-not-verified');
    expect(sessionCookie(cb)).toEqual([]);
  });

  it('refuses to save an OIDC connection whose issuer does not answer discovery', async () => {
    const res = await app.http.post(`/api/v1/orgs/${org.id}/sso-connections`).set(bearer(org.key))
      .send({ type: 'oidc', name: 'Broken', issuer: `${op.issuer}/nowhere`, ...CLIENT, jit: false });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toMatch(/HTTP 404/);
    const insecure = await app.http.post(`/api/v1/orgs/${org.id}/sso-connections`).set(bearer(org.key))
      .send({ type: 'oidc', name: 'Plain http', issuer: 'http://idp.example.com', ...CLIENT, jit: false });
    expect(insecure.status).toBe(400);
    expect(JSON.stringify(insecure.body)).toMatch(/plain http/);
  });
});

describe('the rollout test through OIDC', () => {
  async function runTest(account: string) {
    const start = await app.http.post(`/api/v1/orgs/${org.id}/sso-connections/${connId}/test`).set(bearer(org.key)).send({}).expect(201);
    const browser = request.agent(app.svc.url);
    const go = await browser.get(new URL(start.body.url).pathname);
    expect(go.status, go.text).toBe(302);
    const answer = await op.authorize(go.headers.location as string, { account });
    const page = await browser.get(`/sso/${connId}/oidc/callback`).query(answer.params.toString());
    const run = await app.http.get(`/api/v1/orgs/${org.id}/sso-connections/${connId}/tests/${start.body.testId}`).set(bearer(org.key)).expect(200);
    return { page, run: run.body };
  }

  it('reports a sign-in that would succeed, without creating a session or changing accounts', async () => {
    const accountsBefore = await app.svc.db.prisma.account.findMany({ where: { orgId: org.id }, orderBy: { id: 'asc' } });
    const sessionsBefore = await app.svc.db.prisma.userSession.count({ where: { orgId: org.id } });
    const { page, run } = await runTest('alice');
    expect(page.status).toBe(200);
    expect(sessionCookie(page)).toEqual([]);
    expect(page.text).toContain('A real sign-in would succeed');
    expect(run).toMatchObject({ status: 'completed', wouldSucceed: true });
    expect(run.checks.map((c: { name: string }) => c.name)).toEqual(expect.arrayContaining(['state', 'replay', 'domain', 'account', 'policy']));
    expect(run.profile.email).toBe('alice@oidc-e2e.test');
    expect(await app.svc.db.prisma.account.findMany({ where: { orgId: org.id }, orderBy: { id: 'asc' } })).toEqual(accountsBefore);
    expect(await app.svc.db.prisma.userSession.count({ where: { orgId: org.id } })).toBe(sessionsBefore);
  });

  it('reports a sign-in that would be refused, naming the failed check', async () => {
    const { page, run } = await runTest('eve');
    expect(page.status).toBe(403); // refused (API.md: 4xx), the page is the test's result
    expect(sessionCookie(page)).toEqual([]);
    expect(page.text).toContain('A real sign-in would be refused');
    expect(run).toMatchObject({ status: 'completed', wouldSucceed: false });
    expect(run.reason).toContain('domain-not-verified');
    expect(run.profile.email).toBe('eve@elsewhere.test');
  });
});
