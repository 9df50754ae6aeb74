/**
 * Verification of a SAML 2.0 `<samlp:Response>` received at our ACS (Web Browser SSO profile,
 * HTTP-POST binding: saml-profiles §4.1, saml-bindings §3.5).
 *
 * samlify checks the signature and the time window but not Audience, Recipient, Destination,
 * InResponseTo or the presence of `<Conditions>`, trusts the certificate inside the response when
 * none is configured, and reads the assertion with XPaths of its own. So this module does the
 * whole job itself, in this order, stopping at the first refusal:
 *
 *   size → base64 → encoding → no DOCTYPE/ENTITY (before any parser runs) → nesting depth →
 *   well-formedness (@xmldom/xmldom) → structure (anti signature-wrapping) → XSD schema
 *   (libxml2-wasm, ./schema-validator.ts) → Status → algorithms → XML signature (xmldsig core
 *   validation with xml-crypto's canonicalizers, against the connection's certificates only) →
 *   issuer → destination → conditions → audience → subject confirmation (recipient, bearer
 *   window) → time window → InResponseTo → subject.
 *
 * The signature step (verifySignature) first checks the SignatureValue over the canonical
 * SignedInfo against each trusted certificate (one RSA verify each); only then is the one
 * Reference, read back from those verified SignedInfo bytes, digested. The referenced element is
 * the signature's parent, located by the structure check (not by xml-crypto's XPath over the
 * whole document), and the digest is computed on the document parsed above: one parse serves
 * structure, signature and digest. A forged response thus costs parsing and schema validation
 * only (~0.1 s for 256 KB), whatever number of certificates we trust. Every step is synchronous;
 * `verifyTimeoutMs` is checked between steps. The ACS runs all of this on worker threads
 * (./pool.ts).
 *
 * Everything the answer carries about the person is read from the XML that the verified
 * signature covers — the canonical octets that were digested, parsed again — never from the
 * received document. Encrypted assertions are not supported (refused as `encrypted-assertion`).
 *
 * Every refusal is an `SsoRefused` with a stable `reason` and the checks run so far.
 */
import { constants as cryptoConstants, createHash, timingSafeEqual, verify as verifySignatureValue, X509Certificate, type KeyObject } from 'node:crypto';
import { DOMParser, onWarningStopParsing, type Document, type Element, type Node } from '@xmldom/xmldom';
import {
  C14nCanonicalization, C14nCanonicalizationWithComments, ExclusiveCanonicalization, ExclusiveCanonicalizationWithComments,
  SignedXml, type Reference,
} from 'xml-crypto';
// The helper xml-crypto itself applies to the element its XPath finds (not re-exported by the index).
import { findAncestorNsForElement } from 'xml-crypto/lib/utils.js';
import { SsoRefused, type SsoCheck } from '../../domain/errors.js';
import type { SsoProfile, VerifiedAnswer } from '../../domain/sso.js';
import { SAML_METHOD_ATTRIBUTES, type AuthnEvidence } from '../../domain/two-factor.js';
import { validateSamlSchema } from './schema-validator.js';
import { NAMEID_EMAIL, samlAcsUrl, samlSpEntityId, type SamlConnection } from './service-provider.js';

export type SamlVerifyOptions = {
  publicUrl: string;
  clockSkewSeconds: number;
  /** Accept rsa-sha1 signatures and sha1 digests (config SAML_ALLOW_SHA1). */
  allowSha1: boolean;
  /** Overall budget; checked between steps (every step is synchronous and bounded by the caps). */
  verifyTimeoutMs: number;
  now: Date;
  /**
   * When the budget started, as `performance.timeOrigin + performance.now()` (comparable across
   * threads). Default: when verifySamlResponse is called. The worker pool (./pool.ts) passes the
   * time the request was queued, so that waiting for a worker counts against the budget.
   */
  budgetStartedAt?: number;
};

/** Milliseconds since the epoch, sub-millisecond, monotonic within a thread and comparable across threads. */
export const preciseNow = (): number => performance.timeOrigin + performance.now();

/** The ACS body cap (the base64 form field). */
export const SAML_MAX_RESPONSE_BYTES = 256 * 1024;
/** Element nesting cap; real responses nest 6–8 deep. */
export const SAML_MAX_DEPTH = 50;

const NS = {
  samlp: 'urn:oasis:names:tc:SAML:2.0:protocol',
  saml: 'urn:oasis:names:tc:SAML:2.0:assertion',
  ds: 'http://www.w3.org/2000/09/xmldsig#',
  xsi: 'http://www.w3.org/2001/XMLSchema-instance',
} as const;

const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
const CM_BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
const NAMEID_ENTITY = 'urn:oasis:names:tc:SAML:2.0:nameid-format:entity';

// xmldsig-core §6 algorithm identifiers. Anything not listed is refused. `hash`/`pss` are what
// xml-crypto's own RsaSha1/RsaSha256/RsaSha512/RsaSha256Mgf1 and Sha1/Sha256/Sha512 classes use.
type Strength = 'strong' | 'sha1';
const SIGNATURE_ALGORITHMS: Record<string, { strength: Strength; hash: string; pss: boolean }> = {
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256': { strength: 'strong', hash: 'sha256', pss: false },
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512': { strength: 'strong', hash: 'sha512', pss: false },
  'http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1': { strength: 'strong', hash: 'sha256', pss: true },
  'http://www.w3.org/2000/09/xmldsig#rsa-sha1': { strength: 'sha1', hash: 'sha1', pss: false },
};
const DIGEST_ALGORITHMS: Record<string, { strength: Strength; hash: string }> = {
  'http://www.w3.org/2001/04/xmlenc#sha256': { strength: 'strong', hash: 'sha256' },
  'http://www.w3.org/2001/04/xmlenc#sha512': { strength: 'strong', hash: 'sha512' },
  'http://www.w3.org/2000/09/xmldsig#sha1': { strength: 'sha1', hash: 'sha1' },
};
const CANONICALIZATIONS = new Set([
  'http://www.w3.org/2001/10/xml-exc-c14n#',
  'http://www.w3.org/2001/10/xml-exc-c14n#WithComments',
  'http://www.w3.org/TR/2001/REC-xml-c14n-20010315',
  'http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments',
]);
// saml-core §5.4.3/§5.4.4: enveloped-signature plus canonicalization, nothing else (no XPath/XSLT).
const TRANSFORMS = new Set([...CANONICALIZATIONS, 'http://www.w3.org/2000/09/xmldsig#enveloped-signature']);

