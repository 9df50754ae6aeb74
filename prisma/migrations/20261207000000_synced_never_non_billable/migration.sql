-- Issue 11: "a synced account is never a member of a non-billable policy" (SPEC §3) becomes a
-- guarantee of the schema (docs/decisions.md, "The invariant in the schema"). Each account
-- carries its policy's nonBillable flag, kept true by a composite foreign key to
-- Policy(id, nonBillable) with ON UPDATE CASCADE, and a CHECK forbids synced + non-billable.
-- Whatever the interleaving of two transactions, the one that would break the rule fails:
--   * making a policy non-billable cascades the flag onto its members, and the CHECK refuses a
--     synced one (the cascade waits for the row lock of a claim in flight, then sees it);
--   * moving an account into a policy, or creating one there, takes the flag from the policy
--     row (trigger) and the foreign key checks the pair against the row as committed, under
--     a KEY SHARE lock that a concurrent flip of the policy must wait for;
--   * claiming an account (source := 'scim') is checked against the flag on the account row
--     itself, which the claim holds locked.

-- AlterTable
ALTER TABLE "Account" ADD COLUMN "policyNonBillable" BOOLEAN NOT NULL DEFAULT false;

UPDATE "Account" a SET "policyNonBillable" = p."nonBillable" FROM "Policy" p WHERE p."id" = a."policyId" AND p."nonBillable";

-- Repair: synced accounts found in a non-billable policy move to their org's default policy,
-- each with its audit row. Their billable deltas are written by the service right after this
-- migration (src/store/post-migration.ts), and reconciliation would correct them if the
-- process stopped in between.
WITH bad AS (
  SELECT a."id", a."orgId", a."policyId" AS "fromPolicyId", d."id" AS "toPolicyId"
  FROM "Account" a JOIN "Policy" d ON d."orgId" = a."orgId" AND d."isDefault"
  WHERE a."source" = 'scim' AND a."policyNonBillable"
), moved AS (
  UPDATE "Account" a SET "policyId" = bad."toPolicyId", "policyNonBillable" = false, "updatedAt" = CURRENT_TIMESTAMP
  FROM bad WHERE a."id" = bad."id"
  RETURNING a."id", a."orgId", bad."fromPolicyId", bad."toPolicyId"
)
INSERT INTO "AuditEvent" ("id", "orgId", "actor", "action", "targetType", "targetId", "before", "after", "createdAt")
SELECT gen_random_uuid(), m."orgId", 'system:migration', 'policy.members.move', 'account', m."id"::text,
       jsonb_build_object('policyId', m."fromPolicyId", 'nonBillable', true),
       jsonb_build_object('policyId', m."toPolicyId", 'reason', 'synced accounts cannot sit in the non-billable policy',
                          'migration', '20261207000000_synced_never_non_billable', 'billabilitySynced', false),
       CURRENT_TIMESTAMP
FROM moved m;

-- CreateIndex
CREATE UNIQUE INDEX "Policy_id_nonBillable_key" ON "Policy"("id", "nonBillable");

-- AddForeignKey (replaces Account_policyId_fkey)
ALTER TABLE "Account" DROP CONSTRAINT "Account_policyId_fkey";
ALTER TABLE "Account" ADD CONSTRAINT "Account_policyId_policyNonBillable_fkey" FOREIGN KEY ("policyId", "policyNonBillable") REFERENCES "Policy"("id", "nonBillable") ON DELETE NO ACTION ON UPDATE CASCADE;

-- The rule itself.
ALTER TABLE "Account" ADD CONSTRAINT "Account_synced_never_non_billable_check" CHECK (NOT ("source" = 'scim' AND "policyNonBillable"));
-- An account in no policy (external) carries no flag.
ALTER TABLE "Account" ADD CONSTRAINT "Account_no_policy_no_flag_check" CHECK ("policyId" IS NOT NULL OR NOT "policyNonBillable");

-- Writers set policyId only; the flag comes from the policy row. A policy that does not exist
-- leaves the flag as given and the foreign key refuses the row.
CREATE FUNCTION "Account_policy_flag"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW."policyId" IS NULL THEN
    NEW."policyNonBillable" := false;
  ELSIF TG_OP = 'INSERT' OR NEW."policyId" IS DISTINCT FROM OLD."policyId" THEN
    NEW."policyNonBillable" := COALESCE((SELECT p."nonBillable" FROM "Policy" p WHERE p."id" = NEW."policyId"), NEW."policyNonBillable");
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER "Account_policy_flag" BEFORE INSERT OR UPDATE OF "policyId" ON "Account"
  FOR EACH ROW EXECUTE FUNCTION "Account_policy_flag"();
