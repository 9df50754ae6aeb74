export {
  createOidcRelyingParty,
  createOidcLoginSecrets,
  type OidcConnection,
  type OidcLoginOptions,
  type OidcCallbackOptions,
  type OidcRelyingParty,
  type OidcRelyingPartyOptions,
} from './relying-party.js';
export { OidcRefused, OIDC_REFUSAL_REASONS, type OidcRefusalReason, type IdTokenProblem } from './oidc-refused.js';
export { isLoopbackHost, parseIssuerUrl } from './issuer-url.js';
