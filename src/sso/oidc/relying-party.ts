import { createHash, timingSafeEqual } from 'node:crypto';
import * as client from 'openid-client';
import { InvalidInput, type SsoCheck } from '../../domain/errors.js';
import type { SsoProfile, VerifiedAnswer } from '../../domain/sso.js';
import { classifyGrantError, describeDiscoveryError, describeTransportError } from './describe-error.js';
import { checkEndpointTransport, IssuerUrlError, parseIssuerUrl } from './issuer-url.js';
import { OidcRefused, type IdTokenProblem, type OidcRefusalReason } from './oidc-refused.js';
import type { AuthnEvidence } from '../../domain/two-factor.js';

/** An OIDC connection as the adapter needs it (the client secret already decrypted). */
export type OidcConnection = { id: string; issuer: string; clientId: string; clientSecret: string };

export type OidcLoginOptions = {
  /** Our callback URL, exactly as registered at the provider (no query, no fragment). */
  redirectUri: string;
  state: string;
  nonce: string;
  /** RFC 7636 §4.1 code_verifier; only its S256 challenge leaves the server. */
  codeVerifier: string;
  loginHint?: string;
};

export type OidcCallbackOptions = {
  redirectUri: string;
  /** The authorization response: the callback's query string, or its form_post body. */
  params: URLSearchParams;
  /** The state stored for this browser's login; the caller has already bound it to the browser. */
  expectedState: string;
  expectedNonce: string;
  codeVerifier: string;
  now: Date;
  /** Leeway for exp / nbf, in seconds. */
  clockSkewSeconds: number;
};

export type OidcRelyingPartyOptions = {
  /** Timeout of each request to a provider (discovery, token, JWKS, UserInfo). Default 10 s. */
  timeoutMs?: number;
  /** How long a discovery document is reused. Default 5 minutes. */
  discoveryTtlMs?: number;
  /** How long a failed discovery is remembered (so a dead provider is not hammered). Default 10 s. */
  discoveryFailureTtlMs?: number;
  /** Cached providers kept at most (oldest dropped first). Default 500. */
  maxCachedProviders?: number;
  /**
   * How requests to providers are made: the service passes its outbound guard (src/net/outbound.ts),
   * so discovery and every endpoint discovery names (token, userinfo, JWKS) are checked at connect
   * time. Default: the global fetch (unit tests of the protocol against a loopback provider).
   */
  fetch?: (url: string, init?: RequestInit) => Promise<Response>;
  /** The guard's save-time check of a URL (refusal or null): every endpoint a discovery document names is checked when it is read, so a save is refused at once. */
  checkUrl?: (url: string) => Promise<Error | null>;
};

export type OidcRelyingParty = Readonly<{
  buildLoginUrl(conn: OidcConnection, opts: OidcLoginOptions): Promise<string>;
  completeCallback(conn: OidcConnection, opts: OidcCallbackOptions): Promise<VerifiedAnswer>;
  validateIssuer(issuer: string): Promise<void>;
  /** Forgets cached discovery documents (all, or one issuer's). */
  forget(issuer?: string): void;
}>;

/** What discovery told us about a provider, plus the JWKS we fetched from it since. */
type Provider = {
  metadata: Readonly<client.ServerMetadata>;
  /** A loopback http issuer: openid-client's `allowInsecureRequests` is on for it. */
  insecure: boolean;
  jwks: client.ExportedJWKSCache | undefined;
};

const SCOPE = 'openid email profile';
/** Asymmetric JWS algorithms oauth4webapi verifies. `none` and HS* are never accepted for ID tokens. */
const ASYMMETRIC_ALG = /^(?:(?:RS|PS|ES)(?:256|384|512)|EdDSA|Ed25519)$/;
/** RFC 7636 §4.1: 43–128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~". */
const CODE_VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;

/** Fresh secrets for one login: store them with the browser's state row, send none but `state`/`nonce`. */
export function createOidcLoginSecrets(): { state: string; nonce: string; codeVerifier: string } {
  return { state: client.randomState(), nonce: client.randomNonce(), codeVerifier: client.randomPKCECodeVerifier() };
}

