/**
 * The signature step of the SAML verifier (verify.ts `verifySignature` / `referenceOctets`) for
 * the XML-DSig variants IdPs produce — signed here with xml-crypto itself: every canonicalization,
 * implicit C14N, InclusiveNamespaces, RSA-SHA512 and RSA-PSS, Response and Assertion signatures —
 * and the edits that must break it. Plus: the in-place canonicalization of the common
 * enveloped-signature chain renders exactly what xml-crypto's own `canonicalize` renders.
 */
import { DOMParser, type Element } from '@xmldom/xmldom';
import fc from 'fast-check';
import { SignedXml } from 'xml-crypto';
import { findAncestorNsForElement } from 'xml-crypto/lib/utils.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { SsoRefused } from '../../../src/domain/errors.js';
import { warmSamlValidator } from '../../../src/sso/saml/schema-validator.js';
import { referenceOctets, verifySamlResponse, type ReferenceProcessor, type SamlVerifyOptions } from '../../../src/sso/saml/verify.js';
import { b64, EVIL_NAME_ID, idpResponse, SAML_KEYS, TEST_PUBLIC_URL, testConnection } from '../../support/saml-idp.js';

const NOW = new Date('2030-06-01T12:00:00.000Z');
const conn = testConnection();
const opts: SamlVerifyOptions = { publicUrl: TEST_PUBLIC_URL, clockSkewSeconds: 60, allowSha1: false, verifyTimeoutMs: 10_000, now: NOW };

const ALG = {
  exc: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  excComments: 'http://www.w3.org/2001/10/xml-exc-c14n#WithComments',
  c14n: 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315',
  c14nComments: 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments',
  enveloped: 'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
  sha256: 'http://www.w3.org/2001/04/xmlenc#sha256',
  sha512: 'http://www.w3.org/2001/04/xmlenc#sha512',
  rsaSha256: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  rsaSha512: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
  rsaPss: 'http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1',
} as const;

type SignOptions = {
  target?: 'Assertion' | 'Response';
  signedInfoC14n?: string;
  transforms?: string[];
  digest?: string;
  signature?: string;
  prefixList?: string[];
};

/** Signs the Assertion (or the Response) of an unsigned test response the way xml-crypto signs. */
function sign(xml: string, o: SignOptions = {}): string {
  const target = o.target ?? 'Assertion';
  const path = `/*[local-name(.)='Response']${target === 'Assertion' ? "/*[local-name(.)='Assertion']" : ''}`;
  const sig = new SignedXml({
    privateKey: SAML_KEYS.idp.privateKey,
    publicCert: SAML_KEYS.idp.certificate,
    canonicalizationAlgorithm: o.signedInfoC14n ?? ALG.exc,
    signatureAlgorithm: o.signature ?? ALG.rsaSha256,
  });
  sig.addReference({
    xpath: path,
    transforms: o.transforms ?? [ALG.enveloped, ALG.exc],
    digestAlgorithm: o.digest ?? ALG.sha256,
    inclusiveNamespacesPrefixList: o.prefixList ?? [],
  });
  sig.computeSignature(xml, { prefix: 'ds', location: { reference: `${path}/*[local-name(.)='Issuer']`, action: 'after' } });
  return sig.getSignedXml();
}

async function unsigned(o: Parameters<typeof idpResponse>[1] = {}): Promise<string> {
  return (await idpResponse(conn, { now: NOW, sign: 'none', ...o })).xml;
}

async function refusal(xml: string): Promise<SsoRefused> {
  try {
    const answer = await verifySamlResponse(conn, b64(xml), opts);
    throw new Error(`accepted: ${JSON.stringify(answer.profile)}`);
  } catch (err) {
    if (!(err instanceof SsoRefused)) throw err;
    return err;
  }
}

beforeAll(async () => {
  await warmSamlValidator();
});

