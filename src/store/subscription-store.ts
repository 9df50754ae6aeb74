import type { Tx } from './transaction.js';
import { NO_SUBSCRIPTION, type SubscriptionFacts } from '../domain/subscription.js';

export const subscriptionStore = {
  async create(tx: Tx, orgId: string): Promise<void> {
    await tx.subscription.create({ data: { orgId } });
  },
  async get(tx: Tx, orgId: string): Promise<SubscriptionFacts> {
    const s = await tx.subscription.findUnique({ where: { orgId } });
    if (!s) return NO_SUBSCRIPTION;
    const { orgId: _o, updatedAt: _u, ...facts } = s;
    return facts;
  },
  async update(tx: Tx, orgId: string, data: Partial<SubscriptionFacts>): Promise<SubscriptionFacts> {
    await tx.subscription.upsert({ where: { orgId }, create: { orgId, ...data }, update: data });
    return subscriptionStore.get(tx, orgId);
  },
};
