import type { Database } from '../store/database.js';
import { migrate, type MigrateResult } from '../store/migrator.js';
import { auditStore } from '../store/audit-store.js';
import { inSqlTransaction } from '../store/transaction.js';
import { syncBillability } from './billability-sync.js';

/** The migration that made SPEC §3's rule a guarantee of the schema and repaired what broke it. */
export const SYNCED_RULE_MIGRATION = '20261207000000_synced_never_non_billable';

/**
 * Applies the pending migrations, then finishes in the services what a migration's SQL cannot:
 * the migration above moved synced accounts out of non-billable policies (each with its audit
 * row), and their billability — the domain's rule, not SQL's — is recomputed here, writing the
 * billable deltas (cause `migration-synced-account-left-non-billable-policy`). Run only when that
 * migration was applied now; a process stopped in between leaves the audit rows marked
 * `billabilitySynced: false`, which the next call after a migration picks up, and nightly
 * reconciliation corrects the bill meanwhile.
 */
export async function migrateAndRepair(db: Database): Promise<MigrateResult & { repaired: number }> {
  const result = await migrate(db);
  if (!result.applied.includes(SYNCED_RULE_MIGRATION)) return { ...result, repaired: 0 };
  let repaired = 0;
  for (const { orgId, accountIds } of await auditStore.unsyncedMigrationMoves(db.prisma, SYNCED_RULE_MIGRATION)) {
    await inSqlTransaction(db, async (tx) => {
      const ctx = { orgId, actor: { kind: 'system', name: 'migration' } as const, requestId: null, now: new Date() };
      await syncBillability(tx, ctx, accountIds, 'migration-synced-account-left-non-billable-policy');
      await auditStore.markMigrationMovesSynced(tx, orgId, SYNCED_RULE_MIGRATION);
    });
    repaired += accountIds.length;
  }
  return { ...result, repaired };
}
