import type { AccessRole, AccountStatus, Product } from './types.js';
import type { SubscriptionState } from './subscription.js';

export type AccessFact = { product: Product; role: AccessRole; siteEnterprise: boolean };

export type BillabilityInput = {
  managed: boolean;
  status: AccountStatus;
  inNonBillablePolicy: boolean;
  access: AccessFact[];
  subscriptionState: SubscriptionState;
};

export type Billability = { billable: boolean; reasons: string[] };

/** JSM portal-only customers file tickets and do not count as product access (SPEC §2, §5). */
export function countsAsProductAccess(a: Pick<AccessFact, 'product' | 'role'>): boolean {
  return !(a.product === 'jsm' && a.role === 'customer');
}

/**
 * SPEC §5, Standard plan. Reasons explain the answer: for a billable account, what makes it
 * count; for one that does not, every condition that keeps it off the bill.
 * (Premium's external accounts and price differences arrive with the billing module.)
 */
export function billability(input: BillabilityInput): Billability {
  const counted = input.access.filter(countsAsProductAccess);
  const blockers: string[] = [];
  if (input.subscriptionState !== 'trial' && input.subscriptionState !== 'active') blockers.push(`subscription-${input.subscriptionState}`);
  if (!input.managed) blockers.push('external');
  if (input.status !== 'active') blockers.push('disabled');
  if (counted.length === 0) {
    blockers.push(input.access.some((a) => a.product === 'jsm' && a.role === 'customer') ? 'jsm-portal-only' : 'no-product-access');
  }
  if (input.inNonBillablePolicy) blockers.push('non-billable-policy');
  if (counted.some((a) => a.siteEnterprise)) blockers.push('enterprise-covered');
  if (blockers.length) return { billable: false, reasons: blockers };

  const products = [...new Set(counted.map((a) => a.product))].sort();
  return { billable: true, reasons: ['managed', 'active', ...products.map((p) => `access:${p}`)] };
}
