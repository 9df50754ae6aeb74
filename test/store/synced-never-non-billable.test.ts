/**
 * Issue 11 §1: "a synced account is never a member of a non-billable policy" is a guarantee of
 * the schema (migration 20261207000000_synced_never_non_billable), not of the services' reads.
 * Here the database itself is driven past the services: every raw write that would break the
 * rule is refused; the refusal reaches clients as the rule's 409; the migration repairs a
 * database that broke it before; reconciliation checks the rule and says so when it finds a
 * violation (which only a removed guarantee allows).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { billableAccount, billingOrg, createPolicy, invariantViolations, moveInto, pushUser, roundReport, type BillingOrg } from '../support/race.js';
import { inTransaction } from '../../src/store/transaction.js';
import { PolicyViolation } from '../../src/domain/errors.js';
import { migrateAndRepair, SYNCED_RULE_MIGRATION } from '../../src/services/migration-repairs.js';

let app: TestApp;
let org: BillingOrg;
let free: string;
beforeAll(async () => {
  app = await startTestApp();
  org = await billingOrg(app, 'Schema guarantee');
  free = await createPolicy(app, org, 'Free', { nonBillable: true });
});
afterAll(async () => {
  await app?.close();
});

const sql = (text: string, ...params: unknown[]) => app.svc.db.prisma.$executeRawUnsafe(text, ...params);
const rows = <T>(text: string, ...params: unknown[]) => app.svc.db.prisma.$queryRawUnsafe<T[]>(text, ...params);
const refusal = async (p: Promise<unknown>) => {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err, 'the database refused the write').not.toBeNull();
  return `${(err as Error).message} ${JSON.stringify((err as { meta?: unknown }).meta ?? {})}`;
};

async function syncedAccount(local: string): Promise<string> {
  const a = await billableAccount(app, org, local);
  expect((await pushUser(org, a.email)()).status).toBe(201);
  return a.id;
}

describe('the schema refuses every write that would put a synced account in a non-billable policy', () => {
  it('claiming (source := scim) an account that sits in the non-billable policy', async () => {
    const a = await billableAccount(app, org, 'raw-claim');
    await moveInto(app, org, free, [a.id]);
    expect(await refusal(sql(`UPDATE "Account" SET "source" = 'scim' WHERE "id" = $1::uuid`, a.id))).toContain('Account_synced_never_non_billable_check');
  });

  it('moving a synced account into the non-billable policy (the trigger takes the flag from the policy)', async () => {
    const id = await syncedAccount('raw-move');
    expect(await refusal(sql(`UPDATE "Account" SET "policyId" = $2::uuid WHERE "id" = $1::uuid`, id, free))).toContain('Account_synced_never_non_billable_check');
  });

  it('making a policy with a synced member non-billable (the flag cascades onto the member)', async () => {
    const id = await syncedAccount('raw-flip');
    const other = await createPolicy(app, org, 'Other');
    await app.http.delete(`${org.api}/policies/${free}`).set(org.auth).expect(200); // at most one non-billable policy per org
    await sql(`UPDATE "Account" SET "policyId" = $2::uuid WHERE "id" = $1::uuid`, id, other);
    expect(await refusal(sql(`UPDATE "Policy" SET "nonBillable" = true WHERE "id" = $1::uuid`, other))).toContain('Account_synced_never_non_billable_check');
    free = await createPolicy(app, org, 'Free again', { nonBillable: true });
  });

  it('a writer that states a wrong copy of the flag (the composite foreign key checks the pair)', async () => {
    const a = await billableAccount(app, org, 'raw-lie');
    await moveInto(app, org, free, [a.id]);
    expect(await refusal(sql(`UPDATE "Account" SET "policyNonBillable" = false WHERE "id" = $1::uuid`, a.id))).toContain('Account_policyId_policyNonBillable_fkey');
  });

  it('inserting a synced account straight into the non-billable policy', async () => {
    const msg = await refusal(sql(
      `INSERT INTO "Account" ("id", "orgId", "email", "emailNormalized", "emailDomain", "managed", "policyId", "source", "updatedAt")
       VALUES (gen_random_uuid(), $1::uuid, 'raw-insert@${org.domain}', 'raw-insert@${org.domain}', '${org.domain}', true, $2::uuid, 'scim', now())`,
      org.orgId, free,
    ));
    expect(msg).toContain('Account_synced_never_non_billable_check');
    expect(await invariantViolations(app, org.orgId)).toBe(0);
  });
});

describe('the backstop answers with the rule, never a 500', () => {
  it('a transaction tripping the schema guarantee ends in PolicyViolation non-billable-no-synced-accounts (retried first)', async () => {
    const a = await billableAccount(app, org, 'backstop');
    await moveInto(app, org, free, [a.id]);
    let attempts = 0;
    const err = await inTransaction(app.svc.db, async (tx) => {
      attempts++;
      await tx.$executeRawUnsafe(`UPDATE "Account" SET "source" = 'scim' WHERE "id" = $1::uuid`, a.id);
    }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(PolicyViolation);
    expect((err as PolicyViolation).rule).toBe('non-billable-no-synced-accounts');
    expect(attempts, 'retried like a deadlock before answering').toBeGreaterThan(1);
    const account = (await app.http.get(`${org.api}/accounts/${a.id}`).set(org.auth).expect(200)).body;
    expect([account.source, account.policyId]).toEqual(['manual', free]);
  });
});

/** The database as it was before the migration: no flag copy, the plain foreign key, no rule. */
async function revertGuarantee(): Promise<void> {
  for (const stmt of [
    `DROP TRIGGER "Account_policy_flag" ON "Account"`,
    `DROP FUNCTION "Account_policy_flag"()`,
    `ALTER TABLE "Account" DROP CONSTRAINT "Account_synced_never_non_billable_check"`,
    `ALTER TABLE "Account" DROP CONSTRAINT "Account_no_policy_no_flag_check"`,
    `ALTER TABLE "Account" DROP CONSTRAINT "Account_policyId_policyNonBillable_fkey"`,
    `ALTER TABLE "Account" DROP COLUMN "policyNonBillable"`,
    `DROP INDEX "Policy_id_nonBillable_key"`,
    `ALTER TABLE "Account" ADD CONSTRAINT "Account_policyId_fkey" FOREIGN KEY ("policyId") REFERENCES "Policy"("id") ON DELETE SET NULL ON UPDATE CASCADE`,
    `DELETE FROM "_prisma_migrations" WHERE "migration_name" = '${SYNCED_RULE_MIGRATION}'`,
  ]) await sql(stmt);
}

