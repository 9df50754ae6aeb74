// Issue 14 §2: a policy that requires two-step verification is enforced on SSO sign-ins by what
// the identity provider asserts (SAML AuthnContextClassRef / amr attributes; OIDC amr / acr).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, createSamlConnection, startTestApp, verifyDomain, type TestApp } from '../support/app.js';
import { TEST_IDP_ENTITY_ID, TEST_IDP_SSO_URL, type IdpResponseOptions } from '../support/saml-idp.js';
import { samlBrowser } from '../support/saml-browser.js';
import { DEFAULT_TWO_FACTOR_VALUES } from '../../src/domain/two-factor.js';

const PUBLIC_URL = 'https://orgsync.test';
const ENTRA_METHODS = 'http://schemas.microsoft.com/claims/authnmethodsreferences';
let app: TestApp;
let org: { id: string; key: string; defaultPolicyId: string };
let conn: string;
let strictId: string;
const ids: Record<string, string> = {};
const api = (p: string) => `/api/v1/orgs/${org.id}/${p}`;

const sessionCookie = (res: { headers: Record<string, unknown> }) =>
  ([] as string[]).concat((res.headers['set-cookie'] as string[] | undefined) ?? []).find((c) => c.startsWith('orgsync_session='));

let browser: ReturnType<typeof samlBrowser>;
/** SP-initiated sign-in of `email` (support/saml-browser.ts), answered by the test IdP with `opts`: the ACS's answer. */
const signIn = (status: number, email: string, opts: IdpResponseOptions = {}, startPath?: string) => browser.signIn(conn, status, email, opts, startPath);

const lastRefusal = () => app.svc.db.prisma.auditEvent.findFirst({ where: { orgId: org.id, action: 'sso.login.refused' }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });

beforeAll(async () => {
  app = await startTestApp({ PUBLIC_URL });
  browser = samlBrowser(app, PUBLIC_URL);
  org = await createOrg(app, 'Two Factor Co');
  await verifyDomain(app, org, 'mfa.test');
  await app.http.post(api('subscription/trial')).set(bearer(org.key)).send({}).expect(200);
  conn = (await createSamlConnection(app, org, { name: 'Okta', entityId: TEST_IDP_ENTITY_ID, ssoUrl: TEST_IDP_SSO_URL })).id;
  strictId = (await app.http.post(api('policies')).set(bearer(org.key)).send({ name: 'Strict', enforceSso: true, ssoConnectionId: conn, requireTwoFactor: true }).expect(201)).body.id;
  for (const who of ['ann', 'bob']) ids[who] = (await app.http.post(api('accounts')).set(bearer(org.key)).send({ email: `${who}@mfa.test` }).expect(201)).body.id;
  await app.http.post(api(`policies/${strictId}/members`)).set(bearer(org.key)).send({ accountIds: [ids.ann] }).expect(200);
});
afterAll(async () => app?.close());

describe('SSO sign-in under a policy that requires two-step verification', () => {
  it('two_factor_not_asserted: a password-only SAML answer is refused (403, no session), audited with the reason and what the IdP said', async () => {
    const sessions = await app.svc.db.prisma.userSession.count({ where: { orgId: org.id } });
    const res = await signIn(403, 'ann@mfa.test');
    expect(sessionCookie(res)).toBeUndefined();
    expect(res.text).toContain('two-step verification');
    expect(await app.svc.db.prisma.userSession.count({ where: { orgId: org.id } })).toBe(sessions);
    const audit = await lastRefusal();
    expect(audit?.after).toMatchObject({ reason: 'two-factor-not-asserted', email: 'ann@mfa.test', failedChecks: ['two-factor'] });
    expect(String((audit?.after as { detail: string }).detail)).toContain('policy "Strict" requires two-step verification');
  });

  it('Okta\'s amr attribute (session.amr: pwd, mfa, swk) satisfies it: a session', async () => {
    const res = await signIn(303, 'ann@mfa.test', { attributes: { amr: ['pwd', 'mfa', 'swk'] } });
    expect(res.headers.location).toBe('/me');
    expect(sessionCookie(res)).toBeDefined();
  });

  it('Entra ID\'s authnmethodsreferences (…/multipleauthn) satisfies it', async () => {
    const res = await signIn(303, 'ann@mfa.test', { attributes: { [ENTRA_METHODS]: ['http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password', 'http://schemas.microsoft.com/claims/multipleauthn'] } });
    expect(sessionCookie(res)).toBeDefined();
  });

  it('a two-factor AuthnContextClassRef (MobileTwoFactorContract) satisfies it', async () => {
    await signIn(303, 'ann@mfa.test', { authnContextClassRef: 'urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract' });
  });

  it('an amr without a second factor (pwd only) is refused', async () => {
    await signIn(403, 'ann@mfa.test', { attributes: { amr: ['pwd'] } });
    expect((await lastRefusal())?.after).toMatchObject({ reason: 'two-factor-not-asserted' });
  });

  it('a member of a policy without the requirement signs in with a password-only answer', async () => {
    await app.http.patch(api(`policies/${org.defaultPolicyId}`)).set(bearer(org.key)).send({ requireTwoFactor: false }).expect(200);
    const res = await signIn(303, 'bob@mfa.test');
    expect(sessionCookie(res)).toBeDefined();
  });
});

