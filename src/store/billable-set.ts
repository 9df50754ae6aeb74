import { Prisma } from '../generated/prisma/client.js';
import type { SqlTx, Tx } from './transaction.js';
import { decodeCursor, encodeCursor, type Page } from './paging.js';
import { subscriptionStore } from './subscription-store.js';
import { PREMIUM_PRODUCTS, REASONS, subscriptionBills, type Billability } from '../domain/billability.js';
import { subscriptionStatus, type SubscriptionState } from '../domain/subscription.js';
import { PRODUCTS, type AccountStatus, type Plan, type Product } from '../domain/types.js';

/**
 * SPEC §5 — the rule of src/domain/billability.ts — as set-based SQL: one query answers for
 * every account of an org (or the given ones), with the same `billable` and the same reasons in
 * the same order. test/billing/billable-set.property.test.ts checks on random orgs that the two
 * agree account by account.
 *
 * The subscription state and plan are org-wide facts: they are computed in TypeScript from the
 * Subscription row (src/domain/subscription.ts, as of `now`) and passed in as parameters.
 *
 * The SQL is built from three shared fragments, so the set form (billableSet: one GROUP BY over
 * the org's access rows, hash-joined to its accounts) and the paged form (billableUsersPage:
 * accounts in keyset order, access aggregated per account through a LATERAL join, so a page
 * reads only its accounts' rows) decide with literally the same expression:
 *   accessRowsSql — one row per access grant with the facts the rule needs (its product as a bit);
 *   accessAggSql  — those rows folded per account (bit_or / bool_or: hash-aggregatable);
 *   decisionSql   — blockers and positive reasons from the account, its policy and the fold.
 */

export type OrgBillingFacts = { state: SubscriptionState; plan: Plan | null };

/** The org's subscription state and plan as of `now`, as the rule needs them. */
export async function orgBillingFacts(tx: SqlTx, orgId: string, now: Date): Promise<OrgBillingFacts> {
  const status = subscriptionStatus(await subscriptionStore.get(tx, orgId), now);
  return { state: status.state, plan: status.plan };
}

/**
 * orgBillingFacts for a decision about the database as it is now (billability sync,
 * reconciliation): `now` is raised to the clock reading taken after the Subscription row was
 * read, when it is earlier. A change stamps the row with its request's time (cancelledAt,
 * activatedAt), so a caller whose `now` was taken before that request started (a nightly tick,
 * a request that waited on a lock) would judge a committed cancel "not yet happened" and write
 * deltas for a state the database no longer holds (test/billing/stale-now.test.ts). Every change
 * visible to the read committed before it, so its stamp is at most this reading. A `now` in the
 * future (a test of a time-based rule) is kept.
 */
export async function currentBillingFacts(tx: SqlTx, orgId: string, now: Date): Promise<OrgBillingFacts> {
  const row = await subscriptionStore.get(tx, orgId);
  const clock = Date.now();
  const status = subscriptionStatus(row, now.getTime() >= clock ? now : new Date(clock));
  return { state: status.state, plan: status.plan };
}

/**
 * Turns JIT compilation off for the rest of the transaction. PostgreSQL JIT-compiles plans
 * costed above 100k; the keyset page's LATERAL plan is costed high (the planner cannot know
 * most accounts are billable) though it reads a page of rows in ~2 ms, and compiling took
 * ~350 ms per page. The set query gains nothing from it either. Needs a transaction (SET LOCAL).
 */
export async function withoutJit(tx: SqlTx): Promise<void> {
  await tx.$executeRaw`SET LOCAL jit = off`;
}

/** uuid[] parameter that both the PGlite and the pg adapters pass the same way. */
const uuidArray = (ids: readonly string[]) => Prisma.sql`string_to_array(${ids.join(',')}, ',')::uuid[]`;

/**
 * Products as bits, in the order the pure rule lists them (`[...].sort()`), so an account's
 * products fold with bit_or — a cheap, hashable aggregate — and unfold into sorted reasons.
 */
