import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TIERS } from '../../src/config.js';
import { NO_SUBSCRIPTION } from '../../src/domain/subscription.js';
import { billingPeriod, periodSegments, premiumTiersFrom, price, prorate, tieredAmount, type PriceBook, type PriceInput, type TierLine } from '../../src/domain/pricing.js';

// Standard: 1–100 at 400, 101–1000 at 300, 1001–5000 at 200, then 150 (cents per user per month).
// Premium:  1–100 at 600, 101–1000 at 450, 1001–5000 at 300, then 225.
const book: PriceBook = { standard: DEFAULT_TIERS, premium: premiumTiersFrom(DEFAULT_TIERS) };
const std = (from: number, to: number, unitPrice: number): TierLine => ({ from, to, users: to - from + 1, unitPrice, amount: (to - from + 1) * unitPrice, basis: 'standard' });
const prem = (from: number, to: number, unitPrice: number): TierLine => ({ ...std(from, to, unitPrice), basis: 'premium' });
const diff = (from: number, to: number, unitPrice: number): TierLine => ({ ...std(from, to, unitPrice), basis: 'price-difference' });
const input = (over: Partial<PriceInput>): PriceInput => ({ users: 0, plan: 'standard', edition: 'commercial', cycle: 'monthly', ...over });

type Row = { name: string; input: PriceInput; amount: number; tiers: TierLine[]; book?: PriceBook };

const rows: Row[] = [
  { name: 'nobody billable', input: input({ users: 0 }), amount: 0, tiers: [] },
  { name: 'one user', input: input({ users: 1 }), amount: 400, tiers: [std(1, 1, 400)] },
  { name: 'the first band exactly', input: input({ users: 100 }), amount: 40_000, tiers: [std(1, 100, 400)] },
  { name: 'one user into the second band', input: input({ users: 101 }), amount: 40_300, tiers: [std(1, 100, 400), std(101, 101, 300)] },
  { name: '250 users: each band prices its own users', input: input({ users: 250 }), amount: 85_000, tiers: [std(1, 100, 400), std(101, 250, 300)] },
  { name: '1000 users', input: input({ users: 1000 }), amount: 310_000, tiers: [std(1, 100, 400), std(101, 1000, 300)] },
  {
    name: '5001 users reach the open band',
    input: input({ users: 5001 }),
    amount: 40_000 + 270_000 + 800_000 + 150,
    tiers: [std(1, 100, 400), std(101, 1000, 300), std(1001, 5000, 200), std(5001, 5001, 150)],
  },
  { name: 'no plan chosen reads as Standard', input: input({ users: 101, plan: null }), amount: 40_300, tiers: [std(1, 100, 400), std(101, 101, 300)] },
  {
    name: 'annual: ten months for twelve (yearly per-user price = 10 × monthly)',
    input: input({ users: 250, cycle: 'annual' }),
    amount: 850_000,
    tiers: [std(1, 100, 4000), std(101, 250, 3000)],
  },
  { name: 'Community: free whatever the count', input: input({ users: 250, edition: 'community' }), amount: 0, tiers: [] },
  { name: 'Academic on Premium, annual: free', input: input({ users: 5000, edition: 'academic', plan: 'premium', cycle: 'annual' }), amount: 0, tiers: [] },
  { name: 'Premium, nobody covered', input: input({ users: 250, plan: 'premium' }), amount: 127_500, tiers: [prem(1, 100, 600), prem(101, 250, 450)] },
  {
    name: 'Premium, everyone covered by Enterprise: premium − standard',
    input: input({ users: 250, differenceUsers: 250, plan: 'premium' }),
    amount: 127_500 - 85_000,
    tiers: [diff(1, 100, 200), diff(101, 250, 150)],
  },
  {
    name: 'Premium, 120 of 150 covered: premium(150) − standard(120)',
    input: input({ users: 150, differenceUsers: 120, plan: 'premium' }),
    amount: 82_500 - 46_000,
    tiers: [diff(1, 100, 200), diff(101, 120, 150), prem(121, 150, 450)],
  },
  {
    name: 'Premium annual with covered users',
    input: input({ users: 150, differenceUsers: 120, plan: 'premium', cycle: 'annual' }),
    amount: (82_500 - 46_000) * 10,
    tiers: [diff(1, 100, 2000), diff(101, 120, 1500), prem(121, 150, 4500)],
  },
  {
    name: 'price difference across tables whose bands do not line up',
    book: { standard: [{ upTo: 10, unitPrice: 100 }, { upTo: null, unitPrice: 50 }], premium: [{ upTo: 5, unitPrice: 300 }, { upTo: null, unitPrice: 200 }] },
    input: input({ users: 12, differenceUsers: 8, plan: 'premium' }),
    amount: (5 * 300 + 7 * 200) - 8 * 100,
    tiers: [diff(1, 5, 200), diff(6, 8, 100), prem(9, 12, 200)],
  },
  {
    name: 'covered users on Standard are not a thing: Standard ignores differenceUsers',
    input: input({ users: 10, differenceUsers: 10, plan: 'standard' }),
    amount: 4000,
    tiers: [std(1, 10, 400)],
  },
];

