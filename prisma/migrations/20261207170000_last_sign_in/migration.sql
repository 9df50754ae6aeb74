-- Issue 14 §3: when each account last signed in (a session was created) and through which SSO
-- connection, so that admins can find inactive people (GET accounts?inactiveSince=, CSV export).

-- AlterTable
ALTER TABLE "Account" ADD COLUMN "lastSignInAt" TIMESTAMPTZ(3),
ADD COLUMN "lastSignInConnectionId" UUID;

-- CreateIndex
CREATE INDEX "Account_orgId_lastSignInAt_idx" ON "Account"("orgId", "lastSignInAt");

-- CreateIndex
CREATE INDEX "Account_lastSignInConnectionId_idx" ON "Account"("lastSignInConnectionId");

-- AddForeignKey
ALTER TABLE "Account" ADD CONSTRAINT "Account_lastSignInConnectionId_fkey" FOREIGN KEY ("lastSignInConnectionId") REFERENCES "SsoConnection"("id") ON DELETE SET NULL ON UPDATE CASCADE;