const SORTED_PRODUCTS: readonly Product[] = [...PRODUCTS].sort();
const bitOf = (p: Product) => 1 << SORTED_PRODUCTS.indexOf(p);
const ALL_PRODUCTS_MASK = SORTED_PRODUCTS.reduce((m, p) => m | bitOf(p), 0);
const PREMIUM_MASK = [...PREMIUM_PRODUCTS].reduce((m, p) => m | bitOf(p), 0);

/** One row per access grant: portal-only customer? on an Enterprise site? its product's bit. */
const accessRowsSql = Prisma.sql`
  SELECT pa."accountId",
         (pa."product" = 'jsm' AND pa."role" = 'customer') AS portal,
         s."enterprise" AS enterprise,
         (CASE pa."product"::text ${Prisma.join(SORTED_PRODUCTS.map((p) => Prisma.sql`WHEN ${p}::text THEN ${bitOf(p)}::int`), ' ')} END) AS bit
  FROM "ProductAccess" pa
  JOIN "Site" s ON s."id" = pa."siteId"`;

/** Per account: counted access (not portal-only) as a product mask, portal-only grants, Enterprise coverage. */
const accessAggSql = Prisma.sql`
  bit_or(x.bit) FILTER (WHERE NOT x.portal) AS counted_mask,
  bool_or(x.portal) AS portal,
  bool_or(NOT x.portal AND x.enterprise) AS covered`;

/**
 * `blockers` (why not, in the pure function's order) and `positive` (why yes) for account `a`,
 * its policy `p` (may be null) and its access fold `g` (null, or null columns, without access).
 */
function decisionSql(facts: OrgBillingFacts): Prisma.Sql {
  const premium = facts.plan === 'premium';
  const subscribed = subscriptionBills(facts.state);
  const counted = Prisma.sql`COALESCE(g.counted_mask, 0)`;
  const onPlan = Prisma.sql`(${counted} & ${premium ? PREMIUM_MASK : ALL_PRODUCTS_MASK}::int)`;
  const planAccess = Prisma.join(
    SORTED_PRODUCTS.map((p) => Prisma.sql`CASE WHEN ${onPlan} & ${bitOf(p)}::int <> 0 THEN ${REASONS.access(p)}::text END`),
    ', ',
  );
  return Prisma.sql`
    SELECT array_remove(ARRAY[
             CASE WHEN NOT ${subscribed}::boolean THEN ${REASONS.subscription(facts.state)}::text END,
             CASE WHEN NOT ${premium}::boolean AND NOT a."managed" THEN ${REASONS.external}::text END,
             CASE WHEN a."status" <> 'active' THEN ${REASONS.disabled}::text END,
             CASE WHEN ${onPlan} = 0 THEN
               CASE WHEN ${counted} <> 0 THEN ${REASONS.noPremiumProductAccess}::text
                    WHEN COALESCE(g.portal, false) THEN ${REASONS.jsmPortalOnly}::text
                    ELSE ${REASONS.noProductAccess}::text END
             END,
             CASE WHEN NOT ${premium}::boolean AND COALESCE(p."nonBillable", false) THEN ${REASONS.nonBillablePolicy}::text END,
             CASE WHEN NOT ${premium}::boolean AND COALESCE(g.covered, false) THEN ${REASONS.enterpriseCovered}::text END
           ]::text[], NULL) AS blockers,
           array_remove(ARRAY[
             CASE WHEN a."managed" THEN ${REASONS.managed}::text ELSE ${REASONS.externalCounted}::text END,
             ${REASONS.active}::text,
             ${planAccess},
             CASE WHEN ${premium}::boolean AND COALESCE(g.covered, false) THEN ${REASONS.priceDifferenceEnterprise}::text END
           ]::text[], NULL) AS positive`;
}

type EvaluatedRow = { id: string; stored: boolean; billable: boolean; reasons: string[] };

/**
 * The rule for every account of the org (or the given ids), with each account's stored
 * `billable` flag, in no particular order. One query. `accountIds: []` answers for no account.
 */
