// Issue 14 §3: `npm run demo:idp` is a real SAML IdP the README walk-through signs in with: the
// rollout test and a real sign-in finish through it, and the two-factor tick reaches the policy check.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, startTestApp, verifyDomain, type TestApp } from '../support/app.js';
import { startDemoIdp, type DemoIdp } from '../../src/demo/saml-demo-idp.js';

const PUBLIC_URL = 'https://orgsync.test';
let app: TestApp;
let demo: DemoIdp;
let org: { id: string; key: string; defaultPolicyId: string };
let conn: string;
let pilot: string;
const api = (p: string) => `/api/v1/orgs/${org.id}/${p}`;
let flowCookie = '';

const attr = (page: string, name: string) => {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(page);
  return m ? m[1]!.replace(/&amp;/g, '&').replace(/&quot;/g, '"') : null;
};

/** Plays the browser from an orgsync URL that redirects to the demo IdP, through its form, back to the ACS. */
async function through(startPath: string, email: string, o: { mfa?: boolean } = {}) {
  const go = await app.http.get(startPath).set(flowCookie ? { Cookie: flowCookie } : {}).expect(302);
  flowCookie = ([] as string[]).concat((go.headers['set-cookie'] as string[] | undefined) ?? []).map((c) => c.split(';')[0] ?? '')
    .filter((c) => c.startsWith('orgsync_flow=')).join('; ') || flowCookie;
  const location = new URL(go.headers.location!);
  expect(location.origin + location.pathname).toBe(demo.ssoUrl);
  const form = await fetch(location);
  expect(form.status).toBe(200);
  const key = attr(await form.text(), 'key')!;
  const answer = await fetch(`${demo.url}/sso/login`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ key, email, ...(o.mfa ? { mfa: '1' } : {}) }).toString(),
  });
  const page = await answer.text();
  expect(answer.status, page).toBe(200);
  const acs = new URL(/action="([^"]+)"/.exec(page)![1]!);
  expect(acs.origin).toBe(PUBLIC_URL);
  const relayState = attr(page, 'RelayState');
  return app.http.post(acs.pathname).type('form').set(flowCookie ? { Cookie: flowCookie } : {})
    .send({ SAMLResponse: attr(page, 'SAMLResponse')!, ...(relayState ? { RelayState: relayState } : {}) });
}

beforeAll(async () => {
  app = await startTestApp({ PUBLIC_URL });
  demo = await startDemoIdp({ domain: 'demo.test', port: 0 });
  org = await createOrg(app, 'Demo Co');
  await verifyDomain(app, org, 'demo.test');
  await app.http.post(api('subscription/trial')).set(bearer(org.key)).send({}).expect(200);
  conn = (await app.http.post(api('sso-connections')).set(bearer(org.key))
    .send({ type: 'saml', name: 'Demo IdP', entityId: demo.entityId, ssoUrl: demo.ssoUrl, certificate: demo.certificate }).expect(201)).body.id;
  pilot = (await app.http.post(api('policies')).set(bearer(org.key)).send({ name: 'SSO pilot', enforceSso: true, ssoConnectionId: conn }).expect(201)).body.id;
  const ada = (await app.http.post(api('accounts')).set(bearer(org.key)).send({ email: 'ada@demo.test' }).expect(201)).body.id;
  await app.http.post(api(`policies/${pilot}/members`)).set(bearer(org.key)).send({ accountIds: [ada] }).expect(200);
});
afterAll(async () => {
  await demo?.close();
  await app?.close();
});

describe('the demo IdP', () => {
  it('serves its metadata with the entity id and SSO URL to give orgsync', async () => {
    const res = await fetch(demo.metadataUrl);
    const xml = await res.text();
    expect(xml).toContain(`entityID="${demo.entityId}"`);
    expect(xml).toContain(`Location="${demo.ssoUrl}"`);
  });

  it('finishes the rollout test: every check passes, no session', async () => {
    const start = await app.http.post(api(`sso-connections/${conn}/test`)).set(bearer(org.key)).send({}).expect(201);
    const res = await through(new URL(start.body.url).pathname, 'ada@demo.test');
    expect(res.status, res.text).toBe(200);
    expect(res.text).toContain('A real sign-in would succeed');
    const run = await app.http.get(api(`sso-connections/${conn}/tests/${start.body.testId}`)).set(bearer(org.key)).expect(200);
    expect(run.body).toMatchObject({ status: 'completed', wouldSucceed: true, policyId: pilot });
    expect(run.body.profile.email).toBe('ada@demo.test');
  });

  it('signs a person in for real: a session and /me', async () => {
    const res = await through(`/sso/${conn}/saml/login?email=ada%40demo.test`, 'ada@demo.test');
    expect(res.status, res.text).toBe(303);
    expect(res.headers.location).toBe('/me');
  });

  it('refuses an address outside its domain on its form (400), and the sign-in can go on', async () => {
    const go = await app.http.get(`/sso/${conn}/saml/login`).set({ Cookie: flowCookie }).expect(302);
    const form = await (await fetch(go.headers.location!)).text();
    const key = attr(form, 'key')!;
    const post = (email: string) => fetch(`${demo.url}/sso/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ key, email }).toString() });
    const wrong = await post('eve@elsewhere.example');
    expect(wrong.status).toBe(400);
    expect(await wrong.text()).toContain('Enter an address of demo.test.');
    expect((await post('ada@demo.test')).status).toBe(200);
    expect((await post('ada@demo.test')).status, 'a key works once').toBe(400);
  });

  it('its "second factor" tick is what a policy requiring two-step verification checks', async () => {
    await app.http.patch(api(`policies/${pilot}`)).set(bearer(org.key)).send({ requireTwoFactor: true }).expect(200);
    expect((await through(`/sso/${conn}/saml/login`, 'ada@demo.test')).status).toBe(403);
    expect((await through(`/sso/${conn}/saml/login`, 'ada@demo.test', { mfa: true })).status).toBe(303);
  });

  it('answers 400 to a request that is not an AuthnRequest', async () => {
    const res = await fetch(`${demo.ssoUrl}?SAMLRequest=${encodeURIComponent(Buffer.from('<x/>').toString('base64'))}`);
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/AuthnRequest/);
  });
});
