import { addMonthsUtc, subscriptionStatus, type SubscriptionFacts } from './subscription.js';
import type { BillingCycle, Edition, Plan } from './types.js';

/**
 * Pricing (SPEC §4, §5) as pure functions of plain values. Amounts are integers in the
 * currency's minor unit (cents).
 *
 * Progressive tiers: each band prices the users that fall in it — with bands 1–100 at 400 and
 * 101–1000 at 300, 250 users cost 100 × 400 + 150 × 300. The amount of a period is the tiered
 * price of its unique billable users; an annual subscription pays ten months' price for twelve
 * (10 × the monthly tiered price). Community and Academic orgs get Standard free.
 */

/** Same shape as config's PriceTier: `upTo` is the band's last user (null: open-ended last band). */
export type PriceTier = { readonly upTo: number | null; readonly unitPrice: number };
export type PriceBook = { readonly standard: readonly PriceTier[]; readonly premium: readonly PriceTier[] };

/** Premium's price relative to Standard when configuration gives no Premium table: 1.5 × each band. */
export const PREMIUM_FACTOR = 1.5;

/**
 * The Premium table derived from the Standard one (same bands, 1.5 × the price, rounded to the
 * cent), so Premium always costs more than Standard and the price difference is never negative.
 */
export function premiumTiersFrom(standard: readonly PriceTier[]): PriceTier[] {
  return standard.map((t) => ({ upTo: t.upTo, unitPrice: Math.round(t.unitPrice * PREMIUM_FACTOR) }));
}

/** Months charged for one period: a month, or ten for an annual year ("two months free"). */
export const ANNUAL_MONTHS_CHARGED = 10;

/**
 * One line of the bill: the users at positions `from`..`to` (1-based, inclusive), priced at
 * `unitPrice` each for the period (for an annual period, the yearly per-user price: ten times
 * the monthly one). `amount` = users × unitPrice; the lines add up to the amount.
 * `basis`: `standard` / `premium` for a plan's own band; `price-difference` for Premium users
 * already covered by Cloud Enterprise, priced at premium − standard of the same positions.
 */
export type TierLine = {
  from: number; to: number; users: number; unitPrice: number; amount: number;
  basis: 'standard' | 'premium' | 'price-difference';
};

export type PriceInput = {
  /** Unique billable users of the period. */
  users: number;
  /** Of those, Premium users covered by Cloud Enterprise, charged only the price difference. */
  differenceUsers?: number;
  plan: Plan | null;
  edition: Edition;
  cycle: BillingCycle;
};

export type Price = {
  amount: number;
  /** 0 for a free edition, 1 monthly, 10 annual. */
  monthsCharged: number;
  /** Why the amount is zero whatever the count (`edition-community`, `edition-academic`), else null. */
  free: string | null;
  tiers: TierLine[];
};

/** The per-user price of user number `pos` (1-based) in a tier table. */
export function unitPriceAt(tiers: readonly PriceTier[], pos: number): number {
  const band = tiers.find((t) => t.upTo === null || pos <= t.upTo) ?? tiers.at(-1);
  if (!band) throw new RangeError('a tier table needs at least one band');
  return band.unitPrice;
}

/** Positions `from`..`to` cut at every band edge of the given tables: pieces of constant price. */
function pieces(tables: readonly (readonly PriceTier[])[], from: number, to: number): Array<{ from: number; to: number }> {
  const edges = [...new Set(tables.flatMap((t) => t.map((b) => b.upTo).filter((u): u is number => u !== null)))]
    .filter((e) => e >= from && e < to)
    .sort((a, b) => a - b);
  const out: Array<{ from: number; to: number }> = [];
  let start = from;
  for (const e of edges) {
    out.push({ from: start, to: e });
    start = e + 1;
  }
  if (start <= to) out.push({ from: start, to });
  return out;
}

/** Monthly tiered price of positions from..to on one table (the plain progressive price when from = 1). */
export function tieredAmount(tiers: readonly PriceTier[], users: number): number {
  if (users <= 0) return 0;
  return pieces([tiers], 1, users).reduce((sum, p) => sum + (p.to - p.from + 1) * unitPriceAt(tiers, p.from), 0);
}

