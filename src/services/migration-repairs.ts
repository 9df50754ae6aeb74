import type { Database } from '../store/database.js';
import { migrate, type MigrateResult } from '../store/migrator.js';
import { auditStore } from '../store/audit-store.js';
import { inSqlTransaction } from '../store/transaction.js';
import { syncBillability } from './billability-sync.js';
import { webhookStore } from '../billing/ledger-store.js';
import { sealWebhookSecret } from '../billing/webhook-secret.js';
import type { SecretBox } from './secret-box.js';

/** The migration that made SPEC §3's rule a guarantee of the schema and repaired what broke it. */
export const SYNCED_RULE_MIGRATION = '20261207000000_synced_never_non_billable';

/**
 * Applies the pending migrations, then finishes in the services what a migration's SQL cannot.
 * Billing webhook secrets still in plaintext are sealed with `box` (see
 * sealPlaintextWebhookSecrets). And
 * the migration above moved synced accounts out of non-billable policies (each with its audit
 * row), and their billability — the domain's rule, not SQL's — is recomputed here, writing the
 * billable deltas (cause `migration-synced-account-left-non-billable-policy`). Run only when that
 * migration was applied now; a process stopped in between leaves the audit rows marked
 * `billabilitySynced: false`, which the next call after a migration picks up, and nightly
 * reconciliation corrects the bill meanwhile.
 */
export async function migrateAndRepair(
  db: Database, opts: { box?: SecretBox | null } = {},
): Promise<MigrateResult & { repaired: number; webhookSecretsSealed: number | null }> {
  const result = await migrate(db);
  const webhookSecretsSealed = opts.box ? await sealPlaintextWebhookSecrets(db, opts.box) : null;
  if (!result.applied.includes(SYNCED_RULE_MIGRATION)) return { ...result, repaired: 0, webhookSecretsSealed };
  let repaired = 0;
  for (const { orgId, accountIds } of await auditStore.unsyncedMigrationMoves(db.prisma, SYNCED_RULE_MIGRATION)) {
    await inSqlTransaction(db, async (tx) => {
      const ctx = { orgId, actor: { kind: 'system', name: 'migration' } as const, requestId: null, now: new Date() };
      await syncBillability(tx, ctx, accountIds, 'migration-synced-account-left-non-billable-policy');
      await auditStore.markMigrationMovesSynced(tx, orgId, SYNCED_RULE_MIGRATION);
    });
    repaired += accountIds.length;
  }
  return { ...result, repaired, webhookSecretsSealed };
}

/**
 * Migration 20261207110000 moved billing webhook secrets to a sealed column; SQL cannot seal
 * (the key is SECRET_KEY), so the rows still in plaintext are sealed here, after every migration
 * run: cheap when there are none, and it finishes what an earlier run skipped. Skipped (the
 * caller passes no box) when this process's key would not outlive it — sealing under a key that
 * is lost at restart would destroy working secrets; the warning at startup says so. Each row is
 * replaced only if it still holds the plaintext read, so a rotation in between wins.
 */
export async function sealPlaintextWebhookSecrets(db: Database, box: SecretBox): Promise<number> {
  let sealed = 0;
  for (const w of await webhookStore.plaintextSecrets(db.prisma)) {
    if (await webhookStore.replaceSecret(db.prisma, w.orgId, w.secretEnc, sealWebhookSecret(box, w.secretEnc))) sealed++;
  }
  return sealed;
}
