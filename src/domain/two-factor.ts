/**
 * Two-step verification on SSO sign-ins (issue 14 §2). orgsync does not run a second factor
 * itself when a person signs in through their identity provider: a policy that requires one is
 * satisfied by the IdP's word that it ran one, and refused (`two-factor-not-asserted`) otherwise.
 *
 * The evidence, per protocol:
 * - SAML: the AuthnStatement's `AuthnContextClassRef` (saml-core §2.7.2.2), and the values of an
 *   `amr` attribute (Okta's Dynamic Authentication Context, `session.amr`: e.g. pwd, mfa, swk) or
 *   of `http://schemas.microsoft.com/claims/authnmethodsreferences` (Entra ID: `…/multipleauthn`
 *   after MFA).
 * - OIDC: the ID token's `amr` (OIDC Core §2, values from RFC 8176 §2) and `acr`.
 */
export type AuthnEvidence = { source: 'AuthnContextClassRef' | 'amr' | 'authnmethodsreferences' | 'acr'; value: string };

/**
 * What a connection accepts when it names nothing itself (`twoFactorValues` empty).
 * - RFC 8176 §2 methods that are a factor beyond the password: `mfa` (Entra ID sends
 *   ["pwd","mfa"], Okta ["pwd","mfa","swk"] or ["pwd","mfa","otp"]), `mca`, `otp`, `hwk`, `swk`,
 *   `sms`. Biometrics alone (`fpt`, `face`) are one factor and are not in the list.
 * - Entra ID's SAML `authnmethodsreferences` value after MFA.
 * - REFEDS MFA (`https://refeds.org/profile/mfa`, as a SAML class or an OIDC acr) and OpenID PAPE's
 *   multi-factor policy (acr).
 * - Okta's acr values for step-up: `urn:okta:loa:2fa:any`, `phr`, `phrh` (phishing-resistant).
 * - SAML classes that are two-factor by definition (saml-authn-context §3.4):
 *   MobileTwoFactorContract, MobileTwoFactorUnregistered.
 * Values are compared exactly (RFC 8176 values and URIs are case-sensitive).
 */
export const DEFAULT_TWO_FACTOR_VALUES: readonly string[] = Object.freeze([
  'mfa', 'mca', 'otp', 'hwk', 'swk', 'sms',
  'http://schemas.microsoft.com/claims/multipleauthn',
  'https://refeds.org/profile/mfa',
  'http://schemas.openid.net/pape/policies/2007/06/multi-factor',
  'urn:okta:loa:2fa:any', 'phr', 'phrh',
  'urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract',
  'urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorUnregistered',
]);

/** The values a connection accepts: its own list, or the defaults when it has none. */
export function acceptedTwoFactorValues(own: readonly string[] | null | undefined): readonly string[] {
  return own && own.length ? own : DEFAULT_TWO_FACTOR_VALUES;
}

/** The first piece of evidence the connection accepts, or null. */
export function twoFactorAsserted(evidence: readonly AuthnEvidence[], accepted: readonly string[]): AuthnEvidence | null {
  const set = new Set(accepted);
  return evidence.find((e) => set.has(e.value)) ?? null;
}

/** "amr mfa, AuthnContextClassRef …:PasswordProtectedTransport", or "nothing", for check details. */
export function describeEvidence(evidence: readonly AuthnEvidence[]): string {
  return evidence.length ? evidence.map((e) => `${e.source} ${e.value}`).join(', ') : 'nothing about how the person authenticated';
}

/** Attribute names (Name or FriendlyName, compared ignoring case) whose values are authentication methods. */
export const SAML_METHOD_ATTRIBUTES: ReadonlyMap<string, AuthnEvidence['source']> = new Map([
  ['amr', 'amr'],
  ['http://schemas.microsoft.com/claims/authnmethodsreferences', 'authnmethodsreferences'],
  ['authnmethodsreferences', 'authnmethodsreferences'],
]);
