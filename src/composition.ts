import { randomBytes } from 'node:crypto';
import type { Database } from './store/database.js';
import { createAccountService } from './services/account-service.js';
import { createAuditService } from './services/audit-service.js';
import { createBillingWebhookService } from './billing/webhook-service.js';
import { createDirectoryService } from './services/directory-service.js';
import { createDomainService } from './services/domain-service.js';
import { createDnsHttpsVerifier, type DomainVerifier } from './services/domain-verifier.js';
import { createOrgService } from './services/org-service.js';
import { createConsoleSessionService } from './services/console-session-service.js';
import { createPolicyService } from './services/policy-service.js';
import { createSiteService } from './services/site-service.js';
import { createSubscriptionService } from './services/subscription-service.js';
import { createReconciliationService } from './billing/reconcile.js';
import { createBillingService, type EstimateConfig } from './billing/estimate.js';
import { DEFAULT_TIERS } from './config.js';
import { createSecretBox } from './services/secret-box.js';
import { createSsoConnectionService } from './services/sso-connection-service.js';
import { createSignInService } from './services/sign-in-service.js';
import { createOidcRelyingParty } from './sso/oidc/index.js';
import { createOutbound, type Outbound } from './net/outbound.js';

export type ServiceDeps = {
  db: Database;
  operatorToken: string | undefined;
  verifier?: DomainVerifier;
  /** SCIM settings (config.scim); the token grace period defaults to one day. */
  scim?: { tokenGraceSeconds: number };
  /** External base URL (config.http.publicUrl), for SCIM base URLs; defaults to http://localhost:3000. */
  publicUrl?: string;
  /** Prices and currency (config.billing) for the estimate; defaults to DEFAULT_TIERS in USD. */
  billing?: EstimateConfig;
  /** Key material for SSO secrets and cookies (src/secret-key.ts); tests may omit it (a random key). */
  secretKey?: string;
  /** SSO settings (config.sso); defaults for tests. */
  sso?: { requestTtlSeconds: number };
  /** The outbound-request guard every admin-supplied URL goes through; default: nothing private allowed. */
  outbound?: Outbound;
};

const DEFAULT_OUTBOUND = { allowHosts: [], timeoutMs: 10_000, maxResponseBytes: 1024 * 1024 };

/** The composition root of the use cases: every service built once, on one database. */
export function createServices(deps: ServiceDeps) {
  const { db } = deps;
  const publicUrl = deps.publicUrl ?? 'http://localhost:3000';
  const box = createSecretBox(deps.secretKey ?? randomBytes(32).toString('base64url'));
  const signIn = createSignInService(db, { publicUrl, box, requestTtlSeconds: deps.sso?.requestTtlSeconds ?? 600 });
  const orgs = createOrgService(db, { operatorToken: deps.operatorToken });
  const outbound = deps.outbound ?? createOutbound(DEFAULT_OUTBOUND);
  // One relying party for the process: its discovery cache is shared by sign-ins and saves.
  const oidc = createOidcRelyingParty({ fetch: outbound.fetch, checkUrl: outbound.check });
  return {
    box,
    outbound,
    oidc,
    ssoConnections: createSsoConnectionService(db, { publicUrl, box, checkOidcIssuer: (issuer) => oidc.validateIssuer(issuer), onChange: (id) => signIn.forgetConnection(id) }),
    signIn,
    orgs,
    consoleSessions: createConsoleSessionService(db, { orgs }),
    domains: createDomainService(db, deps.verifier ?? createDnsHttpsVerifier({ fetch: outbound.fetch })),
    accounts: createAccountService(db),
    sites: createSiteService(db),
    policies: createPolicyService(db),
    subscription: createSubscriptionService(db),
    audit: createAuditService(db),
    reconciliation: createReconciliationService(db),
    billingWebhooks: createBillingWebhookService(db, { box, outbound }),
    billing: createBillingService(db, deps.billing ?? { tiers: DEFAULT_TIERS, currency: 'USD' }),
    directories: createDirectoryService(db, {
      tokenGraceSeconds: deps.scim?.tokenGraceSeconds ?? 86_400,
      publicUrl: deps.publicUrl ?? 'http://localhost:3000',
    }),
  };
}

export type Services = ReturnType<typeof createServices>;
