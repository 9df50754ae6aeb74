import { Prisma } from '../generated/prisma/client.js';
import type { Database } from '../store/database.js';
import type { Tx } from '../store/transaction.js';
import type { Page } from '../store/paging.js';
import { subscriptionStore } from '../store/subscription-store.js';
import { pricedAtDifference } from '../domain/billability.js';
import { subscriptionStatus, type SubscriptionState } from '../domain/subscription.js';
import { ANNUAL_MONTHS_CHARGED, billingPeriod, periodSegments, premiumTiersFrom, price, prorate, type BillingPeriod, type PriceBook, type PriceTier, type TierLine } from '../domain/pricing.js';
import type { BillingCycle, Edition, Plan } from '../domain/types.js';
import type { RequestContext } from '../services/context.js';
import { billableSet, billableUsersPage, orgBillingFacts, withoutJit, type BillableUser, type OrgBillingFacts } from '../store/billable-set.js';

/** The slice of config.billing the estimate needs; premiumTiers defaults to the Standard bands at 1.5 × (premiumTiersFrom). */
export type EstimateConfig = { tiers: readonly PriceTier[]; currency: string; premiumTiers?: readonly PriceTier[] | undefined };

export type Estimate = {
  /** Who is billable now (the set-based rule). */
  billableUsers: number;
  /** Unique billable users of the period so far, from the ledger: what the amount is computed from. */
  periodBillableUsers: number;
  /** Of those, Premium users covered by Cloud Enterprise, priced at premium − standard. */
  priceDifferenceUsers: number;
  amount: number;
  currency: string;
  cycle: BillingCycle;
  plan: Plan | null;
  edition: Edition;
  state: SubscriptionState;
  periodStart: Date;
  periodEnd: Date;
  /** 1 monthly, 10 annual ("ten months for twelve"), 0 for a free edition. */
  monthsCharged: number;
  /** `edition-community` / `edition-academic` when the org pays nothing whatever the count, else null. */
  free: string | null;
  /** The lines of every segment, in segment order; they add up to `wouldBeAmount`. */
  tiers: TierLine[];
  /** Whether any of the period is paid for: false for a trial, an unsubscribed period, no subscription, a free edition. */
  charged: boolean;
  /** The amount had every segment been paid for (`amount` counts only the paid ones). */
  wouldBeAmount: number;
  /** The period cut by plan and by paid / not paid (docs/billing.md). */
  segments: EstimateSegment[];
};

export type EstimateSegment = {
  plan: Plan | null;
  from: Date;
  to: Date;
  /** The segment's part of the period ((to − from) / period length): its lines are prorated by it. */
  share: number;
  /** Paid for: the org is `active` (and not a free edition) throughout the segment. */
  charged: boolean;
  /** Unique users billable under this plan during the segment. */
  users: number;
  priceDifferenceUsers: number;
  /** The segment's price (prorated); counted in the estimate's `amount` only when `charged`. */
  amount: number;
  tiers: TierLine[];
};

export type PeriodUser = { accountId: string; reasons: string[] };

/**
 * The unique billable users of a period, from the ledger (one query): every account whose net
 * state when the period began was billable — its last ledger entry before `start` is `added` —
 * and every account with an `added` entry inside the period. Entries belong to a period by
 * their `occurredAt` (UTC); one account's entries are ordered by `streamSeq` (commit order).
 * Each comes with the reasons of its latest `added` entry up to the period's end.
 */
export async function periodBillableUsers(
  tx: Tx, orgId: string, period: BillingPeriod, opts: { innerStart?: boolean } = {},
): Promise<PeriodUser[]> {
  // A segment that starts inside the period starts at a change (a plan change, docs/billing.md)
  // and after the deltas of that change: they carry its time, and the state they leave is the
  // one the segment starts from (a Jira-less user removed at a switch to Premium is not in it).
  const before = opts.innerStart ? Prisma.sql`<=` : Prisma.sql`<`;
  const inside = opts.innerStart ? Prisma.sql`>` : Prisma.sql`>=`;
  return tx.$queryRaw<PeriodUser[]>`
    WITH e AS (
      SELECT "accountId", "kind", "reasons", "occurredAt", "streamSeq"
      FROM "LedgerEntry"
      WHERE "orgId" = ${orgId}::uuid AND "occurredAt" < ${period.end}::timestamptz
    ),
    at_start AS (
      SELECT DISTINCT ON ("accountId") "accountId", "kind"
      FROM e WHERE "occurredAt" ${before} ${period.start}::timestamptz
      ORDER BY "accountId", "streamSeq" DESC
    ),
    users AS (
      SELECT "accountId" FROM at_start WHERE "kind" = 'added'
      UNION
      SELECT "accountId" FROM e WHERE "occurredAt" ${inside} ${period.start}::timestamptz AND "kind" = 'added'
    ),
    last_added AS (
      SELECT DISTINCT ON ("accountId") "accountId", "reasons"
      FROM e WHERE "kind" = 'added'
      ORDER BY "accountId", "streamSeq" DESC
    )
    SELECT u."accountId"::text AS "accountId", COALESCE(l."reasons", '{}'::text[]) AS reasons
    FROM users u LEFT JOIN last_added l ON l."accountId" = u."accountId"
    ORDER BY u."accountId"`;
}

