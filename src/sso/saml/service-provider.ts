/**
 * Our side of a SAML 2.0 connection: SP metadata and the SP-initiated AuthnRequest
 * (HTTP-Redirect binding, saml-bindings §3.4). Built with samlify; nothing here reads a
 * response (see ./verify.ts).
 */
import samlify from 'samlify';

/** One SAML IdP, as an SSO connection stores it. `certificates` are PEM (or bare base64 DER). */
export type SamlConnection = {
  id: string;
  entityId: string;
  ssoUrl: string;
  certificates: string[];
  allowIdpInitiated: boolean;
};

/** Optional SP key pair (PEM) used to sign AuthnRequests. */
export type SamlSpSigning = { privateKey: string; certificate: string };

export type SamlSpOptions = {
  /** External base URL of the service (config.http.publicUrl). */
  publicUrl: string;
  signing?: SamlSpSigning | null;
};

export const SAML_BINDING_POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';
export const SAML_BINDING_REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
export const NAMEID_EMAIL = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';

function base(publicUrl: string): string {
  return publicUrl.replace(/\/+$/, '');
}

/** The SP entity id, which is also the `<Audience>` we accept: `${publicUrl}/sso/${id}/saml/metadata`. */
export function samlSpEntityId(conn: Pick<SamlConnection, 'id'>, publicUrl: string): string {
  return `${base(publicUrl)}/sso/${encodeURIComponent(conn.id)}/saml/metadata`;
}

/** The HTTP-POST AssertionConsumerService URL (Destination / Recipient we accept). */
export function samlAcsUrl(conn: Pick<SamlConnection, 'id'>, publicUrl: string): string {
  return `${base(publicUrl)}/sso/${encodeURIComponent(conn.id)}/saml/acs`;
}

function serviceProvider(conn: SamlConnection, opts: SamlSpOptions) {
  const signing = opts.signing ?? null;
  return samlify.ServiceProvider({
    entityID: samlSpEntityId(conn, opts.publicUrl),
    authnRequestsSigned: signing !== null,
    // saml-profiles §4.1.4.2/4.1.4.3: we require a signed assertion (or a signed response
    // carrying exactly one assertion); advertise the stricter wish.
    wantAssertionsSigned: true,
    wantMessageSigned: false,
    nameIDFormat: [NAMEID_EMAIL],
    assertionConsumerService: [{ Binding: SAML_BINDING_POST, Location: samlAcsUrl(conn, opts.publicUrl), isDefault: true }],
    ...(signing
      ? { privateKey: signing.privateKey, signingCert: signing.certificate, requestSignatureAlgorithm: RSA_SHA256 }
      : {}),
  });
}

function xmlAttr(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * The IdP as samlify needs it to address an AuthnRequest. Built from a minimal metadata
 * document (the options form logs a warning for every IdP without a logout endpoint).
 * `WantAuthnRequestsSigned` follows our own choice: samlify refuses to build a request when
 * it disagrees with the SP's `AuthnRequestsSigned`.
 */
function identityProvider(conn: SamlConnection, opts: SamlSpOptions) {
  const metadata =
    `<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="${xmlAttr(conn.entityId)}">` +
    `<IDPSSODescriptor WantAuthnRequestsSigned="${opts.signing ? 'true' : 'false'}" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
    `<SingleSignOnService Binding="${SAML_BINDING_REDIRECT}" Location="${xmlAttr(conn.ssoUrl)}"/>` +
    `</IDPSSODescriptor></EntityDescriptor>`;
  return samlify.IdentityProvider({ metadata });
}

/**
 * SP metadata (saml-metadata §2.4.4): `EntityDescriptor@entityID` = SP entity id,
 * one HTTP-POST AssertionConsumerService at the ACS URL, `WantAssertionsSigned="true"`,
 * `AuthnRequestsSigned` true iff a signing key is configured (its certificate is published).
 */
export function samlMetadataXml(conn: SamlConnection, opts: SamlSpOptions): string {
  return String(serviceProvider(conn, opts).getMetadata());
}

/**
 * SP-initiated login (saml-profiles §4.1.4.1, HTTP-Redirect binding saml-bindings §3.4.4):
 * the URL to send the browser to, and the AuthnRequest `ID` (the `InResponseTo` the ACS
 * will accept). Signed (`SigAlg` + `Signature` query parameters, §3.4.4.1) when a signing key
 * is configured. `loginHint` is added as a `login_hint` query parameter, outside the signed
 * octet string (Entra ID and others honour it; an IdP that does not ignores it) — not as an
 * AuthnRequest `<Subject>`, which Entra ID refuses.
 */
export function buildSamlLoginRedirect(
  conn: SamlConnection,
  opts: SamlSpOptions & { relayState?: string; loginHint?: string },
): { url: string; requestId: string } {
  const sp = serviceProvider(conn, opts);
  const idp = identityProvider(conn, opts);
  const { id, context } = sp.createLoginRequest(idp, 'redirect', opts.relayState ? { relayState: opts.relayState } : {});
  let url = String(context);
  if (opts.loginHint) {
    url += `${url.includes('?') ? '&' : '?'}login_hint=${encodeURIComponent(opts.loginHint)}`;
  }
  return { url, requestId: String(id) };
}
