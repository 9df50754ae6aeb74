/**
 * One error hierarchy for the whole service. The domain knows no HTTP: each surface maps
 * these once (src/http/problem.ts for the admin API). Callers narrow on `err.code`.
 */
export type FieldProblem = { path: string; message: string };

export abstract class DomainError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class NotFound extends DomainError {
  readonly code = 'ERR_NOT_FOUND';
  constructor(readonly resource: string, readonly id?: string) {
    super(id ? `${resource} ${id} was not found` : `${resource} was not found`);
  }
}

/** A state conflict that is not one of the product rules (duplicate name, wrong state). */
export class Conflict extends DomainError {
  readonly code = 'ERR_CONFLICT';
  constructor(readonly reason: string, message: string) {
    super(message);
  }
}

export class InvalidInput extends DomainError {
  readonly code = 'ERR_INVALID_INPUT';
  constructor(message: string, readonly problems: FieldProblem[] = []) {
    super(message);
  }
}

/** A SCIM filter (or attribute path) that is malformed, too large, or names what we cannot filter on. */
export class InvalidFilter extends DomainError {
  readonly code = 'ERR_INVALID_FILTER';
}

/** A SCIM PATCH operation path (RFC 7644 §3.5.2, PATH) that is malformed outside its value filter. */
export class InvalidPath extends DomainError {
  readonly code = 'ERR_INVALID_PATH';
}

/** The client sent more than its share (a SCIM token's rate limit); retry after `retryAfterSeconds`. */
export class TooManyRequests extends DomainError {
  readonly code = 'ERR_TOO_MANY_REQUESTS';
  constructor(message: string, readonly retryAfterSeconds: number) {
    super(message);
  }
}

export class Unauthorized extends DomainError {
  readonly code = 'ERR_UNAUTHORIZED';
}

export class Forbidden extends DomainError {
  readonly code = 'ERR_FORBIDDEN';
}

export class PreconditionFailed extends DomainError {
  readonly code = 'ERR_PRECONDITION_FAILED';
}

/**
 * An admin-supplied URL that points into the service's own network (loopback, private, link-local…)
 * or uses another scheme than http/https (issue 12 §3). The message is the same whether or not
 * anything listens there.
 */
export class DestinationNotAllowed extends DomainError {
  readonly code = 'ERR_DESTINATION_NOT_ALLOWED';
}

/** A verification that could not be completed (DNS record missing, file not served). */
export class VerificationFailed extends DomainError {
  readonly code = 'ERR_VERIFICATION_FAILED';
}

/**
 * A product rule of SPEC §3 (or another named invariant) would be broken. `rule` is the
 * stable name clients match on; it ends the problem `type` URI.
 */
export class PolicyViolation extends DomainError {
  readonly code = 'ERR_POLICY_VIOLATION';
  constructor(readonly rule: RuleName, message: string) {
    super(message);
  }
}

export const RULES = {
  'one-default-policy': 'An org has exactly one default policy.',
  'default-policy-billable': 'The default policy can never be non-billable.',
  'one-non-billable-policy': 'An org has at most one non-billable policy.',
  'non-billable-no-sso': 'A non-billable policy cannot enforce single sign-on.',
  'non-billable-no-2fa': 'A non-billable policy cannot require two-step verification.',
  'non-billable-no-token-block': 'A non-billable policy cannot block API tokens.',
  'non-billable-no-synced-accounts': 'A non-billable policy cannot contain accounts synced from an identity provider.',
  'non-billable-needs-subscription': 'Only an org with an active subscription or trial may have a non-billable policy.',
  'policy-members-managed': 'Only managed accounts are members of an authentication policy.',
  'default-policy-not-deletable': 'The default policy cannot be deleted; make another policy the default first.',
  'sso-needs-connection': 'A policy that enforces single sign-on names the SSO connection to use.',
  'trial-needs-verified-domain': 'A trial starts only for an org with a verified domain.',
  'domain-verified-elsewhere': 'A domain can be verified by one org only.',
  'synced-profile-owned-by-idp': 'The name and email of an account synced from an identity provider are changed in the identity provider, not here.',
} as const;

export type RuleName = keyof typeof RULES;

/**
 * A sign-in answer (SAML response, OIDC callback) we refuse. `reason` is a stable kebab-case
 * name (`audience-mismatch`, `replayed`, …) shown on the error page and in the audit row;
 * `checks` are the checks run so far, for the rollout test's result page.
 */
export class SsoRefused extends DomainError {
  readonly code = 'ERR_SSO_REFUSED';
  /** Who the answer named, once the protocol checks passed (for the audit row). */
  email: string | null = null;
  constructor(
    readonly reason: string,
    message: string,
    readonly checks: readonly SsoCheck[] = [],
    readonly status: 400 | 401 | 403 | 413 = 400,
  ) {
    super(message);
  }
}

/** One check of a sign-in answer, as the rollout test shows it. */
export type SsoCheck = { name: string; passed: boolean; detail: string };
