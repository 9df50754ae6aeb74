-- CreateEnum
CREATE TYPE "AccountStatus" AS ENUM ('active', 'disabled');

-- CreateEnum
CREATE TYPE "AccountSource" AS ENUM ('manual', 'scim', 'jit');

-- CreateEnum
CREATE TYPE "RoleKind" AS ENUM ('org_admin', 'site_admin', 'product_admin', 'billing_contact', 'technical_contact');

-- CreateEnum
CREATE TYPE "Product" AS ENUM ('jira', 'jsm', 'jpd', 'confluence', 'compass', 'bitbucket', 'trello', 'statuspage');

-- CreateEnum
CREATE TYPE "AccessRole" AS ENUM ('user', 'agent', 'customer');

-- CreateEnum
CREATE TYPE "Plan" AS ENUM ('standard', 'premium');

-- CreateEnum
CREATE TYPE "BillingCycle" AS ENUM ('monthly', 'annual');

-- CreateEnum
CREATE TYPE "Edition" AS ENUM ('commercial', 'community', 'academic');

-- CreateEnum
CREATE TYPE "DeltaKind" AS ENUM ('added', 'removed');

-- CreateTable
CREATE TABLE "Org" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Org_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AdminKey" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "secretHash" CHAR(64) NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastUsedAt" TIMESTAMPTZ(3),
    "revokedAt" TIMESTAMPTZ(3),

    CONSTRAINT "AdminKey_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Domain" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "domain" TEXT NOT NULL,
    "verificationToken" TEXT NOT NULL,
    "verified" BOOLEAN NOT NULL DEFAULT false,
    "verifiedAt" TIMESTAMPTZ(3),
    "verifiedBy" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Domain_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Account" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "email" TEXT NOT NULL,
    "emailNormalized" TEXT NOT NULL,
    "emailDomain" TEXT NOT NULL,
    "displayName" TEXT,
    "givenName" TEXT,
    "familyName" TEXT,
    "managed" BOOLEAN NOT NULL DEFAULT false,
    "status" "AccountStatus" NOT NULL DEFAULT 'active',
    "source" "AccountSource" NOT NULL DEFAULT 'manual',
    "directoryId" UUID,
    "externalId" TEXT,
    "policyId" UUID,
    "billable" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Account_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "RoleAssignment" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "accountId" UUID NOT NULL,
    "role" "RoleKind" NOT NULL,
    "scopeId" UUID NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "RoleAssignment_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Site" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "products" "Product"[],
    "enterprise" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Site_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ProductAccess" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "siteId" UUID NOT NULL,
    "accountId" UUID NOT NULL,
    "product" "Product" NOT NULL,
    "role" "AccessRole" NOT NULL,
    "grantedBy" TEXT NOT NULL DEFAULT 'direct',
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ProductAccess_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Policy" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "isDefault" BOOLEAN NOT NULL DEFAULT false,
    "nonBillable" BOOLEAN NOT NULL DEFAULT false,
    "enforceSso" BOOLEAN NOT NULL DEFAULT false,
    "ssoConnectionId" UUID,
    "requireTwoFactor" BOOLEAN NOT NULL DEFAULT false,
    "blockApiTokens" BOOLEAN NOT NULL DEFAULT false,
    "passwordMinStrength" INTEGER,
    "passwordExpiryDays" INTEGER,
    "sessionDurationMinutes" INTEGER NOT NULL DEFAULT 1440,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Policy_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Subscription" (
    "orgId" UUID NOT NULL,
    "edition" "Edition" NOT NULL DEFAULT 'commercial',
    "plan" "Plan",
    "cycle" "BillingCycle" NOT NULL DEFAULT 'monthly',
    "trialStartedAt" TIMESTAMPTZ(3),
    "trialEndsAt" TIMESTAMPTZ(3),
    "paymentMethodAddedAt" TIMESTAMPTZ(3),
    "activatedAt" TIMESTAMPTZ(3),
    "cancelledAt" TIMESTAMPTZ(3),
    "updatedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Subscription_pkey" PRIMARY KEY ("orgId")
);

-- CreateTable
CREATE TABLE "AuditEvent" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "actor" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "targetType" TEXT NOT NULL,
    "targetId" TEXT,
    "before" JSONB,
    "after" JSONB,
    "requestId" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "AuditEvent_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "BillableDelta" (
    "id" UUID NOT NULL,
    "seq" BIGSERIAL NOT NULL,
    "orgId" UUID NOT NULL,
    "accountId" UUID NOT NULL,
    "kind" "DeltaKind" NOT NULL,
    "reasons" TEXT[],
    "cause" TEXT NOT NULL,
    "occurredAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "BillableDelta_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Org_orgId_key" ON "Org"("orgId");

-- CreateIndex
CREATE INDEX "AdminKey_orgId_idx" ON "AdminKey"("orgId");

-- CreateIndex
CREATE INDEX "Domain_domain_idx" ON "Domain"("domain");

-- CreateIndex
CREATE UNIQUE INDEX "Domain_orgId_domain_key" ON "Domain"("orgId", "domain");