describe('the values a connection accepts (twoFactorValues)', () => {
  it('a new connection accepts the documented defaults; the view says which values count', async () => {
    const view = await app.http.get(api(`sso-connections/${conn}`)).set(bearer(org.key)).expect(200);
    expect(view.body.twoFactorValues).toEqual([]);
    expect(view.body.twoFactorAccepted).toEqual([...DEFAULT_TWO_FACTOR_VALUES]);
    expect(view.body.twoFactorAccepted).toEqual(expect.arrayContaining(['mfa', 'http://schemas.microsoft.com/claims/multipleauthn']));
  });

  it('its own values replace the defaults: only they count, exactly', async () => {
    const res = await app.http.patch(api(`sso-connections/${conn}`)).set(bearer(org.key)).send({ twoFactorValues: ['urn:example:loa:high'] }).expect(200);
    expect(res.body).toMatchObject({ twoFactorValues: ['urn:example:loa:high'], twoFactorAccepted: ['urn:example:loa:high'] });
    await signIn(403, 'ann@mfa.test', { attributes: { amr: ['pwd', 'mfa'] } });
    expect(String(((await lastRefusal())?.after as { detail: string }).detail)).toContain('it asserted AuthnContextClassRef urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport, amr pwd, amr mfa');
    await signIn(403, 'ann@mfa.test', { authnContextClassRef: 'urn:example:LOA:high' }); // exact: case matters
    await signIn(303, 'ann@mfa.test', { authnContextClassRef: 'urn:example:loa:high' });
    const audit = await app.svc.db.prisma.auditEvent.findFirst({ where: { orgId: org.id, action: 'sso-connection.update' }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
    expect(audit?.after).toMatchObject({ twoFactorValues: ['urn:example:loa:high'] });
    await app.http.patch(api(`sso-connections/${conn}`)).set(bearer(org.key)).send({ twoFactorValues: [] }).expect(200);
  });

  it.each([
    ['a control character', ['mfa\u0000']],
    ['an empty value', ['  ']],
    ['a repeated value', ['mfa', 'mfa']],
    ['more than 50 values', Array.from({ length: 51 }, (_, i) => `v${i}`)],
    ['a value that is not a string', [42]],
    ['not a list', 'mfa'],
  ])('%s is 400 with the field named, and changes nothing', async (_what, value) => {
    const res = await app.http.patch(api(`sso-connections/${conn}`)).set(bearer(org.key)).send({ twoFactorValues: value }).expect(400);
    expect(JSON.stringify(res.body)).toContain('twoFactorValues');
    const view = await app.http.get(api(`sso-connections/${conn}`)).set(bearer(org.key)).expect(200);
    expect(view.body.twoFactorValues).toEqual([]);
  });
});

describe('unsubscribed', () => {
  it('required two-step verification stops being enforced once the org unsubscribes (SPEC), and is back when it resubscribes', async () => {
    await app.http.post(api(`policies/${strictId}/members`)).set(bearer(org.key)).send({ accountIds: [ids.bob] }).expect(200);
    await app.http.post(api('subscription/cancel')).set(bearer(org.key)).send({}).expect(200);
    await signIn(303, 'bob@mfa.test');
    await app.http.post(api('subscription/payment-method')).set(bearer(org.key)).send({}).expect(200);
    await app.http.post(api('subscription/resubscribe')).set(bearer(org.key)).send({}).expect(200);
    await signIn(403, 'bob@mfa.test');
    expect((await lastRefusal())?.after).toMatchObject({ reason: 'two-factor-not-asserted', email: 'bob@mfa.test' });
  });
});

describe('the rollout test shows the check', () => {
  it('a test of a member of the strict policy with a password-only answer would be refused: two-factor failed, with what the IdP asserted', async () => {
    const start = await app.http.post(api(`sso-connections/${conn}/test`)).set(bearer(org.key)).send({}).expect(201);
    const res = await signIn(403, 'ann@mfa.test', {}, new URL(start.body.url).pathname);
    expect(res.text).toContain('A real sign-in would be refused');
    const run = await app.http.get(api(`sso-connections/${conn}/tests/${start.body.testId}`)).set(bearer(org.key)).expect(200);
    expect(run.body).toMatchObject({ status: 'completed', wouldSucceed: false });
    expect(run.body.reason).toContain('two-factor-not-asserted');
    const check = (run.body.checks as { name: string; passed: boolean; detail: string }[]).find((c) => c.name === 'two-factor');
    expect(check).toMatchObject({ passed: false });
    expect(check!.detail).toContain('AuthnContextClassRef urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport');
  });

  it('with the second factor asserted the test passes and names the evidence', async () => {
    const start = await app.http.post(api(`sso-connections/${conn}/test`)).set(bearer(org.key)).send({}).expect(201);
    await signIn(200, 'ann@mfa.test', { attributes: { amr: ['pwd', 'otp'] } }, new URL(start.body.url).pathname);
    const run = await app.http.get(api(`sso-connections/${conn}/tests/${start.body.testId}`)).set(bearer(org.key)).expect(200);
    expect(run.body.wouldSucceed).toBe(true);
    const check = (run.body.checks as { name: string; passed: boolean; detail: string }[]).find((c) => c.name === 'two-factor');
    expect(check).toEqual({ name: 'two-factor', passed: true, detail: 'required by policy "Strict": the IdP asserted amr otp' });
  });
});
