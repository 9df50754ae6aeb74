/**
 * A real SAML identity provider for tests: samlify's `IdentityProvider` with the fixture keys
 * (fixtures/saml, test-only) signs responses built from a custom `loginResponseTemplate`, for
 * the SP a `SamlConnection` describes. Plus the hostile edits an attacker makes to a valid
 * signed response: XSW1–XSW8, duplicated or hidden assertions, comments in the NameID,
 * DOCTYPE/entities, deep nesting.
 */
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { DOMParser, XMLSerializer, type Document, type Element } from '@xmldom/xmldom';
import samlify from 'samlify';
import { samlAcsUrl, samlSpEntityId, SAML_BINDING_POST, SAML_BINDING_REDIRECT, NAMEID_EMAIL, type SamlConnection } from '../../src/sso/saml/service-provider.js';

const dir = new URL('../../fixtures/saml/', import.meta.url);
const pem = (name: string) => readFileSync(new URL(name, dir), 'utf8');

export const SAML_KEYS = {
  idp: { privateKey: pem('idp-key.pem'), certificate: pem('idp-cert.pem') },
  attacker: { privateKey: pem('attacker-key.pem'), certificate: pem('attacker-cert.pem') },
  sp: { privateKey: pem('sp-key.pem'), certificate: pem('sp-cert.pem') },
} as const;

export const TEST_PUBLIC_URL = 'https://orgsync.test';
export const TEST_IDP_ENTITY_ID = 'https://idp.example.test/saml/metadata';
export const TEST_IDP_SSO_URL = 'https://idp.example.test/saml/sso';

export function testConnection(overrides: Partial<SamlConnection> = {}): SamlConnection {
  return {
    id: 'conn_test_1',
    entityId: TEST_IDP_ENTITY_ID,
    ssoUrl: TEST_IDP_SSO_URL,
    certificates: [SAML_KEYS.idp.certificate],
    allowIdpInitiated: false,
    ...overrides,
  };
}

const NS = {
  samlp: 'urn:oasis:names:tc:SAML:2.0:protocol',
  saml: 'urn:oasis:names:tc:SAML:2.0:assertion',
  ds: 'http://www.w3.org/2000/09/xmldsig#',
};
const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const RSA_SHA1 = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1';
const SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';

export type IdpResponseOptions = {
  /** Which element carries the signature. Default: the assertion. */
  sign?: 'assertion' | 'response' | 'both' | 'none';
  /** Which key signs (its certificate goes into KeyInfo unless `keyInfoCert` says otherwise). */
  key?: 'idp' | 'attacker';
  /** Certificate to embed in KeyInfo (default: the signing key's). */
  keyInfoCert?: 'idp' | 'attacker';
  nameId?: string;
  nameIdFormat?: string;
  attributes?: Record<string, string | string[]>;
  /** The AuthnStatement's AuthnContextClassRef (default PasswordProtectedTransport). */
  authnContextClassRef?: string;
  /** undefined → a fresh request id; null → absent (IdP-initiated). */
  inResponseTo?: string | null;
  /** Overrides SubjectConfirmationData@InResponseTo only (default: same as the Response). */
  subjectInResponseTo?: string | null;
  audience?: string | null;
  recipient?: string | null;
  /** null → no Destination attribute. */
  destination?: string | null;
  issuer?: string;
  assertionIssuer?: string;
  /** Conditions bounds; `conditions: false` leaves Conditions out. */
  conditions?: boolean;
  notBefore?: Date | null;
  notOnOrAfter?: Date | null;
  /** SubjectConfirmationData@NotOnOrAfter; null → absent. */
  subjectNotOnOrAfter?: Date | null;
  sha1?: boolean;
  status?: string;
  subStatus?: string;
  statusMessage?: string;
  /** When the response is issued (default now). */
  now?: Date;
};

export type IdpResponse = { xml: string; base64: string; responseId: string; assertionId: string; inResponseTo: string | null };

