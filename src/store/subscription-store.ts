import type { SqlTx, Tx } from './transaction.js';
import { NO_SUBSCRIPTION, type SubscriptionFacts } from '../domain/subscription.js';

export const subscriptionStore = {
  async create(tx: Tx, orgId: string): Promise<void> {
    await tx.subscription.create({ data: { orgId } });
  },
  /** One raw statement (billability sync reads it on every change, on the SCIM write path too). */
  async get(tx: SqlTx, orgId: string): Promise<SubscriptionFacts> {
    const rows = await tx.$queryRaw<SubscriptionFacts[]>`
      SELECT "edition"::text AS "edition", "plan"::text AS "plan", "cycle"::text AS "cycle", "trialStartedAt", "trialEndsAt",
             "paymentMethodAddedAt", "activatedAt", "cancelledAt"
      FROM "Subscription" WHERE "orgId" = ${orgId}::uuid`;
    return rows[0] ?? NO_SUBSCRIPTION;
  },
  async update(tx: Tx, orgId: string, data: Partial<SubscriptionFacts>): Promise<SubscriptionFacts> {
    await tx.subscription.upsert({ where: { orgId }, create: { orgId, ...data }, update: data });
    return subscriptionStore.get(tx, orgId);
  },
};