describe('progressive pricing (SPEC §4, §5)', () => {
  it.each(rows)('$name → $amount', ({ input: i, amount, tiers, book: b }) => {
    const p = price(b ?? book, i);
    expect(p.tiers, 'tiers used').toEqual(tiers);
    expect(p.amount, 'amount').toBe(amount);
    expect(p.amount, 'the lines add up').toBe(p.tiers.reduce((s, l) => s + l.amount, 0));
  });

  it('the Premium table defaults to the Standard bands at 1.5 ×, rounded to the cent', () => {
    expect(premiumTiersFrom(DEFAULT_TIERS)).toEqual([
      { upTo: 100, unitPrice: 600 }, { upTo: 1000, unitPrice: 450 }, { upTo: 5000, unitPrice: 300 }, { upTo: null, unitPrice: 225 },
    ]);
    expect(premiumTiersFrom([{ upTo: null, unitPrice: 333 }])).toEqual([{ upTo: null, unitPrice: 500 }]);
  });

  it('free editions say why; paid ones say how many months are charged', () => {
    expect(price(book, input({ users: 3, edition: 'community' }))).toMatchObject({ free: 'edition-community', monthsCharged: 0 });
    expect(price(book, input({ users: 3, edition: 'academic' }))).toMatchObject({ free: 'edition-academic', monthsCharged: 0 });
    expect(price(book, input({ users: 3 }))).toMatchObject({ free: null, monthsCharged: 1 });
    expect(price(book, input({ users: 3, cycle: 'annual' }))).toMatchObject({ free: null, monthsCharged: 10 });
  });

  it.each([
    { users: -1 }, { users: 1.5 }, { users: 3, differenceUsers: 4 }, { users: 3, differenceUsers: -1 },
  ])('refuses impossible counts %o', (over) => {
    expect(() => price(book, input(over))).toThrow(RangeError);
  });

  it('properties: lines cover users 1..N exactly once, amounts never fall as users grow, annual = 10 × monthly', () => {
    const arb = fc.record({ users: fc.integer({ min: 0, max: 12_000 }), covered: fc.double({ min: 0, max: 1, noNaN: true }), plan: fc.constantFrom('standard' as const, 'premium' as const, null) });
    fc.assert(fc.property(arb, ({ users, covered, plan }) => {
      const differenceUsers = plan === 'premium' ? Math.floor(users * covered) : 0;
      const monthly = price(book, input({ users, differenceUsers, plan }));
      const annual = price(book, input({ users, differenceUsers, plan, cycle: 'annual' }));
      let next = 1;
      for (const l of monthly.tiers) {
        expect(l.from).toBe(next);
        expect(l.users).toBe(l.to - l.from + 1);
        expect(l.amount).toBe(l.users * l.unitPrice);
        next = l.to + 1;
      }
      expect(next - 1).toBe(users);
      expect(annual.amount).toBe(10 * monthly.amount);
      expect(price(book, input({ users: users + 1, differenceUsers, plan })).amount).toBeGreaterThanOrEqual(monthly.amount);
      const table = plan === 'premium' ? book.premium : book.standard;
      if (plan === 'premium') expect(monthly.amount).toBe(tieredAmount(book.premium, users) - tieredAmount(book.standard, differenceUsers));
      else expect(monthly.amount).toBe(tieredAmount(table, users));
    }));
  });
});