// The custom login response template: {Placeholders} are filled by samlify's
// replaceTagsByValue (escaped; a null value drops the attribute); {{Fragments}} by us.
const RESPONSE_TEMPLATE =
  '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ' +
  'ID="{ID}" Version="2.0" IssueInstant="{IssueInstant}" Destination="{Destination}" InResponseTo="{InResponseTo}">' +
  '<saml:Issuer>{Issuer}</saml:Issuer>' +
  '<samlp:Status><samlp:StatusCode Value="{StatusCode}">{{SubStatus}}</samlp:StatusCode>{{StatusMessage}}</samlp:Status>' +
  '{{Assertion}}</samlp:Response>';
const ASSERTION_TEMPLATE =
  '<saml:Assertion xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema" ' +
  'ID="{AssertionID}" Version="2.0" IssueInstant="{IssueInstant}">' +
  '<saml:Issuer>{AssertionIssuer}</saml:Issuer>' +
  '<saml:Subject><saml:NameID Format="{NameIDFormat}">{NameID}</saml:NameID>' +
  '<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">' +
  '<saml:SubjectConfirmationData NotOnOrAfter="{SubjectConfirmationDataNotOnOrAfter}" Recipient="{SubjectRecipient}" InResponseTo="{SubjectInResponseTo}"/>' +
  '</saml:SubjectConfirmation></saml:Subject>' +
  '{{Conditions}}' +
  '<saml:AuthnStatement AuthnInstant="{IssueInstant}" SessionIndex="{SessionIndex}"><saml:AuthnContext>' +
  '{{AuthnContextClassRef}}' +
  '</saml:AuthnContext></saml:AuthnStatement>' +
  '{{Attributes}}</saml:Assertion>';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function attributeStatement(attributes: Record<string, string | string[]>): string {
  const entries = Object.entries(attributes);
  if (entries.length === 0) return '';
  return '<saml:AttributeStatement>' + entries.map(([name, v]) =>
    `<saml:Attribute Name="${esc(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified">` +
    (Array.isArray(v) ? v : [v]).map((x) => `<saml:AttributeValue xsi:type="xs:string">${esc(x)}</saml:AttributeValue>`).join('') +
    '</saml:Attribute>').join('') + '</saml:AttributeStatement>';
}

