import * as client from 'openid-client';
import { IssuerUrlError } from './issuer-url.js';
import { destinationRefusal } from '../../net/outbound.js';
import type { IdTokenProblem, OidcRefusalReason } from './oidc-refused.js';

/**
 * Turns what openid-client / oauth4webapi throw into words and stable names. Both libraries
 * give every failure a `code` (OAUTH_…), and their validation errors carry the claim or the
 * JOSE header in `cause`; we read those first and fall back to the message only to tell apart
 * the several OAUTH_INVALID_RESPONSE cases. The tests pin every mapping below.
 */

type Coded = { code?: unknown; message?: unknown; cause?: unknown; status?: unknown };

const asObject = (v: unknown): Coded | undefined => (v !== null && typeof v === 'object' ? (v as Coded) : undefined);

/** openid-client wraps oauth4webapi's OperationProcessingError in a ClientError with the same code. */
function unwrap(err: unknown): { code: string; message: string; info: Record<string, unknown> | undefined } {
  const outer = asObject(err);
  const code = typeof outer?.code === 'string' ? outer.code : '';
  const inner = outer?.cause instanceof Error ? (outer.cause as Coded) : undefined;
  const message = String(inner?.message ?? outer?.message ?? err);
  const info = asObject(inner?.cause) ?? asObject(outer?.cause);
  return { code, message, info: info as Record<string, unknown> | undefined };
}

/** A network failure in words: "ECONNREFUSED", "self-signed certificate", "no answer within 10 s". */
export function describeTransportError(err: unknown, timeoutSeconds: number): string {
  // The outbound guard's refusal is the whole story, and the same whether or not anything listens there.
  const refused = destinationRefusal(err);
  if (refused) return refused.message;
  const { code } = unwrap(err);
  if (code === 'OAUTH_TIMEOUT') return `no answer within ${timeoutSeconds} s`;
  if (code === 'OAUTH_ABORT') return 'request aborted';
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur && depth < 6; depth++) {
    const o = asObject(cur);
    if (!o) break;
    const c = typeof o.code === 'string' && !o.code.startsWith('OAUTH_') ? o.code : undefined;
    const m = typeof o.message === 'string' ? o.message : undefined;
    if (c && !parts.includes(c)) parts.push(c);
    if (m && m !== 'fetch failed' && !/^(operation|something went wrong)/.test(m) && !parts.includes(m)) parts.push(m);
    cur = o.cause;
  }
  return parts.length ? parts.join(': ') : String((err as Error)?.message ?? err);
}

/** Why discovery of `issuer` failed, for an admin or an error page. */
export function describeDiscoveryError(err: unknown, issuer: string, timeoutSeconds: number): string {
  if (err instanceof IssuerUrlError) return err.message;
  const refused = destinationRefusal(err);
  if (refused) return refused.message;
  const { code, info } = unwrap(err);
  const where = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  switch (code) {
    case 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED': {
      const named = asObject(info?.body) as { issuer?: unknown } | undefined;
      return `the discovery document at ${where} names issuer ${JSON.stringify(named?.issuer ?? (info as { body?: { issuer?: unknown } })?.body?.issuer)}, not ${JSON.stringify(issuer)}`;
    }
    case 'OAUTH_RESPONSE_IS_NOT_CONFORM': {
      const status = (asObject(err)?.cause as Coded | undefined)?.status;
      return `${where} answered HTTP ${typeof status === 'number' ? status : '(unexpected status)'}`;
    }
    case 'OAUTH_RESPONSE_IS_NOT_JSON':
      return `${where} did not answer with JSON`;
    case 'OAUTH_INVALID_RESPONSE':
    case 'OAUTH_PARSE_ERROR':
    case 'OAUTH_INVALID_SERVER_METADATA':
    case 'OAUTH_MISSING_SERVER_METADATA':
      return `invalid discovery document at ${where}: ${unwrap(err).message}`;
    case 'OAUTH_HTTP_REQUEST_FORBIDDEN':
      return `the discovery document at ${where} points at a non-https endpoint`;
    default:
      return `could not fetch ${where}: ${describeTransportError(err, timeoutSeconds)}`;
  }
}

export type GrantFailure = {
  reason: OidcRefusalReason;
  problem: IdTokenProblem | null;
  /** The check that failed, for the rollout page. */
  check: string;
  detail: string;
};

const exchange = (detail: string): GrantFailure => ({ reason: 'code-exchange-failed', problem: null, check: 'code-exchange', detail });
const idToken = (problem: IdTokenProblem, check: string, detail: string): GrantFailure => ({ reason: 'bad-id-token', problem, check, detail });

/**
 * Classifies a failure of `authorizationCodeGrant`. `tokenReceived` says whether the token
 * endpoint had already answered 200: before that it is the code exchange that failed
 * (RFC 6749 §4.1.3/§5.2, RFC 7636 §4.6), after it the ID token (OIDC Core §3.1.3.7) or the
 * JWKS fetched to verify its signature.
 */
