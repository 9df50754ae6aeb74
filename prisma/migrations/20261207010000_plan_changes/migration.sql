-- Issue 11 §5: the monthly refund window is the first month of the org's first paid service
-- (a resubscribe does not reopen it), and the estimate prices a period by plan segments.

-- AlterTable
ALTER TABLE "Subscription" ADD COLUMN "firstPaidAt" TIMESTAMPTZ(3);

-- CreateTable
CREATE TABLE "SubscriptionPlanChange" (
    "id" BIGSERIAL NOT NULL,
    "orgId" UUID NOT NULL,
    "changedAt" TIMESTAMPTZ(3) NOT NULL,
    "fromPlan" "Plan",
    "toPlan" "Plan",

    CONSTRAINT "SubscriptionPlanChange_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "SubscriptionPlanChange_orgId_changedAt_idx" ON "SubscriptionPlanChange"("orgId", "changedAt");

-- AddForeignKey
ALTER TABLE "SubscriptionPlanChange" ADD CONSTRAINT "SubscriptionPlanChange_orgId_fkey" FOREIGN KEY ("orgId") REFERENCES "Subscription"("orgId") ON DELETE CASCADE ON UPDATE CASCADE;

-- Backfill: an org that resubscribed (activatedAt set) after an earlier paid service keeps that
-- earlier start as its first paid one. The audit log holds every paid start a subscription view
-- showed (`activeSince` in the before/after of subscription.* events); the earliest one before
-- activatedAt is the first.
UPDATE "Subscription" s SET "firstPaidAt" = f.first
FROM (
  SELECT a."orgId", min(v.t) AS first
  FROM "AuditEvent" a
  CROSS JOIN LATERAL (VALUES (a."before"->>'activeSince'), (a."after"->>'activeSince')) AS x(raw)
  CROSS JOIN LATERAL (SELECT x.raw::timestamptz AS t WHERE x.raw IS NOT NULL AND x.raw <> '') v
  WHERE a."targetType" = 'subscription' AND a."action" LIKE 'subscription.%'
  GROUP BY a."orgId"
) f
WHERE s."orgId" = f."orgId" AND s."activatedAt" IS NOT NULL AND f.first < s."activatedAt";