describe('the migration repairs a database that broke the rule before it', () => {
  it('moves each synced account out of the non-billable policy, with its audit row and billable delta', async () => {
    const ids = [await syncedAccount('legacy1'), await syncedAccount('legacy2')];
    const bystander = await billableAccount(app, org, 'legacy-manual');
    await moveInto(app, org, free, [bystander.id]);
    await revertGuarantee();
    // What the race of issue 11 left behind: synced accounts in the non-billable policy, unbilled.
    for (const id of ids) {
      await sql(`UPDATE "Account" SET "policyId" = $2::uuid, "billable" = false WHERE "id" = $1::uuid`, id, free);
      await sql(`INSERT INTO "BillableDelta" ("id", "orgId", "accountId", "kind", "reasons", "cause") VALUES (gen_random_uuid(), $1::uuid, $2::uuid, 'removed', '{}', 'policy-membership-changed')`, org.orgId, id);
    }
    expect(await invariantViolations(app, org.orgId)).toBe(2);

    const result = await migrateAndRepair(app.svc.db);
    expect(result.applied).toContain(SYNCED_RULE_MIGRATION);
    expect(result.repaired).toBe(2);

    expect(await invariantViolations(app, org.orgId)).toBe(0);
    for (const id of ids) {
      const account = (await app.http.get(`${org.api}/accounts/${id}`).set(org.auth).expect(200)).body;
      expect([account.policyId, account.billable]).toEqual([org.defaultPolicyId, true]);
      const [audit] = await rows<{ actor: string; before: unknown; after: { policyId: string; billabilitySynced: boolean } }>(
        `SELECT "actor", "before", "after" FROM "AuditEvent" WHERE "targetId" = $1 AND "action" = 'policy.members.move' AND "actor" = 'system:migration'`, id);
      expect(audit).toMatchObject({ actor: 'system:migration', before: { policyId: free, nonBillable: true }, after: { policyId: org.defaultPolicyId, billabilitySynced: true } });
      const [delta] = await rows<{ kind: string; cause: string }>(`SELECT "kind"::text AS kind, "cause" FROM "BillableDelta" WHERE "accountId" = $1::uuid ORDER BY "seq" DESC LIMIT 1`, id);
      expect(delta).toEqual({ kind: 'added', cause: 'migration-synced-account-left-non-billable-policy' });
    }
    // The manual member stays where the admin put it; the bill is whole again.
    expect((await app.http.get(`${org.api}/accounts/${bystander.id}`).set(org.auth).expect(200)).body.policyId).toBe(free);
    const report = await roundReport(app, org);
    expect(report).toMatchObject({ violations: 0, deltaDrift: 0, corrections: 0 });
    expect(report.estimate).toBe(report.flagged);
  });
});

describe('reconciliation checks the rule itself', () => {
  it('reports 0 violations on a sound org', async () => {
    const run = await app.http.post(`${org.api}/billing/reconciliations`).set(org.auth).send({}).expect(201);
    expect(run.body.invariantViolations).toBe(0);
  });

  it('finds, reports and repairs a violation once the guarantee was removed (never "0 corrections")', async () => {
    const id = await syncedAccount('drifted');
    await sql(`ALTER TABLE "Account" DROP CONSTRAINT "Account_synced_never_non_billable_check"`);
    try {
      await sql(`UPDATE "Account" SET "policyId" = $2::uuid, "billable" = false WHERE "id" = $1::uuid`, id, free);
      await sql(`INSERT INTO "BillableDelta" ("id", "orgId", "accountId", "kind", "reasons", "cause") VALUES (gen_random_uuid(), $1::uuid, $2::uuid, 'removed', '{}', 'test')`, org.orgId, id);
      const run = await app.http.post(`${org.api}/billing/reconciliations`).set(org.auth).send({}).expect(201);
      expect(run.body.invariantViolations).toBe(1);
      expect(run.body.corrections).toBeGreaterThanOrEqual(1);
      const stored = (await app.http.get(`${org.api}/billing/reconciliations/${run.body.id}`).set(org.auth).expect(200)).body;
      expect(stored.report.invariant).toEqual({ rule: 'non-billable-no-synced-accounts', violations: 1, accountIds: [id], flagDrift: 0 });
      const account = (await app.http.get(`${org.api}/accounts/${id}`).set(org.auth).expect(200)).body;
      expect([account.policyId, account.billable]).toEqual([org.defaultPolicyId, true]);
      expect(await invariantViolations(app, org.orgId)).toBe(0);
    } finally {
      await sql(`ALTER TABLE "Account" ADD CONSTRAINT "Account_synced_never_non_billable_check" CHECK (NOT ("source" = 'scim' AND "policyNonBillable"))`);
    }
  });
});