/** A signed (or not) SAML Response from the test IdP to the SP of `conn`. */
export async function idpResponse(conn: SamlConnection, opts: IdpResponseOptions = {}, publicUrl = TEST_PUBLIC_URL): Promise<IdpResponse> {
  const sign = opts.sign ?? 'assertion';
  const now = opts.now ?? new Date();
  const later = new Date(now.getTime() + 5 * 60_000);
  const acs = samlAcsUrl(conn, publicUrl);
  const responseId = `_r${randomUUID().replace(/-/g, '')}`;
  const assertionId = `_a${randomUUID().replace(/-/g, '')}`;
  const inResponseTo = opts.inResponseTo === undefined ? `_req${randomUUID().replace(/-/g, '')}` : opts.inResponseTo;
  const subjectInResponseTo = opts.subjectInResponseTo === undefined ? inResponseTo : opts.subjectInResponseTo;
  const status = opts.status ?? SUCCESS;
  const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

  const conditions = opts.conditions === false ? '' :
    `<saml:Conditions${opts.notBefore === null ? '' : ` NotBefore="${iso(opts.notBefore ?? now)}"`}` +
    `${opts.notOnOrAfter === null ? '' : ` NotOnOrAfter="${iso(opts.notOnOrAfter ?? later)}"`}>` +
    (opts.audience === null ? '' : `<saml:AudienceRestriction><saml:Audience>${esc(opts.audience ?? samlSpEntityId(conn, publicUrl))}</saml:Audience></saml:AudienceRestriction>`) +
    '</saml:Conditions>';
  const fragments: Record<string, string> = {
    '{{Assertion}}': status === SUCCESS ? ASSERTION_TEMPLATE : '',
    '{{SubStatus}}': opts.subStatus ? `<samlp:StatusCode Value="${esc(opts.subStatus)}"/>` : '',
    '{{StatusMessage}}': opts.statusMessage ? `<samlp:StatusMessage>${esc(opts.statusMessage)}</samlp:StatusMessage>` : '',
    '{{Conditions}}': conditions,
    '{{Attributes}}': attributeStatement(opts.attributes ?? {}),
    '{{AuthnContextClassRef}}': `<saml:AuthnContextClassRef>${esc(opts.authnContextClassRef ?? 'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport')}</saml:AuthnContextClassRef>`,
  };
  const values = {
    ID: responseId,
    AssertionID: assertionId,
    IssueInstant: now.toISOString(),
    Destination: opts.destination === undefined ? acs : opts.destination,
    InResponseTo: inResponseTo,
    SubjectInResponseTo: subjectInResponseTo,
    Issuer: opts.issuer ?? conn.entityId,
    AssertionIssuer: opts.assertionIssuer ?? opts.issuer ?? conn.entityId,
    StatusCode: status,
    NameIDFormat: opts.nameIdFormat ?? NAMEID_EMAIL,
    NameID: opts.nameId ?? 'alice@example.com',
    SubjectConfirmationDataNotOnOrAfter: opts.subjectNotOnOrAfter === undefined ? later.toISOString() : iso(opts.subjectNotOnOrAfter),
    SubjectRecipient: opts.recipient === undefined ? acs : opts.recipient,
    SessionIndex: `_s${randomUUID().replace(/-/g, '')}`,
  };
  const render = (template: string) => {
    let xml = template;
    for (const [k, v] of Object.entries(fragments)) xml = xml.split(k).join(v);
    return samlify.SamlLib.replaceTagsByValue(xml, values);
  };

  if (sign === 'none') {
    const xml = render(RESPONSE_TEMPLATE);
    return { xml, base64: b64(xml), responseId, assertionId, inResponseTo };
  }

  const signer = SAML_KEYS[opts.key ?? 'idp'];
  const idp = samlify.IdentityProvider({
    entityID: conn.entityId,
    privateKey: signer.privateKey,
    signingCert: SAML_KEYS[opts.keyInfoCert ?? opts.key ?? 'idp'].certificate,
    requestSignatureAlgorithm: opts.sha1 ? RSA_SHA1 : RSA_SHA256,
    singleSignOnService: [{ Binding: SAML_BINDING_REDIRECT, Location: conn.ssoUrl }],
    singleLogoutService: [{ Binding: SAML_BINDING_REDIRECT, Location: `${conn.ssoUrl}/logout` }],
    loginResponseTemplate: { context: RESPONSE_TEMPLATE, attributes: [] },
  });
  const sp = samlify.ServiceProvider({
    entityID: samlSpEntityId(conn, publicUrl),
    assertionConsumerService: [{ Binding: SAML_BINDING_POST, Location: acs }],
    singleLogoutService: [{ Binding: SAML_BINDING_POST, Location: `${acs}/logout` }],
    // samlify signs the assertion when the SP wants signed assertions and the whole message
    // when it wants signed messages (or does not want signed assertions).
    wantAssertionsSigned: sign === 'assertion' || sign === 'both',
    wantMessageSigned: sign === 'response' || sign === 'both',
  });
  const out = await idp.createLoginResponse(sp, { extract: {} }, 'post', {}, {
    customTagReplacement: (template: string) => ({ id: responseId, context: render(template) }),
  });
  const xml = Buffer.from(out.context, 'base64').toString('utf8');
  return { xml, base64: out.context, responseId, assertionId, inResponseTo };
}

// ---------------------------------------------------------------------------------------------
// What an attacker does to a response.

export const b64 = (xml: string) => Buffer.from(xml, 'utf8').toString('base64');