// Attribute names (Name or FriendlyName, case-insensitive) for the profile: LDAP/eduPerson
// OIDs, Okta/OneLogin/Google short names, and the ADFS / Entra ID claim URIs.
const EMAIL_ATTRIBUTES = [
  'email', 'mail', 'emailaddress', 'user.email',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress',
  'urn:oid:0.9.2342.19200300.100.1.3',
];
const GIVEN_NAME_ATTRIBUTES = [
  'givenname', 'given_name', 'firstname', 'first_name', 'user.firstname',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname',
  'urn:oid:2.5.4.42',
];
const FAMILY_NAME_ATTRIBUTES = [
  'sn', 'surname', 'familyname', 'family_name', 'lastname', 'last_name', 'user.lastname',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname',
  'urn:oid:2.5.4.4',
];
// Not `…/claims/name`: Entra ID sends the UPN there.
const DISPLAY_NAME_ATTRIBUTES = [
  'displayname', 'display_name', 'cn', 'commonname', 'fullname', 'name',
  'http://schemas.microsoft.com/identity/claims/displayname',
  'urn:oid:2.16.840.1.113730.3.1.241', 'urn:oid:2.5.4.3',
];

type Status = 400 | 401 | 403 | 413;

/** The checks of one verification, and the refusal that ends it. */
class Run {
  readonly checks: SsoCheck[] = [];
  constructor(private readonly timeoutMs: number, private readonly started = preciseNow()) {}

  pass(name: string, detail: string): void {
    this.checks.push({ name, passed: true, detail });
  }

  refuse(reason: string, name: string, message: string, status: Status = 403): never {
    this.checks.push({ name, passed: false, detail: message });
    throw new SsoRefused(reason, message, [...this.checks], status);
  }

