/**
 * Which issuer URLs we are willing to talk to, and how.
 *
 * Decision: an issuer is `https://` (any host name or IP literal, any port, verified against
 * Node's default trust store, which includes NODE_EXTRA_CA_CERTS). Plain `http://` is allowed
 * only when the host is a loopback address (localhost, 127.0.0.0/8, ::1): a test or a
 * provider on the same machine, where there is no network for an attacker to sit on. For
 * those we turn on openid-client's named opt-in `allowInsecureRequests`; for any other
 * `http://` issuer we refuse, because the token endpoint response and the JWKS would travel
 * unprotected and OIDC Core §3.1.3.7 (6) relies on TLS to authenticate the token endpoint.
 */
import { isLoopbackHost } from '../../domain/hosts.js';

export { isLoopbackHost };

export type IssuerUrl = {
  url: URL;
  /** true for a loopback `http://` issuer: openid-client's `allowInsecureRequests` is needed. */
  insecure: boolean;
};

export class IssuerUrlError extends Error {
  readonly code = 'ERR_OIDC_ISSUER_URL';
  /** `insecure-issuer`: the issuer itself is plain http on a non-loopback host. */
  constructor(message: string, readonly kind: 'invalid' | 'insecure-issuer' | 'insecure-endpoint' = 'invalid') {
    super(message);
    this.name = 'IssuerUrlError';
  }
}


/**
 * Parses an issuer identifier. OIDC Discovery 1.0 §2 / RFC 8414 §2: a URL using the https
 * scheme with no query or fragment component.
 */
export function parseIssuerUrl(issuer: string): IssuerUrl {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new IssuerUrlError(`issuer ${JSON.stringify(issuer)} is not a URL`);
  }
  if (url.search || url.hash || issuer.includes('?') || issuer.includes('#')) {
    throw new IssuerUrlError('an issuer has no query or fragment (OIDC Discovery 1.0 §2)');
  }
  if (url.username || url.password) throw new IssuerUrlError('an issuer URL carries no user name or password');
  if (url.protocol === 'https:') return { url, insecure: false };
  if (url.protocol === 'http:') {
    if (isLoopbackHost(url.hostname)) return { url, insecure: true };
    throw new IssuerUrlError(
      `issuer ${url.origin} uses plain http: only https issuers are accepted (http only for loopback hosts: localhost, 127.0.0.1, ::1)`,
      'insecure-issuer',
    );
  }
  throw new IssuerUrlError(`issuer scheme ${url.protocol} is not supported: use https`);
}

/**
 * For a loopback http issuer, every endpoint the server reaches must be https or loopback
 * too: `allowInsecureRequests` applies to the whole configuration, and a discovery document
 * must not be able to send the code, the client secret or the tokens over the network in clear.
 */
export function checkEndpointTransport(name: string, value: unknown, insecureAllowed: boolean): void {
  if (value === undefined) return;
  if (typeof value !== 'string') throw new IssuerUrlError(`${name} in the discovery document is not a string`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new IssuerUrlError(`${name} in the discovery document is not a URL`);
  }
  if (url.protocol === 'https:') return;
  if (url.protocol === 'http:' && insecureAllowed && isLoopbackHost(url.hostname)) return;
  throw new IssuerUrlError(`${name} ${url.origin} in the discovery document is not https`, 'insecure-endpoint');
}
