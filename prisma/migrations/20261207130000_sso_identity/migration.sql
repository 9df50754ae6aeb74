-- Issue 12 §4: an OIDC sign-in is bound to the account it first signed into, by the provider's
-- (issuer, sub), and found by that afterwards; the email claim links a first sign-in only when the
-- provider says it is verified, or the connection trusts its email claim (trustEmailClaim).

-- CreateTable
CREATE TABLE "SsoIdentity" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "issuer" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "accountId" UUID NOT NULL,
    "connectionId" UUID,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "SsoIdentity_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "SsoIdentity_orgId_issuer_subject_key" ON "SsoIdentity"("orgId", "issuer", "subject");

-- CreateIndex
CREATE UNIQUE INDEX "SsoIdentity_accountId_issuer_key" ON "SsoIdentity"("accountId", "issuer");

-- AddForeignKey
ALTER TABLE "SsoIdentity" ADD CONSTRAINT "SsoIdentity_accountId_fkey" FOREIGN KEY ("accountId") REFERENCES "Account"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AlterTable
ALTER TABLE "SsoConnection" ADD COLUMN "trustEmailClaim" BOOLEAN NOT NULL DEFAULT false;
