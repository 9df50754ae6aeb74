import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, createSamlConnection, startTestApp, verifyDomain, type TestApp } from '../support/app.js';
import { createPolicyService } from '../../src/services/policy-service.js';

/**
 * The admin console over HTTP: sign-in with an admin key (good, bad, revoked), the CSRF check on
 * every form, the move-accounts form (success and a rule violation, asserting the stored rows),
 * the add-connection form's errors, and escaping of what admins typed.
 */
let app: TestApp;
type Org = { id: string; key: string; defaultPolicyId: string };
let org: Org;
let connId: string;
let rolloutId: string;
const ids: Record<string, string> = {};
const EVIL_NAME = '<script>alert("pwned")</script>';
const cert = () => import('node:fs').then((fs) => fs.readFileSync(new URL('../../fixtures/saml/idp-cert.pem', import.meta.url), 'utf8'));

const api = (p: string) => `/api/v1/orgs/${org.id}/${p}`;

/** The CSRF token of the first form on a page. */
function csrfOf(htmlText: string): string {
  const m = /name="csrf" value="([^"]+)"/.exec(htmlText);
  if (!m) throw new Error(`no CSRF field in the page:\n${htmlText.slice(0, 500)}`);
  return m[1]!.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** A browser-like agent (cookie jar) signed into the console with `key`; returns it and its session's CSRF token. */
async function signedIn(key: string) {
  const agent = request.agent(app.svc.url);
  const form = await agent.get('/console').expect(200);
  const res = await agent.post('/console/sign-in').type('form').send({ csrf: csrfOf(form.text), adminKey: key });
  expect(res.status, res.text).toBe(303);
  expect(res.headers.location).toBe('/console/sso');
  const page = await agent.get('/console/sso').expect(200);
  return { agent, csrf: csrfOf(page.text), signInResponse: res };
}

const accountPolicy = async (id: string) => (await app.svc.db.prisma.account.findUniqueOrThrow({ where: { id } })).policyId;

beforeAll(async () => {
  app = await startTestApp();
  org = await createOrg(app, 'Console Co');
  await verifyDomain(app, org, 'console.example');
  connId = (await createSamlConnection(app, org, { name: EVIL_NAME })).id;
  const rollout = await app.http.post(api('policies')).set(bearer(org.key)).send({ name: 'SSO rollout', enforceSso: true, ssoConnectionId: connId }).expect(201);
  rolloutId = rollout.body.id;
  for (const email of ['alice@console.example', 'bob@console.example', 'carol@console.example', 'ext@elsewhere.example']) {
    ids[email] = (await app.http.post(api('accounts')).set(bearer(org.key)).send({ email }).expect(201)).body.id;
  }
});
afterAll(async () => app?.close());