const d = (s: string) => new Date(s);

describe('billing periods (UTC)', () => {
  it.each([
    { name: 'monthly: the calendar month', cycle: 'monthly', anchor: null, now: '2026-03-15T10:00:00Z', start: '2026-03-01T00:00:00.000Z', end: '2026-04-01T00:00:00.000Z' },
    { name: 'monthly: the first instant belongs to the new month', cycle: 'monthly', anchor: null, now: '2026-03-01T00:00:00Z', start: '2026-03-01T00:00:00.000Z', end: '2026-04-01T00:00:00.000Z' },
    { name: 'monthly: the last millisecond to the old', cycle: 'monthly', anchor: null, now: '2026-02-28T23:59:59.999Z', start: '2026-02-01T00:00:00.000Z', end: '2026-03-01T00:00:00.000Z' },
    { name: 'monthly: December runs into the next year', cycle: 'monthly', anchor: '2025-06-10T12:00:00Z', now: '2026-12-31T23:00:00Z', start: '2026-12-01T00:00:00.000Z', end: '2027-01-01T00:00:00.000Z' },
    { name: 'annual: the subscription year containing now', cycle: 'annual', anchor: '2025-06-10T12:00:00Z', now: '2026-03-01T00:00:00Z', start: '2025-06-10T12:00:00.000Z', end: '2026-06-10T12:00:00.000Z' },
    { name: 'annual: the anniversary starts the next year', cycle: 'annual', anchor: '2025-06-10T12:00:00Z', now: '2026-06-10T12:00:00Z', start: '2026-06-10T12:00:00.000Z', end: '2027-06-10T12:00:00.000Z' },
    { name: 'annual: several years on', cycle: 'annual', anchor: '2020-01-31T00:00:00Z', now: '2026-02-15T00:00:00Z', start: '2026-01-31T00:00:00.000Z', end: '2027-01-31T00:00:00.000Z' },
    { name: 'annual from 29 February: 28 February in common years', cycle: 'annual', anchor: '2024-02-29T08:00:00Z', now: '2025-03-01T00:00:00Z', start: '2025-02-28T08:00:00.000Z', end: '2026-02-28T08:00:00.000Z' },
    { name: 'annual from 29 February: back to 29 February in a leap year (no drift)', cycle: 'annual', anchor: '2024-02-29T08:00:00Z', now: '2028-03-01T00:00:00Z', start: '2028-02-29T08:00:00.000Z', end: '2029-02-28T08:00:00.000Z' },
    { name: 'annual, paid service not started yet (trial): the first year', cycle: 'annual', anchor: '2026-04-01T09:00:00Z', now: '2026-03-05T00:00:00Z', start: '2026-04-01T09:00:00.000Z', end: '2027-04-01T09:00:00.000Z' },
    { name: 'annual without an anchor: twelve months from the first of this month', cycle: 'annual', anchor: null, now: '2026-03-05T00:00:00Z', start: '2026-03-01T00:00:00.000Z', end: '2027-03-01T00:00:00.000Z' },
  ] as const)('$name', ({ cycle, anchor, now, start, end }) => {
    const p = billingPeriod(cycle, anchor ? d(anchor) : null, d(now));
    expect({ start: p.start.toISOString(), end: p.end.toISOString() }).toEqual({ start, end });
    expect(p.start <= d(now) || (anchor !== null && d(anchor) > d(now))).toBe(true);
  });
});

