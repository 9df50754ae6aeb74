/**
 * Issue 12 §4, OIDC: an IdP user asserting ceo@<verified domain> with email_verified false signed
 * into the existing account of that address. Now a first sign-in links an account by email only
 * when the provider says the email is verified (or the connection trusts its email claim, for
 * providers such as Entra ID that never send it); the account is then bound to the provider's
 * (issuer, sub), and later sign-ins find it by that.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, createSamlConnection, startTestApp, verifyDomain, type TestApp } from '../../support/app.js';
import { startOidcProvider, type RunningOidcProvider, type TestUser } from '../../support/oidc-provider.js';

const CLIENT = { clientId: 'orgsync-bind', clientSecret: 'bind-client-secret-0123456789abcdef' };
const users: Record<string, TestUser> = {
  liar: { email: 'ceo@bind.test', email_verified: false, name: 'Not the CEO' },
  silent: { email: 'ceo@bind.test', name: 'Says nothing' },
  alice: { email: 'alice@bind.test', email_verified: true, name: 'Alice' },
  mallory: { email: 'alice@bind.test', email_verified: true, name: 'Mallory' },
};

let app: TestApp;
let op: RunningOidcProvider;
let org: { id: string; key: string };
let strict: string;
let trusting: string;
const publicUrl = 'http://orgsync.test';
const api = (p: string) => `/api/v1/orgs/${org.id}/${p}`;

beforeAll(async () => {
  op = await startOidcProvider({ users });
  app = await startTestApp({ PUBLIC_URL: publicUrl });
  org = await createOrg(app, 'OIDC Binding');
  await verifyDomain(app, org, 'bind.test');
  for (const email of ['ceo@bind.test', 'alice@bind.test']) await app.http.post(api('accounts')).set(bearer(org.key)).send({ email }).expect(201);
  const make = async (name: string, extra: Record<string, unknown>) => {
    const res = await app.http.post(api('sso-connections')).set(bearer(org.key)).send({ type: 'oidc', name, issuer: op.issuer, ...CLIENT, ...extra });
    expect(res.status, res.text).toBe(201);
    return res.body as { id: string; trustEmailClaim: boolean };
  };
  const s = await make('Strict', {});
  expect(s.trustEmailClaim).toBe(false);
  strict = s.id;
  const t = await make('Trusting', { trustEmailClaim: true });
  expect(t.trustEmailClaim).toBe(true);
  trusting = t.id;
  await op.registerClient({ ...CLIENT, redirectUris: [strict, trusting].map((id) => `${publicUrl}/sso/${id}/oidc/callback`) });
});
afterAll(async () => {
  await app?.close();
  await op?.close();
});

async function signIn(connId: string, account: string) {
  const browser = request.agent(app.svc.url);
  const start = await browser.get(`/sso/${connId}/oidc/login`);
  expect(start.status, start.text).toBe(302);
  const answer = await op.authorize(start.headers.location as string, { account, deny: false });
  const cb = await browser.get(`/sso/${connId}/oidc/callback`).query(answer.params.toString()).set('Accept', 'application/json');
  const session = [cb.headers['set-cookie'] ?? []].flat().find((c: string) => c.startsWith('orgsync_session='));
  const me = session ? (await browser.get('/me').set('Accept', 'application/json').expect(200)).body : null;
  return { status: cb.status, body: cb.body, me };
}

const bindings = () => app.svc.db.prisma.ssoIdentity.findMany({ where: { orgId: org.id }, orderBy: { createdAt: 'asc' } });

describe('regression: OIDC email_verified — a first sign-in links by email only when the provider vouches for it', () => {
  it('email_verified false: refused (403 email-not-verified), the CEO account is not signed into, nothing bound', async () => {
    const r = await signIn(strict, 'liar');
    expect(r.status).toBe(403);
    expect(r.body.reason).toBe('email-not-verified');
    expect(r.body.detail).toMatch(/says email_verified is false for ceo@bind\.test/);
    expect(r.me).toBeNull();
    expect(await bindings()).toEqual([]);
    const audit = await app.svc.db.prisma.auditEvent.findFirst({ where: { orgId: org.id, action: 'sso.login.refused' }, orderBy: { createdAt: 'desc' } });
    expect(audit?.after).toMatchObject({ reason: 'email-not-verified' });
  });

  it('no email_verified claim: refused on a strict connection; signs in where the connection trusts its email claim (Entra ID)', async () => {
    const refused = await signIn(strict, 'silent');
    expect(refused.status).toBe(403);
    expect(refused.body.detail).toMatch(/sends no email_verified claim.*trustEmailClaim/);
    const ok = await signIn(trusting, 'silent');
    expect(ok.status, JSON.stringify(ok.body)).toBe(303);
    expect(ok.me.account.email).toBe('ceo@bind.test');
  });

  it('a verified first sign-in binds (issuer, sub) to the account; after the IdP changes the email claim, the sign-in follows the binding', async () => {
    const first = await signIn(strict, 'alice');
    expect(first.status, JSON.stringify(first.body)).toBe(303);
    const accountId = first.me.account.id;
    expect((await bindings()).find((b) => b.subject === 'alice')).toMatchObject({ issuer: op.issuer, accountId });
    users.alice = { ...users.alice!, email: 'alice.renamed@elsewhere.example' };
    const again = await signIn(strict, 'alice');
    expect(again.status, JSON.stringify(again.body)).toBe(303);
    expect(again.me.account.id).toBe(accountId);
  });

  it('another identity asserting the bound address (verified) is refused: identity-mismatch', async () => {
    const r = await signIn(strict, 'mallory');
    expect(r.status).toBe(403);
    expect(r.body.reason).toBe('identity-mismatch');
    expect(r.me).toBeNull();
  });

  it('trustEmailClaim is an OIDC setting: refused on a SAML connection (400), changed by PATCH on an OIDC one', async () => {
    const patch = await app.http.patch(api(`sso-connections/${strict}`)).set(bearer(org.key)).send({ trustEmailClaim: true });
    expect(patch.status, patch.text).toBe(200);
    expect(patch.body.trustEmailClaim).toBe(true);
    await app.http.patch(api(`sso-connections/${strict}`)).set(bearer(org.key)).send({ trustEmailClaim: false }).expect(200);
    const saml = await createSamlConnection(app, org, { name: 'SAML one' });
    const refused = await app.http.patch(api(`sso-connections/${saml.id}`)).set(bearer(org.key)).send({ trustEmailClaim: true });
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toEqual([{ path: 'trustEmailClaim', message: 'not a field of SAML connections' }]);
  });
});
