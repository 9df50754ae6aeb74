-- CreateEnum
CREATE TYPE "SsoProtocol" AS ENUM ('saml', 'oidc');

-- CreateEnum
CREATE TYPE "SsoPurpose" AS ENUM ('login', 'test');

-- CreateTable
CREATE TABLE "SsoConnection" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "type" "SsoProtocol" NOT NULL,
    "name" TEXT NOT NULL,
    "jit" BOOLEAN NOT NULL DEFAULT false,
    "rolloutPolicyId" UUID,
    "entityId" TEXT,
    "ssoUrl" TEXT,
    "certificates" TEXT[],
    "allowIdpInitiated" BOOLEAN NOT NULL DEFAULT false,
    "issuer" TEXT,
    "clientId" TEXT,
    "clientSecretEnc" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "SsoConnection_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "SsoRequest" (
    "id" TEXT NOT NULL,
    "orgId" UUID NOT NULL,
    "connectionId" UUID NOT NULL,
    "purpose" "SsoPurpose" NOT NULL,
    "browserHash" CHAR(64) NOT NULL,
    "loginHint" TEXT,
    "nonce" TEXT,
    "codeVerifier" TEXT,
    "testId" UUID,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expiresAt" TIMESTAMPTZ(3) NOT NULL,
    "consumedAt" TIMESTAMPTZ(3),

    CONSTRAINT "SsoRequest_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "SsoAssertionSeen" (
    "connectionId" UUID NOT NULL,
    "assertionId" TEXT NOT NULL,
    "expiresAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "SsoAssertionSeen_pkey" PRIMARY KEY ("connectionId","assertionId")
);

-- CreateTable
CREATE TABLE "UserSession" (
    "id" UUID NOT NULL,
    "tokenHash" CHAR(64) NOT NULL,
    "orgId" UUID NOT NULL,
    "accountId" UUID NOT NULL,
    "connectionId" UUID,
    "method" "SsoProtocol" NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expiresAt" TIMESTAMPTZ(3) NOT NULL,
    "revokedAt" TIMESTAMPTZ(3),

    CONSTRAINT "UserSession_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "SsoTestRun" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "connectionId" UUID NOT NULL,
    "startedBy" TEXT NOT NULL,
    "tokenHash" CHAR(64) NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expiresAt" TIMESTAMPTZ(3) NOT NULL,
    "completedAt" TIMESTAMPTZ(3),
    "wouldSucceed" BOOLEAN,
    "reason" TEXT,
    "checks" JSONB NOT NULL,
    "attributes" JSONB NOT NULL,
    "profile" JSONB,
    "accountId" UUID,
    "policyId" UUID,

    CONSTRAINT "SsoTestRun_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "SsoConnection_orgId_createdAt_id_idx" ON "SsoConnection"("orgId", "createdAt", "id");

-- CreateIndex
CREATE UNIQUE INDEX "SsoConnection_orgId_name_key" ON "SsoConnection"("orgId", "name");

-- CreateIndex
CREATE INDEX "SsoRequest_expiresAt_idx" ON "SsoRequest"("expiresAt");

-- CreateIndex
CREATE INDEX "SsoAssertionSeen_expiresAt_idx" ON "SsoAssertionSeen"("expiresAt");

-- CreateIndex
CREATE UNIQUE INDEX "UserSession_tokenHash_key" ON "UserSession"("tokenHash");

-- CreateIndex
CREATE INDEX "UserSession_accountId_idx" ON "UserSession"("accountId");

-- CreateIndex
CREATE INDEX "UserSession_expiresAt_idx" ON "UserSession"("expiresAt");

-- CreateIndex
CREATE UNIQUE INDEX "SsoTestRun_tokenHash_key" ON "SsoTestRun"("tokenHash");

-- CreateIndex
CREATE INDEX "SsoTestRun_connectionId_createdAt_id_idx" ON "SsoTestRun"("connectionId", "createdAt", "id");

-- Policies named a connection before connections existed: drop references that cannot resolve.
UPDATE "Policy" SET "enforceSso" = false, "ssoConnectionId" = NULL WHERE "ssoConnectionId" IS NOT NULL;

-- AddForeignKey
ALTER TABLE "Policy" ADD CONSTRAINT "Policy_ssoConnectionId_fkey" FOREIGN KEY ("ssoConnectionId") REFERENCES "SsoConnection"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "SsoConnection" ADD CONSTRAINT "SsoConnection_orgId_fkey" FOREIGN KEY ("orgId") REFERENCES "Org"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "SsoConnection" ADD CONSTRAINT "SsoConnection_rolloutPolicyId_fkey" FOREIGN KEY ("rolloutPolicyId") REFERENCES "Policy"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- SQL-only invariants (test/store/schema-agreement.test.ts lists them).
-- A policy that enforces SSO names its connection (rule sso-needs-connection).
ALTER TABLE "Policy" ADD CONSTRAINT "Policy_sso_needs_connection_check" CHECK (NOT "enforceSso" OR "ssoConnectionId" IS NOT NULL);
-- A SAML connection is complete and has a signing certificate (samlify would otherwise trust the
-- certificate embedded in the response); an OIDC one has its issuer, client id and secret.
ALTER TABLE "SsoConnection" ADD CONSTRAINT "SsoConnection_complete_check" CHECK (
    ("type" = 'saml' AND "entityId" IS NOT NULL AND "ssoUrl" IS NOT NULL AND cardinality("certificates") >= 1)
    OR ("type" = 'oidc' AND "issuer" IS NOT NULL AND "clientId" IS NOT NULL AND "clientSecretEnc" IS NOT NULL)
);
