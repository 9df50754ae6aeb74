/**
 * Bad SAML answers through the real HTTP ACS: each one is a 4xx (never a redirect), sets no
 * cookie, and leaves an `sso.login.refused` audit row naming the reason.
 */
import { inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, startTestApp, type TestApp } from '../../support/app.js';
import {
  appendSecondAssertion, b64, deeplyNested, hideSignedAssertion, idpResponse, injectCommentInNameId, SAML_KEYS, TEST_IDP_ENTITY_ID, TEST_IDP_SSO_URL,
  testConnection, withDoctype, xsw,
} from '../../support/saml-idp.js';
import type { SamlConnection } from '../../../src/sso/saml/service-provider.js';

const PUBLIC_URL = 'https://orgsync.test';

let app: TestApp;
let org: { id: string; key: string };
let conn: SamlConnection;

beforeAll(async () => {
  app = await startTestApp({ PUBLIC_URL, SSO_REFUSAL_AUDIT_BURST: '100000' });
  org = await createOrg(app, 'Saml ACS Co');
  const res = await app.http.post(`/api/v1/orgs/${org.id}/sso-connections`).set(bearer(org.key)).send({
    type: 'saml', name: 'Test IdP', entityId: TEST_IDP_ENTITY_ID, ssoUrl: TEST_IDP_SSO_URL, certificate: SAML_KEYS.idp.certificate, allowIdpInitiated: false,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  conn = testConnection({ id: res.body.id });
  expect(res.body.serviceProvider?.acsUrl).toBe(`${PUBLIC_URL}/sso/${conn.id}/saml/acs`);
});

afterAll(async () => {
  await app?.close();
});

async function refusedReasons(): Promise<string[]> {
  const res = await app.http.get(`/api/v1/orgs/${org.id}/audit`).query({ action: 'sso.login.refused' }).set(bearer(org.key)).expect(200);
  const items = (res.body.items ?? res.body.data ?? res.body) as Array<{ action: string; targetId: string | null; after: { reason?: string } | null }>;
  return items.filter((e) => e.action === 'sso.login.refused' && e.targetId === conn.id).map((e) => e.after?.reason ?? '');
}

async function postAcs(samlResponse: string, cookie?: string) {
  return app.http.post(`/sso/${conn.id}/saml/acs`).type('form').set('Accept', 'application/json').set(cookie ? { Cookie: cookie } : {}).send({ SAMLResponse: samlResponse, RelayState: '' });
}

describe('SAML ACS over HTTP refuses bad answers', () => {
  it.each([
    ['unsigned', async () => (await idpResponse(conn, { sign: 'none' }, PUBLIC_URL)).base64, 401],
    ['bad-signature', async () => (await idpResponse(conn, { key: 'attacker' }, PUBLIC_URL)).base64, 401],
    ['multiple-assertions', async () => b64(xsw(3, (await idpResponse(conn, {}, PUBLIC_URL)).xml)), 400],
    ['audience-mismatch', async () => (await idpResponse(conn, { audience: 'https://other.example' }, PUBLIC_URL)).base64, 403],
    ['doctype-forbidden', async () => b64(withDoctype((await idpResponse(conn, {}, PUBLIC_URL)).xml)), 400],
    ['unsolicited', async () => (await idpResponse(conn, { inResponseTo: null }, PUBLIC_URL)).base64, 403],
    // Every protocol check passes; the InResponseTo names no request we sent (database check).
    ['unknown-request', async () => (await idpResponse(conn, {}, PUBLIC_URL)).base64, 403],
  ] as const)('%s', async (reason, make, status) => {
    const before = (await refusedReasons()).filter((r) => r === reason).length;
    const res = await postAcs(await make());
    expect(res.status, JSON.stringify(res.body)).toBe(status);
    expect(res.body.reason).toBe(reason);
    expect(res.headers['set-cookie'], 'no cookie on a refusal').toBeUndefined();
    expect(res.headers.location).toBeUndefined();
    expect((await refusedReasons()).filter((r) => r === reason).length, 'one more audit row').toBe(before + 1);
  });

  // The whole bad-input list, through the real ACS: a clear 4xx, no cookie, one audit row.
  const ago = (min: number) => new Date(Date.now() - min * 60_000);
  type Case = readonly [name: string, reason: string, status: number, make: () => Promise<string>];
  it.each<Case>([
    ...([1, 2] as const).map((v) => [`XSW${v} (forged assertion beside the signed Response)`, 'signature-wrapping', 400, async () => b64(xsw(v, (await idpResponse(conn, { sign: 'response' }, PUBLIC_URL)).xml))] as const),
    ...([3, 4, 5, 6, 7, 8] as const).map((v) => [`XSW${v} (forged assertion before/after/around/inside the signed one)`, 'multiple-assertions', 400, async () => b64(xsw(v, (await idpResponse(conn, {}, PUBLIC_URL)).xml))] as const),
    ['signed assertion hidden in Advice', 'multiple-assertions', 400, async () => b64(hideSignedAssertion((await idpResponse(conn, {}, PUBLIC_URL)).xml, 'advice'))],
    ['signed assertion hidden in SubjectConfirmationData', 'multiple-assertions', 400, async () => b64(hideSignedAssertion((await idpResponse(conn, {}, PUBLIC_URL)).xml, 'subject-confirmation-data'))],
    ['signed assertion hidden in Extensions', 'signature-wrapping', 400, async () => b64(hideSignedAssertion((await idpResponse(conn, {}, PUBLIC_URL)).xml, 'extensions-only'))],
    ['two assertions', 'multiple-assertions', 400, async () => b64(appendSecondAssertion((await idpResponse(conn, { sign: 'response' }, PUBLIC_URL)).xml))],
    ['wrong Recipient', 'recipient-mismatch', 403, async () => (await idpResponse(conn, { recipient: `${PUBLIC_URL}/sso/other/saml/acs` }, PUBLIC_URL)).base64],
    ['wrong Destination', 'destination-mismatch', 403, async () => (await idpResponse(conn, { sign: 'response', destination: `${PUBLIC_URL}/elsewhere` }, PUBLIC_URL)).base64],
    ['wrong Issuer', 'issuer-mismatch', 403, async () => (await idpResponse(conn, { issuer: 'https://evil.example/idp' }, PUBLIC_URL)).base64],
    ['InResponseTo disagreeing with the signed SubjectConfirmationData', 'in-response-to-mismatch', 403, async () => (await idpResponse(conn, { inResponseTo: '_a', subjectInResponseTo: '_b' }, PUBLIC_URL)).base64],
    ['expired', 'expired', 403, async () => (await idpResponse(conn, { now: ago(30) }, PUBLIC_URL)).base64],
    ['not yet valid', 'not-yet-valid', 403, async () => (await idpResponse(conn, { notBefore: new Date(Date.now() + 30 * 60_000) }, PUBLIC_URL)).base64],
    ['no Conditions', 'no-conditions', 403, async () => (await idpResponse(conn, { conditions: false }, PUBLIC_URL)).base64],
    ['no SubjectConfirmationData NotOnOrAfter', 'no-subject-confirmation', 403, async () => (await idpResponse(conn, { subjectNotOnOrAfter: null }, PUBLIC_URL)).base64],
    ['external entity', 'doctype-forbidden', 400, async () => b64(withDoctype((await idpResponse(conn, {}, PUBLIC_URL)).xml, 'external'))],
    ['deeply nested document', 'too-deep', 400, async () => b64(deeplyNested((await idpResponse(conn, {}, PUBLIC_URL)).xml, 200))],
    ['bad base64', 'bad-encoding', 400, async (): Promise<string> => 'not base64!!'],
    ['SHA-1 signature', 'weak-algorithm', 403, async () => (await idpResponse(conn, { sha1: true }, PUBLIC_URL)).base64],
  ])('%s → %s', async (_name, reason, status, make) => {
    const before = (await refusedReasons()).filter((r) => r === reason).length;
    const res = await postAcs(await make());
    expect(res.status, JSON.stringify(res.body)).toBe(status);
    expect(res.body.reason).toBe(reason);
    expect(res.headers['set-cookie'], 'no cookie on a refusal').toBeUndefined();
    expect((await refusedReasons()).filter((r) => r === reason).length, 'one more audit row').toBe(before + 1);
  });

  it('a comment injected into the NameID yields the full NameID (so it names an address on an unverified domain)', async () => {
    const login = await app.http.get(`/sso/${conn.id}/saml/login`).expect(302);
    const samlRequest = new URL(login.headers.location!).searchParams.get('SAMLRequest')!;
    const requestId = /ID="([^"]+)"/.exec(inflateRawSync(Buffer.from(samlRequest, 'base64')).toString('utf8'))![1]!;
    const r = await idpResponse(conn, { nameId: 'admin@victim.example.attacker.com', inResponseTo: requestId }, PUBLIC_URL);
    const flow = [login.headers['set-cookie'] ?? []].flat().map((c: string) => c.split(';')[0]).join('; ');
    const res = await postAcs(b64(injectCommentInNameId(r.xml, 'admin@victim.example.attacker.com')), flow);
    expect(res.status).toBe(403);
    expect(res.headers['set-cookie']).toBeUndefined();
    // Every protocol check passes; the account check sees the whole address, not "admin@victim.example".
    expect(res.body.reason).toBe('domain-not-verified');
    expect(res.body.detail).toContain('victim.example.attacker.com');
  });

  it('refuses an oversized body with 413 and audits it', async () => {
    const before = (await refusedReasons()).filter((r) => r === 'too-large').length;
    const res = await postAcs('A'.repeat(300 * 1024));
    expect(res.status).toBe(413);
    expect(res.headers['set-cookie']).toBeUndefined();
    expect((await refusedReasons()).filter((r) => r === 'too-large').length).toBe(before + 1);
  });

  it('serves the metadata the verifier checks against', async () => {
    const res = await app.http.get(`/sso/${conn.id}/saml/metadata`).expect(200);
    expect(res.text).toContain(`entityID="${PUBLIC_URL}/sso/${conn.id}/saml/metadata"`);
    expect(res.text).toContain(`Location="${PUBLIC_URL}/sso/${conn.id}/saml/acs"`);
  });
});
