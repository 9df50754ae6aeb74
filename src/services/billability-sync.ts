import type { Tx } from '../store/transaction.js';
import { accountStore } from '../store/account-store.js';
import { deltaStore, type NewDelta } from '../store/delta-store.js';
import { subscriptionStore } from '../store/subscription-store.js';
import { billability, type Billability } from '../domain/billability.js';
import { subscriptionStatus } from '../domain/subscription.js';
import type { RequestContext } from './context.js';

/**
 * Recomputes billability for the accounts a change touched, inside the change's transaction,
 * and writes a billable delta for each account whose answer flipped (SPEC §6): no delta
 * without its change, no change without its delta, no delta when nothing flipped.
 */
export async function syncBillability(tx: Tx, ctx: RequestContext, accountIds: string[] | 'all', cause: string): Promise<NewDelta[]> {
  const ids = accountIds === 'all' ? await accountStore.allIds(tx, ctx.orgId) : [...new Set(accountIds)];
  if (!ids.length) return [];
  const { state } = subscriptionStatus(await subscriptionStore.get(tx, ctx.orgId), ctx.now);
  const facts = await accountStore.billabilityFacts(tx, ctx.orgId, ids);
  const deltas: NewDelta[] = [];
  for (const f of facts) {
    const b = billability({ ...f, subscriptionState: state });
    if (b.billable !== f.billable) deltas.push({ accountId: f.id, kind: b.billable ? 'added' : 'removed', reasons: b.reasons, cause });
  }
  await accountStore.setBillable(tx, ctx.orgId, deltas.filter((d) => d.kind === 'added').map((d) => d.accountId), true);
  await accountStore.setBillable(tx, ctx.orgId, deltas.filter((d) => d.kind === 'removed').map((d) => d.accountId), false);
  await deltaStore.append(tx, ctx.orgId, deltas);
  return deltas;
}

/** The live answers for some accounts, with their reasons, for display. */
export async function currentBillability(tx: Tx, ctx: RequestContext, accountIds: string[]): Promise<Map<string, Billability>> {
  const { state } = subscriptionStatus(await subscriptionStore.get(tx, ctx.orgId), ctx.now);
  const facts = await accountStore.billabilityFacts(tx, ctx.orgId, accountIds);
  return new Map(facts.map((f) => [f.id, billability({ ...f, subscriptionState: state })]));
}
