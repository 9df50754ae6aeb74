import { describe, expect, it } from 'vitest';
import { billability, countsAsProductAccess, type AccessFact, type BillabilityInput } from '../../src/domain/billability.js';
import { PRODUCTS, type AccessRole, type Product } from '../../src/domain/types.js';

const access = (product: Product, role: AccessRole = 'user', siteEnterprise = false): AccessFact => ({ product, role, siteEnterprise });

/** A managed, active account with Jira on a Standard site, on an active subscription: billable. */
const account = (over: Partial<BillabilityInput> = {}): BillabilityInput => ({
  managed: true,
  status: 'active',
  inNonBillablePolicy: false,
  access: [access('jira')],
  subscriptionState: 'active',
  ...over,
});

type Row = { name: string; input: BillabilityInput; billable: boolean; reasons: string[] };

const rows: Row[] = [
  // Included.
  { name: 'managed, active, Jira user', input: account(), billable: true, reasons: ['managed', 'active', 'access:jira'] },
  { name: 'JSM agent', input: account({ access: [access('jsm', 'agent')] }), billable: true, reasons: ['managed', 'active', 'access:jsm'] },
  { name: 'JSM agent who is also a portal customer elsewhere', input: account({ access: [access('jsm', 'customer'), access('jsm', 'agent')] }), billable: true, reasons: ['managed', 'active', 'access:jsm'] },
  { name: 'during a trial', input: account({ subscriptionState: 'trial' }), billable: true, reasons: ['managed', 'active', 'access:jira'] },
  {
    name: 'several products on several sites → one answer, products deduplicated and sorted',
    input: account({ access: [access('trello'), access('jira'), access('confluence'), access('jira'), access('jsm', 'agent'), access('confluence')] }),
    billable: true,
    reasons: ['managed', 'active', 'access:confluence', 'access:jira', 'access:jsm', 'access:trello'],
  },
  {
    name: 'Jira on a paid and on a free site counts once',
    input: account({ access: [access('jira'), access('jira')] }),
    billable: true,
    reasons: ['managed', 'active', 'access:jira'],
  },
  {
    name: 'portal customer on an Enterprise site but Jira on a Standard site (customer access is not covered access)',
    input: account({ access: [access('jsm', 'customer', true), access('jira')] }),
    billable: true,
    reasons: ['managed', 'active', 'access:jira'],
  },
  // Excluded, one reason each.
  { name: 'external account', input: account({ managed: false }), billable: false, reasons: ['external'] },
  { name: 'disabled account', input: account({ status: 'disabled' }), billable: false, reasons: ['disabled'] },
  { name: 'no product access', input: account({ access: [] }), billable: false, reasons: ['no-product-access'] },
  { name: 'JSM portal-only customer', input: account({ access: [access('jsm', 'customer')] }), billable: false, reasons: ['jsm-portal-only'] },
  { name: 'JSM portal-only customer on two sites', input: account({ access: [access('jsm', 'customer'), access('jsm', 'customer')] }), billable: false, reasons: ['jsm-portal-only'] },
  { name: 'member of the non-billable policy', input: account({ inNonBillablePolicy: true }), billable: false, reasons: ['non-billable-policy'] },
  { name: 'covered by Cloud Enterprise', input: account({ access: [access('jira', 'user', true)] }), billable: false, reasons: ['enterprise-covered'] },
  {
    name: 'covered by Cloud Enterprise through one site, Standard access on another (Enterprise covers the person)',
    input: account({ access: [access('confluence', 'user', true), access('jira')] }),
    billable: false,
    reasons: ['enterprise-covered'],
  },
  { name: 'no subscription', input: account({ subscriptionState: 'none' }), billable: false, reasons: ['subscription-none'] },
  { name: 'unsubscribed', input: account({ subscriptionState: 'unsubscribed' }), billable: false, reasons: ['subscription-unsubscribed'] },
  // Several blockers: every one listed, in a fixed order.
  {
    name: 'external and disabled',
    input: account({ managed: false, status: 'disabled' }),
    billable: false,
    reasons: ['external', 'disabled'],
  },
  {
    name: 'unsubscribed, disabled, portal-only, in the non-billable policy',
    input: account({ subscriptionState: 'unsubscribed', status: 'disabled', access: [access('jsm', 'customer')], inNonBillablePolicy: true }),
    billable: false,
    reasons: ['subscription-unsubscribed', 'disabled', 'jsm-portal-only', 'non-billable-policy'],
  },
  {
    name: 'every blocker at once',
    input: { managed: false, status: 'disabled', inNonBillablePolicy: true, access: [access('jira', 'user', true)], subscriptionState: 'none' },
    billable: false,
    reasons: ['subscription-none', 'external', 'disabled', 'non-billable-policy', 'enterprise-covered'],
  },
  {
    name: 'no access and external, on no subscription',
    input: account({ managed: false, access: [], subscriptionState: 'none' }),
    billable: false,
    reasons: ['subscription-none', 'external', 'no-product-access'],
  },
];

describe('billability on the Standard plan (SPEC §5)', () => {
  it.each(rows)('$name → billable=$billable', ({ input, billable, reasons }) => {
    expect(billability(input)).toEqual({ billable, reasons });
  });
});

describe('every supported product counts as access', () => {
  it.each(PRODUCTS.map((product) => ({ product, role: (product === 'jsm' ? 'agent' : 'user') as AccessRole })))(
    '$product ($role) → billable',
    ({ product, role }) => {
      expect(countsAsProductAccess({ product, role })).toBe(true);
      expect(billability(account({ access: [access(product, role)] }))).toEqual({ billable: true, reasons: ['managed', 'active', `access:${product}`] });
    },
  );

  it.each([
    { product: 'jsm', role: 'customer', counts: false },
    { product: 'jsm', role: 'agent', counts: true },
    { product: 'jira', role: 'user', counts: true },
  ] satisfies Array<{ product: Product; role: AccessRole; counts: boolean }>)('$product as $role counts: $counts', ({ product, role, counts }) => {
    expect(countsAsProductAccess({ product, role })).toBe(counts);
  });
});
