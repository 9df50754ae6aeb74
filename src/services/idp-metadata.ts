import { X509Certificate } from 'node:crypto';
import { DOMParser, type Document, type Element } from '@xmldom/xmldom';
import { InvalidInput } from '../domain/errors.js';
import { isLoopbackHost } from '../domain/hosts.js';

const MD = 'urn:oasis:names:tc:SAML:2.0:metadata';
const DS = 'http://www.w3.org/2000/09/xmldsig#';
const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const MAX_METADATA_BYTES = 512 * 1024;

export type IdpSettings = { entityId: string; ssoUrl: string; certificates: string[] };

const bad = (path: string, message: string) => new InvalidInput('invalid body', [{ path, message }]);

/**
 * Reads what we need from an IdP's SAML metadata (saml-metadata-2.0-os §2.4.3): the entity
 * id, the SingleSignOnService for the HTTP-Redirect binding, and the signing certificates
 * (KeyDescriptor use="signing" or without `use`). A DOCTYPE is refused before parsing.
 */
export function parseIdpMetadata(xml: string): IdpSettings {
  if (Buffer.byteLength(xml) > MAX_METADATA_BYTES) throw bad('metadataXml', `metadata larger than ${MAX_METADATA_BYTES} bytes`);
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw bad('metadataXml', 'metadata with a DOCTYPE or entity declarations is refused');
  const errors: string[] = [];
  let doc: Document;
  try {
    doc = new DOMParser({ onError: (level, msg) => { if (level !== 'warning') errors.push(msg); } }).parseFromString(xml, 'text/xml');
  } catch (err) {
    // xmldom 0.9 throws a ParseError on a fatal error (e.g. no root element) whatever onError does: a 400, not a 500.
    throw bad('metadataXml', `not well-formed XML: ${errors[0] ?? (err instanceof Error ? err.message : 'unreadable')}`);
  }
  if (errors.length || !doc.documentElement) throw bad('metadataXml', `not well-formed XML: ${errors[0] ?? 'empty document'}`);
  const entities = [...doc.getElementsByTagNameNS(MD, 'EntityDescriptor')].filter((e) => e.getElementsByTagNameNS(MD, 'IDPSSODescriptor').length > 0);
  if (entities.length === 0) throw bad('metadataXml', 'no EntityDescriptor with an IDPSSODescriptor: is this the identity provider\'s metadata?');
  if (entities.length > 1) throw bad('metadataXml', `${entities.length} identity providers in this metadata; paste the one to use`);
  const entity = entities[0]!;
  const entityId = entity.getAttribute('entityID');
  if (!entityId) throw bad('metadataXml', 'EntityDescriptor has no entityID');
  const idp = entity.getElementsByTagNameNS(MD, 'IDPSSODescriptor')[0]!;
  const sso = [...idp.getElementsByTagNameNS(MD, 'SingleSignOnService')].find((e) => e.getAttribute('Binding') === REDIRECT);
  if (!sso?.getAttribute('Location')) throw bad('metadataXml', 'no SingleSignOnService with the HTTP-Redirect binding');
  const certificates = [...idp.getElementsByTagNameNS(MD, 'KeyDescriptor')]
    .filter((k) => (k.getAttribute('use') || 'signing') === 'signing')
    .flatMap((k) => [...k.getElementsByTagNameNS(DS, 'X509Certificate')].map((c: Element) => (c.textContent ?? '').replace(/\s+/g, '')))
    .filter(Boolean)
    .map((b64) => toPem(b64));
  if (!certificates.length) throw bad('metadataXml', 'no signing certificate (KeyDescriptor use="signing"): a connection without one cannot verify responses');
  return { entityId, ssoUrl: checkUrl(sso.getAttribute('Location')!, 'metadataXml', { allowHttpLoopbackOnly: true }), certificates: [...new Set(certificates.map((c, i) => parseCertificate(c, `metadataXml.certificate[${i}]`)))] };
}

function toPem(b64: string): string {
  return `-----BEGIN CERTIFICATE-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** Accepts a PEM certificate (or its bare base64 body) and returns normalised PEM; refuses anything else. */
export function parseCertificate(input: string, path: string): string {
  const trimmed = input.trim();
  const pem = trimmed.includes('BEGIN CERTIFICATE') ? trimmed : toPem(trimmed.replace(/\s+/g, ''));
  try {
    return new X509Certificate(pem).toString();
  } catch {
    throw bad(path, 'not an X.509 certificate in PEM form');
  }
}

export function certificateInfo(pem: string) {
  const c = new X509Certificate(pem);
  return {
    subject: c.subject.replace(/\n/g, ', '), issuer: c.issuer.replace(/\n/g, ', '),
    notBefore: new Date(c.validFrom).toISOString(), notAfter: new Date(c.validTo).toISOString(),
    sha256Fingerprint: c.fingerprint256,
  };
}

export function checkUrl(value: string, path: string, opts: { allowHttpLoopbackOnly?: boolean } = {}): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw bad(path, 'not a URL');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw bad(path, 'must be an https:// URL');
  if (opts.allowHttpLoopbackOnly && u.protocol === 'http:' && !isLoopbackHost(u.hostname)) {
    throw bad(path, 'must be https:// (plain http is accepted for loopback hosts only)');
  }
  return value;
}
