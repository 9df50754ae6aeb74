import { Prisma } from '../generated/prisma/client.js';
import type { Database } from '../store/database.js';
import type { Tx } from '../store/transaction.js';
import type { Page } from '../store/paging.js';
import { subscriptionStore } from '../store/subscription-store.js';
import { pricedAtDifference } from '../domain/billability.js';
import { subscriptionStatus, type SubscriptionState } from '../domain/subscription.js';
import { billingPeriod, premiumTiersFrom, price, type BillingPeriod, type PriceBook, type PriceTier, type TierLine } from '../domain/pricing.js';
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
export async function periodBillableUsers(tx: Tx, orgId: string, period: BillingPeriod): Promise<PeriodUser[]> {
  return tx.$queryRaw<PeriodUser[]>`
    WITH e AS (
      SELECT "accountId", "kind", "reasons", "occurredAt", "streamSeq"
      FROM "LedgerEntry"
      WHERE "orgId" = ${orgId}::uuid AND "occurredAt" < ${period.end}::timestamptz
    ),
    at_start AS (
      SELECT DISTINCT ON ("accountId") "accountId", "kind"
      FROM e WHERE "occurredAt" < ${period.start}::timestamptz
      ORDER BY "accountId", "streamSeq" DESC
    ),
    users AS (
      SELECT "accountId" FROM at_start WHERE "kind" = 'added'
      UNION
      SELECT "accountId" FROM e WHERE "occurredAt" >= ${period.start}::timestamptz AND "kind" = 'added'
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
 * What the bill of the current period will be (SPEC §4, §5): the count now, the period's unique
 * billable users from the ledger, and their tiered price. Read in one REPEATABLE READ snapshot
 * so the count, the ledger and the subscription agree with each other.
 *
 * Premium users are priced at the difference when they are covered by Cloud Enterprise: for an
 * account billable now, by its current reasons; for one no longer billable, by the reasons of
 * its latest `added` ledger entry.
 */
export async function estimateBill(tx: Tx, orgId: string, now: Date, billing: EstimateConfig): Promise<Estimate> {
  const status = subscriptionStatus(await subscriptionStore.get(tx, orgId), now);
  const anchor = status.activeSince ?? (status.state === 'trial' ? status.trialEndsAt : null);
  const period = billingPeriod(status.cycle, anchor, now);
  const current = await billableSet(tx, orgId, now);
  const periodUsers = await periodBillableUsers(tx, orgId, period);

  let billableNow = 0;
  for (const b of current.values()) if (b.billable) billableNow++;
  const differenceUsers = status.plan === 'premium'
    ? periodUsers.filter((u) => {
      const c = current.get(u.accountId);
      return pricedAtDifference(c?.billable ? c.reasons : u.reasons);
    }).length
    : 0;

  const book: PriceBook = { standard: billing.tiers, premium: billing.premiumTiers ?? premiumTiersFrom(billing.tiers) };
  const p = price(book, { users: periodUsers.length, differenceUsers, plan: status.plan, edition: status.edition, cycle: status.cycle });
  return {
    billableUsers: billableNow,
    periodBillableUsers: periodUsers.length,
    priceDifferenceUsers: differenceUsers,
    amount: p.amount,
    currency: billing.currency,
    cycle: status.cycle,
    plan: status.plan,
    edition: status.edition,
    state: status.state,
    periodStart: period.start,
    periodEnd: period.end,
    monthsCharged: p.monthsCharged,
    free: p.free,
    tiers: p.tiers,
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
