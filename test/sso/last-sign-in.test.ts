// Issue 14 §3: when each account last signed in and through which connection; admins find
// inactive people with ?inactiveSince= and export them as CSV.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, createSamlConnection, startTestApp, verifyDomain, type TestApp } from '../support/app.js';
import { TEST_IDP_ENTITY_ID, TEST_IDP_SSO_URL, type IdpResponseOptions } from '../support/saml-idp.js';
import { samlBrowser } from '../support/saml-browser.js';

const PUBLIC_URL = 'https://orgsync.test';
let app: TestApp;
let org: { id: string; key: string; defaultPolicyId: string };
let conn: string;
const ids: Record<string, string> = {};
const api = (p: string) => `/api/v1/orgs/${org.id}/${p}`;

let browser: ReturnType<typeof samlBrowser>;
/** SP-initiated sign-in of `email` (support/saml-browser.ts), answered by the test IdP with `opts`: the ACS's answer. */
const signIn = (status: number, email: string, opts: IdpResponseOptions = {}, startPath?: string) => browser.signIn(conn, status, email, opts, startPath);

const account = async (who: string) => (await app.http.get(api(`accounts/${ids[who]}`)).set(bearer(org.key)).expect(200)).body;

beforeAll(async () => {
  app = await startTestApp({ PUBLIC_URL });
  browser = samlBrowser(app, PUBLIC_URL);
  org = await createOrg(app, 'Last Sign In Co');
  await verifyDomain(app, org, 'last.test');
  await app.http.post(api('subscription/trial')).set(bearer(org.key)).send({}).expect(200);
  conn = (await createSamlConnection(app, org, { name: 'Okta', entityId: TEST_IDP_ENTITY_ID, ssoUrl: TEST_IDP_SSO_URL })).id;
  for (const who of ['ann', 'bob', 'cal']) ids[who] = (await app.http.post(api('accounts')).set(bearer(org.key)).send({ email: `${who}@last.test`, displayName: who === 'cal' ? '=HYPERLINK("x")' : who }).expect(201)).body.id;
  await app.http.post(api(`accounts/${ids.cal}/disable`)).set(bearer(org.key)).send({}).expect(200);
});
afterAll(async () => app?.close());

describe('lastSignInAt', () => {
  it('a new account has never signed in', async () => {
    expect(await account('ann')).toMatchObject({ lastSignInAt: null, lastSignInConnectionId: null });
  });

  it('a sign-in records when and through which connection; updatedAt (the profile\'s) does not move', async () => {
    const before = await account('ann');
    const t0 = Date.now();
    await signIn(303, 'ann@last.test');
    const after = await account('ann');
    expect(after.lastSignInConnectionId).toBe(conn);
    expect(new Date(after.lastSignInAt).getTime()).toBeGreaterThanOrEqual(t0 - 1000);
    expect(new Date(after.lastSignInAt).getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    expect(after.updatedAt).toBe(before.updatedAt);
    const stored = await app.svc.db.prisma.account.findUniqueOrThrow({ where: { id: ids.ann } });
    expect(stored.lastSignInAt?.toISOString()).toBe(after.lastSignInAt);
  });

  it('a refused sign-in and a rollout test record nothing', async () => {
    await signIn(403, 'cal@last.test'); // disabled
    expect((await account('cal')).lastSignInAt).toBeNull();
    const start = await app.http.post(api(`sso-connections/${conn}/test`)).set(bearer(org.key)).send({}).expect(201);
    await signIn(200, 'bob@last.test', {}, new URL(start.body.url).pathname);
    expect((await account('bob')).lastSignInAt).toBeNull();
  });
});

describe('GET accounts?inactiveSince=', () => {
  it('lists the accounts without a sign-in since then (never counts), with the total', async () => {
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const yesterday = new Date(Date.now() - 86_400_000).toISOString();
    const all = await app.http.get(api(`accounts?inactiveSince=${tomorrow}`)).set(bearer(org.key)).expect(200);
    expect(all.body.items.map((a: { email: string }) => a.email).sort()).toEqual(['ann@last.test', 'bob@last.test', 'cal@last.test']);
    const inactive = await app.http.get(api(`accounts?inactiveSince=${encodeURIComponent(yesterday)}`)).set(bearer(org.key)).expect(200);
    expect(inactive.body.items.map((a: { email: string }) => a.email).sort()).toEqual(['bob@last.test', 'cal@last.test']);
    expect(inactive.body.total).toBe(2);
    const combined = await app.http.get(api(`accounts?inactiveSince=${encodeURIComponent(yesterday)}&status=active`)).set(bearer(org.key)).expect(200);
    expect(combined.body.items.map((a: { email: string }) => a.email)).toEqual(['bob@last.test']);
  });

  it.each(['yesterday', '2026-13-01', '2026-02-30', '2026-11-01T09:00', '2026-11-01 09:00:00Z', 'x'.repeat(41)])('inactiveSince=%s is 400 naming the parameter', async (v) => {
    const res = await app.http.get(api(`accounts?inactiveSince=${encodeURIComponent(v)}`)).set(bearer(org.key)).expect(400);
    expect(JSON.stringify(res.body)).toContain('inactiveSince');
  });
});

describe('CSV export', () => {
  it('?format=csv streams every matching account with its last sign-in, fields safe for spreadsheets', async () => {
    const res = await app.http.get(api('accounts?format=csv&limit=1')).set(bearer(org.key)).expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    expect(res.headers['content-disposition']).toContain('accounts.csv');
    const lines = res.text.split('\r\n').filter(Boolean);
    expect(lines[0]).toBe('id,email,displayName,managed,status,source,policyId,billable,lastSignInAt,lastSignInConnectionId');
    expect(lines).toHaveLength(4); // every account, whatever limit says
    const ann = (await account('ann'));
    expect(lines).toContain(`${ids.ann},ann@last.test,ann,true,active,manual,${org.defaultPolicyId},false,${ann.lastSignInAt},${conn}`);
    expect(lines.find((l) => l.startsWith(ids.cal!))).toContain(`,"'=HYPERLINK(""x"")",`);
  });

  it('Accept: text/csv chooses it too, and the filters apply', async () => {
    const yesterday = new Date(Date.now() - 86_400_000).toISOString();
    const res = await app.http.get(api(`accounts?inactiveSince=${encodeURIComponent(yesterday)}`)).set(bearer(org.key)).set('Accept', 'text/csv').expect(200);
    const emails = res.text.split('\r\n').filter(Boolean).slice(1).map((l) => l.split(',')[1]).sort();
    expect(emails).toEqual(['bob@last.test', 'cal@last.test']);
  });
});

describe('the connection goes', () => {
  it('deleting the connection keeps the time and clears the connection', async () => {
    await app.http.delete(api(`sso-connections/${conn}`)).set(bearer(org.key)).expect(204);
    const ann = await account('ann');
    expect(ann.lastSignInAt).not.toBeNull();
    expect(ann.lastSignInConnectionId).toBeNull();
  });
});
