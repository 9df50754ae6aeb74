import type { Database } from './store/database.js';
import { createAccountService } from './services/account-service.js';
import { createAuditService } from './services/audit-service.js';
import { createBillingWebhookService } from './billing/webhook-service.js';
import { createDirectoryService } from './services/directory-service.js';
import { createDomainService } from './services/domain-service.js';
import { createDnsHttpsVerifier, type DomainVerifier } from './services/domain-verifier.js';
import { createOrgService } from './services/org-service.js';
import { createPolicyService } from './services/policy-service.js';
import { createSiteService } from './services/site-service.js';
import { createSubscriptionService } from './services/subscription-service.js';
import { createReconciliationService } from './billing/reconcile.js';
import { createBillingService, type EstimateConfig } from './billing/estimate.js';
import { DEFAULT_TIERS } from './config.js';

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
};

/** The composition root of the use cases: every service built once, on one database. */
export function createServices(deps: ServiceDeps) {
  const { db } = deps;
  return {
    orgs: createOrgService(db, { operatorToken: deps.operatorToken }),
    domains: createDomainService(db, deps.verifier ?? createDnsHttpsVerifier()),
    accounts: createAccountService(db),
    sites: createSiteService(db),
    policies: createPolicyService(db),
    subscription: createSubscriptionService(db),
    audit: createAuditService(db),
    reconciliation: createReconciliationService(db),
    billingWebhooks: createBillingWebhookService(db),
    billing: createBillingService(db, deps.billing ?? { tiers: DEFAULT_TIERS, currency: 'USD' }),
    directories: createDirectoryService(db, {
      tokenGraceSeconds: deps.scim?.tokenGraceSeconds ?? 86_400,
      publicUrl: deps.publicUrl ?? 'http://localhost:3000',
    }),
  };
}

export type Services = ReturnType<typeof createServices>;