describe('sign-in', () => {
  it('a good admin key opens a session: sealed, HttpOnly, SameSite=Strict cookie, not Secure over http', async () => {
    const { agent, signInResponse } = await signedIn(org.key);
    const cookie = (signInResponse.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith('orgsync_console='))!;
    expect(cookie, 'the console cookie').toBeDefined();
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    expect(cookie).toMatch(/Path=\/console/);
    expect(cookie).not.toMatch(/;\s*Secure/i);
    expect(cookie, 'the admin key never appears in clear').not.toContain(org.key.slice(-20));
    const page = await agent.get('/console/sso').expect(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.text).toContain('<h1>SSO connections</h1>');
    expect(page.text).toContain(`/sso/${connId}/saml/acs`);
    // GET /console with a session goes to the connections page.
    await agent.get('/console').expect(303).expect('Location', '/console/sso');
  });

  it('a wrong key gets the form again with a clear error, 401, and no session cookie', async () => {
    const agent = request.agent(app.svc.url);
    const form = await agent.get('/console').expect(200);
    expect(form.text).toMatch(/<label for="admin-key">Admin key<\/label>/);
    const res = await agent.post('/console/sign-in').type('form').send({ csrf: csrfOf(form.text), adminKey: 'osk_not_a_real_key' });
    expect(res.status).toBe(401);
    expect(res.text).toContain('That admin key is not valid');
    expect(res.text).toContain('role="alert"');
    expect(res.text).toContain('name="adminKey"');
    expect(String(res.headers['set-cookie'] ?? '')).not.toContain('orgsync_console=');
    await agent.get('/console/sso').expect(401);
  });

  it('a sign-in form without its CSRF token is refused (403)', async () => {
    const res = await request(app.svc.url).post('/console/sign-in').type('form').send({ adminKey: org.key });
    expect(res.status).toBe(403);
    expect(String(res.headers['set-cookie'] ?? '')).not.toContain('orgsync_console=');
  });

  it('revoking the admin key ends its console session at the next request', async () => {
    const second = await app.http.post(api('admin-keys')).set(bearer(org.key)).send({ name: 'console test' }).expect(201);
    const key = second.body.key ?? second.body.adminKey ?? second.body.secret;
    expect(typeof key, JSON.stringify(second.body)).toBe('string');
    const { agent } = await signedIn(key);
    await app.http.delete(api(`admin-keys/${second.body.id}`)).set(bearer(org.key)).expect(200);
    const res = await agent.get('/console/sso');
    expect(res.status).toBe(401);
    expect(res.text).toContain('its admin key is no longer valid');
    expect(String(res.headers['set-cookie'])).toMatch(/orgsync_console=;.*Max-Age=0/);
    await agent.get('/console/policies').expect(401);
  });

  it('signing out clears the cookie (and needs the CSRF token)', async () => {
    const { agent, csrf } = await signedIn(org.key);
    await agent.post('/console/sign-out').type('form').send({ csrf: 'forged' }).expect(403);
    await agent.get('/console/sso').expect(200);
    const out = await agent.post('/console/sign-out').type('form').send({ csrf }).expect(303);
    expect(out.headers.location).toBe('/console');
    expect(String(out.headers['set-cookie'])).toMatch(/orgsync_console=;.*Max-Age=0/);
    await agent.get('/console/sso').expect(401);
  });
});

describe('the frame', () => {
  it('every page names the org it belongs to, escaped (issue 14 §3)', async () => {
    const renamed = await createOrg(app, '<b>Frame & Co</b>');
    const { agent } = await signedIn(renamed.key);
    const policies = await agent.get('/api/v1/orgs/' + renamed.id + '/policies').set(bearer(renamed.key));
    const pages = ['/console/sso', '/console/policies', `/console/policies/${policies.body.items[0].id}`];
    for (const path of pages) {
      const res = await agent.get(path).expect(200);
      const nav = /<nav aria-label="Console">([\s\S]*?)<\/nav>/.exec(res.text)?.[1] ?? '';
      expect(nav, path).toContain(`<span class="org" title="${renamed.id}">&lt;b&gt;Frame &amp; Co&lt;/b&gt;</span>`);
      expect(res.text, path).not.toContain('<b>Frame');
    }
  });
});

describe('CSRF', () => {
  it('refuses POST forms without the session token, with another session\'s token, or with a tampered one — and changes nothing', async () => {
    const { agent, csrf } = await signedIn(org.key);
    const other = await signedIn(org.key);
    expect(other.csrf).not.toBe(csrf);
    const before = await accountPolicy(ids['carol@console.example']!);
    const runsBefore = await app.svc.db.prisma.ssoTestRun.count({ where: { orgId: org.id } });
    const body = { policyId: rolloutId, emails: 'carol@console.example' };
    for (const token of [undefined, other.csrf, `${csrf}x`, csrf.replace(/\.[^.]+$/, '.AAAA')]) {
      const res = await agent.post('/console/policies/members').type('form').send(token === undefined ? body : { ...body, csrf: token });
      expect(res.status, `token ${token}`).toBe(403);
      expect(res.text).toContain('nothing was changed');
      const test = await agent.post(`/console/sso/${connId}/test`).type('form').send(token === undefined ? {} : { csrf: token });
      expect(test.status, `test with token ${token}`).toBe(403);
    }
    // A JSON body (no form) carries no token either.
    await agent.post('/console/policies/members').send(body).expect(403);
    expect(await accountPolicy(ids['carol@console.example']!)).toBe(before);
    expect(await app.svc.db.prisma.ssoTestRun.count({ where: { orgId: org.id } })).toBe(runsBefore);
  });
});

