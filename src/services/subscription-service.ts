import type { Database } from '../store/database.js';
import { inTransaction, lockOrg, type Tx } from '../store/transaction.js';
import { subscriptionStore } from '../store/subscription-store.js';
import { domainStore } from '../store/domain-store.js';
import { Conflict, PolicyViolation } from '../domain/errors.js';
import { firstPaidStart, subscriptionStatus, trialEnd, type SubscriptionFacts, type SubscriptionStatus } from '../domain/subscription.js';
import type { BillingCycle, Plan } from '../domain/types.js';
import { audit } from './audit.js';
import { syncBillability } from './billability-sync.js';
import type { RequestContext } from './context.js';

export const subscriptionView = (s: SubscriptionStatus) => ({
  plan: s.plan, state: s.state, cycle: s.cycle, edition: s.edition, trialEndsAt: s.trialEndsAt, paymentMethod: s.paymentMethod,
  activeSince: s.activeSince, unsubscribedAt: s.unsubscribedAt, retentionEndsAt: s.retentionEndsAt, refundEligible: s.refundEligible,
});

/**
 * The lifecycle calls of API.md. Each one locks the org, checks the state it starts from,
 * writes the new facts, audits, and recomputes billability when the state changed
 * (unsubscribing takes every account off the bill at once).
 */
export function createSubscriptionService(db: Database) {
  async function change(
    ctx: RequestContext, action: string,
    fn: (tx: Tx, facts: SubscriptionFacts, status: SubscriptionStatus) => Promise<Partial<SubscriptionFacts>>,
  ) {
    return inTransaction(db, async (tx) => {
      await lockOrg(tx, ctx.orgId);
      const facts = await subscriptionStore.get(tx, ctx.orgId);
      const before = subscriptionStatus(facts, ctx.now);
      const patch = await fn(tx, facts, before);
      const after = subscriptionStatus(await subscriptionStore.update(tx, ctx.orgId, patch), ctx.now);
      // Kept for the estimate's plan segments (docs/billing.md).
      await subscriptionStore.recordPlanChange(tx, ctx.orgId, before.plan, after.plan);
      await audit(tx, ctx, { action, targetType: 'subscription', targetId: ctx.orgId, before: subscriptionView(before), after: subscriptionView(after) });
      // The plan decides billability too (Premium counts external accounts, only Jira/Confluence).
      if (before.state !== after.state) await syncBillability(tx, ctx, 'all', `subscription-${after.state}`);
      else if (before.plan !== after.plan) await syncBillability(tx, ctx, 'all', 'plan-changed');
      return subscriptionView(after);
    });
  }

  return {
    async get(ctx: RequestContext) {
      return subscriptionView(subscriptionStatus(await subscriptionStore.get(db.prisma, ctx.orgId), ctx.now));
    },

    startTrial: (ctx: RequestContext, input: { plan?: Plan | undefined }) =>
      change(ctx, 'subscription.trial.start', async (tx, facts, status) => {
        if (status.state !== 'none' || facts.trialStartedAt) {
          throw new Conflict('trial-unavailable', `a trial starts once, from no subscription; this org's subscription is ${status.state}${facts.trialStartedAt ? ' and a trial was already used' : ''}`);
        }
        const verified = (await domainStore.list(tx, ctx.orgId)).some((d) => d.verified);
        if (!verified) throw new PolicyViolation('trial-needs-verified-domain', 'Verify a domain of the org before starting a trial.');
        return { trialStartedAt: ctx.now, trialEndsAt: trialEnd(ctx.now), plan: input.plan ?? 'standard' };
      }),

    addPaymentMethod: (ctx: RequestContext, input: { cycle?: BillingCycle | undefined; plan?: Plan | undefined }) =>
      change(ctx, 'subscription.payment-method.add', async (_tx, facts) => ({
        paymentMethodAddedAt: facts.paymentMethodAddedAt ?? ctx.now,
        ...(input.cycle ? { cycle: input.cycle } : {}),
        ...(input.plan ? { plan: input.plan } : {}),
      })),

    cancel: (ctx: RequestContext) =>
      change(ctx, 'subscription.cancel', async (_tx, _facts, status) => {
        if (status.state !== 'trial' && status.state !== 'active') {
          throw new Conflict('not-subscribed', `there is nothing to cancel: the subscription is ${status.state}`);
        }
        return { cancelledAt: ctx.now };
      }),

    resubscribe: (ctx: RequestContext, input: { plan?: Plan | undefined; cycle?: BillingCycle | undefined }) =>
      change(ctx, 'subscription.resubscribe', async (_tx, facts, status) => {
        if (status.state !== 'unsubscribed') throw new Conflict('not-unsubscribed', `only an unsubscribed org can resubscribe; this one is ${status.state}`);
        if (!facts.paymentMethodAddedAt) throw new Conflict('payment-method-required', 'add a payment method (POST subscription/payment-method) before resubscribing');
        return {
          // The refund window stays the first paid month's: a resubscribe never reopens it.
          firstPaidAt: firstPaidStart(facts) ?? ctx.now,
          activatedAt: ctx.now, cancelledAt: null, plan: input.plan ?? facts.plan ?? 'standard',
          ...(input.cycle ? { cycle: input.cycle } : {}),
        };
      }),
  };
}

export type SubscriptionService = ReturnType<typeof createSubscriptionService>;