function parse(xml: string): Document {
  return new DOMParser().parseFromString(xml, 'text/xml');
}
const serialize = (doc: Document) => new XMLSerializer().serializeToString(doc);

function kids(el: Element, ns: string, local: string): Element[] {
  const out: Element[] = [];
  for (let i = 0; i < el.childNodes.length; i++) {
    const n = el.childNodes[i]!;
    if (n.nodeType === 1 && (n as Element).namespaceURI === ns && (n as Element).localName === local) out.push(n as Element);
  }
  return out;
}
const kid = (el: Element, ns: string, local: string) => {
  const k = kids(el, ns, local)[0];
  if (!k) throw new Error(`no ${local} in ${el.localName}`);
  return k;
};
const removeSignature = (el: Element) => kids(el, NS.ds, 'Signature').forEach((s) => el.removeChild(s));
function setNameId(assertion: Element, value: string): void {
  const nameId = kid(kid(assertion, NS.saml, 'Subject'), NS.saml, 'NameID');
  while (nameId.firstChild) nameId.removeChild(nameId.firstChild);
  nameId.appendChild(nameId.ownerDocument!.createTextNode(value));
}
/** The forged assertion: a copy of the signed one, unsigned, naming someone else. */
function forged(assertion: Element, nameId: string): Element {
  const evil = assertion.cloneNode(true) as Element;
  removeSignature(evil);
  setNameId(evil, nameId);
  return evil;
}
function afterIssuer(root: Element, node: Element): void {
  const issuer = kids(root, NS.saml, 'Issuer')[0];
  root.insertBefore(node, issuer ? issuer.nextSibling : root.firstChild);
}

export const EVIL_NAME_ID = 'admin@victim.example';

/**
 * The eight signature-wrapping attacks of Somorovsky et al., "On Breaking SAML" (2012), as
 * SAML Raider names them. XSW1/XSW2 expect a response whose Response is signed; XSW3–XSW8 one
 * whose Assertion is signed.
 */
export function xsw(variant: 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8, xml: string, nameId = EVIL_NAME_ID): string {
  const doc = parse(xml);
  const root = doc.documentElement!;
  const assertion = kid(root, NS.saml, 'Assertion');
  switch (variant) {
    case 1:
    case 2: {
      // The signed original Response goes inside (1) or before (2) the signature of a new
      // Response that carries the forged assertion.
      const original = root.cloneNode(true) as Element;
      removeSignature(original);
      const signature = kid(root, NS.ds, 'Signature');
      root.setAttribute('ID', `${root.getAttribute('ID')}-evil`);
      root.replaceChild(forged(assertion, nameId), assertion);
      if (variant === 1) signature.appendChild(original);
      else root.insertBefore(original, signature);
      break;
    }
    case 3:
      // Forged assertion (same ID) before the signed one.
      root.insertBefore(forged(assertion, nameId), assertion);
      break;
    case 4: {
      // Forged assertion wraps the signed one.
      const evil = forged(assertion, nameId);
      root.replaceChild(evil, assertion);
      evil.appendChild(assertion);
      break;
    }
    case 5: {
      // The signed assertion is edited in place (signature kept), an unsigned copy of the
      // original goes to the end of the Response.
      const original = assertion.cloneNode(true) as Element;
      removeSignature(original);
      setNameId(assertion, nameId);
      root.appendChild(original);
      break;
    }
    case 6: {
      // Edited in place; the original copy hides inside the signature.
      const original = assertion.cloneNode(true) as Element;
      removeSignature(original);
      setNameId(assertion, nameId);
      kid(assertion, NS.ds, 'Signature').appendChild(original);
      break;
    }
    case 7: {
      // The signed assertion hides in Extensions; the forged one takes its place.
      const ext = doc.createElementNS(NS.samlp, 'samlp:Extensions');
      const evil = forged(assertion, nameId);
      root.replaceChild(evil, assertion);
      ext.appendChild(assertion);
      afterIssuer(root, ext);
      break;
    }
    case 8: {
      // Edited in place; the original (signature removed) hides in a ds:Object of the signature.
      const original = assertion.cloneNode(true) as Element;
      removeSignature(original);
      setNameId(assertion, nameId);
      const object = doc.createElementNS(NS.ds, 'ds:Object');
      object.appendChild(original);
      kid(assertion, NS.ds, 'Signature').appendChild(object);
      break;
    }
  }
  return serialize(doc);
}

