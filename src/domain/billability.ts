import type { AccessRole, AccountStatus, Plan, Product } from './types.js';
import type { SubscriptionState } from './subscription.js';

export type AccessFact = { product: Product; role: AccessRole; siteEnterprise: boolean };

export type BillabilityInput = {
  managed: boolean;
  status: AccountStatus;
  inNonBillablePolicy: boolean;
  access: AccessFact[];
  subscriptionState: SubscriptionState;
  /** The org's plan. Null or absent (no plan chosen yet) reads as Standard, the default plan. */
  plan?: Plan | null;
};

export type Billability = { billable: boolean; reasons: string[] };

/**
 * Every reason code the rule can give. A billable account's reasons say what makes it count;
 * an unbillable account's reasons list every condition that keeps it off the bill, in this order.
 * The same codes come out of the SQL form of the rule (src/store/billable-set.ts).
 */
export const REASONS = {
  // Why an account counts.
  managed: 'managed',
  externalCounted: 'external',
  active: 'active',
  access: (p: Product) => `access:${p}` as const,
  /** Premium: the account is covered by Cloud Enterprise (which includes Standard), so it is priced at premium − standard. */
  priceDifferenceEnterprise: 'price-difference:enterprise',
  // Why it does not (in this order).
  subscription: (s: SubscriptionState) => `subscription-${s}` as const,
  external: 'external',
  disabled: 'disabled',
  noPremiumProductAccess: 'no-premium-product-access',
  jsmPortalOnly: 'jsm-portal-only',
  noProductAccess: 'no-product-access',
  nonBillablePolicy: 'non-billable-policy',
  enterpriseCovered: 'enterprise-covered',
} as const;

/** The products that make an account count on the Premium plan (SPEC §5). JSM and JPD alone do not. */
export const PREMIUM_PRODUCTS: ReadonlySet<Product> = new Set<Product>(['jira', 'confluence']);

/** JSM portal-only customers file tickets and do not count as product access (SPEC §2, §5). */
export function countsAsProductAccess(a: Pick<AccessFact, 'product' | 'role'>): boolean {
  return !(a.product === 'jsm' && a.role === 'customer');
}

/** Subscribed means billed: during the trial and while active (SPEC §4). */
export function subscriptionBills(state: SubscriptionState): boolean {
  return state === 'trial' || state === 'active';
}

/**
 * Who is billable (SPEC §5), for one account of an org on the given plan.
 *
 * Standard: managed, active, with access to a supported product (a JSM agent counts, a
 * portal-only customer does not), not in the non-billable policy, not covered by Cloud Enterprise.
 *
 * Premium: managed *and* external accounts, active, with access to Jira or Confluence. The
 * non-billable policy does not exempt anyone from Premium (it only lifts Standard's
 * authentication features; Premium's data protection covers its members too). An account
 * covered by Cloud Enterprise — counted access on an Enterprise site — already has Standard
 * through Enterprise: it is billable with `price-difference:enterprise`, and the estimate prices
 * it at premium − standard (docs/decisions.md, "Billing").
 *
 * Either plan: nobody is billable unless the org is in its trial or subscribed. A person is one
 * account, so many products on many sites give one answer; `access:<product>` lists the
 * products that count on the plan, once each, sorted.
 */
export function billability(input: BillabilityInput): Billability {
  const premium = input.plan === 'premium';
  const counted = input.access.filter(countsAsProductAccess);
  const countsOnPlan = premium ? counted.filter((a) => PREMIUM_PRODUCTS.has(a.product)) : counted;
  const enterpriseCovered = counted.some((a) => a.siteEnterprise);

  const blockers: string[] = [];
  if (!subscriptionBills(input.subscriptionState)) blockers.push(REASONS.subscription(input.subscriptionState));
  if (!premium && !input.managed) blockers.push(REASONS.external);
  if (input.status !== 'active') blockers.push(REASONS.disabled);
  if (countsOnPlan.length === 0) {
    if (counted.length > 0) blockers.push(REASONS.noPremiumProductAccess);
    else if (input.access.some((a) => a.product === 'jsm' && a.role === 'customer')) blockers.push(REASONS.jsmPortalOnly);
    else blockers.push(REASONS.noProductAccess);
  }
  if (!premium && input.inNonBillablePolicy) blockers.push(REASONS.nonBillablePolicy);
  if (!premium && enterpriseCovered) blockers.push(REASONS.enterpriseCovered);
  if (blockers.length) return { billable: false, reasons: blockers };

  const products = [...new Set(countsOnPlan.map((a) => a.product))].sort();
  return {
    billable: true,
    reasons: [
      input.managed ? REASONS.managed : REASONS.externalCounted,
      REASONS.active,
      ...products.map(REASONS.access),
      ...(premium && enterpriseCovered ? [REASONS.priceDifferenceEnterprise] : []),
    ],
  };
}

/** True when a billable account is priced at the Premium − Standard difference. */
export function pricedAtDifference(reasons: readonly string[]): boolean {
  return reasons.includes(REASONS.priceDifferenceEnterprise);
}
