import type { Services } from '../composition.js';
import type { RouteSpec } from './route-spec.js';
import { accountRoutes } from './routes/account-routes.js';
import { billingDeliveryRoutes } from './routes/billing-delivery-routes.js';
import { billingRoutes } from './routes/billing-routes.js';
import { directoryRoutes } from './routes/directory-routes.js';
import { domainRoutes } from './routes/domain-routes.js';
import { orgRoutes } from './routes/org-routes.js';
import { policyRoutes } from './routes/policy-routes.js';
import { reconciliationRoutes } from './routes/reconciliation-routes.js';
import { siteRoutes } from './routes/site-routes.js';
import { subscriptionRoutes } from './routes/subscription-routes.js';
import { ssoRoutes } from './routes/sso-routes.js';

export type { RouteSpec } from './route-spec.js';

export function adminRoutes(services: Services): RouteSpec[] {
  return [
    ...orgRoutes(services), ...domainRoutes(services), ...accountRoutes(services),
    ...siteRoutes(services), ...policyRoutes(services), ...subscriptionRoutes(services),
    ...directoryRoutes(services),
    ...ssoRoutes(services),
    ...billingRoutes(services),
    ...billingDeliveryRoutes(services),
    ...reconciliationRoutes(services),
  ];
}