export async function evaluateBillability(tx: SqlTx, orgId: string, facts: OrgBillingFacts, opts: { accountIds?: readonly string[] } = {}): Promise<EvaluatedRow[]> {
  const ids = opts.accountIds;
  if (ids && ids.length === 0) return [];
  // IN (SELECT unnest(…)): a semi-join the planner can hash or drive by index, where = ANY(array)
  // would compare every row with every id.
  const accountFilter = ids ? Prisma.sql`AND a."id" IN (SELECT unnest(${uuidArray(ids)}))` : Prisma.empty;
  const accessFilter = ids ? Prisma.sql`AND pa."accountId" IN (SELECT unnest(${uuidArray(ids)}))` : Prisma.empty;
  return tx.$queryRaw<EvaluatedRow[]>`
    SELECT a."id"::text AS id, a."billable" AS stored,
           cardinality(d.blockers) = 0 AS billable,
           CASE WHEN cardinality(d.blockers) = 0 THEN d.positive ELSE d.blockers END AS reasons
    FROM "Account" a
    LEFT JOIN "Policy" p ON p."id" = a."policyId"
    LEFT JOIN (
      SELECT x."accountId", ${accessAggSql}
      FROM (${accessRowsSql} WHERE pa."orgId" = ${orgId}::uuid ${accessFilter}) x
      GROUP BY x."accountId"
    ) g ON g."accountId" = a."id"
    CROSS JOIN LATERAL (${decisionSql(facts)}) d
    WHERE a."orgId" = ${orgId}::uuid ${accountFilter}`;
}

/**
 * Who is billable, and why, for every account of the org (or only `opts.accountIds`), as of
 * `now` (`current`: not earlier than the read, see currentBillingFacts): one set-based query. Used by billability sync, the estimate and reconciliation.
 */
export async function billableSet(
  tx: Tx, orgId: string, now: Date, opts?: { accountIds?: string[]; current?: boolean },
): Promise<Map<string, { billable: boolean; reasons: string[] }>> {
  if (opts?.accountIds && opts.accountIds.length === 0) return new Map();
  const facts = opts?.current ? await currentBillingFacts(tx, orgId, now) : await orgBillingFacts(tx, orgId, now);
  const rows = await evaluateBillability(tx, orgId, facts, opts?.accountIds ? { accountIds: opts.accountIds } : {});
  return new Map(rows.map((r): [string, Billability] => [r.id, { billable: r.billable, reasons: r.reasons }]));
}

export type BillableUser = {
  accountId: string; email: string; displayName: string | null; managed: boolean; status: AccountStatus;
  billable: true; reasons: string[];
};

type BillableUserRow = Omit<BillableUser, 'billable'> & { createdAt: Date };

/**
 * One page of the org's billable accounts in creation order (keyset on (createdAt, id)): the
 * rule is evaluated in SQL for accounts after the cursor until `limit` + 1 billable ones are
 * found, so a page costs its own rows, not the org's.
 */
export async function billableUsersPage(
  tx: Tx, orgId: string, facts: OrgBillingFacts, page: { cursor?: string | undefined; limit: number },
): Promise<Page<BillableUser>> {
  if (!subscriptionBills(facts.state)) return { items: [], next: null };
  const after = page.cursor ? decodeCursor(page.cursor) : null;
  const keyset = after ? Prisma.sql`AND (a."createdAt", a."id") > (${after.createdAt}::timestamptz, ${after.id}::uuid)` : Prisma.empty;
  const rows = await tx.$queryRaw<BillableUserRow[]>`
    SELECT a."id"::text AS "accountId", a."email", a."displayName", a."managed", a."status"::text AS status,
           a."createdAt", d.positive AS reasons
    FROM "Account" a
    LEFT JOIN "Policy" p ON p."id" = a."policyId"
    CROSS JOIN LATERAL (
      SELECT ${accessAggSql} FROM (${accessRowsSql} WHERE pa."accountId" = a."id") x
    ) g
    CROSS JOIN LATERAL (${decisionSql(facts)}) d
    WHERE a."orgId" = ${orgId}::uuid ${keyset} AND cardinality(d.blockers) = 0
    ORDER BY a."createdAt", a."id"
    LIMIT ${page.limit + 1}::int`;
  const items = rows.slice(0, page.limit);
  const last = items.at(-1);
  return {
    items: items.map(({ createdAt: _c, ...r }) => ({ ...r, billable: true as const })),
    next: rows.length > page.limit && last ? encodeCursor({ createdAt: last.createdAt, id: last.accountId }) : null,
  };
}
