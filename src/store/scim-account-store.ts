import { Prisma } from '../generated/prisma/client.js';
import type { SqlTx } from './transaction.js';
import type { AccountRow } from './account-store.js';

/**
 * The account reads and writes a SCIM push makes, each one statement: the account with what its
 * policy says (non-billable or not), and the creation of a synced account that decides `managed`
 * and the default policy in SQL. (account-store.ts needs two or three statements for each.)
 *
 * The policy's flag is read from the account row itself (Account.policyNonBillable, which the
 * composite foreign key keeps equal to the policy's: ON UPDATE CASCADE), not from a join: a claim
 * locks the account row and so reads the flag as the last committed policy change left it; a join
 * would read the Policy row from the statement's snapshot (docs/decisions.md, "Lock order").
 */
export type LinkedAccount = AccountRow & { policyNonBillable: boolean };

const columns = Prisma.sql`
  a."id"::text AS "id", a."orgId"::text AS "orgId", a."email", a."emailNormalized", a."displayName", a."givenName", a."familyName",
  a."managed", a."status"::text AS "status", a."source"::text AS "source", a."directoryId"::text AS "directoryId", a."externalId",
  a."policyId"::text AS "policyId", a."billable", a."createdAt", a."updatedAt", a."policyNonBillable"`;

/** The org's default policy (every org has one), as a subquery. */
const defaultPolicyOf = (orgId: string) => Prisma.sql`(SELECT p."id" FROM "Policy" p WHERE p."orgId" = ${orgId}::uuid AND p."isDefault" LIMIT 1)`;

export type NewSyncedAccount = {
  email: string; emailNormalized: string; emailDomain: string; displayName: string | null; givenName: string | null; familyName: string | null;
  directoryId: string; externalId: string | null;
};