describe('periodSegments (docs/billing.md)', () => {
  const D = (iso: string) => new Date(iso);
  const period = { start: D('2026-03-01T00:00:00.000Z'), end: D('2026-04-01T00:00:00.000Z') };
  const paidFromFeb = { ...NO_SUBSCRIPTION, plan: 'standard' as const, trialStartedAt: D('2026-01-01T00:00:00.000Z'), trialEndsAt: D('2026-01-31T00:00:00.000Z'), paymentMethodAddedAt: D('2026-01-10T00:00:00.000Z') };
  const seg = (from: string, to: string, plan: 'standard' | 'premium' | null, paid: boolean, isVoid = false) => ({ from: D(from), to: D(to), plan, paid, void: isVoid });

  it('no change: one paid segment over the whole period', () => {
    expect(periodSegments(paidFromFeb, period, 'standard', [])).toEqual([seg('2026-03-01T00:00:00.000Z', '2026-04-01T00:00:00.000Z', 'standard', true)]);
  });

  it('Standard → Premium → Standard: three paid segments cut at the changes', () => {
    const changes = [
      { changedAt: D('2026-03-10T00:00:00.000Z'), toPlan: 'premium' as const },
      { changedAt: D('2026-03-20T00:00:00.000Z'), toPlan: 'standard' as const },
    ];
    expect(periodSegments(paidFromFeb, period, 'standard', changes)).toEqual([
      seg('2026-03-01T00:00:00.000Z', '2026-03-10T00:00:00.000Z', 'standard', true),
      seg('2026-03-10T00:00:00.000Z', '2026-03-20T00:00:00.000Z', 'premium', true),
      seg('2026-03-20T00:00:00.000Z', '2026-04-01T00:00:00.000Z', 'standard', true),
    ]);
  });

  it('a trial started mid-month with its plan chosen a moment later: one unpaid segment with that plan', () => {
    const f = { ...NO_SUBSCRIPTION, plan: 'premium' as const, trialStartedAt: D('2026-03-05T00:00:00.000Z'), trialEndsAt: D('2026-04-04T00:00:00.000Z') };
    expect(periodSegments(f, period, null, [{ changedAt: D('2026-03-05T00:00:00.004Z'), toPlan: 'premium' }])).toEqual([
      seg('2026-03-01T00:00:00.000Z', '2026-04-01T00:00:00.000Z', 'premium', false),
    ]);
  });

  it('a paid trial ending mid-month: unpaid then paid; a cancel later: the rest is unpaid and void', () => {
    const f = { ...NO_SUBSCRIPTION, plan: 'standard' as const, trialStartedAt: D('2026-02-13T00:00:00.000Z'), trialEndsAt: D('2026-03-15T00:00:00.000Z'), paymentMethodAddedAt: D('2026-03-01T12:00:00.000Z'), cancelledAt: D('2026-03-25T00:00:00.000Z') };
    expect(periodSegments(f, period, 'standard', [])).toEqual([
      seg('2026-03-01T00:00:00.000Z', '2026-03-15T00:00:00.000Z', 'standard', false),
      seg('2026-03-15T00:00:00.000Z', '2026-03-25T00:00:00.000Z', 'standard', true),
      seg('2026-03-25T00:00:00.000Z', '2026-04-01T00:00:00.000Z', 'standard', false, true),
    ]);
  });

  it('prorate: each line × share, rounded to the cent; share 1 is the price itself', () => {
    const p = price(book, input({ users: 101 }));
    expect(prorate(p, 1)).toBe(p);
    const half = prorate(p, 0.5);
    expect(half.tiers.map((l) => l.amount)).toEqual([20_000, 150]);
    expect(half.amount).toBe(20_150);
  });
});
