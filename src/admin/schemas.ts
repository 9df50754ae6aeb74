import { z } from './zod.js';
import { ACCESS_ROLES, CYCLES, PLANS, PRODUCTS, ROLE_KINDS } from '../domain/types.js';

/**
 * Request and response schemas of the admin API. Objects are strict (an unknown field is an
 * error, so a typo is never silently ignored) and every string has a size cap.
 */
export const uuid = z.uuid({ error: 'must be a UUID' });
const name = z.string().trim().min(1, 'must not be empty').max(200, 'at most 200 characters');

export const orgParams = z.strictObject({ orgId: z.string() });
export const idParams = z.strictObject({ orgId: z.string(), id: uuid });
export const pageQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(512).optional(),
});

export const createOrgBody = z.strictObject({ name }).openapi('CreateOrg');
export const createAdminKeyBody = z.strictObject({ name }).openapi('CreateAdminKey');

export const claimDomainBody = z.strictObject({ domain: z.string().min(1).max(253) }).openapi('ClaimDomain');
export const verifyDomainBody = z.strictObject({ override: z.boolean().optional() }).openapi('VerifyDomain');
export const domainParams = z.strictObject({ orgId: z.string(), domain: z.string().max(253) });

export const createAccountBody = z.strictObject({
  email: z.email({ error: 'must be an email address' }).max(320),
  displayName: name.optional(),
  givenName: name.optional(),
  familyName: name.optional(),
}).openapi('CreateAccount');
const boolParam = z.enum(['true', 'false'], { error: 'must be true or false' }).transform((v) => v === 'true');
export const accountQuery = pageQuery.extend({
  email: z.string().max(320).optional(),
  managed: boolParam.optional(),
  source: z.enum(['manual', 'scim', 'jit'], { error: 'must be one of manual, scim, jit' }).optional(),
  status: z.enum(['active', 'disabled'], { error: 'must be active or disabled' }).optional(),
  billable: boolParam.optional(),
  policyId: uuid.optional(),
  inactiveSince: z.string().max(40)
    .regex(/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/, 'must be a date (2026-11-01) or a date-time with its offset (2026-11-01T09:00:00Z)')
    // A real day: 2026-02-30 would roll over to March 2 in Date.
    .refine((v) => !Number.isNaN(new Date(v).getTime()) && new Date(`${v.slice(0, 10)}T00:00:00Z`).toISOString().slice(0, 10) === v.slice(0, 10), 'is not a real date')
    .transform((v) => new Date(v)).optional()
    .describe('accounts that have not signed in since then, or never (a date is its midnight UTC)'),
  format: z.enum(['json', 'csv'], { error: 'must be json or csv' }).optional()
    .describe('csv streams every matching account (limit and cursor are ignored); the Accept header (text/csv) chooses too'),
});
/** An admin's edit of a manual (or JIT) account; a name given as null is cleared. Synced accounts are the IdP's. */
export const updateAccountBody = z.strictObject({
  email: z.email({ error: 'must be an email address' }).max(320).optional(),
  displayName: name.nullable().optional(),
  givenName: name.nullable().optional(),
  familyName: name.nullable().optional(),
}).openapi('UpdateAccount');
export const grantRoleBody = z.strictObject({ role: z.enum(ROLE_KINDS), siteId: uuid.optional() }).openapi('GrantRole');
export const roleParams = z.strictObject({ orgId: z.string(), id: uuid, roleId: uuid });

const products = z.array(z.enum(PRODUCTS)).max(PRODUCTS.length * 2);
export const createSiteBody = z.strictObject({ name, products, enterprise: z.boolean().optional() }).openapi('CreateSite');
export const updateSiteBody = z.strictObject({ name: name.optional(), products: products.optional(), enterprise: z.boolean().optional() }).openapi('UpdateSite');
export const grantAccessBody = z.strictObject({ accountId: uuid, product: z.enum(PRODUCTS), role: z.enum(ACCESS_ROLES).optional() }).openapi('GrantAccess');
export const accessParams = z.strictObject({ orgId: z.string(), id: uuid, accountId: uuid, product: z.enum(PRODUCTS) });

