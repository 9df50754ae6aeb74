import type { SqlTx, Tx } from './transaction.js';
import { NO_SUBSCRIPTION, type SubscriptionFacts } from '../domain/subscription.js';
import type { Plan } from '../domain/types.js';

export type PlanChange = { changedAt: Date; fromPlan: Plan | null; toPlan: Plan | null };

export const subscriptionStore = {
  async create(tx: Tx, orgId: string): Promise<void> {
    await tx.subscription.create({ data: { orgId } });
  },
  /** One raw statement (billability sync reads it on every change, on the SCIM write path too). */
  async get(tx: SqlTx, orgId: string): Promise<SubscriptionFacts> {
    const rows = await tx.$queryRaw<SubscriptionFacts[]>`
      SELECT "edition"::text AS "edition", "plan"::text AS "plan", "cycle"::text AS "cycle", "trialStartedAt", "trialEndsAt",
             "paymentMethodAddedAt", "activatedAt", "cancelledAt", "firstPaidAt"
      FROM "Subscription" WHERE "orgId" = ${orgId}::uuid`;
    return rows[0] ?? NO_SUBSCRIPTION;
  },
  /**
   * Records a plan change at the database time of the current transaction — the `occurredAt`
   * its billable deltas get — so the estimate's plan segments and the ledger agree to the
   * millisecond. Nothing when the plan stays.
   */
  async recordPlanChange(tx: SqlTx, orgId: string, from: Plan | null, to: Plan | null): Promise<void> {
    if (from === to) return;
    await tx.$executeRaw`
      INSERT INTO "SubscriptionPlanChange" ("orgId", "changedAt", "fromPlan", "toPlan")
      VALUES (${orgId}::uuid, now(), ${from}::"Plan", ${to}::"Plan")`;
  },
  /** The plan changes made after `from` and before `to`, oldest first. */
  async planChanges(tx: SqlTx, orgId: string, from: Date, to: Date): Promise<PlanChange[]> {
    return tx.$queryRaw<PlanChange[]>`
      SELECT "changedAt", "fromPlan"::text AS "fromPlan", "toPlan"::text AS "toPlan"
      FROM "SubscriptionPlanChange"
      WHERE "orgId" = ${orgId}::uuid AND "changedAt" > ${from}::timestamptz AND "changedAt" < ${to}::timestamptz
      ORDER BY "changedAt", "id"`;
  },
  /** The plan in force at `at`: the `fromPlan` of the first change after it, else the current plan. */
  async planAt(tx: SqlTx, orgId: string, at: Date, current: Plan | null): Promise<Plan | null> {
    const rows = await tx.$queryRaw<Array<{ fromPlan: Plan | null }>>`
      SELECT "fromPlan"::text AS "fromPlan" FROM "SubscriptionPlanChange"
      WHERE "orgId" = ${orgId}::uuid AND "changedAt" > ${at}::timestamptz
      ORDER BY "changedAt", "id" LIMIT 1`;
    return rows.length ? rows[0]!.fromPlan : current;
  },
  async update(tx: Tx, orgId: string, data: Partial<SubscriptionFacts>): Promise<SubscriptionFacts> {
    await tx.subscription.upsert({ where: { orgId }, create: { orgId, ...data }, update: data });
    return subscriptionStore.get(tx, orgId);
  },
};
