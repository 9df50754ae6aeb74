/**
 * An in-process SAML identity provider on loopback HTTP, for browser tests: its SSO URL takes
 * an SP-initiated AuthnRequest (HTTP-Redirect binding, saml-bindings §3.4), decodes it with
 * samlify, and answers with the HTTP-POST binding (saml-bindings §3.5): an auto-submitting HTML
 * form carrying a response signed by the test IdP key (./saml-idp.ts), `InResponseTo` = the
 * request's ID, RelayState echoed. Who it signs in is configurable (no login form: the test
 * decides who "typed their password").
 *
 * The samlify schema validator must be registered (importing src/sso/saml/schema-validator.ts
 * does it; a running service has).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import samlify from 'samlify';
import { SAML_BINDING_POST, SAML_BINDING_REDIRECT, samlAcsUrl, samlSpEntityId } from '../../src/sso/saml/service-provider.js';
import '../../src/sso/saml/schema-validator.js';
import { idpResponse, SAML_KEYS, testConnection, TEST_IDP_ENTITY_ID, type IdpResponseOptions } from './saml-idp.js';

export type AuthnRequestSeen = { id: string; issuer: string; acsUrl: string; relayState: string | null; loginHint: string | null; connectionId: string };

/** Who the IdP signs in for a request: an email (the NameID), or null to answer with a refusal page. */
export type UserChooser = string | ((request: AuthnRequestSeen) => string | null);

export type SamlIdpServer = {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  url: string;
  /** The SSO URL to save in the connection (`ssoUrl`). */
  ssoUrl: string;
  entityId: string;
  /** Every AuthnRequest received, in order. */
  requests: AuthnRequestSeen[];
  /** Changes who the next sign-ins are for. */
  signInAs(user: UserChooser): void;
  close(): Promise<void>;
};

export type SamlIdpServerOptions = {
  /** The SP's PUBLIC_URL: the ACS an AuthnRequest names must be under it. */
  publicUrl: string;
  /** Default: the login_hint of the request, else alice@example.com. */
  user?: UserChooser;
  entityId?: string;
  /** Extra response options (attributes, …) for every answer. */
  response?: Omit<IdpResponseOptions, 'inResponseTo' | 'nameId'>;
};

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export async function startSamlIdpServer(opts: SamlIdpServerOptions): Promise<SamlIdpServer> {
  const entityId = opts.entityId ?? TEST_IDP_ENTITY_ID;
  const publicUrl = opts.publicUrl.replace(/\/+$/, '');
  let chooser: UserChooser = opts.user ?? ((r) => r.loginHint ?? 'alice@example.com');
  const requests: AuthnRequestSeen[] = [];
  let ssoUrl = '';

  // samlify needs both entities to run its redirect flow; the SP entity only matters when
  // AuthnRequests must be signed (they need not be here), so a placeholder will do.
  let idp: ReturnType<typeof samlify.IdentityProvider> | null = null;
  const idpEntity = () => (idp ??= samlify.IdentityProvider({
    entityID: entityId, privateKey: SAML_KEYS.idp.privateKey, signingCert: SAML_KEYS.idp.certificate, wantAuthnRequestsSigned: false,
    singleSignOnService: [{ Binding: SAML_BINDING_REDIRECT, Location: ssoUrl }],
    singleLogoutService: [{ Binding: SAML_BINDING_REDIRECT, Location: `${ssoUrl}/logout` }],
  }));
  const anySp = samlify.ServiceProvider({ entityID: 'urn:orgsync:test:any-sp', assertionConsumerService: [{ Binding: SAML_BINDING_POST, Location: `${publicUrl}/acs` }] });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://idp.invalid');
    if (req.method !== 'GET' || url.pathname !== '/sso') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const query = Object.fromEntries(url.searchParams);
    // The octet string a signature would cover (saml-bindings §3.4.4.1), as it came on the wire.
    const rawQuery = (req.url ?? '').split('?')[1] ?? '';
    const octetString = rawQuery.split('&').filter((p) => /^(SAMLRequest|RelayState|SigAlg)=/.test(p)).join('&');
    let parsed: { extract: { request?: { id?: string; assertionConsumerServiceUrl?: string }; issuer?: string } };
    try {
      parsed = await idpEntity().parseLoginRequest(anySp, 'redirect', { query, octetString }) as typeof parsed;
    } catch (err) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end(`bad AuthnRequest: ${(err as Error).message}`);
      return;
    }
    const id = parsed.extract.request?.id ?? '';
    const acsUrl = parsed.extract.request?.assertionConsumerServiceUrl ?? '';
    const issuer = parsed.extract.issuer ?? '';
    const m = new RegExp(`^${publicUrl.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/sso/([0-9a-f-]{36})/saml/acs$`).exec(acsUrl);
    if (!id || !m || issuer !== samlSpEntityId({ id: m[1]! }, publicUrl)) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end(`unexpected AuthnRequest: id=${id} acs=${acsUrl} issuer=${issuer}`);
      return;
    }
    const seen: AuthnRequestSeen = {
      id, issuer, acsUrl, connectionId: m[1]!, relayState: url.searchParams.get('RelayState'), loginHint: url.searchParams.get('login_hint'),
    };
    requests.push(seen);
    const user = typeof chooser === 'function' ? chooser(seen) : chooser;
    if (!user) {
      res.writeHead(403, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><title>Test IdP</title><p>The test IdP refuses this sign-in.</p>');
      return;
    }
    const conn = testConnection({ id: seen.connectionId, entityId, ssoUrl });
    const answer = await idpResponse(conn, { ...opts.response, inResponseTo: id, nameId: user }, publicUrl);
    const action = samlAcsUrl(conn, publicUrl);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test IdP: signing you in</title></head>
<body onload="document.forms[0].submit()">
<form method="post" action="${esc(action)}">
<input type="hidden" name="SAMLResponse" value="${esc(answer.base64)}">
${seen.relayState !== null ? `<input type="hidden" name="RelayState" value="${esc(seen.relayState)}">` : ''}
<noscript><button type="submit">Continue</button></noscript>
</form>
<p>Signing in ${esc(user)} at the test IdP…</p>
</body></html>`);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`test IdP failed: ${(err as Error).stack ?? String(err)}`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;
  ssoUrl = `${base}/sso`;
  return {
    url: base, ssoUrl, entityId, requests,
    signInAs: (user) => { chooser = user; },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