/** A forged assertion in place of the signed one, which hides in `where`. */
export function hideSignedAssertion(xml: string, where: 'advice' | 'subject-confirmation-data' | 'extensions-only', nameId = EVIL_NAME_ID): string {
  const doc = parse(xml);
  const root = doc.documentElement!;
  const assertion = kid(root, NS.saml, 'Assertion');
  if (where === 'extensions-only') {
    // No assertion left directly in the Response: the only one is the signed one, in Extensions.
    const ext = doc.createElementNS(NS.samlp, 'samlp:Extensions');
    root.removeChild(assertion);
    ext.appendChild(assertion);
    afterIssuer(root, ext);
    return serialize(doc);
  }
  const evil = forged(assertion, nameId);
  root.replaceChild(evil, assertion);
  if (where === 'advice') {
    const advice = doc.createElementNS(NS.saml, 'saml:Advice');
    advice.appendChild(assertion);
    const conditions = kid(evil, NS.saml, 'Conditions');
    evil.insertBefore(advice, conditions.nextSibling);
  } else {
    const scd = kid(kid(kid(evil, NS.saml, 'Subject'), NS.saml, 'SubjectConfirmation'), NS.saml, 'SubjectConfirmationData');
    scd.appendChild(assertion);
  }
  return serialize(doc);
}

/** A second, unsigned assertion (fresh ID) after the signed one. */
export function appendSecondAssertion(xml: string, nameId = EVIL_NAME_ID): string {
  const doc = parse(xml);
  const root = doc.documentElement!;
  const evil = forged(kid(root, NS.saml, 'Assertion'), nameId);
  evil.setAttribute('ID', '_second_assertion');
  root.appendChild(evil);
  return serialize(doc);
}

/** Any DOM edit of the response (tests that need a one-off shape). */
export function editResponse(xml: string, edit: (root: Element, doc: Document) => void): string {
  const doc = parse(xml);
  edit(doc.documentElement!, doc);
  return serialize(doc);
}

/** `<NameID>admin@evil.com.attacker.com</NameID>` → `admin@evil.com<!---->.attacker.com` (signature still valid). */
export function injectCommentInNameId(xml: string, at: string): string {
  const i = xml.indexOf(at);
  if (i < 0) throw new Error(`"${at}" not in the response`);
  return xml.slice(0, i) + at.replace(/^(.*@[^.]+\.[^.]+)/, '$1<!---->') + xml.slice(i + at.length);
}

/** Puts a DOCTYPE (with an entity) in front of the root element. */
export function withDoctype(xml: string, kind: 'entity' | 'external' | 'plain' = 'entity'): string {
  const decl = {
    entity: '<!DOCTYPE samlp:Response [<!ENTITY who "admin@victim.example">]>',
    external: '<!DOCTYPE samlp:Response SYSTEM "file:///etc/passwd">',
    plain: '<!doctype samlp:Response>',
  }[kind];
  const start = xml.indexOf('<samlp:Response');
  return xml.slice(0, start) + decl + xml.slice(start);
}

/** Nests `depth` elements inside a samlp:Extensions right after the Response Issuer. */
export function deeplyNested(xml: string, depth: number): string {
  const inner = '<x:e xmlns:x="urn:example:deep">'.repeat(depth) + '</x:e>'.repeat(depth);
  return xml.replace('</saml:Issuer>', `</saml:Issuer><samlp:Extensions>${inner}</samlp:Extensions>`);
}