const policyFields = {
  isDefault: z.boolean().optional(),
  nonBillable: z.boolean().optional(),
  enforceSso: z.boolean().optional(),
  ssoConnectionId: uuid.nullable().optional(),
  requireTwoFactor: z.boolean().optional(),
  blockApiTokens: z.boolean().optional(),
  passwordPolicy: z.strictObject({
    minStrength: z.number().int().min(0).max(4).nullable().optional(),
    expiryDays: z.number().int().min(1).max(3650).nullable().optional(),
  }).optional(),
  sessionDurationMinutes: z.number().int().min(5).max(60 * 24 * 90).optional(),
};
export const createPolicyBody = z.strictObject({ name, ...policyFields }).openapi('CreatePolicy');
export const updatePolicyBody = z.strictObject({ name: name.optional(), ...policyFields }).openapi('UpdatePolicy');
export const policyMembersBody = z.strictObject({ accountIds: z.array(uuid).min(1, 'give at least one account id').max(1000, 'at most 1000 accounts a call') }).openapi('PolicyMembers');

export const trialBody = z.strictObject({ plan: z.enum(PLANS).optional() }).openapi('StartTrial');
export const paymentMethodBody = z.strictObject({ cycle: z.enum(CYCLES).optional(), plan: z.enum(PLANS).optional() }).openapi('PaymentMethod');
export const resubscribeBody = z.strictObject({ plan: z.enum(PLANS).optional(), cycle: z.enum(CYCLES).optional() }).openapi('Resubscribe');
export const emptyBody = z.strictObject({});

export const auditQuery = pageQuery.extend({ action: z.string().max(100).optional(), targetId: z.string().max(320).optional() });

// Response shapes, for the document (the services build them).
const list = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), next: z.string().nullable() });
export const accountOut = z.object({
  id: uuid, email: z.string(), displayName: z.string().nullable(), givenName: z.string().nullable(), familyName: z.string().nullable(),
  managed: z.boolean(), status: z.enum(['active', 'disabled']),
  source: z.enum(['manual', 'scim', 'jit']), policyId: uuid.nullable(), billable: z.boolean(), billableReasons: z.array(z.string()),
  lastSignInAt: z.string().nullable().describe('the last sign-in that created a session (null: never)'),
  lastSignInConnectionId: uuid.nullable().describe('the SSO connection of that sign-in (null once the connection is deleted)'),
}).openapi('Account');
export const policyOut = z.object({
  id: uuid, name: z.string(), isDefault: z.boolean(), nonBillable: z.boolean(), enforceSso: z.boolean(), ssoConnectionId: uuid.nullable(),
  requireTwoFactor: z.boolean(), blockApiTokens: z.boolean(),
  passwordPolicy: z.object({ minStrength: z.number().nullable(), expiryDays: z.number().nullable() }),
  sessionDurationMinutes: z.number(), memberCount: z.number(),
}).openapi('Policy');
export const siteOut = z.object({ id: uuid, name: z.string(), products: z.array(z.enum(PRODUCTS)), enterprise: z.boolean() }).openapi('Site');
export const domainOut = z.object({ domain: z.string(), verified: z.boolean(), verificationToken: z.string() }).openapi('Domain');
export const subscriptionOut = z.object({
  plan: z.enum(PLANS).nullable(), state: z.enum(['none', 'trial', 'active', 'unsubscribed']), cycle: z.enum(CYCLES),
  trialEndsAt: z.string().nullable(), paymentMethod: z.boolean(), retentionEndsAt: z.string().nullable(), refundEligible: z.boolean(),
}).openapi('Subscription');
export const problemOut = z.object({
  type: z.string(), title: z.string(), status: z.number(), detail: z.string(),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(), rule: z.string().optional(),
}).openapi('Problem');
export const lists = {
  accounts: z.object({ items: z.array(accountOut), next: z.string().nullable(), total: z.number() }).openapi('AccountList'),
  policies: list(policyOut), sites: list(siteOut),
};

