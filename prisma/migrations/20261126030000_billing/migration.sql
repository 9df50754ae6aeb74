-- CreateEnum
CREATE TYPE "WebhookDeliveryStatus" AS ENUM ('pending', 'sent', 'dead');

-- CreateEnum
CREATE TYPE "ReconciliationStatus" AS ENUM ('running', 'done', 'failed');

-- AlterTable
ALTER TABLE "BillableDelta" ADD COLUMN     "appliedAt" TIMESTAMPTZ(3);

-- CreateTable
CREATE TABLE "LedgerEntry" (
    "deltaId" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "accountId" UUID NOT NULL,
    "kind" "DeltaKind" NOT NULL,
    "reasons" TEXT[],
    "cause" TEXT NOT NULL,
    "occurredAt" TIMESTAMPTZ(3) NOT NULL,
    "streamSeq" BIGINT NOT NULL,
    "appliedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "LedgerEntry_pkey" PRIMARY KEY ("deltaId")
);

-- CreateTable
CREATE TABLE "BillingWebhook" (
    "orgId" UUID NOT NULL,
    "url" TEXT NOT NULL,
    "secret" TEXT NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "BillingWebhook_pkey" PRIMARY KEY ("orgId")
);

-- CreateTable
CREATE TABLE "WebhookDelivery" (
    "deltaId" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "status" "WebhookDeliveryStatus" NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "nextAttemptAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastStatus" INTEGER,
    "lastError" TEXT,
    "sentAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "WebhookDelivery_pkey" PRIMARY KEY ("deltaId")
);

-- CreateTable
CREATE TABLE "ReconciliationRun" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "status" "ReconciliationStatus" NOT NULL DEFAULT 'running',
    "trigger" TEXT NOT NULL,
    "billableCount" INTEGER,
    "ledgerCount" INTEGER,
    "corrections" INTEGER NOT NULL DEFAULT 0,
    "report" JSONB,
    "startedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finishedAt" TIMESTAMPTZ(3),

    CONSTRAINT "ReconciliationRun_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "BillNotice" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "billingDate" TIMESTAMPTZ(3) NOT NULL,
    "amount" INTEGER NOT NULL,
    "previousAmount" INTEGER NOT NULL,
    "recipients" TEXT[],
    "sentAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "BillNotice_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "JobTick" (
    "job" TEXT NOT NULL,
    "tickAt" TIMESTAMPTZ(3) NOT NULL,
    "orgId" UUID,
    "startedBy" TEXT NOT NULL,
    "startedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finishedAt" TIMESTAMPTZ(3),
    "durationMs" INTEGER,
    "result" JSONB,

    CONSTRAINT "JobTick_pkey" PRIMARY KEY ("job","tickAt")
);

-- CreateIndex
CREATE INDEX "BillableDelta_appliedAt_seq_idx" ON "BillableDelta"("appliedAt", "seq");

-- CreateIndex
CREATE UNIQUE INDEX "LedgerEntry_streamSeq_key" ON "LedgerEntry"("streamSeq");

-- CreateIndex
CREATE INDEX "LedgerEntry_orgId_streamSeq_idx" ON "LedgerEntry"("orgId", "streamSeq");

-- CreateIndex
CREATE INDEX "LedgerEntry_orgId_accountId_occurredAt_idx" ON "LedgerEntry"("orgId", "accountId", "occurredAt");

-- CreateIndex
CREATE INDEX "LedgerEntry_orgId_occurredAt_idx" ON "LedgerEntry"("orgId", "occurredAt");

-- CreateIndex
CREATE INDEX "WebhookDelivery_status_nextAttemptAt_idx" ON "WebhookDelivery"("status", "nextAttemptAt");

-- CreateIndex
CREATE INDEX "WebhookDelivery_orgId_status_idx" ON "WebhookDelivery"("orgId", "status");

-- CreateIndex
CREATE INDEX "ReconciliationRun_orgId_startedAt_id_idx" ON "ReconciliationRun"("orgId", "startedAt", "id");

-- CreateIndex
CREATE UNIQUE INDEX "BillNotice_orgId_billingDate_key" ON "BillNotice"("orgId", "billingDate");