describe('accepts what xml-crypto signs', () => {
  const variants: Array<[string, SignOptions]> = [
    ['exc-c14n (the common chain)', {}],
    ['exc-c14n, Response signed', { target: 'Response' }],
    ['exc-c14n#WithComments reference, c14n SignedInfo', { transforms: [ALG.enveloped, ALG.excComments], signedInfoC14n: ALG.c14n }],
    ['inclusive c14n reference', { transforms: [ALG.enveloped, ALG.c14n] }],
    ['inclusive c14n#WithComments reference and SignedInfo', { transforms: [ALG.enveloped, ALG.c14nComments], signedInfoC14n: ALG.c14nComments }],
    ['enveloped-signature only (implicit C14N)', { transforms: [ALG.enveloped] }],
    ['enveloped-signature only, Response signed', { target: 'Response', transforms: [ALG.enveloped] }],
    ['InclusiveNamespaces PrefixList', { transforms: [ALG.enveloped, ALG.exc], prefixList: ['xs', 'xsi'] }],
    ['InclusiveNamespaces PrefixList, Response signed', { target: 'Response', transforms: [ALG.enveloped, ALG.exc], prefixList: ['saml'] }],
    ['RSA-SHA512 with a SHA-512 digest', { signature: ALG.rsaSha512, digest: ALG.sha512 }],
    ['RSA-PSS (sha256-rsa-MGF1)', { signature: ALG.rsaPss }],
  ];

  it.each(variants)('%s', async (_name, o) => {
    const xml = sign(await unsigned({ attributes: { mail: 'alice@example.com', 'note & <stuff>': 'a "quoted"\tvalue' } }), o);
    const answer = await verifySamlResponse(conn, b64(xml), opts);
    expect(answer.profile.email).toBe('alice@example.com');
    expect(answer.attributes['note & <stuff>']).toEqual(['a "quoted"\tvalue']);
    expect(answer.checks.find((c) => c.name === 'signature')?.detail).toMatch(new RegExp(`^${o.target ?? 'Assertion'} signed`));
  });

  it('a processing instruction in a signed NameID: xml-crypto renders its data as text, so the signature holds — and the NameID read is the signed one', async () => {
    const signed = sign(await unsigned({ nameId: 'alice@example.com.evil.test' }));
    // What a reader of the received DOM would take for "alice@example.com".
    const edited = signed.replace('alice@example.com.evil.test', 'alice@example.com<?x .evil.test?>');
    expect(edited).not.toBe(signed);
    const answer = await verifySamlResponse(conn, b64(edited), opts);
    expect(answer.profile.subject).toBe('alice@example.com.evil.test');
  });
});

describe('refuses every edit of what is signed', () => {
  type Edit = [string, (xml: string) => string, string];
  const edits: Edit[] = [
    ['the NameID text', (x) => x.replace('alice@example.com', EVIL_NAME_ID), 'bad-signature'],
    ['an attribute value (Recipient)', (x) => x.replace(/Recipient="([^"]*)"/, 'Recipient="$1/"'), 'bad-signature'],
    ['a new (schema-valid) attribute on an Attribute', (x) => x.replace('<saml:Attribute ', '<saml:Attribute xmlns:x="urn:x" x:extra="1" '), 'bad-signature'],
    ['a removed AttributeStatement', (x) => x.replace(/<saml:AttributeStatement>.*<\/saml:AttributeStatement>/, ''), 'bad-signature'],
    ['text inside a signed element (whitespace)', (x) => x.replace('<saml:Subject>', '<saml:Subject> '), 'bad-signature'],
    ['the DigestValue', (x) => x.replace(/<ds:DigestValue>([^<]{4})/, (_m, s: string) => `<ds:DigestValue>${s === 'AAAA' ? 'BBBB' : 'AAAA'}`), 'bad-signature'],
    ['the SignatureValue', (x) => x.replace(/<ds:SignatureValue>([^<]{4})/, (_m, s: string) => `<ds:SignatureValue>${s === 'AAAA' ? 'BBBB' : 'AAAA'}`), 'bad-signature'],
    ['the SignedInfo (digest method)', (x) => x.replace(`DigestMethod Algorithm="${ALG.sha256}"`, `DigestMethod Algorithm="${ALG.sha512}"`), 'bad-signature'],
    ['the SignedInfo (transform c14n → exc-c14n#WithComments)', (x) => x.replace(`<ds:Transform Algorithm="${ALG.exc}"/>`, `<ds:Transform Algorithm="${ALG.excComments}"/>`), 'bad-signature'],
  ];

  it.each(edits)('%s', async (_name, edit, reason) => {
    const signed = sign(await unsigned({ attributes: { mail: 'alice@example.com' } }));
    const edited = edit(signed);
    expect(edited).not.toBe(signed);
    expect((await refusal(edited)).reason).toBe(reason);
  });

  it.each([ALG.exc, ALG.c14n])('an edit under a Response signature (%s)', async (c14n) => {
    const signed = sign(await unsigned(), { target: 'Response', transforms: [ALG.enveloped, c14n] });
    expect((await refusal(signed.replace('alice@example.com', EVIL_NAME_ID))).reason).toBe('bad-signature');
    expect((await refusal(signed.replace('<samlp:Status>', '<samlp:Status> '))).reason).toBe('bad-signature');
  });

  it('a reference without the enveloped-signature transform (it would cover its own signature)', async () => {
    const signed = sign(await unsigned(), { transforms: [ALG.exc] });
    expect((await refusal(signed)).reason).toBe('bad-signature');
  });

  it('a signature by another key whose KeyInfo carries the trusted certificate', async () => {
    const sig = new SignedXml({ privateKey: SAML_KEYS.attacker.privateKey, publicCert: SAML_KEYS.idp.certificate, canonicalizationAlgorithm: ALG.exc, signatureAlgorithm: ALG.rsaSha256 });
    sig.addReference({ xpath: "/*[local-name(.)='Response']/*[local-name(.)='Assertion']", transforms: [ALG.enveloped, ALG.exc], digestAlgorithm: ALG.sha256 });
    sig.computeSignature(await unsigned(), { prefix: 'ds', location: { reference: "/*[local-name(.)='Response']/*[local-name(.)='Assertion']/*[local-name(.)='Issuer']", action: 'after' } });
    expect((await refusal(sig.getSignedXml())).reason).toBe('bad-signature');
  });
});