// Directories (SCIM connections) and their group mappings.
export const IDP_KINDS = ['okta', 'entra', 'google', 'generic'] as const;
export const createDirectoryBody = z.strictObject({
  name,
  idp: z.enum(IDP_KINDS, { error: `must be one of ${IDP_KINDS.join(', ')}` }),
}).openapi('CreateDirectory');
export const rotateTokenBody = z.strictObject({
  graceSeconds: z.number().int('must be a whole number of seconds').min(0, 'must be 0 or more').max(30 * 86400, 'at most 30 days (2592000)').optional(),
}).openapi('RotateDirectoryToken');
export const directoryEventsQuery = pageQuery.extend({
  failedOnly: z.enum(['true', 'false'], { error: 'must be true or false' }).optional(),
});
export const createGroupMappingBody = z.strictObject({
  group: z.string().trim().min(1, 'must not be empty').max(256, 'at most 256 characters'),
  siteId: uuid,
  product: z.enum(PRODUCTS),
  role: z.enum(ACCESS_ROLES).optional(),
}).openapi('CreateGroupMapping');
export const groupMappingParams = z.strictObject({ orgId: z.string(), id: uuid, mappingId: uuid });

const directoryFields = {
  id: uuid, name: z.string(), idp: z.enum(IDP_KINDS), scimBaseUrl: z.string(), tokenIssuedAt: z.string(), createdAt: z.string(),
};
export const directoryOut = z.object({
  ...directoryFields, previousTokenExpiresAt: z.string().nullable(), tokenLastUsedAt: z.string().nullable(),
  userCount: z.number(), groupCount: z.number(),
}).openapi('Directory');
export const directoryCreatedOut = z.object({ ...directoryFields, token: z.string() }).openapi('DirectoryCreated');
export const directoryTokenOut = z.object({ token: z.string(), tokenIssuedAt: z.string(), previousTokenExpiresAt: z.string() }).openapi('DirectoryToken');
export const groupMappingOut = z.object({
  id: uuid, directoryId: uuid, group: z.string(), siteId: uuid, product: z.enum(PRODUCTS), role: z.enum(ACCESS_ROLES), createdAt: z.string(),
}).openapi('GroupMapping');
export const scimEventOut = z.object({
  id: uuid, at: z.string(), method: z.string(), path: z.string(), status: z.number(), scimType: z.string().nullable(),
  detail: z.string().nullable(), resourceId: z.string().nullable(), durationMs: z.number(), requestId: z.string().nullable(),
}).openapi('ScimEvent');
export const directoryLists = { directories: list(directoryOut), groupMappings: list(groupMappingOut), events: list(scimEventOut) };

// --- SSO connections -------------------------------------------------------------------------
const pem = z.string().min(1).max(16 * 1024, 'at most 16 KiB');
/**
 * The IdP's values that count as two-step verification when a policy requires it (issue 14 §2):
 * SAML AuthnContextClassRef or amr / authnmethodsreferences attribute values, OIDC amr or acr
 * values, compared exactly. [] (the default): the documented defaults (domain/two-factor.ts).
 */
