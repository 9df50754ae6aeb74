/**
 * `npm run demo:idp -- --domain acme.example [--port 7001]`: a SAML identity provider for trying
 * orgsync out (issue 14 §3), on loopback only. It answers the AuthnRequests orgsync sends
 * (HTTP-Redirect binding, saml-bindings §3.4) with a one-field form that signs in any address of
 * the given domain, and posts a signed Response back to the ACS the request names (HTTP-POST
 * binding, saml-bindings §3.5) — the real protocol, so the rollout test and sign-in finish.
 *
 * It signs with the committed TEST key (fixtures/saml/idp-key.pem): a demo, never an IdP to
 * trust. samlify's IdentityProvider signs the assertion; the response is built from the same kind
 * of template as the tests' IdP (test/support/saml-idp.ts), whose answers orgsync's ACS accepts.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { inflateRawSync } from 'node:zlib';
import { DOMParser } from '@xmldom/xmldom';
import samlify from 'samlify';
import { html, page } from '../http/html.js';
import { NAMEID_EMAIL, SAML_BINDING_POST, SAML_BINDING_REDIRECT } from '../sso/saml/service-provider.js';

const KEY_DIR = new URL('../../fixtures/saml/', import.meta.url);
const PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
const ASSERTION = 'urn:oasis:names:tc:SAML:2.0:assertion';
const SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
const PASSWORD = 'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport';
/** At most this many sign-ins waiting for their form at once; the oldest go first. */
const MAX_PENDING = 1000;

export type DemoIdp = {
  /** Base URL, e.g. http://127.0.0.1:7001 */
  url: string;
  entityId: string;
  ssoUrl: string;
  metadataUrl: string;
  certificate: string;
  close(): Promise<void>;
};

type Pending = { requestId: string; acs: string; audience: string; relayState: string | null };

const RESPONSE_TEMPLATE =
  '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ' +
  'ID="{ID}" Version="2.0" IssueInstant="{IssueInstant}" Destination="{Destination}" InResponseTo="{InResponseTo}">' +
  '<saml:Issuer>{Issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value="{StatusCode}"/></samlp:Status>' +
  '<saml:Assertion xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema" ' +
  'ID="{AssertionID}" Version="2.0" IssueInstant="{IssueInstant}"><saml:Issuer>{Issuer}</saml:Issuer>' +
  '<saml:Subject><saml:NameID Format="{NameIDFormat}">{NameID}</saml:NameID>' +
  '<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">' +
  '<saml:SubjectConfirmationData NotOnOrAfter="{NotOnOrAfter}" Recipient="{Destination}" InResponseTo="{InResponseTo}"/>' +
  '</saml:SubjectConfirmation></saml:Subject>' +
  '<saml:Conditions NotBefore="{IssueInstant}" NotOnOrAfter="{NotOnOrAfter}"><saml:AudienceRestriction><saml:Audience>{Audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions>' +
  '<saml:AuthnStatement AuthnInstant="{IssueInstant}" SessionIndex="{SessionIndex}"><saml:AuthnContext>' +
  '<saml:AuthnContextClassRef>' + PASSWORD + '</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>' +
  '{{Attributes}}</saml:Assertion></samlp:Response>';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** An AttributeStatement: the address, and `amr` (pwd, plus mfa when the person ticked the second factor: docs/sso.md). */
function attributes(email: string, mfa: boolean): string {
  const attr = (name: string, values: string[]) =>
    `<saml:Attribute Name="${esc(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified">` +
    values.map((v) => `<saml:AttributeValue xsi:type="xs:string">${esc(v)}</saml:AttributeValue>`).join('') + '</saml:Attribute>';
  return `<saml:AttributeStatement>${attr('email', [email])}${attr('amr', mfa ? ['pwd', 'mfa'] : ['pwd'])}</saml:AttributeStatement>`;
}