describe('in-place canonicalization = xml-crypto canonicalize on a clone', () => {
  const DOCS = [
    // Comments, a PI, CDATA, entities and escapes in text and attributes, namespaced attributes.
    `<r:Root xmlns:r="urn:r" xmlns:unused="urn:unused" xmlns:a="urn:a"><!-- before --><r:Signed ID="_s" a:x="1" z="&amp;&lt;&quot;&#9;&#10;&#13;" b="'">` +
      `t1<!-- inner -->t2<?pi some data?><![CDATA[<cdata> & ]]>&#xD;&amp;&gt;` +
      `<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="ENVELOPED"><ds:SignedInfo/></ds:Signature>` +
      `<r:Child xml:lang="en" a:y="2"><a:Deep>é &#x1F600;</a:Deep><Empty/></r:Child></r:Signed></r:Root>`,
    // Default namespaces, an undeclaration, prefixes used only on attributes, redeclarations.
    `<Root xmlns="urn:default" xmlns:p="urn:p"><Signed ID="_s" p:attr="v">` +
      `<Sig:Signature xmlns:Sig="http://www.w3.org/2000/09/xmldsig#" Id="ENVELOPED"/>` +
      `<Inner xmlns=""><p:Leaf xmlns:p="urn:p2" p:q="w"/></Inner><x:Other xmlns:x="urn:default"/>\n  </Signed></Root>`,
    // The signature not first, whitespace around it, a nested signature that is not the one (stays).
    `<a:Root xmlns:a="urn:a" xmlns:b="urn:b"><a:Signed ID="_s"><b:Before b:k="1"/>\n\t` +
      `<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="ENVELOPED"><ds:SignatureValue>x</ds:SignatureValue></ds:Signature>\n` +
      `<b:After><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/></b:After></a:Signed></a:Root>`,
  ];

  function bothWays(xml: string, c14n: string): [string, string] {
    const doc = new DOMParser().parseFromString(xml, 'text/xml');
    const signed = doc.documentElement!.getElementsByTagNameNS('*', 'Signed')[0] as Element;
    const el = [...Array.from(signed.childNodes)].find((n) => n.nodeType === 1 && (n as Element).localName === 'Signature') as Element;
    const processor = () => new SignedXml() as unknown as ReferenceProcessor;
    const ref = { transforms: [ALG.enveloped, c14n], inclusiveNamespacesPrefixList: [] as string[] };
    const fast = referenceOctets(processor(), ref, { el: el as never, parent: signed as never });
    const p = processor();
    p.signatureNode = el;
    const slow = p.canonicalize(ref.transforms, signed, { inclusiveNamespacesPrefixList: [], ancestorNamespaces: findAncestorNsForElement(signed as never) }, { discardComments: true });
    // Nothing was changed in the document.
    expect(new DOMParser().parseFromString(xml, 'text/xml').documentElement!.toString()).toBe(doc.documentElement!.toString());
    return [fast, slow];
  }

  const cases = DOCS.flatMap((doc, i) => [ALG.exc, ALG.excComments, ALG.c14n, ALG.c14nComments].map((alg) => [i, alg, doc] as const));
  it.each(cases)('document %i, %s', (_i, alg, doc) => {
    const [fast, slow] = bothWays(doc, alg);
    expect(fast).toBe(slow);
    expect(fast).not.toContain('ENVELOPED');
    expect(fast).not.toContain('<!--');
  });

  it('for any text and attribute content', () => {
    const text = fc.string({ unit: 'binary', maxLength: 40 }).map((s) => s.replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD]/gu, ''));
    const esc = (s: string, attr: boolean) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
      .replace(/"/g, attr ? '&quot;' : '"').replace(/\r/g, '&#13;').replace(/\t/g, attr ? '&#9;' : '\t').replace(/\n/g, attr ? '&#10;' : '\n');
    fc.assert(fc.property(text, text, text, fc.constantFrom(ALG.exc, ALG.c14n), (t1, t2, a, alg) => {
      const doc = `<r:Root xmlns:r="urn:r"><r:Signed ID="_s" v="${esc(a, true)}">${esc(t1, false)}` +
        `<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/><r:C w="${esc(t2, true)}">${esc(t2, false)}</r:C></r:Signed></r:Root>`;
      const [fast, slow] = bothWays(doc, alg);
      expect(fast).toBe(slow);
    }), { numRuns: 200 });
  });
});