export const scimAccountStore = {
  /** One UPDATE (account-store's setStatus reads the row back). */
  async setStatus(tx: SqlTx, orgId: string, id: string, status: 'active' | 'disabled'): Promise<void> {
    await tx.$executeRaw`UPDATE "Account" SET "status" = ${status}::"AccountStatus", "updatedAt" = now() WHERE "id" = ${id}::uuid AND "orgId" = ${orgId}::uuid`;
  },
  /** The account becomes a synced account of the directory (claimed by a push). */
  async markSynced(tx: SqlTx, orgId: string, id: string, directoryId: string, externalId: string | null): Promise<void> {
    await tx.$executeRaw`
      UPDATE "Account" SET "source" = 'scim', "directoryId" = ${directoryId}::uuid, "externalId" = ${externalId}, "updatedAt" = now()
      WHERE "id" = ${id}::uuid AND "orgId" = ${orgId}::uuid`;
  },
  /** Moves the account into the org's default policy (a claimed account leaving the non-billable policy); answers that policy's id. */
  async moveToDefaultPolicy(tx: SqlTx, orgId: string, id: string): Promise<string> {
    const rows = await tx.$queryRaw<{ policyId: string }[]>`
      UPDATE "Account" SET "policyId" = ${defaultPolicyOf(orgId)}, "updatedAt" = now()
      WHERE "id" = ${id}::uuid AND "orgId" = ${orgId}::uuid
      RETURNING "policyId"::text AS "policyId"`;
    if (!rows[0]?.policyId) throw new Error(`org ${orgId} has no default policy`); // an invariant, not client input
    return rows[0].policyId;
  },
  /** The account's names, as the IdP sent them. */
  async setProfile(tx: SqlTx, orgId: string, id: string, p: { displayName: string | null; givenName: string | null; familyName: string | null }): Promise<void> {
    await tx.$executeRaw`
      UPDATE "Account" SET "displayName" = ${p.displayName}, "givenName" = ${p.givenName}, "familyName" = ${p.familyName}, "updatedAt" = now()
      WHERE "id" = ${id}::uuid AND "orgId" = ${orgId}::uuid`;
  },
  /**
   * The account takes a new address (the IdP renamed its user), unless another account of the
   * org holds it: then nothing is written and null is answered. `managed` follows the new
   * domain (verified by the org or not), and the policy with it: a managed account keeps its
   * policy, one that becomes managed joins the default policy, one that becomes external leaves
   * its policy (Account_managed_policy_check). Id, access, roles and billing history stay.
   */
  async changeEmail(tx: SqlTx, orgId: string, id: string, e: { email: string; normalized: string; domain: string }): Promise<{ managed: boolean; policyId: string | null } | null> {
    const rows = await tx.$queryRaw<{ managed: boolean; policyId: string | null }[]>`
      WITH facts AS (
        SELECT EXISTS (SELECT 1 FROM "Domain" d WHERE d."orgId" = ${orgId}::uuid AND d."domain" = ${e.domain} AND d."verified") AS managed
      )
      UPDATE "Account" a SET "email" = ${e.email}, "emailNormalized" = ${e.normalized}, "emailDomain" = ${e.domain}, "managed" = f.managed,
        "policyId" = CASE WHEN NOT f.managed THEN NULL WHEN a."managed" THEN a."policyId" ELSE ${defaultPolicyOf(orgId)} END,
        "updatedAt" = now()
      FROM facts f
      WHERE a."id" = ${id}::uuid AND a."orgId" = ${orgId}::uuid
        AND NOT EXISTS (SELECT 1 FROM "Account" b WHERE b."orgId" = ${orgId}::uuid AND b."emailNormalized" = ${e.normalized} AND b."id" <> ${id}::uuid)
      RETURNING a."managed", a."policyId"::text AS "policyId"`;
    return rows[0] ?? null;
  },
  /** The account with its policy's nonBillable flag, by id. */
  async get(tx: SqlTx, orgId: string, id: string): Promise<LinkedAccount | null> {
    const rows = await tx.$queryRaw<LinkedAccount[]>`
      SELECT ${columns} FROM "Account" a WHERE a."orgId" = ${orgId}::uuid AND a."id" = ${id}::uuid`;
    return rows[0] ?? null;
  },
  /**
   * The account of an email (normalised) in the org, with its policy's nonBillable flag, locked
   * (FOR UPDATE) for the claim that follows: a concurrent policy change or move of this account
   * either committed before (and is read here) or waits for this transaction.
   */
  async findByEmailForUpdate(tx: SqlTx, orgId: string, emailNormalized: string): Promise<LinkedAccount | null> {
    const rows = await tx.$queryRaw<LinkedAccount[]>`
      SELECT ${columns} FROM "Account" a
      WHERE a."orgId" = ${orgId}::uuid AND a."emailNormalized" = ${emailNormalized} FOR UPDATE`;
    return rows[0] ?? null;
  },

  /**
   * Creates the synced account of an email unless the org has one (INSERT … ON CONFLICT DO NOTHING:
   * two pushes racing on one email end up on the same account, and a unique violation would abort
   * the transaction). Managed when the email's domain is verified by the org, and then in the
   * default policy; external (no policy) otherwise. Null when the account already existed.
   */
  async createIfAbsent(tx: SqlTx, orgId: string, a: NewSyncedAccount): Promise<LinkedAccount | null> {
    const rows = await tx.$queryRaw<LinkedAccount[]>`
      WITH facts AS (
        SELECT EXISTS (SELECT 1 FROM "Domain" d WHERE d."orgId" = ${orgId}::uuid AND d."domain" = ${a.emailDomain} AND d."verified") AS managed
      ), ins AS (
        INSERT INTO "Account" ("id", "orgId", "email", "emailNormalized", "emailDomain", "displayName", "givenName", "familyName",
                               "managed", "policyId", "source", "directoryId", "externalId", "createdAt", "updatedAt")
        SELECT gen_random_uuid(), ${orgId}::uuid, ${a.email}, ${a.emailNormalized}, ${a.emailDomain}, ${a.displayName}, ${a.givenName}, ${a.familyName},
               f.managed,
               CASE WHEN f.managed THEN ${defaultPolicyOf(orgId)} END,
               'scim', ${a.directoryId}::uuid, ${a.externalId}, now(), now()
        FROM facts f
        ON CONFLICT ("orgId", "emailNormalized") DO NOTHING
        RETURNING *
      )
      SELECT ${columns} FROM ins a`;
    return rows[0] ?? null;
  },
};
