import type { AuthnEvidence } from './two-factor.js';
import type { SsoCheck } from './errors.js';

export type { SsoCheck };

/** What an identity provider told us about the person, mapped to our account fields. */
export type SsoProfile = {
  /** The NameID (SAML) or `sub` (OIDC). */
  subject: string;
  /** The email that identifies the account: NameID in emailAddress format, an email attribute, or the `email` claim. */
  email: string | null;
  displayName: string | null;
  givenName: string | null;
  familyName: string | null;
  /** OIDC `email_verified` (true/false; null when the provider sent none). SAML: undefined (the signed assertion is the IdP's word). */
  emailVerified?: boolean | null;
};

/**
 * A sign-in answer that passed every protocol check (signature, issuer, audience, time,
 * recipient). What is left to check needs the database: the request it answers
 * (`inResponseTo` for SAML, the state row for OIDC) and the replay cache (`assertionId`).
 */
export type VerifiedAnswer = {
  protocol: 'saml' | 'oidc';
  checks: SsoCheck[];
  /** Everything the IdP sent about the person (attribute name → values / claims), for the test page. */
  attributes: Record<string, unknown>;
  profile: SsoProfile;
  /** SAML: the AuthnRequest ID this answers (null for IdP-initiated); OIDC: the state. */
  inResponseTo: string | null;
  /** Key for the replay cache (SAML Assertion ID; OIDC id_token jti, or its hash), and until when to keep it. */
  assertionId: string;
  assertionExpiresAt: Date;
  /** How the IdP says the person authenticated (domain/two-factor.ts): SAML AuthnContextClassRef and amr attributes, OIDC amr and acr. */
  authnEvidence: AuthnEvidence[];
};
