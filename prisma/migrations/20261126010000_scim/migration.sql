-- CreateEnum
CREATE TYPE "IdpKind" AS ENUM ('okta', 'entra', 'google', 'generic');

-- CreateTable
CREATE TABLE "Directory" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "idp" "IdpKind" NOT NULL,
    "tokenHash" CHAR(64) NOT NULL,
    "tokenIssuedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "previousTokenHash" CHAR(64),
    "previousTokenExpiresAt" TIMESTAMPTZ(3),
    "tokenLastUsedAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Directory_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ScimUser" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "directoryId" UUID NOT NULL,
    "accountId" UUID,
    "userName" TEXT NOT NULL,
    "userNameNormalized" TEXT NOT NULL,
    "externalId" TEXT,
    "active" BOOLEAN NOT NULL DEFAULT true,
    "displayName" TEXT,
    "givenName" TEXT,
    "familyName" TEXT,
    "title" TEXT,
    "userType" TEXT,
    "employeeNumber" TEXT,
    "department" TEXT,
    "resource" JSONB NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "deletedAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ScimUser_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ScimUserEmail" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "directoryId" UUID NOT NULL,
    "userId" UUID NOT NULL,
    "value" TEXT NOT NULL,
    "valueNormalized" TEXT NOT NULL,
    "type" TEXT,
    "primary" BOOLEAN NOT NULL DEFAULT false,

    CONSTRAINT "ScimUserEmail_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ScimGroup" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "directoryId" UUID NOT NULL,
    "displayName" TEXT NOT NULL,
    "displayNameNormalized" TEXT NOT NULL,
    "externalId" TEXT,
    "resource" JSONB NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ScimGroup_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ScimGroupMember" (
    "orgId" UUID NOT NULL,
    "directoryId" UUID NOT NULL,
    "groupId" UUID NOT NULL,
    "userId" UUID NOT NULL,
    "display" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ScimGroupMember_pkey" PRIMARY KEY ("groupId","userId")
);

-- CreateTable
CREATE TABLE "GroupMapping" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "directoryId" UUID NOT NULL,
    "groupName" TEXT NOT NULL,
    "siteId" UUID NOT NULL,
    "product" "Product" NOT NULL,
    "role" "AccessRole" NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "GroupMapping_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ScimEvent" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "directoryId" UUID NOT NULL,
    "method" TEXT NOT NULL,
    "path" TEXT NOT NULL,
    "status" INTEGER NOT NULL,
    "scimType" TEXT,
    "detail" TEXT,
    "resourceId" TEXT,
    "durationMs" INTEGER NOT NULL,
    "requestId" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ScimEvent_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Directory_orgId_createdAt_id_idx" ON "Directory"("orgId", "createdAt", "id");

-- CreateIndex
CREATE UNIQUE INDEX "Directory_orgId_name_key" ON "Directory"("orgId", "name");

-- CreateIndex
CREATE INDEX "ScimUser_directoryId_createdAt_id_idx" ON "ScimUser"("directoryId", "createdAt", "id");

-- CreateIndex
CREATE INDEX "ScimUser_directoryId_externalId_idx" ON "ScimUser"("directoryId", "externalId");

-- CreateIndex
CREATE INDEX "ScimUser_accountId_idx" ON "ScimUser"("accountId");

-- CreateIndex
CREATE UNIQUE INDEX "ScimUser_directoryId_userNameNormalized_key" ON "ScimUser"("directoryId", "userNameNormalized");

-- CreateIndex
CREATE INDEX "ScimUserEmail_directoryId_valueNormalized_idx" ON "ScimUserEmail"("directoryId", "valueNormalized");

-- CreateIndex
CREATE INDEX "ScimUserEmail_userId_idx" ON "ScimUserEmail"("userId");

-- CreateIndex
CREATE INDEX "ScimGroup_directoryId_createdAt_id_idx" ON "ScimGroup"("directoryId", "createdAt", "id");

-- CreateIndex
CREATE INDEX "ScimGroup_directoryId_externalId_idx" ON "ScimGroup"("directoryId", "externalId");

-- CreateIndex
CREATE UNIQUE INDEX "ScimGroup_directoryId_displayNameNormalized_key" ON "ScimGroup"("directoryId", "displayNameNormalized");

-- CreateIndex
CREATE INDEX "ScimGroupMember_userId_idx" ON "ScimGroupMember"("userId");

-- CreateIndex
CREATE INDEX "GroupMapping_orgId_siteId_idx" ON "GroupMapping"("orgId", "siteId");

-- CreateIndex
CREATE UNIQUE INDEX "GroupMapping_directoryId_groupName_siteId_product_key" ON "GroupMapping"("directoryId", "groupName", "siteId", "product");

-- CreateIndex
CREATE INDEX "ScimEvent_directoryId_createdAt_id_idx" ON "ScimEvent"("directoryId", "createdAt", "id");

-- AddForeignKey
ALTER TABLE "Directory" ADD CONSTRAINT "Directory_orgId_fkey" FOREIGN KEY ("orgId") REFERENCES "Org"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ScimUser" ADD CONSTRAINT "ScimUser_directoryId_fkey" FOREIGN KEY ("directoryId") REFERENCES "Directory"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ScimUser" ADD CONSTRAINT "ScimUser_accountId_fkey" FOREIGN KEY ("accountId") REFERENCES "Account"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ScimUserEmail" ADD CONSTRAINT "ScimUserEmail_userId_fkey" FOREIGN KEY ("userId") REFERENCES "ScimUser"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ScimGroup" ADD CONSTRAINT "ScimGroup_directoryId_fkey" FOREIGN KEY ("directoryId") REFERENCES "Directory"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ScimGroupMember" ADD CONSTRAINT "ScimGroupMember_groupId_fkey" FOREIGN KEY ("groupId") REFERENCES "ScimGroup"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ScimGroupMember" ADD CONSTRAINT "ScimGroupMember_userId_fkey" FOREIGN KEY ("userId") REFERENCES "ScimUser"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "GroupMapping" ADD CONSTRAINT "GroupMapping_directoryId_fkey" FOREIGN KEY ("directoryId") REFERENCES "Directory"("id") ON DELETE CASCADE ON UPDATE CASCADE;