/**
 * What the bill of the current period will be (SPEC §4, §5; the rule in docs/billing.md): the
 * count now, the period's unique billable users from the ledger, and their tiered price per plan
 * segment. Read in one REPEATABLE READ snapshot so the count, the ledger and the subscription
 * agree with each other.
 *
 * The period is cut into segments at plan changes and where it turns paid or unpaid
 * (periodSegments); each segment prices the users billable during it, under its plan, prorated
 * by its share of the period. A user who was not billable under a segment's plan (JSM-only on
 * Premium) is not in that segment. Only paid segments are charged (`amount`); `wouldBeAmount`
 * prices them all.
 *
 * Premium users are priced at the difference when they are covered by Cloud Enterprise: for an
 * account billable now, in the segment holding `now`, by its current reasons; otherwise by the
 * reasons of its latest `added` ledger entry before the segment's end.
 */
export async function estimateBill(tx: Tx, orgId: string, now: Date, billing: EstimateConfig): Promise<Estimate> {
  const facts = await subscriptionStore.get(tx, orgId);
  const status = subscriptionStatus(facts, now);
  const anchor = status.activeSince ?? (status.state === 'trial' ? status.trialEndsAt : null);
  const period = billingPeriod(status.cycle, anchor, now);
  const current = await billableSet(tx, orgId, now);
  const periodUsers = await periodBillableUsers(tx, orgId, period);
  const planAtStart = await subscriptionStore.planAt(tx, orgId, period.start, facts.plan);
  const changes = await subscriptionStore.planChanges(tx, orgId, period.start, period.end);
  const cuts = periodSegments(facts, period, planAtStart, changes);

  let billableNow = 0;
  for (const b of current.values()) if (b.billable) billableNow++;

  const book: PriceBook = { standard: billing.tiers, premium: billing.premiumTiers ?? premiumTiersFrom(billing.tiers) };
  const length = period.end.getTime() - period.start.getTime();
  const differenceIds = new Set<string>();
  const segments: EstimateSegment[] = [];
  for (const c of cuts) {
    const whole = c.from.getTime() === period.start.getTime() && c.to.getTime() === period.end.getTime();
    const users = c.void ? [] : whole ? periodUsers : await periodBillableUsers(tx, orgId, { start: c.from, end: c.to }, { innerStart: c.from > period.start });
    const holdsNow = c.from <= now && now < c.to;
    const diff = c.plan === 'premium'
      ? users.filter((u) => {
        const b = holdsNow ? current.get(u.accountId) : undefined;
        return pricedAtDifference(b?.billable ? b.reasons : u.reasons);
      })
      : [];
    for (const u of diff) differenceIds.add(u.accountId);
    const share = whole ? 1 : (c.to.getTime() - c.from.getTime()) / length;
    const p = prorate(price(book, { users: users.length, differenceUsers: diff.length, plan: c.plan, edition: status.edition, cycle: status.cycle }), share);
    segments.push({
      plan: c.plan, from: c.from, to: c.to, share, charged: c.paid && status.edition === 'commercial',
      users: users.length, priceDifferenceUsers: diff.length, amount: p.amount, tiers: p.tiers,
    });
  }
  const amount = segments.reduce((s, g) => s + (g.charged ? g.amount : 0), 0);
  const free = status.edition === 'commercial' ? null : `edition-${status.edition}`;
  return {
    billableUsers: billableNow,
    periodBillableUsers: periodUsers.length,
    priceDifferenceUsers: differenceIds.size,
    amount,
    currency: billing.currency,
    cycle: status.cycle,
    plan: status.plan,
    edition: status.edition,
    state: status.state,
    periodStart: period.start,
    periodEnd: period.end,
    monthsCharged: free ? 0 : status.cycle === 'annual' ? ANNUAL_MONTHS_CHARGED : 1,
    free,
    tiers: segments.flatMap((g) => g.tiers),
    charged: segments.some((g) => g.charged),
    wouldBeAmount: segments.reduce((s, g) => s + g.amount, 0),
    segments,
  };
}

/**
 * The billing read side for the admin API: the estimate and who is on the bill. (Deltas, the
 * ledger and reconciliation live beside it in src/billing/.)
 */
export function createBillingService(db: Database, billing: EstimateConfig) {
  /** One page in its own short transaction (JIT off: see withoutJit). */
  const page = (orgId: string, facts: OrgBillingFacts, p: { cursor?: string | undefined; limit: number }) =>
    db.prisma.$transaction(async (tx) => {
      await withoutJit(tx);
      return billableUsersPage(tx, orgId, facts, p);
    });

  return {
    estimate: (ctx: RequestContext): Promise<Estimate> =>
      db.prisma.$transaction(async (tx) => {
        await withoutJit(tx);
        return estimateBill(tx, ctx.orgId, ctx.now, billing);
      }, { isolationLevel: Prisma.TransactionIsolationLevel.RepeatableRead, maxWait: 10_000, timeout: 60_000 }),

    async billableUsers(ctx: RequestContext, p: { cursor?: string | undefined; limit: number }): Promise<Page<BillableUser>> {
      return page(ctx.orgId, await orgBillingFacts(db.prisma, ctx.orgId, ctx.now), p);
    },

    /**
     * Every billable user, `batchSize` at a time, each batch read when the consumer pulls it
     * (the CSV export streams them). Each batch is its own read: the whole is not one snapshot.
     */
    async *allBillableUsers(ctx: RequestContext, batchSize = 1000): AsyncGenerator<BillableUser[]> {
      const facts = await orgBillingFacts(db.prisma, ctx.orgId, ctx.now);
      let cursor: string | undefined;
      do {
        const p = await page(ctx.orgId, facts, { cursor, limit: batchSize });
        if (p.items.length) yield p.items;
        cursor = p.next ?? undefined;
      } while (cursor);
    },
  };
}

export type BillingService = ReturnType<typeof createBillingService>;