describe('move accounts into a rollout policy', () => {
  it('moves the accounts named by email, audits as the admin key, and lists them as members', async () => {
    const { agent, csrf } = await signedIn(org.key);
    const res = await agent.post('/console/policies/members').type('form').send({ csrf, policyId: rolloutId, emails: 'Alice@console.example\r\n bob@console.example, alice@console.example' });
    expect(res.status, res.text).toBe(303);
    expect(res.headers.location).toBe(`/console/policies/${rolloutId}?moved=2&given=2`);
    expect(await accountPolicy(ids['alice@console.example']!)).toBe(rolloutId);
    expect(await accountPolicy(ids['bob@console.example']!)).toBe(rolloutId);
    expect(await accountPolicy(ids['carol@console.example']!), 'carol was not named').toBe(org.defaultPolicyId);
    const audit = await app.svc.db.prisma.auditEvent.findFirstOrThrow({ where: { orgId: org.id, action: 'policy.members.add', targetId: rolloutId }, orderBy: { createdAt: 'desc' } });
    const keys = await app.http.get(api('admin-keys')).set(bearer(org.key)).expect(200);
    const initial = keys.body.items.find((k: { name: string }) => k.name === 'initial');
    expect(audit.actor).toBe(`admin-key:${initial.id}`);
    expect(audit.requestId, 'the audit row carries the request id').toBeTruthy();

    const page = await agent.get(res.headers.location!).expect(200);
    expect(page.text).toContain('Moved 2 accounts into this policy.');
    expect(page.text).toMatch(/<th scope="row">alice@console\.example<\/th>/);
    expect(page.text).toMatch(/<th scope="row">bob@console\.example<\/th>/);
    const overview = await agent.get('/console/policies').expect(200);
    expect(overview.text).toContain('<caption>Policies and their settings</caption>');
    expect(overview.text).toContain('Members of SSO rollout');
  });

  it('a rule violation (an external account) → 409 naming the rule and the email; nobody moves', async () => {
    const { agent, csrf } = await signedIn(org.key);
    const before = await app.svc.db.prisma.account.findMany({ where: { orgId: org.id }, select: { id: true, policyId: true, updatedAt: true }, orderBy: { id: 'asc' } });
    const audits = await app.svc.db.prisma.auditEvent.count({ where: { orgId: org.id } });
    const res = await agent.post('/console/policies/members').type('form').send({ csrf, policyId: rolloutId, emails: 'carol@console.example\next@elsewhere.example' });
    expect(res.status).toBe(409);
    expect(res.text).toContain('Only managed accounts are members of an authentication policy.');
    expect(res.text).toContain('policy-members-managed');
    expect(res.text).toContain('ext@elsewhere.example');
    expect(res.text, 'the form keeps what was typed').toMatch(/<textarea[^>]*name="emails"[^>]*>carol@console\.example\next@elsewhere\.example<\/textarea>/);
    const after = await app.svc.db.prisma.account.findMany({ where: { orgId: org.id }, select: { id: true, policyId: true, updatedAt: true }, orderBy: { id: 'asc' } });
    expect(after).toEqual(before);
    expect(await app.svc.db.prisma.auditEvent.count({ where: { orgId: org.id } })).toBe(audits);
  });

  it('unknown or malformed emails → 400 listing each; nobody moves', async () => {
    const { agent, csrf } = await signedIn(org.key);
    const res = await agent.post('/console/policies/members').type('form').send({ csrf, policyId: rolloutId, emails: 'carol@console.example nobody@console.example not-an-email' });
    expect(res.status).toBe(400);
    expect(res.text).toContain('no account with the email nobody@console.example in this org');
    expect(res.text).toContain('&quot;not-an-email&quot; is not an email address');
    expect(await accountPolicy(ids['carol@console.example']!)).toBe(org.defaultPolicyId);
    const empty = await agent.post('/console/policies/members').type('form').send({ csrf, policyId: rolloutId, emails: '  ' });
    expect(empty.status).toBe(400);
    const noPolicy = await agent.post('/console/policies/members').type('form').send({ csrf, policyId: '00000000-0000-4000-8000-000000000000', emails: 'carol@console.example' });
    expect(noPolicy.status).toBe(404);
    expect(await accountPolicy(ids['carol@console.example']!)).toBe(org.defaultPolicyId);
  });

  it('members are paged in SQL (policies.members)', async () => {
    const policies = createPolicyService(app.svc.db);
    const ctx = { orgId: org.id, actor: { kind: 'operator' as const }, requestId: null, now: new Date() };
    const first = await policies.members(ctx, rolloutId, { limit: 1 });
    expect(first.items).toHaveLength(1);
    expect(first.next).not.toBeNull();
    const second = await policies.members(ctx, rolloutId, { limit: 1, cursor: first.next! });
    expect(second.items).toHaveLength(1);
    expect(second.next).toBeNull();
    expect(new Set([...first.items, ...second.items].map((a) => a.email))).toEqual(new Set(['alice@console.example', 'bob@console.example']));
    await expect(policies.members({ ...ctx, orgId: '00000000-0000-4000-8000-000000000000' }, rolloutId, { limit: 1 })).rejects.toThrow(/not found/);
  });
});