/**
 * The OIDC relying party: authorization code flow with PKCE (RFC 6749 §4.1, RFC 7636), state
 * and nonce, RFC 9207 issuer identification, OIDC Core §3.1.3.7 ID token validation, on
 * openid-client 6. Discovery documents are cached per (issuer, client id).
 */
export function createOidcRelyingParty(options: OidcRelyingPartyOptions = {}): OidcRelyingParty {
  const timeoutSeconds = (options.timeoutMs ?? 10_000) / 1000;
  const ttlMs = options.discoveryTtlMs ?? 5 * 60_000;
  const failureTtlMs = options.discoveryFailureTtlMs ?? 10_000;
  const maxEntries = options.maxCachedProviders ?? 500;
  const cache = new Map<string, { issuer: string; expiresAt: number; provider: Promise<Provider> }>();
  const doFetch = options.fetch ?? ((url: string, init?: RequestInit) => fetch(url, init));

  /** OIDC Discovery 1.0 §4 (and RFC 8414 §3): GET {issuer}/.well-known/openid-configuration, issuer compared (§4.3). */
  async function discover(issuer: string): Promise<Provider> {
    const { url, insecure } = parseIssuerUrl(issuer);
    const found = await client.discovery(url, 'orgsync-discovery', undefined, undefined, {
      timeout: timeoutSeconds,
      execute: insecure ? [client.allowInsecureRequests] : [],
      [client.customFetch]: (url, init) => doFetch(url, init as RequestInit),
    });
    const metadata = { ...found.serverMetadata() };
    for (const name of ['authorization_endpoint', 'token_endpoint', 'jwks_uri'] as const) {
      if (typeof metadata[name] !== 'string') throw new IssuerUrlError(`the discovery document has no ${name}`);
    }
    for (const name of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'userinfo_endpoint'] as const) {
      checkEndpointTransport(name, metadata[name], insecure);
      // A document may name endpoints elsewhere than the issuer: each must pass the outbound guard too.
      const refused = typeof metadata[name] === 'string' ? await options.checkUrl?.(metadata[name]) : null;
      if (refused) throw new IssuerUrlError(`the discovery document's ${name}: ${refused.message}`, 'insecure-endpoint');
    }
    return { metadata: Object.freeze(metadata), insecure, jwks: undefined };
  }

  function cachedProvider(conn: OidcConnection): Promise<Provider> {
    const key = `${conn.issuer}\u0000${conn.clientId}`;
    const now = Date.now();
    const hit = cache.get(key);
    if (hit && hit.expiresAt > now) return hit.provider;
    const entry = { issuer: conn.issuer, expiresAt: now + ttlMs, provider: discover(conn.issuer) };
    // A failure is remembered only briefly; callers still see the rejection (they await it).
    entry.provider.catch(() => { entry.expiresAt = Math.min(entry.expiresAt, Date.now() + failureTtlMs); });
    cache.delete(key);
    cache.set(key, entry);
    while (cache.size > maxEntries) cache.delete(cache.keys().next().value!);
    return entry.provider;
  }

  async function providerFor(conn: OidcConnection, checks: SsoCheck[]): Promise<Provider> {
    try {
      return await cachedProvider(conn);
    } catch (err) {
      const detail = describeDiscoveryError(err, conn.issuer, timeoutSeconds);
      // An issuer URL refused before any request is 'insecure-issuer'; anything discovery found is 'discovery-failed'.
      const reason: OidcRefusalReason = err instanceof IssuerUrlError && err.kind === 'insecure-issuer' ? 'insecure-issuer' : 'discovery-failed';
      throw new OidcRefused(reason, `OpenID provider ${conn.issuer}: ${detail}`, [...checks, { name: 'discovery', passed: false, detail }], null, 400);
    }
  }

  /**
   * A Configuration per call: the cached server metadata, our client, and `now` as the clock
   * (openid-client's clockSkew shifts its clock; clockTolerance is the allowed leeway).
   */
  function configure(p: Provider, conn: OidcConnection, clock?: { now: Date; toleranceSeconds: number }) {
    // Only the provider's asymmetric algorithms (RS256 when it advertises none, OIDC Discovery
    // §3): an unsigned (`none`) or HS256 token keyed with our client secret is never accepted.
    const algs = (p.metadata.id_token_signing_alg_values_supported ?? ['RS256']).filter((a) => ASYMMETRIC_ALG.test(a));
    const server: client.ServerMetadata = { ...p.metadata, id_token_signing_alg_values_supported: algs };
    // RFC 8414 §2: client_secret_basic is the default when the provider lists no methods.
    const methods = p.metadata.token_endpoint_auth_methods_supported;
    const authMethod = !methods || methods.includes('client_secret_basic') || !methods.includes('client_secret_post') ? 'client_secret_basic' : 'client_secret_post';
    const auth = authMethod === 'client_secret_basic' ? client.ClientSecretBasic(conn.clientSecret) : client.ClientSecretPost(conn.clientSecret);
    const metadata: Partial<client.ClientMetadata> = { client_secret: conn.clientSecret };
    if (clock) {
      metadata[client.clockSkew] = Math.round((clock.now.getTime() - Date.now()) / 1000);
      metadata[client.clockTolerance] = clock.toleranceSeconds;
    }
    const config = new client.Configuration(server, conn.clientId, metadata, auth);
    config.timeout = timeoutSeconds;
    if (p.insecure) client.allowInsecureRequests(config);
    // OIDC Core §3.1.3.7 (6) allows trusting TLS instead of the signature for a token endpoint
    // response; we verify the signature against the provider's JWKS anyway (loopback http has no TLS).
    client.enableNonRepudiationChecks(config);
    if (p.jwks) client.setJwksCache(config, p.jwks);
    const progress = { tokenReceived: false };
    config[client.customFetch] = async (url, init) => {
      const res = await doFetch(url, init as RequestInit);
      if (init.body instanceof URLSearchParams && init.body.get('grant_type') === 'authorization_code' && res.ok) progress.tokenReceived = true;
      return res;
    };
    return { config, progress, algs, authMethod };
  }

  async function buildLoginUrl(conn: OidcConnection, opts: OidcLoginOptions): Promise<string> {
    if (!CODE_VERIFIER.test(opts.codeVerifier)) throw new TypeError('codeVerifier is not an RFC 7636 §4.1 code verifier');
    if (!opts.state || !opts.nonce) throw new TypeError('state and nonce are required');
    assertRedirectUri(opts.redirectUri);
    const p = await providerFor(conn, []);
    const { config } = configure(p, conn);
    // RFC 6749 §4.1.1 authorization request; RFC 7636 §4.3 code_challenge with S256 (§4.2).
    const params: Record<string, string> = {
      response_type: 'code',
      redirect_uri: opts.redirectUri,
      scope: SCOPE,
      state: opts.state,
      nonce: opts.nonce,
      code_challenge: await client.calculatePKCECodeChallenge(opts.codeVerifier),
      code_challenge_method: 'S256',
    };
    if (opts.loginHint) params.login_hint = opts.loginHint;
    return client.buildAuthorizationUrl(config, params).href;
  }

  async function completeCallback(conn: OidcConnection, opts: OidcCallbackOptions): Promise<VerifiedAnswer> {
    assertRedirectUri(opts.redirectUri);
    const checks: SsoCheck[] = [];
    const pass = (name: string, detail: string) => void checks.push({ name, passed: true, detail });
    const refuse = (reason: OidcRefusalReason, name: string, detail: string, problem: IdTokenProblem | null = null, status: 400 | 401 | 403 = 401) => {
      checks.push({ name, passed: false, detail });
      return new OidcRefused(reason, detail, [...checks], problem, status);
    };

    const p = await providerFor(conn, checks);
    pass('discovery', `${p.metadata.issuer} (discovery document, OIDC Discovery 1.0 §4)`);
    const params = opts.params;

    // RFC 6749 §4.1.2: each response parameter at most once; a JARM or implicit answer was never asked for.
    for (const name of ['iss', 'state', 'code', 'error', 'error_description', 'id_token', 'token', 'response']) {
      if (params.getAll(name).length > 1) throw refuse('malformed-callback', 'authorization-response', `parameter ${name} appears more than once`, null, 400);
    }

    // RFC 9207 §2.4: compare `iss` with the issuer before anything else; refuse its absence when
    // the provider says it always sends it (authorization_response_iss_parameter_supported).
    const iss = params.get('iss');
    if (iss === null) {
      if (p.metadata.authorization_response_iss_parameter_supported === true) {
        throw refuse('issuer-mismatch', 'issuer-parameter', `no iss parameter, but ${p.metadata.issuer} advertises authorization_response_iss_parameter_supported (RFC 9207)`);
      }
      pass('issuer-parameter', 'no iss parameter; the provider does not advertise RFC 9207 support');
    } else if (iss !== p.metadata.issuer) {
      throw refuse('issuer-mismatch', 'issuer-parameter', `iss ${JSON.stringify(iss)} is not this connection's issuer ${JSON.stringify(p.metadata.issuer)} (RFC 9207 mix-up defence)`);
    } else {
      pass('issuer-parameter', `iss is ${iss} (RFC 9207)`);
    }

    // RFC 6749 §4.1.2 and §10.12: state must come back unchanged and match this browser's login.
    const state = params.get('state');
    if (!state) throw refuse('missing-state', 'state', 'no state parameter in the callback', null, 400);
    if (!opts.expectedState || !sameString(state, opts.expectedState)) {
      throw refuse('state-mismatch', 'state', 'state does not match the login started in this browser', null, 400);
    }
    pass('state', 'state matches the login request');

    // RFC 6749 §4.1.2.1: an error response.
    const error = params.get('error');
    if (error !== null) {
      const description = params.get('error_description');
      const detail = `the provider answered ${error}${description ? `: ${description}` : ''}`;
      throw refuse('idp-error', 'authorization-response', detail, null, error === 'access_denied' ? 403 : 401);
    }
    const code = params.get('code');
    if (!code) throw refuse('malformed-callback', 'authorization-response', 'no code in the callback', null, 400);
    if (params.has('id_token') || params.has('token') || params.has('response')) {
      throw refuse('malformed-callback', 'authorization-response', 'the callback carries tokens; only response_type=code was requested', null, 400);
    }
    pass('authorization-response', 'authorization code received');

    // RFC 6749 §4.1.3 token request with the RFC 7636 §4.5 code_verifier, then OIDC Core
    // §3.1.3.7 ID token validation (alg, signature, iss, aud/azp, exp, sub, nonce) by openid-client.
    const { config, progress, algs, authMethod } = configure(p, conn, { now: opts.now, toleranceSeconds: opts.clockSkewSeconds });
    const currentUrl = new URL(opts.redirectUri);
    currentUrl.search = params.toString();
    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(config, currentUrl, {
        pkceCodeVerifier: opts.codeVerifier,
        expectedState: opts.expectedState,
        expectedNonce: opts.expectedNonce,
        idTokenExpected: true,
      });
    } catch (err) {
      const failure = classifyGrantError(err, progress.tokenReceived, timeoutSeconds);
      if (failure.reason !== 'code-exchange-failed') pass('code-exchange', `the token endpoint accepted the code and the PKCE verifier (${authMethod})`);
      throw refuse(failure.reason, failure.check, failure.detail, failure.problem);
    } finally {
      const jwks = client.getJwksCache(config);
      if (jwks) p.jwks = jwks;
    }
    pass('code-exchange', `the token endpoint accepted the code and the PKCE verifier (${authMethod})`);

    const claims = tokens.claims();
    const idToken = tokens.id_token;
    if (!claims || !idToken) throw refuse('bad-id-token', 'id-token', 'the token endpoint returned no ID token', 'missing-id-token');
    const header = decodeHeader(idToken);
    pass('id-token-algorithm', `${String(header.alg)} (accepted: ${algs.join(', ')}; none and HS* never)`);
    pass('id-token-signature', `verified with the provider's JWKS${typeof header.kid === 'string' ? ` (kid ${header.kid})` : ''}`);
    pass('id-token-issuer', `iss is ${claims.iss}`);
    pass('id-token-audience', `aud includes our client id ${conn.clientId}`);
    pass('id-token-expiry', `expires ${new Date(claims.exp * 1000).toISOString()} (clock skew allowed: ${opts.clockSkewSeconds} s)`);
    pass('id-token-subject', `sub is ${claims.sub}`);
    pass('id-token-nonce', 'nonce matches the login request');

    // OIDC Core §5.3: many providers (oidc-provider by default) put the scope's claims in
    // UserInfo only. Fetch it when the ID token has no email; §5.3.4: its sub must match.
    const attributes: Record<string, unknown> = { ...claims };
    if (claims.email === undefined && typeof p.metadata.userinfo_endpoint === 'string') {
      try {
        const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
        const added = Object.keys(info).filter((k) => !(k in attributes));
        for (const k of added) attributes[k] = info[k];
        pass('userinfo', `UserInfo added ${added.length ? added.join(', ') : 'nothing'}`);
      } catch (err) {
        const detail = err instanceof client.ResponseBodyError
          ? `UserInfo answered HTTP ${err.status} ${err.error}`
          : `UserInfo failed: ${describeTransportError(err, timeoutSeconds)}`;
        throw refuse('userinfo-failed', 'userinfo', detail);
      }
    }

    const str = (v: unknown) => (typeof v === 'string' && v.trim() ? v.trim() : null);
    const email = str(attributes.email);
    const verified = attributes.email_verified;
    checks.push({
      name: 'email-verified',
      passed: email !== null && (verified === true || verified === 'true'),
      detail: email === null ? 'no email claim'
        : verified === true || verified === 'true' ? `email_verified is true for ${email}`
          : verified === undefined ? `the provider sent no email_verified claim for ${email}`
            : `email_verified is ${JSON.stringify(verified)} for ${email}`,
    });

    const givenName = str(attributes.given_name);
    const familyName = str(attributes.family_name);
    const profile: SsoProfile = {
      subject: claims.sub,
      email,
      emailVerified: email === null ? null : verified === true || verified === 'true' ? true : verified === undefined ? null : false,
      displayName: str(attributes.name) ?? ([givenName, familyName].filter(Boolean).join(' ') || null),
      givenName,
      familyName,
    };
    return {
      protocol: 'oidc',
      checks,
      attributes,
      profile,
      inResponseTo: state,
      assertionId: typeof claims.jti === 'string' && claims.jti ? claims.jti : createHash('sha256').update(idToken).digest('hex'),
      assertionExpiresAt: new Date(claims.exp * 1000),
      authnEvidence: authnEvidenceOf(claims as { amr?: unknown; acr?: unknown }),
    };
  }

  async function validateIssuer(issuer: string): Promise<void> {
    try {
      await discover(issuer);
      // A connection saved now uses the provider's current document at its next login.
      forget(issuer);
    } catch (err) {
      const message = describeDiscoveryError(err, issuer, timeoutSeconds);
      throw new InvalidInput(`issuer: ${message}`, [{ path: 'issuer', message }]);
    }
  }

  function forget(issuer?: string): void {
    for (const [key, entry] of cache) if (issuer === undefined || entry.issuer === issuer) cache.delete(key);
  }

  return Object.freeze({ buildLoginUrl, completeCallback, validateIssuer, forget });
}

function assertRedirectUri(uri: string): void {
  const url = new URL(uri);
  // openid-client derives the token request's redirect_uri by stripping the callback URL's query.
  if (url.search || url.hash) throw new TypeError('redirectUri must have no query or fragment');
}

function sameString(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

function decodeHeader(jwt: string): Record<string, unknown> {
  try {
    return JSON.parse(Buffer.from(jwt.split('.')[0] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** OIDC Core §2: `amr` (an array of RFC 8176 method names) and `acr` of the ID token (domain/two-factor.ts). */
function authnEvidenceOf(claims: { amr?: unknown; acr?: unknown }): AuthnEvidence[] {
  const out: AuthnEvidence[] = [];
  const amr = Array.isArray(claims.amr) ? claims.amr : [];
  for (const v of amr.slice(0, 20)) if (typeof v === 'string' && v) out.push({ source: 'amr', value: v.slice(0, 512) });
  if (typeof claims.acr === 'string' && claims.acr) out.push({ source: 'acr', value: claims.acr.slice(0, 512) });
  return out;
}