/** The AuthnRequest of an HTTP-Redirect binding query (saml-bindings §3.4.4.1: DEFLATE, base64), or an error text. */
function readAuthnRequest(samlRequest: string): { id: string; acs: string; issuer: string } | string {
  let xml: string;
  try {
    xml = inflateRawSync(Buffer.from(samlRequest, 'base64'), { maxOutputLength: 64 * 1024 }).toString('utf8');
  } catch {
    return 'SAMLRequest is not a DEFLATE-compressed, base64-encoded AuthnRequest';
  }
  const doc = new DOMParser({ onError: () => {} }).parseFromString(xml, 'text/xml');
  const root = doc.documentElement;
  if (!root || root.namespaceURI !== PROTOCOL || root.localName !== 'AuthnRequest') return 'SAMLRequest is not a samlp:AuthnRequest';
  const issuer = root.getElementsByTagNameNS(ASSERTION, 'Issuer')[0]?.textContent?.trim() ?? '';
  const id = root.getAttribute('ID') ?? '';
  const acs = root.getAttribute('AssertionConsumerServiceURL') ?? '';
  if (!id || !issuer || !/^https?:\/\//.test(acs)) return 'the AuthnRequest needs an ID, an Issuer and an AssertionConsumerServiceURL';
  return { id, acs, issuer };
}

export async function startDemoIdp(opts: { domain: string; port?: number; host?: string }): Promise<DemoIdp> {
  const domain = opts.domain.toLowerCase().replace(/^@/, '');
  const privateKey = readFileSync(new URL('idp-key.pem', KEY_DIR), 'utf8');
  const certificate = readFileSync(new URL('idp-cert.pem', KEY_DIR), 'utf8');
  const pending = new Map<string, Pending>();
  let base = '';
  let idp: ReturnType<typeof samlify.IdentityProvider>;

  const send = (res: ServerResponse, status: number, type: string, body: string) => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
  };
  const form = (res: ServerResponse, key: string, error: string | null, status = 200) => send(res, status, 'text/html; charset=utf-8', page('Demo identity provider', html`
<p>Signs in any address of <strong>${domain}</strong>. No password: this IdP is for trying orgsync out.</p>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<form method="post" action="/sso/login">
<input type="hidden" name="key" value="${key}">
<label>Email <input name="email" type="email" required autofocus placeholder="ada@${domain}"></label>
<label><input name="mfa" type="checkbox" value="1"> I used a second factor (the answer says amr mfa)</label>
<button type="submit">Sign in</button>
</form>`));

  async function respond(res: ServerResponse, p: Pending, email: string, mfa: boolean) {
    const now = new Date();
    const values = {
      ID: `_r${randomUUID().replace(/-/g, '')}`, AssertionID: `_a${randomUUID().replace(/-/g, '')}`, IssueInstant: now.toISOString(),
      NotOnOrAfter: new Date(now.getTime() + 5 * 60_000).toISOString(), Destination: p.acs, InResponseTo: p.requestId,
      Issuer: `${base}/metadata`, Audience: p.audience, StatusCode: SUCCESS, NameIDFormat: NAMEID_EMAIL, NameID: email,
      SessionIndex: `_s${randomUUID().replace(/-/g, '')}`,
    };
    const sp = samlify.ServiceProvider({ entityID: p.audience, assertionConsumerService: [{ Binding: SAML_BINDING_POST, Location: p.acs }], wantAssertionsSigned: true });
    const out = await idp.createLoginResponse(sp, { extract: {} }, 'post', {}, {
      customTagReplacement: (template: string) => ({ id: values.ID, context: samlify.SamlLib.replaceTagsByValue(template.replace('{{Attributes}}', attributes(email, mfa)), values) }),
    });
    // saml-bindings §3.5.4: an HTML form the browser submits to the ACS by itself.
    send(res, 200, 'text/html; charset=utf-8', page('Signing in…', html`
<p>Signing in to orgsync as ${email}…</p>
<form id="saml" method="post" action="${p.acs}">
<input type="hidden" name="SAMLResponse" value="${out.context}">
${p.relayState !== null ? html`<input type="hidden" name="RelayState" value="${p.relayState}">` : ''}
<noscript><button type="submit">Continue</button></noscript>
</form>
<script>document.getElementById('saml').submit()</script>`));
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/metadata') return send(res, 200, 'application/samlmetadata+xml', idp.getMetadata());
    if (req.method === 'GET' && url.pathname === '/sso') {
      const read = readAuthnRequest(url.searchParams.get('SAMLRequest') ?? '');
      if (typeof read === 'string') return send(res, 400, 'text/plain; charset=utf-8', `${read}\n`);
      const key = randomUUID();
      if (pending.size >= MAX_PENDING) pending.delete(pending.keys().next().value!);
      pending.set(key, { requestId: read.id, acs: read.acs, audience: read.issuer, relayState: url.searchParams.get('RelayState') });
      return form(res, key, null);
    }
    if (req.method === 'POST' && url.pathname === '/sso/login') {
      let body = '';
      for await (const chunk of req) {
        body += chunk;
        if (body.length > 16 * 1024) return send(res, 413, 'text/plain; charset=utf-8', 'form too large\n');
      }
      const f = new URLSearchParams(body);
      const key = f.get('key') ?? '';
      const p = pending.get(key);
      if (!p) return send(res, 400, 'text/plain; charset=utf-8', 'this sign-in expired or was used: start it again from orgsync\n');
      const email = (f.get('email') ?? '').trim();
      if (!/^[^@\s]+@[^@\s]+$/.test(email) || email.split('@')[1]!.toLowerCase() !== domain) {
        return form(res, key, `Enter an address of ${domain}.`, 400);
      }
      pending.delete(key);
      return respond(res, p, email, f.get('mfa') === '1');
    }
    send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `demo IdP error: ${String(err)}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 7001, opts.host ?? '127.0.0.1', resolve);
  });
  const addr = server.address() as AddressInfo;
  base = `http://${addr.address}:${addr.port}`;
  idp = samlify.IdentityProvider({
    entityID: `${base}/metadata`, privateKey, signingCert: certificate,
    requestSignatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    singleSignOnService: [{ Binding: SAML_BINDING_REDIRECT, Location: `${base}/sso` }],
    // Not served (the demo has no logout); declared so that samlify does not warn at start.
    singleLogoutService: [{ Binding: SAML_BINDING_REDIRECT, Location: `${base}/slo` }],
    loginResponseTemplate: { context: RESPONSE_TEMPLATE, attributes: [] },
  });
  return {
    url: base, entityId: `${base}/metadata`, ssoUrl: `${base}/sso`, metadataUrl: `${base}/metadata`, certificate,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function main() {
  const { values } = parseArgs({ options: { domain: { type: 'string' }, port: { type: 'string', default: '7001' } } });
  if (!values.domain || !/^[a-z0-9.-]+\.[a-z]{2,}$/i.test(values.domain)) {
    process.stderr.write('usage: npm run demo:idp -- --domain acme.example [--port 7001]\n');
    process.exit(2);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`--port: ${values.port} is not a port number\n`);
    process.exit(2);
  }
  try {
    const d = await startDemoIdp({ domain: values.domain, port });
    process.stdout.write([
      `demo SAML IdP for @${values.domain} at ${d.url} (test key: never trust it in production)`,
      `entity id:   ${d.entityId}`,
      `SSO URL:     ${d.ssoUrl}   (HTTP-Redirect)`,
      `metadata:    ${d.metadataUrl}`,
      'certificate: fixtures/saml/idp-cert.pem',
      '',
    ].join('\n'));
  } catch (err) {
    const code = (err as { code?: string }).code;
    process.stderr.write(code === 'EADDRINUSE' ? `demo:idp: port ${port} is in use (choose another with --port)\n` : `demo:idp: ${String(err)}\n`);
    process.exit(2);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
