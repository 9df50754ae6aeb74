import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { billability, countsAsProductAccess, pricedAtDifference, type AccessFact, type BillabilityInput } from '../../src/domain/billability.js';
import { PRODUCTS, type AccessRole, type Product } from '../../src/domain/types.js';

const access = (product: Product, role: AccessRole = 'user', siteEnterprise = false): AccessFact => ({ product, role, siteEnterprise });

/** A managed, active account with Jira on a Standard site, on an active subscription: billable. */
const account = (over: Partial<BillabilityInput> = {}): BillabilityInput => ({
  managed: true,
  status: 'active',
  inNonBillablePolicy: false,
  access: [access('jira')],
  subscriptionState: 'active',
  plan: 'standard',
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
    input: { managed: false, status: 'disabled', inNonBillablePolicy: true, access: [access('jira', 'user', true)], subscriptionState: 'none', plan: 'standard' },
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

/** The same account on the Premium plan. */
const premium = (over: Partial<BillabilityInput> = {}): BillabilityInput => account({ plan: 'premium', ...over });

const premiumRows: Row[] = [
  // Included: managed and external accounts with Jira or Confluence.
  { name: 'managed, active, Jira user', input: premium(), billable: true, reasons: ['managed', 'active', 'access:jira'] },
  { name: 'external, active, Confluence user', input: premium({ managed: false, access: [access('confluence')] }), billable: true, reasons: ['external', 'active', 'access:confluence'] },
  {
    name: 'external with Jira and Trello: only the products that count on Premium are listed',
    input: premium({ managed: false, access: [access('trello'), access('jira')] }),
    billable: true,
    reasons: ['external', 'active', 'access:jira'],
  },
  {
    name: 'Jira and Confluence on several sites counts once',
    input: premium({ access: [access('confluence'), access('jira'), access('jira'), access('confluence')] }),
    billable: true,
    reasons: ['managed', 'active', 'access:confluence', 'access:jira'],
  },
  {
    name: 'member of the non-billable policy still counts on Premium',
    input: premium({ inNonBillablePolicy: true }),
    billable: true,
    reasons: ['managed', 'active', 'access:jira'],
  },
  { name: 'during a Premium trial', input: premium({ subscriptionState: 'trial' }), billable: true, reasons: ['managed', 'active', 'access:jira'] },
  // Covered by Cloud Enterprise: billable at the price difference.
  {
    name: 'covered by Cloud Enterprise → priced at premium − standard',
    input: premium({ access: [access('jira', 'user', true)] }),
    billable: true,
    reasons: ['managed', 'active', 'access:jira', 'price-difference:enterprise'],
  },
  {
    name: 'Enterprise coverage through another product (Trello on an Enterprise site), Jira on a Standard site',
    input: premium({ access: [access('trello', 'user', true), access('jira')] }),
    billable: true,
    reasons: ['managed', 'active', 'access:jira', 'price-difference:enterprise'],
  },
  {
    name: 'external account on an Enterprise site',
    input: premium({ managed: false, access: [access('confluence', 'user', true)] }),
    billable: true,
    reasons: ['external', 'active', 'access:confluence', 'price-difference:enterprise'],
  },
  {
    name: 'portal customer on an Enterprise site is not covered access: full Premium price',
    input: premium({ access: [access('jsm', 'customer', true), access('jira')] }),
    billable: true,
    reasons: ['managed', 'active', 'access:jira'],
  },
  // Excluded.
  { name: 'Trello only', input: premium({ access: [access('trello')] }), billable: false, reasons: ['no-premium-product-access'] },
  { name: 'JSM agent only', input: premium({ access: [access('jsm', 'agent')] }), billable: false, reasons: ['no-premium-product-access'] },
  { name: 'Jira Product Discovery only', input: premium({ access: [access('jpd')] }), billable: false, reasons: ['no-premium-product-access'] },
  { name: 'JSM portal-only customer', input: premium({ access: [access('jsm', 'customer')] }), billable: false, reasons: ['jsm-portal-only'] },
  { name: 'no product access', input: premium({ access: [] }), billable: false, reasons: ['no-product-access'] },
  { name: 'disabled external account', input: premium({ managed: false, status: 'disabled' }), billable: false, reasons: ['disabled'] },
  { name: 'no subscription', input: premium({ subscriptionState: 'none' }), billable: false, reasons: ['subscription-none'] },
  {
    name: 'unsubscribed, disabled, portal-only external in the non-billable policy',
    input: premium({ subscriptionState: 'unsubscribed', managed: false, status: 'disabled', access: [access('jsm', 'customer')], inNonBillablePolicy: true }),
    billable: false,
    reasons: ['subscription-unsubscribed', 'disabled', 'jsm-portal-only'],
  },
];

describe('billability on the Premium plan (SPEC §5)', () => {
  it.each(premiumRows)('$name → billable=$billable', ({ input, billable, reasons }) => {
    expect(billability(input)).toEqual({ billable, reasons });
    expect(pricedAtDifference(reasons), 'price difference exactly when the reason says so').toBe(reasons.includes('price-difference:enterprise'));
  });
});

describe('plan defaults and reason codes', () => {
  it('no plan (null or absent) reads as Standard', () => {
    const { plan: _p, ...noPlan } = account({ managed: false });
    for (const input of [account({ plan: null, managed: false }), noPlan]) {
      expect(billability(input)).toEqual({ billable: false, reasons: ['external'] });
    }
    expect(billability(account({ plan: null, access: [access('jira', 'user', true)] }))).toEqual({ billable: false, reasons: ['enterprise-covered'] });
  });

  it('Standard never prices at the difference; Premium only with Enterprise coverage', () => {
    expect(pricedAtDifference(billability(account()).reasons)).toBe(false);
    expect(pricedAtDifference(billability(premium()).reasons)).toBe(false);
    expect(pricedAtDifference(billability(premium({ access: [access('jira', 'user', true)] })).reasons)).toBe(true);
  });
});

const products = fc.constantFrom(...PRODUCTS);
const accessFact = fc.record({ product: products, role: fc.constantFrom<AccessRole>('user', 'agent', 'customer'), siteEnterprise: fc.boolean() });
const input = fc.record({
  managed: fc.boolean(),
  status: fc.constantFrom<'active' | 'disabled'>('active', 'disabled'),
  inNonBillablePolicy: fc.boolean(),
  access: fc.array(accessFact, { maxLength: 8 }),
  subscriptionState: fc.constantFrom<BillabilityInput['subscriptionState']>('none', 'trial', 'active', 'unsubscribed'),
  plan: fc.constantFrom<BillabilityInput['plan']>('standard', 'premium', null),
});

describe('properties of the rule', () => {
  it('the order of access facts and repeated grants never change the answer (a person counts once)', () => {
    const withShuffle = input.chain((i) =>
      fc.shuffledSubarray([...i.access, ...i.access], { minLength: 2 * i.access.length }).map((shuffled) => ({ i, shuffled })));
    fc.assert(fc.property(withShuffle, ({ i, shuffled }) => {
      expect(billability({ ...i, access: shuffled })).toEqual(billability(i));
    }));
  });

  it('Standard: every billable account is managed (managed accounts ≥ billable ones); never billable without a trial or subscription', () => {
    fc.assert(fc.property(input, (i) => {
      const b = billability(i);
      if (b.billable && i.plan !== 'premium') expect(i.managed).toBe(true);
      if (b.billable) expect(['trial', 'active']).toContain(i.subscriptionState);
      if (b.billable) expect(i.status).toBe('active');
      expect(b.reasons.length, 'an answer always has its reasons').toBeGreaterThan(0);
      expect(b.reasons[0] === 'managed' || b.reasons[0] === 'external' || !b.billable).toBe(true);
    }));
  });

  it('Premium counts a superset of the Standard set, except for accounts with neither Jira nor Confluence', () => {
    fc.assert(fc.property(input, (i) => {
      const std = billability({ ...i, plan: 'standard' });
      const prem = billability({ ...i, plan: 'premium' });
      const jiraOrConfluence = i.access.some((a) => (a.product === 'jira' || a.product === 'confluence'));
      if (std.billable && jiraOrConfluence) expect(prem.billable).toBe(true);
    }));
  });
});
