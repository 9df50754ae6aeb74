import { SsoRefused, type SsoCheck } from '../../domain/errors.js';

/**
 * Stable reasons an OIDC callback (or the login that precedes it) is refused. They end up on
 * the error page and in the audit row; callers narrow on `err.reason`.
 */
export const OIDC_REFUSAL_REASONS = [
  /** The provider answered with `error=…` (RFC 6749 §4.1.2.1), e.g. access_denied. */
  'idp-error',
  /** No `state` in the callback (RFC 6749 §4.1.2 / §10.12). */
  'missing-state',
  /** `state` differs from the one bound to this browser's login. */
  'state-mismatch',
  /** RFC 9207: `iss` names another issuer, or is missing while the provider advertises it. */
  'issuer-mismatch',
  /** Duplicated parameters, no `code`, or a response type we never asked for. */
  'malformed-callback',
  /** The token endpoint refused the code (wrong PKCE verifier, replayed code, …) or did not answer. */
  'code-exchange-failed',
  /** The ID token failed OIDC Core §3.1.3.7 validation; `problem` says which step. */
  'bad-id-token',
  /** The ID token's `nonce` is missing or is not the one sent with this login. */
  'nonce-mismatch',
  /** The ID token had no email and the UserInfo request failed. */
  'userinfo-failed',
  /** Discovery (`/.well-known/openid-configuration`) failed or named another issuer. */
  'discovery-failed',
  /** A plain-http issuer on a non-loopback host. */
  'insecure-issuer',
] as const;

export type OidcRefusalReason = (typeof OIDC_REFUSAL_REASONS)[number];

/**
 * The precise step of ID token validation that failed (for `bad-id-token` and `nonce-mismatch`),
 * or null when the reason says it all.
 */
export type IdTokenProblem =
  | 'alg-none' | 'symmetric-alg' | 'unexpected-alg'
  | 'bad-signature' | 'jwks-unavailable'
  | 'issuer-mismatch' | 'audience-mismatch'
  | 'expired' | 'not-yet-valid' | 'auth-time'
  | 'missing-sub' | 'missing-claim' | 'malformed'
  | 'missing-id-token'
  | 'nonce-missing' | 'nonce-wrong';

/** An OIDC refusal: an `SsoRefused` (so every surface maps it the same way) with the ID token step. */
export class OidcRefused extends SsoRefused {
  constructor(
    override readonly reason: OidcRefusalReason,
    message: string,
    checks: readonly SsoCheck[],
    readonly problem: IdTokenProblem | null = null,
    status: 400 | 401 | 403 = 401,
  ) {
    super(reason, message, checks, status);
  }
}
