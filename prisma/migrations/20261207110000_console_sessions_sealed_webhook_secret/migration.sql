-- Issue 12 §4: console sessions live on the server. The cookie carries a random token; only its
-- sha256 is stored. A session names the admin key it was opened with and ends at sign-out, when
-- the key is revoked (same transaction) or at expiresAt; deleting a key (or its org) deletes them.
CREATE TABLE "ConsoleSession" (
    "id" UUID NOT NULL,
    "tokenHash" CHAR(64) NOT NULL,
    "orgId" UUID NOT NULL,
    "adminKeyId" UUID NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expiresAt" TIMESTAMPTZ(3) NOT NULL,
    "lastSeenAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revokedAt" TIMESTAMPTZ(3),

    CONSTRAINT "ConsoleSession_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX "ConsoleSession_tokenHash_key" ON "ConsoleSession"("tokenHash");
CREATE INDEX "ConsoleSession_adminKeyId_idx" ON "ConsoleSession"("adminKeyId");
CREATE INDEX "ConsoleSession_expiresAt_idx" ON "ConsoleSession"("expiresAt");

ALTER TABLE "ConsoleSession" ADD CONSTRAINT "ConsoleSession_adminKeyId_fkey" FOREIGN KEY ("adminKeyId") REFERENCES "AdminKey"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Issue 12 §5: the billing webhook's signing secret is stored sealed (AES-256-GCM, like OIDC
-- client secrets). SQL cannot seal it (the key is the service's SECRET_KEY), so the column is
-- renamed here and the rows still holding plaintext (`whsec_…`) are sealed by the repair step
-- that runs after every migration (src/services/migration-repairs.ts); until then, reads accept
-- a plaintext value (src/billing/webhook-secret.ts).
ALTER TABLE "BillingWebhook" RENAME COLUMN "secret" TO "secretEnc";
