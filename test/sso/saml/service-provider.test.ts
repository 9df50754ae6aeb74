/**
 * SP metadata and the SP-initiated AuthnRequest (HTTP-Redirect binding), read back the way an
 * IdP reads them.
 */
import { createVerify, X509Certificate } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { DOMParser, type Element } from '@xmldom/xmldom';
import { describe, expect, it } from 'vitest';
import { buildSamlLoginRedirect, samlAcsUrl, samlMetadataXml, samlSpEntityId } from '../../../src/sso/saml/service-provider.js';
import { validateSamlSchema } from '../../../src/sso/saml/schema-validator.js';
import { SAML_KEYS, TEST_IDP_SSO_URL, TEST_PUBLIC_URL, testConnection } from '../../support/saml-idp.js';

const MD = 'urn:oasis:names:tc:SAML:2.0:metadata';
const SAMLP = 'urn:oasis:names:tc:SAML:2.0:protocol';
const SAML = 'urn:oasis:names:tc:SAML:2.0:assertion';
const conn = testConnection();
const parse = (xml: string) => new DOMParser().parseFromString(xml, 'text/xml').documentElement!;
const one = (el: Element, ns: string, local: string) => {
  const found = el.getElementsByTagNameNS(ns, local);
  expect(found.length, `${local} elements`).toBe(1);
  return found[0]!;
};

describe('samlMetadataXml', () => {
  it('names the entity id (the Audience) and the HTTP-POST ACS', () => {
    const root = parse(samlMetadataXml(conn, { publicUrl: `${TEST_PUBLIC_URL}/` }));
    expect(root.namespaceURI).toBe(MD);
    expect(root.localName).toBe('EntityDescriptor');
    expect(root.getAttribute('entityID')).toBe('https://orgsync.test/sso/conn_test_1/saml/metadata');
    expect(root.getAttribute('entityID')).toBe(samlSpEntityId(conn, TEST_PUBLIC_URL));
    const sp = one(root, MD, 'SPSSODescriptor');
    expect(sp.getAttribute('WantAssertionsSigned')).toBe('true');
    expect(sp.getAttribute('AuthnRequestsSigned')).toBe('false');
    expect(sp.getAttribute('protocolSupportEnumeration')).toBe(SAMLP);
    const acs = one(root, MD, 'AssertionConsumerService');
    expect(acs.getAttribute('Binding')).toBe('urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST');
    expect(acs.getAttribute('Location')).toBe('https://orgsync.test/sso/conn_test_1/saml/acs');
    expect(root.getElementsByTagNameNS(MD, 'KeyDescriptor').length).toBe(0);
  });

  it('publishes the signing certificate and AuthnRequestsSigned when a key is configured', () => {
    const root = parse(samlMetadataXml(conn, { publicUrl: TEST_PUBLIC_URL, signing: SAML_KEYS.sp }));
    expect(one(root, MD, 'SPSSODescriptor').getAttribute('AuthnRequestsSigned')).toBe('true');
    const key = one(root, MD, 'KeyDescriptor');
    expect(key.getAttribute('use')).toBe('signing');
    const published = one(key, 'http://www.w3.org/2000/09/xmldsig#', 'X509Certificate').textContent!.replace(/\s+/g, '');
    expect(new X509Certificate(Buffer.from(published, 'base64')).fingerprint256).toBe(new X509Certificate(SAML_KEYS.sp.certificate).fingerprint256);
  });
});

function decodeRedirect(url: string) {
  const u = new URL(url);
  const request = u.searchParams.get('SAMLRequest');
  expect(request).toBeTruthy();
  const xml = inflateRawSync(Buffer.from(request!, 'base64')).toString('utf8');
  return { u, xml, root: parse(xml) };
}

describe('buildSamlLoginRedirect', () => {
  it('builds an unsigned AuthnRequest whose ID is the requestId', () => {
    const { url, requestId } = buildSamlLoginRedirect(conn, { publicUrl: TEST_PUBLIC_URL, relayState: 'rs-1', loginHint: 'alice@example.com' });
    expect(url.startsWith(`${TEST_IDP_SSO_URL}?`)).toBe(true);
    const { u, xml, root } = decodeRedirect(url);
    expect(root.namespaceURI).toBe(SAMLP);
    expect(root.localName).toBe('AuthnRequest');
    expect(root.getAttribute('ID')).toBe(requestId);
    expect(requestId).toMatch(/^_[0-9a-f-]{36}$/);
    expect(root.getAttribute('Destination')).toBe(TEST_IDP_SSO_URL);
    expect(root.getAttribute('AssertionConsumerServiceURL')).toBe(samlAcsUrl(conn, TEST_PUBLIC_URL));
    expect(root.getAttribute('ProtocolBinding')).toBe('urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST');
    expect(one(root, SAML, 'Issuer').textContent).toBe(samlSpEntityId(conn, TEST_PUBLIC_URL));
    expect(u.searchParams.get('RelayState')).toBe('rs-1');
    expect(u.searchParams.get('login_hint')).toBe('alice@example.com');
    expect(u.searchParams.get('Signature')).toBeNull();
    expect(u.searchParams.get('SigAlg')).toBeNull();
    expect(validateSamlSchema(xml)).toEqual({ valid: true });
  });

  it('gives every request a fresh ID', () => {
    const a = buildSamlLoginRedirect(conn, { publicUrl: TEST_PUBLIC_URL });
    const b = buildSamlLoginRedirect(conn, { publicUrl: TEST_PUBLIC_URL });
    expect(a.requestId).not.toBe(b.requestId);
  });

  it('signs the redirect (saml-bindings §3.4.4.1) when a key is configured', () => {
    const { url, requestId } = buildSamlLoginRedirect(conn, { publicUrl: TEST_PUBLIC_URL, signing: SAML_KEYS.sp, relayState: 'state/with?chars' });
    const { u, root } = decodeRedirect(url);
    expect(root.getAttribute('ID')).toBe(requestId);
    expect(u.searchParams.get('SigAlg')).toBe('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
    // The signed octet string is the raw query: SAMLRequest=…&RelayState=…&SigAlg=…, as sent.
    const raw = url.slice(url.indexOf('?') + 1).split('&');
    const pick = (name: string) => raw.find((p) => p.startsWith(`${name}=`))!;
    const octets = [pick('SAMLRequest'), pick('RelayState'), pick('SigAlg')].join('&');
    const verifier = createVerify('RSA-SHA256');
    verifier.update(octets);
    expect(verifier.verify(SAML_KEYS.sp.certificate, Buffer.from(u.searchParams.get('Signature')!, 'base64'))).toBe(true);
    // …and not with another key.
    const wrong = createVerify('RSA-SHA256');
    wrong.update(octets);
    expect(wrong.verify(SAML_KEYS.attacker.certificate, Buffer.from(u.searchParams.get('Signature')!, 'base64'))).toBe(false);
  });
});