-- CreateIndex
CREATE INDEX "Account_orgId_createdAt_id_idx" ON "Account"("orgId", "createdAt", "id");

-- CreateIndex
CREATE INDEX "Account_orgId_emailDomain_idx" ON "Account"("orgId", "emailDomain");

-- CreateIndex
CREATE INDEX "Account_policyId_idx" ON "Account"("policyId");

-- CreateIndex
CREATE UNIQUE INDEX "Account_orgId_emailNormalized_key" ON "Account"("orgId", "emailNormalized");

-- CreateIndex
CREATE INDEX "RoleAssignment_orgId_role_idx" ON "RoleAssignment"("orgId", "role");

-- CreateIndex
CREATE UNIQUE INDEX "RoleAssignment_accountId_role_scopeId_key" ON "RoleAssignment"("accountId", "role", "scopeId");

-- CreateIndex
CREATE INDEX "Site_orgId_createdAt_id_idx" ON "Site"("orgId", "createdAt", "id");

-- CreateIndex
CREATE UNIQUE INDEX "Site_orgId_name_key" ON "Site"("orgId", "name");

-- CreateIndex
CREATE INDEX "ProductAccess_orgId_siteId_idx" ON "ProductAccess"("orgId", "siteId");

-- CreateIndex
CREATE UNIQUE INDEX "ProductAccess_accountId_siteId_product_grantedBy_key" ON "ProductAccess"("accountId", "siteId", "product", "grantedBy");

-- CreateIndex
CREATE INDEX "Policy_orgId_createdAt_id_idx" ON "Policy"("orgId", "createdAt", "id");

-- CreateIndex
CREATE UNIQUE INDEX "Policy_orgId_name_key" ON "Policy"("orgId", "name");

-- CreateIndex
CREATE INDEX "AuditEvent_orgId_createdAt_id_idx" ON "AuditEvent"("orgId", "createdAt", "id");

-- CreateIndex
CREATE UNIQUE INDEX "BillableDelta_seq_key" ON "BillableDelta"("seq");

-- CreateIndex
CREATE INDEX "BillableDelta_orgId_seq_idx" ON "BillableDelta"("orgId", "seq");

-- CreateIndex
CREATE INDEX "BillableDelta_accountId_idx" ON "BillableDelta"("accountId");

-- AddForeignKey
ALTER TABLE "AdminKey" ADD CONSTRAINT "AdminKey_orgId_fkey" FOREIGN KEY ("orgId") REFERENCES "Org"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Domain" ADD CONSTRAINT "Domain_orgId_fkey" FOREIGN KEY ("orgId") REFERENCES "Org"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Account" ADD CONSTRAINT "Account_orgId_fkey" FOREIGN KEY ("orgId") REFERENCES "Org"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Account" ADD CONSTRAINT "Account_policyId_fkey" FOREIGN KEY ("policyId") REFERENCES "Policy"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "RoleAssignment" ADD CONSTRAINT "RoleAssignment_accountId_fkey" FOREIGN KEY ("accountId") REFERENCES "Account"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Site" ADD CONSTRAINT "Site_orgId_fkey" FOREIGN KEY ("orgId") REFERENCES "Org"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ProductAccess" ADD CONSTRAINT "ProductAccess_siteId_fkey" FOREIGN KEY ("siteId") REFERENCES "Site"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ProductAccess" ADD CONSTRAINT "ProductAccess_accountId_fkey" FOREIGN KEY ("accountId") REFERENCES "Account"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Policy" ADD CONSTRAINT "Policy_orgId_fkey" FOREIGN KEY ("orgId") REFERENCES "Org"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Subscription" ADD CONSTRAINT "Subscription_orgId_fkey" FOREIGN KEY ("orgId") REFERENCES "Org"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Hand-written: invariants Prisma's schema language cannot express (prisma/prisma#3076).
-- They make SPEC §3 hold even if a code path forgets a check or two requests race.

-- At most one default and at most one non-billable policy per org.
CREATE UNIQUE INDEX "Policy_one_default_per_org" ON "Policy"("orgId") WHERE "isDefault";
CREATE UNIQUE INDEX "Policy_one_non_billable_per_org" ON "Policy"("orgId") WHERE "nonBillable";

-- The default policy is never non-billable; a non-billable policy enforces nothing.
ALTER TABLE "Policy" ADD CONSTRAINT "Policy_default_billable_check" CHECK (NOT ("isDefault" AND "nonBillable"));
ALTER TABLE "Policy" ADD CONSTRAINT "Policy_non_billable_enforces_nothing_check"
    CHECK (NOT "nonBillable" OR NOT ("enforceSso" OR "requireTwoFactor" OR "blockApiTokens"));

-- Every managed account is in exactly one policy; external accounts are in none.
ALTER TABLE "Account" ADD CONSTRAINT "Account_managed_policy_check" CHECK ("managed" = ("policyId" IS NOT NULL));

-- A domain can be verified by one org only.
CREATE UNIQUE INDEX "Domain_verified_once" ON "Domain"("domain") WHERE "verified";

-- Org is its own tenant.
ALTER TABLE "Org" ADD CONSTRAINT "Org_orgId_is_id_check" CHECK ("orgId" = "id");