describe('SSO connections page', () => {
  it('renders a connection named <script> escaped, everywhere', async () => {
    const { agent } = await signedIn(org.key);
    for (const path of ['/console/sso', `/console/sso/${connId}`, '/console/policies', `/console/policies/${rolloutId}`]) {
      const page = await agent.get(path).expect(200);
      expect(page.text, path).not.toContain(EVIL_NAME);
      expect(page.text, path).not.toMatch(/<script/i);
    }
    const page = await agent.get('/console/sso').expect(200);
    expect(page.text).toContain('&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;');
    expect(page.headers['content-security-policy']).toContain("script-src 'none'");
  });

  it('the Test button starts a rollout test and redirects to its one-time URL', async () => {
    const { agent, csrf } = await signedIn(org.key);
    const res = await agent.post(`/console/sso/${connId}/test`).type('form').send({ csrf });
    expect(res.status).toBe(303);
    expect(res.headers.location).toMatch(/\/sso\/test\/[\w-]{43}$/);
    const run = await app.svc.db.prisma.ssoTestRun.findFirstOrThrow({ where: { orgId: org.id, connectionId: connId }, orderBy: { createdAt: 'desc' } });
    expect(run.completedAt).toBeNull();
    const audit = await app.svc.db.prisma.auditEvent.findFirstOrThrow({ where: { orgId: org.id, action: 'sso-connection.test.start' }, orderBy: { createdAt: 'desc' } });
    expect(audit.actor).toMatch(/^admin-key:/);
    // It is listed, waiting, with a link to its result page.
    const page = await agent.get('/console/sso').expect(200);
    expect(page.text).toContain(`/console/sso/${connId}/tests/${run.id}`);
    expect(page.text).toContain('waiting for the IdP');
    const result = await agent.get(`/console/sso/${connId}/tests/${run.id}`).expect(200);
    expect(result.text).toContain('Waiting for the identity provider');
    // Unknown or malformed ids are 404 pages, not 500s.
    await agent.get(`/console/sso/${connId}/tests/00000000-0000-4000-8000-000000000000`).expect(404);
    await agent.get('/console/sso/not-a-uuid').expect(404);
    const missing = await agent.get('/console/no-such-page').expect(404);
    expect(missing.headers['content-type']).toMatch(/text\/html/);
  });

  it("another org's connection, test run and policy are 404s, and its tests cannot be started", async () => {
    const other = await createOrg(app, 'Other Org');
    const otherConn = (await createSamlConnection(app, other, { name: 'Other IdP' })).id;
    const otherTest = (await app.http.post(`/api/v1/orgs/${other.id}/sso-connections/${otherConn}/test`).set(bearer(other.key)).send({}).expect(201)).body.testId;
    const { agent, csrf } = await signedIn(org.key);
    await agent.get(`/console/sso/${otherConn}`).expect(404);
    await agent.get(`/console/sso/${otherConn}/tests/${otherTest}`).expect(404);
    await agent.get(`/console/policies/${other.defaultPolicyId}`).expect(404);
    const runs = await app.svc.db.prisma.ssoTestRun.count({ where: { orgId: other.id } });
    await agent.post(`/console/sso/${otherConn}/test`).type('form').send({ csrf }).expect(404);
    expect(await app.svc.db.prisma.ssoTestRun.count({ where: { orgId: other.id } })).toBe(runs);
    const page = await agent.get('/console/sso').expect(200);
    expect(page.text).not.toContain('Other IdP');
  });

  it('the add-connection form shows the service\'s errors next to the form (400, 409) and adds a valid one', async () => {
    const { agent, csrf } = await signedIn(org.key);
    const missing = await agent.post('/console/sso').type('form').send({ csrf, name: '<b>New</b>', entityId: 'https://idp.new.example', ssoUrl: 'https://idp.new.example/sso' });
    expect(missing.status).toBe(400);
    expect(missing.text).toContain('the IdP signing certificate');
    expect(missing.text).toMatch(/id="conn-cert"[^>]*aria-invalid="true"/);
    expect(missing.text, 'the typed name comes back escaped').toContain('value="&lt;b&gt;New&lt;/b&gt;"');
    const badCert = await agent.post('/console/sso').type('form').send({ csrf, name: 'New', entityId: 'https://idp.new.example', ssoUrl: 'https://idp.new.example/sso', certificate: 'nonsense' });
    expect(badCert.status).toBe(400);
    const both = await agent.post('/console/sso').type('form').send({ csrf, name: 'New', metadataXml: '<EntityDescriptor/>', entityId: 'x' });
    expect(both.status).toBe(400);
    const taken = await agent.post('/console/sso').type('form').send({ csrf, name: EVIL_NAME, entityId: 'https://idp.new.example', ssoUrl: 'https://idp.new.example/sso', certificate: await cert() });
    expect(taken.status).toBe(409);
    expect(taken.text).toContain('already exists');
    expect(await app.svc.db.prisma.ssoConnection.count({ where: { orgId: org.id } })).toBe(1);

    const ok = await agent.post('/console/sso').type('form').send({
      csrf, name: 'Second IdP', entityId: 'https://idp.new.example', ssoUrl: 'https://idp.new.example/sso', certificate: await cert(), jit: 'on', rolloutPolicyId: rolloutId,
    });
    expect(ok.status, ok.text).toBe(303);
    const row = await app.svc.db.prisma.ssoConnection.findFirstOrThrow({ where: { orgId: org.id, name: 'Second IdP' } });
    expect(row).toMatchObject({ type: 'saml', jit: true, rolloutPolicyId: rolloutId, entityId: 'https://idp.new.example', allowIdpInitiated: false });
    const page = await agent.get(ok.headers.location!).expect(200);
    expect(page.text).toContain('The connection was added.');
    expect(page.headers['content-security-policy'], 'Test buttons may lead to the IdPs').toContain('https://idp.new.example');
  });
});
