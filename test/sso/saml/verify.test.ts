/**
 * The SAML verifier against a real (samlify) IdP and the attacks on it. Every refusal names
 * its exact `reason`; the happy paths check what the answer carries.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SsoRefused } from '../../../src/domain/errors.js';
import { warmSamlValidator } from '../../../src/sso/saml/schema-validator.js';
import { samlAcsUrl } from '../../../src/sso/saml/service-provider.js';
import { verifySamlResponse, SAML_MAX_RESPONSE_BYTES, type SamlVerifyOptions } from '../../../src/sso/saml/verify.js';
import {
  appendSecondAssertion, b64, deeplyNested, editResponse, EVIL_NAME_ID, hideSignedAssertion, idpResponse,
  injectCommentInNameId, SAML_KEYS, TEST_PUBLIC_URL, testConnection, withDoctype, xsw, type IdpResponseOptions,
} from '../../support/saml-idp.js';

const NOW = new Date('2030-06-01T12:00:00.000Z');
const conn = testConnection();
const ACS = samlAcsUrl(conn, TEST_PUBLIC_URL);
const opts: SamlVerifyOptions = { publicUrl: TEST_PUBLIC_URL, clockSkewSeconds: 60, allowSha1: false, verifyTimeoutMs: 10_000, now: NOW };
const minutes = (n: number) => new Date(NOW.getTime() + n * 60_000);

const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();

beforeAll(async () => {
  await warmSamlValidator();
});

afterAll(() => {
  expect(Object.getOwnPropertyNames(Object.prototype).sort(), 'Object.prototype gained or lost properties').toEqual(prototypeBefore);
  expect(({} as Record<string, unknown>).polluted, 'Object.prototype polluted').toBeUndefined();
});

async function response(o: IdpResponseOptions = {}) {
  return idpResponse(conn, { now: NOW, ...o });
}

async function refusal(base64: string, overrides: Partial<SamlVerifyOptions> = {}, c = conn): Promise<SsoRefused> {
  try {
    const answer = await verifySamlResponse(c, base64, { ...opts, ...overrides });
    throw new Error(`accepted: ${JSON.stringify(answer.profile)}`);
  } catch (err) {
    if (!(err instanceof SsoRefused)) throw err;
    expect(err.code).toBe('ERR_SSO_REFUSED');
    expect(err.checks.at(-1)?.passed, 'the last check is the failed one').toBe(false);
    return err;
  }
}

async function expectRefused(base64: string, reason: string, overrides: Partial<SamlVerifyOptions> = {}, c = conn): Promise<SsoRefused> {
  const err = await refusal(base64, overrides, c);
  expect(err.reason, err.message).toBe(reason);
  return err;
}

describe('happy paths', () => {
  it('accepts a signed assertion and reports every check', async () => {
    const r = await response({
      attributes: {
        'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname': 'Alice',
        'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname': 'Liddell',
        'http://schemas.microsoft.com/identity/claims/displayname': 'Alice L.',
        groups: ['a', 'b'],
      },
    });
    const answer = await verifySamlResponse(conn, r.base64, opts);
    expect(answer.protocol).toBe('saml');
    expect(answer.profile).toEqual({ subject: 'alice@example.com', email: 'alice@example.com', givenName: 'Alice', familyName: 'Liddell', displayName: 'Alice L.' });
    expect(answer.inResponseTo).toBe(r.inResponseTo);
    expect(answer.assertionId).toBe(r.assertionId);
    // The latest NotOnOrAfter (5 minutes after issue) plus the skew.
    expect(answer.assertionExpiresAt.toISOString()).toBe(new Date(NOW.getTime() + 5 * 60_000 + 60_000).toISOString());
    expect(answer.attributes.groups).toEqual(['a', 'b']);
    const names = answer.checks.map((c) => c.name);
    for (const name of ['size', 'doctype', 'depth', 'structure', 'schema', 'status', 'algorithms', 'signature', 'issuer', 'destination', 'conditions', 'audience', 'subject-confirmation', 'recipient', 'time-window', 'in-response-to', 'subject']) {
      expect(names, `check ${name}`).toContain(name);
    }
    expect(answer.checks.every((c) => c.passed)).toBe(true);
    expect(answer.checks.find((c) => c.name === 'signature')?.detail).toMatch(/^Assertion signed/);
  });

  it('accepts a signed Response carrying one unsigned assertion', async () => {
    const r = await response({ sign: 'response' });
    const answer = await verifySamlResponse(conn, r.base64, opts);
    expect(answer.profile.email).toBe('alice@example.com');
    expect(answer.checks.find((c) => c.name === 'signature')?.detail).toMatch(/^Response signed/);
  });

  it('accepts a response with both signatures', async () => {
    const r = await response({ sign: 'both' });
    const answer = await verifySamlResponse(conn, r.base64, opts);
    expect(answer.checks.find((c) => c.name === 'signature')?.detail).toMatch(/Response signed.*Assertion signed/);
  });

  it('accepts any of several configured certificates (rotation)', async () => {
    const rotating = testConnection({ certificates: [SAML_KEYS.attacker.certificate, SAML_KEYS.idp.certificate] });
    const r = await idpResponse(rotating, { now: NOW });
    await expect(verifySamlResponse(rotating, r.base64, opts)).resolves.toMatchObject({ profile: { email: 'alice@example.com' } });
  });

  it('takes the email from an attribute when the NameID is not one', async () => {
    const r = await response({ nameId: '00u1abcd', nameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent', attributes: { mail: 'bob@example.com', firstName: 'Bob' } });
    const answer = await verifySamlResponse(conn, r.base64, opts);
    expect(answer.profile).toMatchObject({ subject: '00u1abcd', email: 'bob@example.com', givenName: 'Bob', displayName: 'Bob' });
  });

  it('accepts an IdP-initiated response when the connection allows it', async () => {
    const open = testConnection({ allowIdpInitiated: true });
    const r = await idpResponse(open, { now: NOW, inResponseTo: null });
    const answer = await verifySamlResponse(open, r.base64, opts);
    expect(answer.inResponseTo).toBeNull();
  });

  it('accepts times within the clock skew', async () => {
    const r = await response({ now: minutes(1), notBefore: minutes(0.5) });
    await expect(verifySamlResponse(conn, r.base64, opts)).resolves.toBeTruthy();
  });

  it('accepts SHA-1 only when allowed', async () => {
    const r = await response({ sha1: true });
    await expect(verifySamlResponse(conn, r.base64, { ...opts, allowSha1: true })).resolves.toBeTruthy();
  });

  it('keeps an attribute named __proto__ as data', async () => {
    // JSON.parse: in an object literal, `__proto__:` would set the prototype instead of a key.
    const r = await response({ attributes: JSON.parse('{"__proto__": "x", "constructor": "y"}') as Record<string, string> });
    const answer = await verifySamlResponse(conn, r.base64, opts);
    expect(Object.getPrototypeOf(answer.attributes)).toBe(Object.prototype);
    expect(Object.hasOwn(answer.attributes, '__proto__')).toBe(true);
    expect(answer.attributes.constructor).toEqual(['y']);
  });
});

describe('signature wrapping (XSW1–XSW8) and hidden assertions', () => {
  it.each([
    [1, 'response', 'signature-wrapping'],
    [2, 'response', 'signature-wrapping'],
    [3, 'assertion', 'multiple-assertions'],
    [4, 'assertion', 'multiple-assertions'],
    [5, 'assertion', 'multiple-assertions'],
    [6, 'assertion', 'multiple-assertions'],
    [7, 'assertion', 'multiple-assertions'],
    [8, 'assertion', 'multiple-assertions'],
  ] as const)('XSW%i (%s signed) → %s', async (variant, sign, reason) => {
    const r = await response({ sign });
    const forged = xsw(variant, r.xml);
    expect(forged).toContain(EVIL_NAME_ID);
    await expectRefused(b64(forged), reason);
  });

  it.each(['advice', 'subject-confirmation-data'] as const)('refuses a signed assertion hidden in %s behind a forged one', async (where) => {
    const r = await response();
    await expectRefused(b64(hideSignedAssertion(r.xml, where)), 'multiple-assertions');
  });

  it('refuses a signed assertion hidden in Extensions with no assertion in its place', async () => {
    const r = await response();
    await expectRefused(b64(hideSignedAssertion(r.xml, 'extensions-only')), 'signature-wrapping');
  });

  it('refuses two assertions', async () => {
    const r = await response({ sign: 'response' });
    await expectRefused(b64(appendSecondAssertion(r.xml)), 'multiple-assertions');
  });

  it('refuses a Response signature that references the Assertion', async () => {
    const r = await response({ sign: 'response' });
    const forged = r.xml.replace(`URI="#${r.responseId}"`, `URI="#${r.assertionId}"`);
    await expectRefused(b64(forged), 'signature-wrapping');
  });

  it('refuses an ID used twice', async () => {
    const r = await response();
    const forged = editResponse(r.xml, (root) => {
      const status = root.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:protocol', 'Status')[0]!;
      status.setAttribute('ID', r.assertionId);
    });
    await expectRefused(b64(forged), 'signature-wrapping');
  });

  it('refuses a Signature moved out of its Assertion', async () => {
    const r = await response();
    const forged = editResponse(r.xml, (root, doc) => {
      const sig = root.getElementsByTagNameNS('http://www.w3.org/2000/09/xmldsig#', 'Signature')[0]!;
      const ext = doc.createElementNS('urn:oasis:names:tc:SAML:2.0:protocol', 'samlp:Extensions');
      sig.parentNode!.removeChild(sig);
      ext.appendChild(sig);
      root.insertBefore(ext, root.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:protocol', 'Status')[0]!);
    });
    await expectRefused(b64(forged), 'signature-wrapping');
  });

  it('refuses an edited NameID in a signed assertion', async () => {
    const r = await response();
    await expectRefused(b64(r.xml.replace('alice@example.com', EVIL_NAME_ID)), 'bad-signature');
  });

  it('refuses an edited assertion in a signed Response', async () => {
    const r = await response({ sign: 'response' });
    await expectRefused(b64(r.xml.replace('alice@example.com', EVIL_NAME_ID)), 'bad-signature');
  });
});

describe('signature and algorithms', () => {
  it('refuses an unsigned response', async () => {
    const r = await response({ sign: 'none' });
    await expectRefused(r.base64, 'unsigned');
  });

  it('refuses a response signed by another key (its own certificate in KeyInfo)', async () => {
    const r = await response({ key: 'attacker' });
    await expectRefused(r.base64, 'bad-signature');
  });

  it('refuses a response signed by another key claiming the trusted certificate in KeyInfo', async () => {
    const r = await response({ key: 'attacker', keyInfoCert: 'idp' });
    await expectRefused(r.base64, 'bad-signature');
  });

  it('refuses a connection without certificates rather than trusting KeyInfo', async () => {
    const r = await response();
    await expectRefused(r.base64, 'bad-signature', {}, testConnection({ certificates: [] }));
  });

  it('refuses SHA-1 signatures and digests by default', async () => {
    const r = await response({ sha1: true });
    const err = await expectRefused(r.base64, 'weak-algorithm');
    expect(err.message).toMatch(/SHA-1/);
  });

  it('refuses an unknown signature algorithm', async () => {
    const r = await response();
    const forged = r.xml.replace('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', 'http://www.w3.org/2001/04/xmldsig-more#hmac-sha256');
    await expectRefused(b64(forged), 'weak-algorithm');
  });

  it('refuses an XPath/XSLT transform', async () => {
    const r = await response();
    const forged = r.xml.replace('http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/TR/1999/REC-xpath-19991116');
    await expectRefused(b64(forged), 'weak-algorithm');
  });
});

describe('NameID comment injection', () => {
  it('reads the whole NameID across an injected comment, and the signature still verifies', async () => {
    const r = await response({ nameId: 'admin@evil.com.attacker.com' });
    const injected = injectCommentInNameId(r.xml, 'admin@evil.com.attacker.com');
    expect(injected).toContain('admin@evil.com<!---->.attacker.com');
    const answer = await verifySamlResponse(conn, b64(injected), opts);
    expect(answer.profile.subject).toBe('admin@evil.com.attacker.com');
    expect(answer.profile.email).toBe('admin@evil.com.attacker.com');
  });
});

describe('conditions, audience, recipient, destination, issuer', () => {
  it('refuses a wrong Audience', async () => {
    await expectRefused((await response({ audience: 'https://other-sp.example/metadata' })).base64, 'audience-mismatch');
  });

  it('refuses a missing AudienceRestriction', async () => {
    await expectRefused((await response({ audience: null })).base64, 'audience-mismatch');
  });

  it('refuses a wrong Recipient', async () => {
    await expectRefused((await response({ recipient: 'https://orgsync.test/sso/other/saml/acs' })).base64, 'recipient-mismatch');
  });

  it('refuses a missing Recipient', async () => {
    await expectRefused((await response({ recipient: null })).base64, 'recipient-mismatch');
  });

  it('refuses a wrong Destination', async () => {
    await expectRefused((await response({ destination: 'https://evil.example/acs' })).base64, 'destination-mismatch');
  });

  it('refuses a signed Response without Destination', async () => {
    await expectRefused((await response({ sign: 'response', destination: null })).base64, 'destination-mismatch');
  });

  it('accepts a missing Destination on an unsigned Response with a signed assertion', async () => {
    const answer = await verifySamlResponse(conn, (await response({ destination: null })).base64, opts);
    expect(answer.checks.find((c) => c.name === 'destination')?.detail).toMatch(/absent/);
  });

  it('refuses a wrong Issuer', async () => {
    await expectRefused((await response({ issuer: 'https://evil-idp.example' })).base64, 'issuer-mismatch');
  });

  it('refuses a wrong Assertion Issuer under the right Response Issuer', async () => {
    await expectRefused((await response({ sign: 'both', assertionIssuer: 'https://evil-idp.example' })).base64, 'issuer-mismatch');
  });

  it('refuses a missing InResponseTo when IdP-initiated sign-in is off', async () => {
    await expectRefused((await response({ inResponseTo: null })).base64, 'unsolicited');
  });

  it('refuses a Response InResponseTo that disagrees with the signed SubjectConfirmationData', async () => {
    await expectRefused((await response({ subjectInResponseTo: '_other_request' })).base64, 'in-response-to-mismatch');
  });

  it('refuses an expired assertion', async () => {
    await expectRefused((await response({ now: minutes(-30) })).base64, 'expired');
  });

  it('refuses expired Conditions even with a live SubjectConfirmationData', async () => {
    await expectRefused((await response({ notOnOrAfter: minutes(-5) })).base64, 'expired');
  });

  it('refuses an assertion that is not yet valid', async () => {
    await expectRefused((await response({ notBefore: minutes(10), notOnOrAfter: minutes(20), subjectNotOnOrAfter: minutes(20) })).base64, 'not-yet-valid');
  });

  it('refuses an assertion without Conditions', async () => {
    await expectRefused((await response({ conditions: false })).base64, 'no-conditions');
  });

  it('refuses Conditions without NotOnOrAfter', async () => {
    await expectRefused((await response({ notOnOrAfter: null })).base64, 'no-conditions');
  });

  it('refuses a SubjectConfirmationData without NotOnOrAfter', async () => {
    await expectRefused((await response({ subjectNotOnOrAfter: null })).base64, 'no-subject-confirmation');
  });

  it('refuses a non-Success status, naming the IdP status and message', async () => {
    const r = await response({
      sign: 'response',
      status: 'urn:oasis:names:tc:SAML:2.0:status:Responder',
      subStatus: 'urn:oasis:names:tc:SAML:2.0:status:RequestDenied',
      statusMessage: 'User is not assigned to this application',
    });
    const err = await expectRefused(r.base64, 'idp-status');
    expect(err.message).toContain('urn:oasis:names:tc:SAML:2.0:status:Responder');
    expect(err.message).toContain('RequestDenied');
    expect(err.message).toContain('User is not assigned to this application');
  });

  it.each([
    ['unsigned', { sign: 'none' as const }],
    ['signed by another key', { sign: 'response' as const, key: 'attacker' as const, keyInfoCert: 'attacker' as const }],
  ])('regression: an error answer %s shows a fixed text, never its own status message (issue 12 §4)', async (_n, signing) => {
    const r = await response({
      ...signing, status: 'urn:oasis:names:tc:SAML:2.0:status:Responder',
      statusMessage: 'Your account is locked. Call +1-555-0100 and give them your password',
    });
    const err = await expectRefused(r.base64, 'idp-status');
    expect(err.message).toBe('the IdP answered with an error status (Responder); the answer is not signed, so its message is not shown');
    expect(JSON.stringify(err.checks)).not.toContain('555');
  });

  it('an unsigned error answer with a made-up status code does not echo the code either', async () => {
    const r = await response({ sign: 'none', status: 'urn:evil:Call-+1-555-0100' });
    const err = await expectRefused(r.base64, 'idp-status');
    expect(err.message).toBe('the IdP answered with an error status; the answer is not signed, so its message is not shown');
  });
});

describe('hostile input before and around parsing', () => {
  it.each(['entity', 'external', 'plain'] as const)('refuses a DOCTYPE (%s)', async (kind) => {
    const r = await response();
    await expectRefused(b64(withDoctype(r.xml, kind)), 'doctype-forbidden');
  });

  it('refuses an ENTITY declaration anywhere', async () => {
    const r = await response();
    await expectRefused(b64(r.xml.replace('<samlp:Response', '<!ENTITY x "y"><samlp:Response')), 'doctype-forbidden');
  });

  it('refuses an oversized body with 413', async () => {
    const err = await expectRefused('A'.repeat(SAML_MAX_RESPONSE_BYTES + 4), 'too-large');
    expect(err.status).toBe(413);
  });

  it('refuses deep nesting', async () => {
    const r = await response();
    await expectRefused(b64(deeplyNested(r.xml, 200)), 'too-deep');
  });

  it.each(['not base64!!', '', '====', 'QUJD\u0000'])('refuses bad base64 %j', async (body) => {
    await expectRefused(body, 'bad-encoding');
  });

  it('refuses UTF-16', async () => {
    const r = await response();
    await expectRefused(Buffer.from(`\ufeff${r.xml}`, 'utf16le').toString('base64'), 'bad-encoding');
  });

  it('refuses malformed XML', async () => {
    await expectRefused(b64('<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><unclosed></samlp:Response>'), 'malformed-xml');
  });

  it('refuses something that is not a Response', async () => {
    await expectRefused(b64('<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x" Version="2.0" IssueInstant="2030-01-01T00:00:00Z"/>'), 'not-a-response');
  });

  it('refuses a schema-invalid response', async () => {
    const r = await response();
    const invalid = r.xml.replace('<samlp:Status>', '<samlp:Bogus/><samlp:Status>');
    const err = await expectRefused(b64(invalid), 'schema-invalid');
    expect(err.checks.map((c) => c.name)).toEqual(['size', 'encoding', 'doctype', 'depth', 'well-formed', 'structure', 'schema']);
  });

  it('refuses an encrypted assertion (not supported)', async () => {
    const r = await response({ sign: 'response' });
    const encrypted = editResponse(r.xml, (root, doc) => {
      const a = root.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:assertion', 'Assertion')[0]!;
      root.replaceChild(doc.createElementNS('urn:oasis:names:tc:SAML:2.0:assertion', 'saml:EncryptedAssertion'), a);
    });
    await expectRefused(b64(encrypted), 'encrypted-assertion');
  });

  it('refuses when the time budget is spent', async () => {
    const r = await response();
    await expectRefused(r.base64, 'timeout', { verifyTimeoutMs: 0 });
  });

  it('does not touch the network or files for a response naming an external schema', async () => {
    const r = await response();
    const withSchemaLocation = r.xml.replace('<samlp:Response ', '<samlp:Response xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="urn:x file:///etc/passwd" ');
    // The Response itself is unsigned here, so the edit is allowed; the hint is not followed.
    const answer = await verifySamlResponse(conn, b64(withSchemaLocation), opts);
    expect(answer.checks.find((c) => c.name === 'recipient')?.detail).toBe(ACS);
  });
});
