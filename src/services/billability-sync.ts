import { deferWrite, type SqlTx, type Tx } from '../store/transaction.js';
import { deltaStore, type NewDelta } from '../store/delta-store.js';
import type { Billability } from '../domain/billability.js';
import { currentBillingFacts, evaluateBillability, withoutJit } from '../store/billable-set.js';
import type { RequestContext } from './context.js';

/**
 * Recomputes billability for the accounts a change touched (or all of the org's), inside the
 * change's transaction, and writes a billable delta for each account whose answer flipped
 * (SPEC §6): no delta without its change, no change without its delta, no delta when nothing
 * flipped. The answer comes from the set-based form of the rule (src/billing/billable-set.ts),
 * one query whatever the number of accounts.
 */
export async function syncBillability(tx: SqlTx, ctx: RequestContext, accountIds: string[] | 'all', cause: string): Promise<NewDelta[]> {
  const ids = accountIds === 'all' ? undefined : [...new Set(accountIds)];
  if (ids && !ids.length) return [];
  if (!ids) await withoutJit(tx); // the whole org: a plan big enough to tempt the JIT, for nothing
  // Two transactions changing one account must not both compare against the same stored flag
  // (both would write 'added'): lock the rows, in id order so lockers never wait on each other
  // in a cycle, and read the flags after the lock (READ COMMITTED: a fresh snapshot per statement).
  await deferWrite(tx, lockAccounts(tx, ctx.orgId, ids));
  const rows = await evaluateBillability(tx, ctx.orgId, await currentBillingFacts(tx, ctx.orgId, ctx.now), ids ? { accountIds: ids } : {});
  const deltas: NewDelta[] = rows
    .filter((r) => r.billable !== r.stored)
    .map((r) => ({ accountId: r.id, kind: r.billable ? 'added' : 'removed', reasons: r.reasons, cause }));
  // No answer needed from these: in a raw transaction they go out with the COMMIT (deferWrite).
  await deferWrite(tx, setBillable(tx, ctx, deltas.filter((d) => d.kind === 'added').map((d) => d.accountId), true));
  await deferWrite(tx, setBillable(tx, ctx, deltas.filter((d) => d.kind === 'removed').map((d) => d.accountId), false));
  await deferWrite(tx, deltaStore.append(tx, ctx.orgId, deltas));
  return deltas;
}

async function lockAccounts(tx: SqlTx, orgId: string, ids: string[] | undefined): Promise<void> {
  if (ids) {
    await tx.$executeRaw`
      SELECT 1 FROM "Account" WHERE "orgId" = ${orgId}::uuid AND "id" = ANY(string_to_array(${[...ids].sort().join(',')}, ',')::uuid[])
      ORDER BY "id" FOR UPDATE`;
  } else {
    await tx.$executeRaw`SELECT 1 FROM "Account" WHERE "orgId" = ${orgId}::uuid ORDER BY "id" FOR UPDATE`;
  }
}

/** One statement whatever the number of accounts (no bind-parameter limit: the ids travel as one array, joined, not scanned per row). */
async function setBillable(tx: SqlTx, ctx: RequestContext, ids: string[], billable: boolean): Promise<void> {
  if (!ids.length) return;
  await tx.$executeRaw`
    UPDATE "Account" a SET "billable" = ${billable}::boolean, "updatedAt" = ${ctx.now}::timestamptz
    FROM unnest(string_to_array(${ids.join(',')}, ',')::uuid[]) AS j(id)
    WHERE a."orgId" = ${ctx.orgId}::uuid AND a."id" = j.id`;
}

/** The live answers for some accounts, with their reasons, for display. */
export async function currentBillability(tx: SqlTx, ctx: RequestContext, accountIds: string[]): Promise<Map<string, Billability>> {
  if (!accountIds.length) return new Map();
  const rows = await evaluateBillability(tx, ctx.orgId, await currentBillingFacts(tx, ctx.orgId, ctx.now), { accountIds });
  return new Map(rows.map((r) => [r.id, { billable: r.billable, reasons: r.reasons }]));
}