  /** The time cap, checked between steps. */
  deadline(): void {
    const elapsed = preciseNow() - this.started;
    if (elapsed >= this.timeoutMs) {
      this.refuse('timeout', 'time-budget', `verification took longer than ${this.timeoutMs} ms`, 400);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// DOM helpers (namespace-aware; never by prefix).

const isElement = (n: Node | null | undefined): n is Element => !!n && n.nodeType === 1;

function childElements(el: Element | Document, ns?: string, local?: string): Element[] {
  const out: Element[] = [];
  for (let i = 0; i < el.childNodes.length; i++) {
    const n = el.childNodes[i];
    if (isElement(n) && (ns === undefined || n.namespaceURI === ns) && (local === undefined || n.localName === local)) out.push(n);
  }
  return out;
}

function firstChild(el: Element, ns: string, local: string): Element | null {
  return childElements(el, ns, local)[0] ?? null;
}

/** All text of an element, comments excluded and text nodes joined (the NameID comment trick). */
function textOf(el: Element | null): string {
  if (!el) return '';
  let out = '';
  const stack: Node[] = [el];
  while (stack.length) {
    const n = stack.pop()!;
    if (n.nodeType === 3 || n.nodeType === 4) out += (n as unknown as { data: string }).data;
    else if (n.nodeType === 1) for (let i = n.childNodes.length - 1; i >= 0; i--) stack.push(n.childNodes[i]!);
  }
  return out.trim();
}

function attr(el: Element | null, name: string): string | null {
  if (!el || !el.hasAttribute(name)) return null;
  return el.getAttribute(name);
}

/** Every element below (and including) `root`, iteratively (depth is capped before parsing anyway). */
function* descendants(root: Element): Generator<Element> {
  const stack: Element[] = [root];
  while (stack.length) {
    const el = stack.pop()!;
    yield el;
    const kids = childElements(el);
    for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]!);
  }
}

function clip(value: string, max = 200): string {
  // eslint-disable-next-line no-control-regex
  const clean = value.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

/**
 * Strict parse (any warning stops it). `locator` (line/column on every node, a tenth of the parse)
 * is kept only for the received message, whose errors are reported; our own canonical output
 * is parsed without it.
 */
function parseXml(xml: string, locator = false): Document {
  return new DOMParser({ onError: onWarningStopParsing, locator }).parseFromString(xml, 'text/xml');
}

/** xs:dateTime → Date. SAML times are UTC (saml-core §1.3.3); a value without zone is read as UTC. */
function instant(value: string | null): Date | null {
  if (!value) return null;
  const m = /^(\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$/.exec(value.trim());
  if (!m) return null;
  const fraction = m[2] ? m[2].slice(0, 4) : '';
  const t = Date.parse(`${m[1]}${fraction}${m[3] ?? 'Z'}`);
  return Number.isNaN(t) ? null : new Date(t);
}

// ---------------------------------------------------------------------------------------------
// Steps before any XML parser sees the input.

function decode(run: Run, samlResponseBase64: string): { xml: string; bytes: Buffer } {
  if (samlResponseBase64.length > SAML_MAX_RESPONSE_BYTES) {
    run.refuse('too-large', 'size', `SAMLResponse is ${samlResponseBase64.length} bytes; the limit is ${SAML_MAX_RESPONSE_BYTES}`, 413);
  }
  run.pass('size', `${samlResponseBase64.length} bytes`);

  // saml-bindings §3.5.4: the message is base64-encoded (line breaks tolerated).
  const compact = samlResponseBase64.replace(/[\r\n\t ]+/g, '');
  if (compact.length === 0 || compact.length % 4 === 1 || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) {
    run.refuse('bad-encoding', 'encoding', 'SAMLResponse is not base64', 400);
  }
  let bytes = Buffer.from(compact, 'base64');
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
  if (bytes.length === 0 || bytes.includes(0) || (bytes[0] === 0xfe && bytes[1] === 0xff) || (bytes[0] === 0xff && bytes[1] === 0xfe)) {
    run.refuse('bad-encoding', 'encoding', 'SAMLResponse is not UTF-8 XML', 400);
  }
  let xml: string;
  try {
    xml = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return run.refuse('bad-encoding', 'encoding', 'SAMLResponse is not valid UTF-8', 400);
  }
  const declared = /^\s*<\?xml[^>]*\bencoding\s*=\s*["']([^"']*)["']/.exec(xml)?.[1];
  if (declared && !/^(utf-?8|us-ascii)$/i.test(declared)) {
    run.refuse('bad-encoding', 'encoding', `XML declares encoding "${clip(declared, 40)}"; only UTF-8 is accepted`, 400);
  }
  run.pass('encoding', 'base64, UTF-8');

  // No DTD at all (entity expansion, XXE): refused before any parser runs, on the decoded text.
  if (/<!\s*(DOCTYPE|ENTITY)/i.test(xml)) {
    run.refuse('doctype-forbidden', 'doctype', 'DOCTYPE and ENTITY declarations are not allowed', 400);
  }
  run.pass('doctype', 'no DOCTYPE or ENTITY declaration');
  return { xml, bytes };
}

/**
 * A tokenizer pass that counts element nesting without building anything, so that neither
 * parser nor our own tree walks ever see a document nested deeper than SAML_MAX_DEPTH. Any
 * other markup declaration (`<!ELEMENT`, `<!ATTLIST`, …) is refused like a DOCTYPE.
 */
function checkDepth(run: Run, xml: string): void {
  let depth = 0;
  let max = 0;
  let i = 0;
  const n = xml.length;
  const skipTo = (token: string, from: number) => {
    const j = xml.indexOf(token, from);
    return j === -1 ? n : j + token.length;
  };
  while ((i = xml.indexOf('<', i)) !== -1) {
    if (xml.startsWith('<!--', i)) { i = skipTo('-->', i + 4); continue; }
    if (xml.startsWith('<![CDATA[', i)) { i = skipTo(']]>', i + 9); continue; }
    if (xml.startsWith('<!', i)) run.refuse('doctype-forbidden', 'doctype', 'markup declarations are not allowed', 400);
    if (xml.startsWith('<?', i)) { i = skipTo('?>', i + 2); continue; }
    if (xml[i + 1] === '/') { depth--; i = skipTo('>', i + 2); continue; }
    let j = i + 1;
    let quote: string | null = null;
    for (; j < n; j++) {
      const c = xml[j];
      if (quote) { if (c === quote) quote = null; }
      else if (c === '"' || c === "'") quote = c;
      else if (c === '>') break;
    }
    if (xml[j - 1] !== '/') {
      depth++;
      if (depth > max) max = depth;
      if (depth > SAML_MAX_DEPTH) run.refuse('too-deep', 'depth', `elements nest deeper than ${SAML_MAX_DEPTH}`, 400);
    }
    i = j + 1;
  }
  run.pass('depth', `nesting depth ${max}`);
}

// ---------------------------------------------------------------------------------------------
// Structure: the shape that rules out signature wrapping (XSW1–XSW8) before signatures are
// looked at. Exactly one Response (the root); at most one Assertion in the whole document, a
// direct child of the Response; ds:Signature only as a direct child of the Response or of that
// Assertion (saml-core §5.3/§5.4.2: a signature signs its parent, by ID); every ID unique.

type Shape = { root: Element; assertion: Element | null; responseSignature: Element | null; assertionSignature: Element | null };

function checkStructure(run: Run, doc: Document): Shape {
  const root = doc.documentElement;
  if (!root || root.namespaceURI !== NS.samlp || root.localName !== 'Response') {
    run.refuse('not-a-response', 'structure', `the message is a ${root ? `{${clip(root.namespaceURI ?? '', 80)}}${clip(root.localName ?? '', 40)}` : 'nothing'}, not a samlp:Response`, 400);
  }
  if (attr(root, 'Version') !== '2.0') {
    run.refuse('unsupported-version', 'structure', `Response Version is ${clip(attr(root, 'Version') ?? 'missing')}, not 2.0`, 400);
  }
  const ids = new Map<string, number>();
  const assertions: Element[] = [];
  let encrypted = 0;
  let nestedResponses = 0;
  const signatures: Element[] = [];
  for (const el of descendants(root)) {
    if (el !== root && el.localName === 'Response') nestedResponses++;
    if (el.localName === 'Assertion') assertions.push(el);
    if (el.localName === 'EncryptedAssertion') encrypted++;
    if (el.namespaceURI === NS.ds && el.localName === 'Signature') signatures.push(el);
    // xml-crypto resolves a Reference by any attribute named ID, Id or id (any namespace).
    for (let i = 0; i < el.attributes.length; i++) {
      const a = el.attributes[i]!;
      if (a.localName === 'ID' || a.localName === 'Id' || a.localName === 'id') ids.set(a.value, (ids.get(a.value) ?? 0) + 1);
    }
  }
  if (nestedResponses > 0) run.refuse('signature-wrapping', 'structure', 'a Response contains another Response', 400);
  if (encrypted > 0) run.refuse('encrypted-assertion', 'structure', 'encrypted assertions are not supported; configure the IdP to sign, not encrypt', 400);
  if (assertions.length > 1) run.refuse('multiple-assertions', 'structure', `the Response contains ${assertions.length} Assertion elements; exactly one is accepted`, 400);
  const assertion = assertions[0] ?? null;
  if (assertion && (assertion.parentNode !== root || assertion.namespaceURI !== NS.saml)) {
    run.refuse('signature-wrapping', 'structure', 'the Assertion is not a direct child of the Response', 400);
  }
  const duplicate = [...ids.entries()].find(([, count]) => count > 1);
  if (duplicate) run.refuse('signature-wrapping', 'structure', `ID "${clip(duplicate[0], 80)}" is used more than once`, 400);

  let responseSignature: Element | null = null;
  let assertionSignature: Element | null = null;
  for (const sig of signatures) {
    if (sig.parentNode === root && !responseSignature) responseSignature = sig;
    else if (assertion && sig.parentNode === assertion && !assertionSignature) assertionSignature = sig;
    else run.refuse('signature-wrapping', 'structure', 'a Signature sits somewhere other than directly in the Response or its Assertion', 400);
  }
  run.pass('structure', 'one Response; at most one Assertion, directly in it; signatures in place; IDs unique');
  return { root, assertion, responseSignature, assertionSignature };
}

// ---------------------------------------------------------------------------------------------
// Signatures (xmldsig-core, saml-core §5.4).

type SignatureInfo = { el: Element; parent: Element; what: 'Response' | 'Assertion' };

function checkAlgorithms(run: Run, sigs: SignatureInfo[], allowSha1: boolean): void {
  const weak: string[] = [];
  const unknown: string[] = [];
  for (const { el, parent, what } of sigs) {
    const signedInfo = childElements(el, NS.ds, 'SignedInfo');
    if (signedInfo.length !== 1) run.refuse('bad-signature', 'algorithms', `${what} Signature has ${signedInfo.length} SignedInfo elements`, 401);
    const si = signedInfo[0]!;
    const c14n = attr(firstChild(si, NS.ds, 'CanonicalizationMethod'), 'Algorithm') ?? '';
    if (!CANONICALIZATIONS.has(c14n)) unknown.push(`canonicalization ${c14n || '(none)'}`);
    const sigAlg = attr(firstChild(si, NS.ds, 'SignatureMethod'), 'Algorithm') ?? '';
    const sigStrength = SIGNATURE_ALGORITHMS[sigAlg]?.strength;
    if (!sigStrength) unknown.push(`signature ${sigAlg || '(none)'}`);
    else if (sigStrength === 'sha1' && !allowSha1) weak.push(`signature ${sigAlg}`);

    // saml-core §5.4.2: a single Reference, to the ID of the element the signature is in.
    const refs = childElements(si, NS.ds, 'Reference');
    const id = attr(parent, 'ID');
    if (refs.length !== 1) run.refuse('signature-wrapping', 'signature', `${what} Signature has ${refs.length} References; exactly one is accepted`, 400);
    const uri = attr(refs[0]!, 'URI');
    if (!id || uri !== `#${id}`) {
      run.refuse('signature-wrapping', 'signature', `${what} Signature references "${clip(uri ?? '', 80)}", not its own ${what} (#${clip(id ?? '', 80)})`, 400);
    }
    const digest = attr(firstChild(refs[0]!, NS.ds, 'DigestMethod'), 'Algorithm') ?? '';
    const digestStrength = DIGEST_ALGORITHMS[digest]?.strength;
    if (!digestStrength) unknown.push(`digest ${digest || '(none)'}`);
    else if (digestStrength === 'sha1' && !allowSha1) weak.push(`digest ${digest}`);
    const transforms = firstChild(refs[0]!, NS.ds, 'Transforms');
    for (const t of transforms ? childElements(transforms, NS.ds, 'Transform') : []) {
      const alg = attr(t, 'Algorithm') ?? '';
      if (!TRANSFORMS.has(alg)) unknown.push(`transform ${alg || '(none)'}`);
    }
  }
  if (unknown.length) run.refuse('weak-algorithm', 'algorithms', `unsupported algorithm: ${clip(unknown.join(', '), 300)}`);
  if (weak.length) run.refuse('weak-algorithm', 'algorithms', `SHA-1 is not accepted (${weak.join(', ')}); set SAML_ALLOW_SHA1=true only for an IdP that cannot do better`);
  run.pass('algorithms', allowSha1 ? 'known algorithms (SHA-1 allowed by configuration)' : 'SHA-256 or stronger');
}

type TrustedCert = { fingerprint: string; key: KeyObject };

/** Parsed certificates by their configured text (PEM or bare base64), so a sign-in parses none. */
const certificateCache = new Map<string, TrustedCert | null>();
const CERTIFICATE_CACHE_MAX = 1024;

function trustedCertificate(raw: string): TrustedCert | null {
  const cached = certificateCache.get(raw);
  if (cached !== undefined) return cached;
  const body = raw.includes('BEGIN CERTIFICATE')
    ? raw
    : `-----BEGIN CERTIFICATE-----\n${raw.replace(/\s+/g, '').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
  let out: TrustedCert | null = null;
  try {
    const cert = new X509Certificate(body);
    out = { fingerprint: cert.fingerprint256, key: cert.publicKey };
  } catch {
    // An unreadable certificate trusts nothing.
  }
  if (certificateCache.size >= CERTIFICATE_CACHE_MAX) certificateCache.clear();
  certificateCache.set(raw, out);
  return out;
}

function trustedCertificates(conn: SamlConnection): TrustedCert[] {
  return conn.certificates.map(trustedCertificate).filter((c): c is TrustedCert => c !== null);
}

/** A table lookup that never answers from Object.prototype (`constructor`, `__proto__`). */
function own<T>(table: Record<string, T>, key: string | null): T | undefined {
  return key !== null && Object.hasOwn(table, key) ? table[key] : undefined;
}

type Canonicalizer = { process(node: unknown, options: Record<string, unknown>): string };
const CANONICALIZERS: Record<string, new () => Canonicalizer> = {
  'http://www.w3.org/2001/10/xml-exc-c14n#': ExclusiveCanonicalization as unknown as new () => Canonicalizer,
  'http://www.w3.org/2001/10/xml-exc-c14n#WithComments': ExclusiveCanonicalizationWithComments as unknown as new () => Canonicalizer,
  'http://www.w3.org/TR/2001/REC-xml-c14n-20010315': C14nCanonicalization as unknown as new () => Canonicalizer,
  'http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments': C14nCanonicalizationWithComments as unknown as new () => Canonicalizer,
};

const ENVELOPED_SIGNATURE = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';

/**
 * xml-crypto's canonicalizers (same rendering, public `processInner`), rendering one element of
 * the tree as nothing: the signature that the enveloped-signature transform removes. Comments
 * are never rendered (a same-document reference is dereferenced without them).
 */
class ExclusiveC14nOmitting extends ExclusiveCanonicalization {
  constructor(private readonly omit: unknown) {
    super();
  }
  override processInner(node: unknown, ...rest: [unknown, unknown, unknown, string[]]): string {
    return node === this.omit ? '' : super.processInner(node, ...rest);
  }
}
class InclusiveC14nOmitting extends C14nCanonicalization {
  constructor(private readonly omit: unknown) {
    super();
  }
  override processInner(node: unknown, ...rest: [unknown, unknown, unknown, never, never?]): string {
    return node === this.omit ? '' : super.processInner(node, ...rest);
  }
}
const OMITTING_CANONICALIZERS: Record<string, new (omit: unknown) => Canonicalizer> = {
  'http://www.w3.org/2001/10/xml-exc-c14n#': ExclusiveC14nOmitting,
  'http://www.w3.org/2001/10/xml-exc-c14n#WithComments': ExclusiveC14nOmitting,
  'http://www.w3.org/TR/2001/REC-xml-c14n-20010315': InclusiveC14nOmitting,
  'http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments': InclusiveC14nOmitting,
};

/**
 * The parts of xml-crypto's `SignedXml` that reference processing is made of (private in its
 * typings): `loadReference` reads a ds:Reference into its model (transforms, with the implicit
 * final C14N; InclusiveNamespaces; digest), `canonicalize` runs the transforms on a clone of the
 * referenced element (enveloped-signature removes the loaded signature; comments dropped for a
 * same-document URI). What we do not take from it is the element lookup (an XPath over the whole
 * document, twice) and its own re-parse of the message.
 */
export type ReferenceProcessor = {
  signatureNode: unknown;
  references: Reference[];
  loadReference(ref: unknown): void;
  canonicalize(transforms: readonly string[], node: unknown, options: Record<string, unknown>, flags: { discardComments: boolean }): string;
};

type SignatureResult = { signed: string; cert: TrustedCert };

/**
 * xmldsig-core §3.2 core validation of one signature, against the connection's certificates only
 * (KeyInfo is never read). Returns the canonical XML its one Reference covers, from which
 * everything is then read; null when it does not verify.
 *
 *  1. SignedInfo, canonicalized as named by its CanonicalizationMethod (ancestor namespaces of
 *     the SignedInfo itself), against the SignatureValue: one RSA verify per trusted certificate,
 *     before any digest — a forged response costs no reference processing.
 *  2. The Reference is read back from those verified SignedInfo bytes (not from the received
 *     document): exactly one, its URI `#ID` of the signature's parent, known transforms and digest.
 *  3. The referenced element is the signature's parent: checkStructure already refused any
 *     other element carrying that value in an ID/Id/id attribute (xml-crypto's rule), so this is
 *     the element xml-crypto's `//*[@*[local-name(.)='ID']='…']` lookup would select. Its
 *     transforms run as xml-crypto runs them (referenceOctets), on the document checked above
 *     (one parse for structure, signature and digest: no parser differential between them), and
 *     the digest is compared in constant time.
 */
function verifySignature(sig: SignatureInfo, certs: TrustedCert[], allowSha1: boolean): SignatureResult | null {
  const si = firstChild(sig.el, NS.ds, 'SignedInfo');
  if (!si) return null;
  const C14n = own(CANONICALIZERS, attr(firstChild(si, NS.ds, 'CanonicalizationMethod'), 'Algorithm'));
  const method = own(SIGNATURE_ALGORITHMS, attr(firstChild(si, NS.ds, 'SignatureMethod'), 'Algorithm'));
  if (!C14n || !method || (method.strength === 'sha1' && !allowSha1)) return null;

  // 1. SignatureValue over the canonical SignedInfo.
  let signedInfo: string;
  try {
    signedInfo = new C14n().process(si.cloneNode(true), { ancestorNamespaces: findAncestorNsForElement(si as never), defaultNsForPrefix: SignedXml.defaultNsForPrefix });
  } catch {
    return null;
  }
  const value = Buffer.from(textOf(firstChild(sig.el, NS.ds, 'SignatureValue')).replace(/\s+/g, ''), 'base64');
  const data = Buffer.from(signedInfo, 'utf8');
  const cert = certs.find((c) => {
    try {
      const key = method.pss
        ? { key: c.key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: cryptoConstants.RSA_PSS_SALTLEN_DIGEST }
        : c.key;
      return verifySignatureValue(method.hash, data, key, value);
    } catch {
      return false;
    }
  });
  if (!cert) return null;

  try {
    // 2. The Reference, from the verified bytes.
    const verified = parseXml(signedInfo).documentElement;
    if (!verified || verified.namespaceURI !== NS.ds || verified.localName !== 'SignedInfo') return null;
    const refs = childElements(verified).filter((el) => el.localName === 'Reference');
    if (refs.length !== 1 || refs[0]!.namespaceURI !== NS.ds) return null;
    const processor = new SignedXml() as unknown as ReferenceProcessor;
    processor.signatureNode = sig.el;
    processor.references = [];
    processor.loadReference(refs[0]);
    const ref = processor.references[0];
    const id = attr(sig.parent, 'ID');
    if (processor.references.length !== 1 || !ref || !id || ref.uri !== `#${id}`) return null;
    if (!ref.transforms.every((t) => TRANSFORMS.has(t))) return null;
    const digest = own(DIGEST_ALGORITHMS, ref.digestAlgorithm);
    if (!digest || (digest.strength === 'sha1' && !allowSha1) || typeof ref.digestValue !== 'string') return null;

    // 3. The referenced element, transformed and digested.
    const signed = referenceOctets(processor, ref, sig);
    const actual = createHash(digest.hash).update(signed, 'utf8').digest();
    const expected = Buffer.from(ref.digestValue, 'base64');
    if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) return null;
    return { signed, cert };
  } catch {
    // Unreadable Reference, transform failure, …: not verified.
    return null;
  }
}

/**
 * The octets a same-document Reference to the signature's parent digests: what xml-crypto's
 * `canonicalize(transforms, element, …, { discardComments: true })` returns. For the chain every
 * SAML IdP uses — enveloped-signature, then one canonicalization, no InclusiveNamespaces — the
 * same canonicalizer renders the element in place, leaving out the signature and comments,
 * instead of on a deep clone with those removed (xmldom's cloneNode was a quarter of a
 * verification). The canonicalizers only write to the element for an InclusiveNamespaces prefix
 * list (their own, or a CanonicalizationMethod child of the element): those, and any other chain,
 * go through xml-crypto's `canonicalize` itself.
 */
export function referenceOctets(
  processor: ReferenceProcessor,
  ref: Pick<Reference, 'transforms' | 'inclusiveNamespacesPrefixList'>,
  sig: Pick<SignatureInfo, 'el' | 'parent'>,
): string {
  const ancestorNamespaces = findAncestorNsForElement(sig.parent as never);
  const [first, second, ...more] = ref.transforms;
  const Omitting = first === ENVELOPED_SIGNATURE && more.length === 0 && ref.inclusiveNamespacesPrefixList.length === 0
    && sig.el.parentNode === sig.parent && childElements(sig.parent).every((el) => el.localName !== 'CanonicalizationMethod')
    ? own(OMITTING_CANONICALIZERS, second ?? null)
    : undefined;
  if (Omitting) {
    return new Omitting(sig.el).process(sig.parent, { ancestorNamespaces, defaultNsForPrefix: SignedXml.defaultNsForPrefix });
  }
  processor.signatureNode = sig.el;
  return processor.canonicalize(ref.transforms, sig.parent, {
    inclusiveNamespacesPrefixList: ref.inclusiveNamespacesPrefixList,
    ancestorNamespaces,
  }, { discardComments: true });
}

const STANDARD_STATUS = /^urn:oasis:names:tc:SAML:2\.0:status:[A-Za-z]{1,40}$/;

/** The Response as its verified signature covers it, or null when it is unsigned or not signed by the connection's certificate. */
function signedErrorResponse(run: Run, el: Element, root: Element, certs: TrustedCert[], allowSha1: boolean): Element | null {
  if (!certs.length) return null;
  const result = verifySignature({ el, parent: root, what: 'Response' }, certs, allowSha1);
  if (!result) return null;
  const signedRoot = parseSigned(run, result.signed, 'Response');
  return signedRoot.localName === 'Response' && attr(signedRoot, 'ID') === attr(root, 'ID') ? signedRoot : null;
}

function parseSigned(run: Run, signed: string, what: string): Element {
  try {
    const root = parseXml(signed).documentElement;
    if (root) return root;
  } catch {
    // fall through
  }
  return run.refuse('bad-signature', 'signature', `the signed ${what} could not be read back`, 401);
}

// ---------------------------------------------------------------------------------------------

export async function verifySamlResponse(
  conn: SamlConnection,
  samlResponseBase64: string,
  opts: SamlVerifyOptions,
): Promise<VerifiedAnswer> {
  const run: Run = new Run(opts.verifyTimeoutMs, opts.budgetStartedAt);
  const skewMs = opts.clockSkewSeconds * 1000;
  const now = opts.now.getTime();
  const acs = samlAcsUrl(conn, opts.publicUrl);
  const audience = samlSpEntityId(conn, opts.publicUrl);

  // 1. Caps and encoding, before any parser.
  const { xml, bytes } = decode(run, samlResponseBase64);
  checkDepth(run, xml);
  run.deadline();

  // 2. Well-formed, and shaped so that signature wrapping is impossible.
  let doc: Document;
  try {
    doc = parseXml(xml, true);
  } catch (err) {
    return run.refuse('malformed-xml', 'well-formed', `not well-formed XML: ${clip(String((err as Error).message ?? err), 200)}`, 400);
  }
  run.pass('well-formed', 'parsed');
  const shape = checkStructure(run, doc);
  run.deadline();

  // 3. XSD schema (saml-schema-protocol-2.0, -assertion-2.0, xmldsig, xenc).
  const schema = validateSamlSchema(bytes);
  if (!schema.valid) run.refuse('schema-invalid', 'schema', `not valid against the SAML 2.0 schema: ${clip(schema.errors.join('; '), 400)}`, 400);
  run.pass('schema', 'valid against the SAML 2.0 protocol and assertion schemas');
  run.deadline();

  // 4. Status (saml-core §3.2.2.1, §3.2.2.2): only Success carries an identity.
  const { root } = shape;
  const statusCode = firstChild(firstChild(root, NS.samlp, 'Status') ?? root, NS.samlp, 'StatusCode');
  const topCode = attr(statusCode, 'Value') ?? '';
  if (topCode !== STATUS_SUCCESS) {
    // Issue 12 §4: an error answer is read before any signature check, so an unsigned one is
    // anybody's words. Its status message is shown (on our page, in the audit row) only when the
    // connection's certificate signed the Response; otherwise a fixed text, naming the status only
    // when it is one of saml-core §3.2.2.2's own codes.
    const signedRoot = shape.responseSignature ? signedErrorResponse(run, shape.responseSignature, root, trustedCertificates(conn), opts.allowSha1) : null;
    if (!signedRoot) {
      const code = STANDARD_STATUS.test(topCode) ? ` (${topCode.slice(topCode.lastIndexOf(':') + 1)})` : '';
      run.refuse('idp-status', 'status', `the IdP answered with an error status${code}; the answer is not signed, so its message is not shown`);
    }
    const signedCode = firstChild(firstChild(signedRoot!, NS.samlp, 'Status') ?? signedRoot!, NS.samlp, 'StatusCode');
    const second = attr(signedCode ? firstChild(signedCode, NS.samlp, 'StatusCode') : null, 'Value');
    const message = textOf(firstChild(firstChild(signedRoot!, NS.samlp, 'Status') ?? signedRoot!, NS.samlp, 'StatusMessage'));
    run.refuse('idp-status', 'status',
      `the IdP answered ${clip(attr(signedCode, 'Value') || '(no status)', 120)}${second ? ` / ${clip(second, 120)}` : ''}${message ? `: ${clip(message, 300)}` : ''}`);
  }
  run.pass('status', 'Success');
  if (!shape.assertion) run.refuse('no-assertion', 'assertion', 'the Response carries no Assertion', 400);
  run.pass('assertion', `one Assertion (${clip(attr(shape.assertion, 'ID') ?? '', 80)})`);

  // 5. Signatures. saml-profiles §4.1.3.5/§4.1.4.2: the assertion must be signed, directly or by
  // a signature over the whole Response (which then carries exactly this one assertion).
  const sigs: SignatureInfo[] = [];
  if (shape.responseSignature) sigs.push({ el: shape.responseSignature, parent: root, what: 'Response' });
  if (shape.assertionSignature) sigs.push({ el: shape.assertionSignature, parent: shape.assertion, what: 'Assertion' });
  if (sigs.length === 0) run.refuse('unsigned', 'signature', 'neither the Response nor the Assertion is signed', 401);
  checkAlgorithms(run, sigs, opts.allowSha1);
  const certs = trustedCertificates(conn);
  if (certs.length === 0) run.refuse('bad-signature', 'signature', 'the connection has no usable signing certificate', 401);
  let signedAssertion: Element | null = null;
  const signedBy: string[] = [];
  for (const sig of sigs) {
    const result = verifySignature(sig, certs, opts.allowSha1);
    run.deadline();
    if (!result) run.refuse('bad-signature', 'signature', `the ${sig.what} signature does not verify with the connection's certificate${certs.length > 1 ? 's' : ''}`, 401);
    const signedRoot = parseSigned(run, result.signed, sig.what);
    const expectedId = attr(sig.parent, 'ID');
    if (signedRoot.localName !== sig.what || attr(signedRoot, 'ID') !== expectedId) {
      run.refuse('signature-wrapping', 'signature', `the ${sig.what} signature covers another element`, 400);
    }
    if (sig.what === 'Assertion') {
      signedAssertion = signedRoot;
    } else if (!signedAssertion) {
      const inner = childElements(signedRoot, NS.saml, 'Assertion');
      if (inner.length !== 1 || attr(inner[0]!, 'ID') !== attr(shape.assertion, 'ID')) {
        run.refuse('signature-wrapping', 'signature', 'the signed Response does not carry exactly the one Assertion', 400);
      }
      signedAssertion = inner[0]!;
    }
    signedBy.push(`${sig.what} signed (${certs.length > 1 ? `certificate ${cert(certs, result.cert)}` : 'certificate'} SHA-256 ${result.cert.fingerprint})`);
  }
  const assertion = signedAssertion!;
  const responseSigned = Boolean(shape.responseSignature);
  run.pass('signature', signedBy.join('; '));

  // 6. Issuer (saml-profiles §4.1.4.2): the Response's (required when it is signed) and the
  // Assertion's, both the connection's IdP entity id.
  const responseIssuer = firstChild(root, NS.saml, 'Issuer');
  const assertionIssuer = firstChild(assertion, NS.saml, 'Issuer');
  for (const [what, el, required] of [['Response', responseIssuer, responseSigned], ['Assertion', assertionIssuer, true]] as const) {
    if (!el) {
      if (required) run.refuse('issuer-mismatch', 'issuer', `the ${what} has no Issuer`);
      continue;
    }
    const format = attr(el, 'Format');
    if (format && format !== NAMEID_ENTITY) run.refuse('issuer-mismatch', 'issuer', `the ${what} Issuer Format is ${clip(format)}`);
    if (textOf(el) !== conn.entityId) {
      run.refuse('issuer-mismatch', 'issuer', `the ${what} Issuer is "${clip(textOf(el))}", expected "${conn.entityId}"`);
    }
  }
  run.pass('issuer', conn.entityId);

  // 7. Destination (saml-bindings §3.5.5.2): required on a signed Response, and our ACS URL.
  const destination = attr(root, 'Destination');
  if (destination === null) {
    if (responseSigned) run.refuse('destination-mismatch', 'destination', 'a signed Response must carry a Destination');
    run.pass('destination', 'absent (unsigned Response)');
  } else if (destination !== acs) {
    run.refuse('destination-mismatch', 'destination', `Destination is "${clip(destination)}", expected "${acs}"`);
  } else {
    run.pass('destination', acs);
  }

  // 8. Conditions (saml-core §2.5.1), required here with both bounds.
  const conditions = firstChild(assertion, NS.saml, 'Conditions');
  if (!conditions) run.refuse('no-conditions', 'conditions', 'the Assertion has no Conditions');
  const notBefore = instant(attr(conditions, 'NotBefore'));
  const notOnOrAfter = instant(attr(conditions, 'NotOnOrAfter'));
  if (!notBefore || !notOnOrAfter) run.refuse('no-conditions', 'conditions', 'Conditions must carry NotBefore and NotOnOrAfter');
  run.pass('conditions', `NotBefore ${notBefore.toISOString()}, NotOnOrAfter ${notOnOrAfter.toISOString()}`);

  // 9. Audience (saml-core §2.5.1.4: each AudienceRestriction must name us; saml-profiles
  // §4.1.4.2: at least one is required).
  const restrictions = childElements(conditions, NS.saml, 'AudienceRestriction');
  if (restrictions.length === 0) run.refuse('audience-mismatch', 'audience', 'the Assertion has no AudienceRestriction');
  for (const r of restrictions) {
    const audiences = childElements(r, NS.saml, 'Audience').map(textOf);
    if (!audiences.includes(audience)) {
      run.refuse('audience-mismatch', 'audience', `Audience is ${audiences.map((a) => `"${clip(a)}"`).join(', ') || 'empty'}, expected "${audience}"`);
    }
  }
  run.pass('audience', audience);

  // 10. Bearer subject confirmation (saml-profiles §4.1.4.2, saml-core §2.4.1.2): at least one
  // bearer SubjectConfirmation whose SubjectConfirmationData names our ACS as Recipient, has a
  // NotOnOrAfter still in the future and (when present) a NotBefore already past.
  const subject = firstChild(assertion, NS.saml, 'Subject');
  const bearers = subject ? childElements(subject, NS.saml, 'SubjectConfirmation').filter((sc) => attr(sc, 'Method') === CM_BEARER) : [];
  if (bearers.length === 0) run.refuse('no-subject-confirmation', 'subject-confirmation', 'the Assertion has no bearer SubjectConfirmation');
  type Failure = { reason: string; name: string; message: string };
  let confirmed: { data: Element; notOnOrAfter: Date } | null = null;
  let failure: Failure | null = null;
  for (const sc of bearers) {
    const data = firstChild(sc, NS.saml, 'SubjectConfirmationData');
    const scNotOnOrAfter = instant(attr(data, 'NotOnOrAfter'));
    const scNotBefore = instant(attr(data, 'NotBefore'));
    const recipient = attr(data, 'Recipient');
    let f: Failure | null = null;
    if (!data || !scNotOnOrAfter) f = { reason: 'no-subject-confirmation', name: 'subject-confirmation', message: 'the bearer SubjectConfirmationData has no NotOnOrAfter' };
    else if (recipient !== acs) f = { reason: 'recipient-mismatch', name: 'recipient', message: recipient === null ? 'SubjectConfirmationData has no Recipient' : `Recipient is "${clip(recipient)}", expected "${acs}"` };
    else if (now >= scNotOnOrAfter.getTime() + skewMs) f = { reason: 'expired', name: 'time-window', message: `SubjectConfirmationData expired at ${scNotOnOrAfter.toISOString()}` };
    else if (scNotBefore && now < scNotBefore.getTime() - skewMs) f = { reason: 'not-yet-valid', name: 'time-window', message: `SubjectConfirmationData is valid from ${scNotBefore.toISOString()}` };
    if (!f) { confirmed = { data: data!, notOnOrAfter: scNotOnOrAfter! }; break; }
    failure ??= f;
  }
  if (!confirmed) run.refuse(failure!.reason, failure!.name, failure!.message);
  run.pass('subject-confirmation', `bearer, NotOnOrAfter ${confirmed.notOnOrAfter.toISOString()}`);
  run.pass('recipient', acs);

  // 11. Time window of the Conditions (saml-core §2.5.1.2), with the configured skew, and the
  // session bound of the AuthnStatement (§2.7.2) when there is one.
  if (now < notBefore.getTime() - skewMs) run.refuse('not-yet-valid', 'time-window', `the Assertion is valid from ${notBefore.toISOString()} (now ${opts.now.toISOString()})`);
  if (now >= notOnOrAfter.getTime() + skewMs) run.refuse('expired', 'time-window', `the Assertion expired at ${notOnOrAfter.toISOString()} (now ${opts.now.toISOString()})`);
  for (const authn of childElements(assertion, NS.saml, 'AuthnStatement')) {
    const sessionEnd = instant(attr(authn, 'SessionNotOnOrAfter'));
    if (sessionEnd && now >= sessionEnd.getTime() + skewMs) run.refuse('expired', 'time-window', `the IdP session ended at ${sessionEnd.toISOString()}`);
  }
  run.pass('time-window', `now ${opts.now.toISOString()} within ${notBefore.toISOString()} – ${notOnOrAfter.toISOString()} (±${opts.clockSkewSeconds}s)`);

  // 12. InResponseTo (saml-profiles §4.1.4.3 and §4.1.4.2): the signed SubjectConfirmationData
  // value wins; the Response's must agree with it. Whether it names a request we sent is the
  // caller's check (database); with no value at all the response is unsolicited.
  const scInResponseTo = attr(confirmed.data, 'InResponseTo');
  const responseInResponseTo = attr(root, 'InResponseTo');
  if (scInResponseTo !== null && responseInResponseTo !== null && scInResponseTo !== responseInResponseTo) {
    run.refuse('in-response-to-mismatch', 'in-response-to', 'the Response and its SubjectConfirmationData answer different requests');
  }
  const inResponseTo = scInResponseTo || responseInResponseTo || null;
  if (inResponseTo === null && !conn.allowIdpInitiated) {
    run.refuse('unsolicited', 'in-response-to', 'the Response answers no request and IdP-initiated sign-in is off for this connection');
  }
  run.pass('in-response-to', inResponseTo === null ? 'IdP-initiated (allowed)' : `answers ${clip(inResponseTo, 80)}`);

  // 13. Who: NameID and attributes (saml-core §2.2.3, §2.7.3).
  const nameIdEl = subject ? firstChild(subject, NS.saml, 'NameID') : null;
  const nameId = textOf(nameIdEl);
  if (!nameId) run.refuse('no-name-id', 'subject', 'the Assertion has no NameID');
  const attributes = readAttributes(assertion);
  const format = attr(nameIdEl, 'Format');
  const email = nameId.includes('@') ? nameId : firstValue(attributes, EMAIL_ATTRIBUTES);
  const givenName = firstValue(attributes, GIVEN_NAME_ATTRIBUTES);
  const familyName = firstValue(attributes, FAMILY_NAME_ATTRIBUTES);
  const profile: SsoProfile = {
    subject: nameId,
    email: email && email.includes('@') ? email : null,
    givenName,
    familyName,
    displayName: firstValue(attributes, DISPLAY_NAME_ATTRIBUTES) ?? ([givenName, familyName].filter(Boolean).join(' ') || null),
  };
  run.pass('subject', `NameID ${clip(nameId, 120)}${format ? ` (${format === NAMEID_EMAIL ? 'emailAddress' : clip(format, 80)})` : ''}`);
  run.deadline();

  const latest = Math.max(notOnOrAfter.getTime(), confirmed.notOnOrAfter.getTime());
  return {
    authnEvidence: authnEvidenceOf(assertion, attributes),
    protocol: 'saml',
    checks: run.checks,
    attributes: Object.fromEntries(attributes.map((a) => [a.name, a.values])),
    profile,
    inResponseTo,
    assertionId: attr(assertion, 'ID')!,
    assertionExpiresAt: new Date(latest + skewMs),
  };
}

function cert(certs: TrustedCert[], c: TrustedCert): string {
  return `#${certs.indexOf(c) + 1}`;
}

type SamlAttribute = { name: string; friendlyName: string | null; values: string[] };

function readAttributes(assertion: Element): SamlAttribute[] {
  const out: SamlAttribute[] = [];
  for (const statement of childElements(assertion, NS.saml, 'AttributeStatement')) {
    for (const a of childElements(statement, NS.saml, 'Attribute')) {
      const name = attr(a, 'Name');
      if (!name) continue;
      const values = childElements(a, NS.saml, 'AttributeValue')
        .filter((v) => v.getAttributeNS(NS.xsi, 'nil') !== 'true')
        .map(textOf);
      const existing = out.find((x) => x.name === name);
      if (existing) existing.values.push(...values);
      else out.push({ name, friendlyName: attr(a, 'FriendlyName'), values });
    }
  }
  return out;
}

/**
 * How the IdP says the person authenticated (domain/two-factor.ts): each AuthnStatement's
 * AuthnContextClassRef (saml-core §2.7.2.2), then the values of the amr-like attributes.
 */
function authnEvidenceOf(assertion: Element, attributes: SamlAttribute[]): AuthnEvidence[] {
  const out: AuthnEvidence[] = [];
  for (const authn of childElements(assertion, NS.saml, 'AuthnStatement')) {
    for (const context of childElements(authn, NS.saml, 'AuthnContext')) {
      for (const ref of childElements(context, NS.saml, 'AuthnContextClassRef')) {
        const value = textOf(ref).trim();
        if (value) out.push({ source: 'AuthnContextClassRef', value: clip(value, 512) });
      }
    }
  }
  for (const a of attributes) {
    const source = SAML_METHOD_ATTRIBUTES.get(a.name.toLowerCase()) ?? SAML_METHOD_ATTRIBUTES.get(a.friendlyName?.toLowerCase() ?? '');
    if (!source) continue;
    for (const v of a.values.slice(0, 20)) if (v.trim()) out.push({ source, value: clip(v.trim(), 512) });
  }
  return out.slice(0, 40);
}

function firstValue(attributes: SamlAttribute[], names: string[]): string | null {
  for (const wanted of names) {
    const hit = attributes.find((a) => a.name.toLowerCase() === wanted || a.friendlyName?.toLowerCase() === wanted);
    const value = hit?.values.find((v) => v.length > 0);
    if (value) return value;
  }
  return null;
}