function assertCount(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name} must be a non-negative integer (got ${n})`);
}

/**
 * The price of a period. Premium with `differenceUsers` = D of `users` = N: every user is priced
 * on the Premium table at the org's volume, and the D covered users are credited the Standard
 * price of their positions — they take positions 1..D, priced at premium − standard there, and
 * the other users positions D+1..N at the Premium price. In total: premium(N) − standard(D).
 */
export function price(book: PriceBook, input: PriceInput): Price {
  assertCount('users', input.users);
  const d = input.differenceUsers ?? 0;
  assertCount('differenceUsers', d);
  if (d > input.users) throw new RangeError(`differenceUsers (${d}) cannot exceed users (${input.users})`);
  if (input.edition !== 'commercial') return { amount: 0, monthsCharged: 0, free: `edition-${input.edition}`, tiers: [] };

  const months = input.cycle === 'annual' ? ANNUAL_MONTHS_CHARGED : 1;
  const line = (from: number, to: number, monthlyUnit: number, basis: TierLine['basis']): TierLine => {
    const users = to - from + 1;
    const unitPrice = monthlyUnit * months;
    return { from, to, users, unitPrice, amount: users * unitPrice, basis };
  };

  const lines: TierLine[] = [];
  if (input.plan === 'premium') {
    const diff = d;
    for (const p of pieces([book.premium, book.standard], 1, diff)) {
      lines.push(line(p.from, p.to, unitPriceAt(book.premium, p.from) - unitPriceAt(book.standard, p.from), 'price-difference'));
    }
    for (const p of pieces([book.premium], diff + 1, input.users)) lines.push(line(p.from, p.to, unitPriceAt(book.premium, p.from), 'premium'));
  } else {
    // Standard, or no plan chosen yet (read as Standard). Price differences exist only on Premium.
    for (const p of pieces([book.standard], 1, input.users)) lines.push(line(p.from, p.to, unitPriceAt(book.standard, p.from), 'standard'));
  }
  return { amount: lines.reduce((s, l) => s + l.amount, 0), monthsCharged: months, free: null, tiers: lines };
}

export type BillingPeriod = { start: Date; end: Date };

/**
 * The billing period containing `now`, as [start, end) in UTC.
 * Monthly: the calendar month in UTC (a monthly bill is charged at the month's end for its
 * unique billable users). Annual: the subscription year — twelve months from `anchor` (when paid
 * service started), then every twelve months after; before the anchor, the first year; without
 * an anchor (no paid service yet), the twelve months from the first of the current UTC month.
 */
export function billingPeriod(cycle: BillingCycle, anchor: Date | null, now: Date): BillingPeriod {
  if (cycle === 'monthly') {
    return {
      start: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)),
      end: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)),
    };
  }
  const base = anchor ?? new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  if (now < base) return { start: base, end: addMonthsUtc(base, 12) };
  // Years counted from the anchor itself (not chained), so 29 Feb stays 28 Feb/29 Feb, never drifts.
  let k = Math.max(0, now.getUTCFullYear() - base.getUTCFullYear() - 1);
  while (addMonthsUtc(base, 12 * (k + 1)) <= now) k++;
  return { start: addMonthsUtc(base, 12 * k), end: addMonthsUtc(base, 12 * (k + 1)) };
}

/**
 * A stretch of a billing period with one plan, paid or not (docs/billing.md). `void`: the org
 * bills nobody during it (no subscription, or unsubscribed), so it has no users.
 */
export type PeriodSegment = { from: Date; to: Date; plan: Plan | null; paid: boolean; void: boolean };

/**
 * Cuts a billing period into plan segments. The state at each instant is derived from the
 * current facts (subscriptionStatus); the plan from `planAtStart` and the plan changes made inside
 * the period (their `changedAt`, oldest first). Pieces are cut at every plan change and every
 * instant where the derived state can change, then merged: adjacent pieces join when both are
 * paid (`active`) or both unpaid, and they have the same plan — a piece in which nobody is
 * billable (`none`, `unsubscribed`) has no plan that matters and joins its unpaid neighbour.
 */
export function periodSegments(
  facts: SubscriptionFacts, period: BillingPeriod, planAtStart: Plan | null,
  changes: readonly { changedAt: Date; toPlan: Plan | null }[],
): PeriodSegment[] {
  const inside = (d: Date | null | undefined): d is Date => !!d && d > period.start && d < period.end;
  const cuts = [
    period.start.getTime(),
    ...changes.map((c) => c.changedAt).filter(inside).map((d) => d.getTime()),
    ...[facts.trialStartedAt, facts.trialEndsAt, facts.activatedAt, facts.cancelledAt].filter(inside).map((d) => d.getTime()),
  ];
  const points = [...new Set(cuts)].sort((a, b) => a - b);
  const planAt = (from: Date) => {
    let plan = planAtStart;
    for (const c of changes) if (c.changedAt <= from) plan = c.toPlan;
    return plan;
  };
  const plans = points.map((t) => planAt(new Date(t)));
  // Until a plan is first chosen (the trial's start chooses one, a few ms after the trial's own
  // timestamp), the first chosen plan applies.
  for (let i = plans.length - 2; i >= 0; i--) if (plans[i] === null) plans[i] = plans[i + 1] ?? null;
  const out: PeriodSegment[] = [];
  points.forEach((t, i) => {
    const from = new Date(t);
    const to = new Date(points[i + 1] ?? period.end.getTime());
    const state = subscriptionStatus(facts, from).state;
    const plan = plans[i] ?? null;
    const paid = state === 'active';
    const isVoid = state === 'none' || state === 'unsubscribed';
    const last = out.at(-1);
    // No plan chosen yet reads as Standard (as in price).
    if (last && last.paid === paid && (isVoid || last.void || (last.plan ?? 'standard') === (plan ?? 'standard'))) {
      last.to = to;
      if ((last.void && !isVoid) || last.plan === null) last.plan = plan;
      last.void = last.void && isVoid;
    } else {
      out.push({ from, to, plan, paid, void: isVoid });
    }
  });
  return out;
}

/** `p` for a segment covering `share` of its period: every line's amount × share, rounded to the cent. */
export function prorate(p: Price, share: number): Price {
  if (share >= 1) return p;
  const tiers = p.tiers.map((l) => ({ ...l, amount: Math.round(l.amount * share) }));
  return { ...p, tiers, amount: tiers.reduce((s, l) => s + l.amount, 0) };
}