export function classifyGrantError(err: unknown, tokenReceived: boolean, timeoutSeconds: number): GrantFailure {
  if (err instanceof client.ResponseBodyError) {
    const desc = err.error_description ? ` (${err.error_description})` : '';
    return exchange(`the token endpoint answered HTTP ${err.status} ${err.error}${desc}`);
  }
  const { code, message, info } = unwrap(err);
  if (!tokenReceived) {
    if (code === 'OAUTH_RESPONSE_IS_NOT_CONFORM') {
      const status = (asObject(err)?.cause as Coded | undefined)?.status;
      return exchange(`the token endpoint answered HTTP ${typeof status === 'number' ? status : '?'} without an OAuth error body`);
    }
    if (code === 'OAUTH_RESPONSE_IS_NOT_JSON') return exchange('the token endpoint did not answer with JSON');
    if (code === 'OAUTH_HTTP_REQUEST_FORBIDDEN') return exchange('the token endpoint is not https');
    return exchange(`the token endpoint could not be reached: ${describeTransportError(err, timeoutSeconds)}`);
  }
  const claim = typeof info?.claim === 'string' ? info.claim : undefined;
  const header = asObject(info?.header) as { alg?: unknown; kid?: unknown } | undefined;
  switch (code) {
    case 'OAUTH_JWT_CLAIM_COMPARISON_FAILED': {
      const claims = asObject(info?.claims) as Record<string, unknown> | undefined;
      const got = claim ? JSON.stringify(claims?.[claim]) : '?';
      const expected = JSON.stringify(info?.expected);
      if (claim === 'iss') return idToken('issuer-mismatch', 'id-token-issuer', `ID token iss ${got} is not the issuer ${expected}`);
      if (claim === 'aud') return idToken('audience-mismatch', 'id-token-audience', `ID token aud ${got} is not (only) our client id ${expected}`);
      if (claim === 'azp') return idToken('audience-mismatch', 'id-token-audience', `ID token azp ${got} is not our client id ${expected}`);
      if (claim === 'nonce') {
        return claims?.nonce === undefined
          ? { reason: 'nonce-mismatch', problem: 'nonce-missing', check: 'id-token-nonce', detail: 'the ID token has no nonce; this login sent one' }
          : { reason: 'nonce-mismatch', problem: 'nonce-wrong', check: 'id-token-nonce', detail: 'the ID token nonce is not the one sent with this login' };
      }
      return idToken('malformed', 'id-token', message);
    }
    case 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED': {
      const claims = asObject(info?.claims) as Record<string, unknown> | undefined;
      const at = (v: unknown) => (typeof v === 'number' ? new Date(v * 1000).toISOString() : String(v));
      const tolerance = typeof info?.tolerance === 'number' ? info.tolerance : '?';
      if (claim === 'exp') return idToken('expired', 'id-token-expiry', `the ID token expired at ${at(claims?.exp)} (clock skew allowed: ${tolerance} s)`);
      if (claim === 'nbf') return idToken('not-yet-valid', 'id-token-expiry', `the ID token is not valid before ${at(claims?.nbf)} (clock skew allowed: ${tolerance} s)`);
      return idToken('auth-time', 'id-token-auth-time', message);
    }
    case 'OAUTH_INVALID_RESPONSE': {
      if (header && /"alg"/.test(message)) {
        const alg = String(header.alg);
        const allowed = Array.isArray(info?.expected) ? (info.expected as unknown[]).join(', ') : String(info?.expected);
        if (alg.toLowerCase() === 'none') return idToken('alg-none', 'id-token-algorithm', `the ID token is unsigned (alg "none"); accepted: ${allowed || 'none'}`);
        if (/^HS/i.test(alg)) {
          return idToken('symmetric-alg', 'id-token-algorithm', `the ID token is signed with ${alg}, a MAC keyed with the client secret that anyone holding the secret can forge; only the provider's asymmetric keys are accepted (${allowed || 'none advertised'})`);
        }
        return idToken('unexpected-alg', 'id-token-algorithm', `the ID token is signed with ${alg}; accepted: ${allowed || 'none'}`);
      }
      const missing = /JWT "(\w+)" \([^)]*\) claim missing/.exec(message)?.[1];
      if (missing === 'sub') return idToken('missing-sub', 'id-token-subject', 'the ID token has no sub claim');
      if (missing === 'nonce') return { reason: 'nonce-mismatch', problem: 'nonce-missing', check: 'id-token-nonce', detail: 'the ID token has no nonce; this login sent one' };
      if (missing) return idToken('missing-claim', 'id-token', `the ID token has no ${missing} claim`);
      if (/signature verification failed/.test(message)) return idToken('bad-signature', 'id-token-signature', "the ID token signature does not verify with the provider's key");
      if (/"id_token" property/.test(message)) return idToken('missing-id-token', 'id-token', 'the token endpoint returned no ID token');
      if (/"response" body/.test(message)) return exchange(`invalid token endpoint response: ${message}`);
      return idToken('malformed', 'id-token', message);
    }
    case 'OAUTH_PARSE_ERROR':
      return idToken('malformed', 'id-token', message);
    case 'OAUTH_KEY_SELECTION_FAILED':
      return idToken('bad-signature', 'id-token-signature', `${message} (kid ${JSON.stringify(header?.kid ?? null)})`);
    case 'OAUTH_UNSUPPORTED_OPERATION': {
      const alg = (info as { alg?: unknown } | undefined)?.alg ?? header?.alg;
      if (typeof alg === 'string' && /^HS/i.test(alg)) return idToken('symmetric-alg', 'id-token-algorithm', `the ID token is signed with ${alg}; only the provider's asymmetric keys are accepted`);
      return idToken('malformed', 'id-token', message);
    }
    case 'OAUTH_RESPONSE_IS_NOT_CONFORM':
    case 'OAUTH_RESPONSE_IS_NOT_JSON':
    case 'OAUTH_TIMEOUT':
    case 'OAUTH_ABORT':
    case '':
      // After the token response only the JWKS is fetched (to verify the signature).
      return idToken('jwks-unavailable', 'id-token-signature', `the provider's JWKS could not be fetched to verify the ID token: ${describeTransportError(err, timeoutSeconds)}`);
    default:
      return idToken('malformed', 'id-token', message);
  }
}