const twoFactorValues = z.array(
  z.string().trim().min(1, 'must not be empty').max(512, 'at most 512 characters')
    .regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters'),
).max(50, 'at most 50 values').refine((v) => new Set(v).size === v.length, 'must not repeat a value');
const ssoCommon = {
  name,
  jit: z.boolean().optional(),
  rolloutPolicyId: uuid.nullable().optional(),
  twoFactorValues: twoFactorValues.optional(),
};
const samlFields = {
  metadataXml: z.string().min(1).max(512 * 1024, 'at most 512 KiB').optional(),
  entityId: z.string().trim().min(1).max(1024).optional(),
  ssoUrl: z.string().trim().min(1).max(2048).optional(),
  certificate: pem.optional(),
  certificates: z.array(pem).min(1).max(5, 'at most 5 certificates').optional(),
  allowIdpInitiated: z.boolean().optional(),
};
const oidcFields = {
  issuer: z.string().trim().min(1).max(2048),
  clientId: z.string().min(1).max(512),
  clientSecret: z.string().min(1).max(4096),
  /** Link a first sign-in by its email claim even when the provider does not say email_verified (Entra ID never does). */
  trustEmailClaim: z.boolean().optional(),
};
export const createSsoConnectionBody = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('saml'), ...ssoCommon, ...samlFields }),
  z.strictObject({ type: z.literal('oidc'), ...ssoCommon, ...oidcFields }),
], { error: 'type must be "saml" or "oidc"' }).openapi('CreateSsoConnection');
export const updateSsoConnectionBody = z.strictObject({
  name: name.optional(), jit: z.boolean().optional(), rolloutPolicyId: uuid.nullable().optional(), twoFactorValues: twoFactorValues.optional(), ...samlFields,
  issuer: oidcFields.issuer.optional(), clientId: oidcFields.clientId.optional(), clientSecret: oidcFields.clientSecret.optional(),
  trustEmailClaim: z.boolean().optional(),
}).openapi('UpdateSsoConnection');
export const ssoTestParams = z.strictObject({ orgId: z.string(), id: uuid, testId: uuid });
export const ssoConnectionOut = z.object({
  id: uuid, type: z.enum(['saml', 'oidc']), name: z.string(), jit: z.boolean(), rolloutPolicyId: uuid.nullable(),
  entityId: z.string().nullable().optional(), ssoUrl: z.string().nullable().optional(), allowIdpInitiated: z.boolean().optional(),
  certificate: z.string().nullable().optional(),
  certificates: z.array(z.object({ subject: z.string(), issuer: z.string(), notBefore: z.string(), notAfter: z.string(), sha256Fingerprint: z.string() })).optional(),
  serviceProvider: z.object({ entityId: z.string(), metadataUrl: z.string(), acsUrl: z.string(), loginUrl: z.string() }).optional(),
  issuer: z.string().nullable().optional(), clientId: z.string().nullable().optional(), clientSecretSet: z.boolean().optional(), trustEmailClaim: z.boolean().optional(),
  relyingParty: z.object({ redirectUri: z.string(), loginUrl: z.string() }).optional(),
  enforcedByPolicies: z.array(z.object({ id: uuid, name: z.string() })),
  twoFactorValues: z.array(z.string()),
  twoFactorAccepted: z.array(z.string()),
  createdAt: z.string(), updatedAt: z.string(),
}).openapi('SsoConnection');
export const ssoTestStartOut = z.object({ testId: uuid, url: z.string(), expiresAt: z.string(), resultUrl: z.string() }).openapi('SsoTestStarted');
export const ssoTestOut = z.object({
  id: uuid, connectionId: uuid, startedBy: z.string(), createdAt: z.string(), expiresAt: z.string(),
  status: z.enum(['waiting', 'completed', 'expired']), completedAt: z.string().nullable(), wouldSucceed: z.boolean().nullable(), reason: z.string().nullable(),
  checks: z.array(z.object({ name: z.string(), passed: z.boolean(), detail: z.string() })), attributes: z.record(z.string(), z.unknown()),
  profile: z.record(z.string(), z.unknown()).nullable(), accountId: uuid.nullable(), policyId: uuid.nullable(),
}).openapi('SsoTestRun');
export const ssoLists = { connections: list(ssoConnectionOut), tests: list(ssoTestOut) };
