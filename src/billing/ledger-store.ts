import type { Tx } from '../store/transaction.js';

/**
 * SQL of the billing ledger and of webhook deliveries. Set-based: a batch of deltas is one
 * statement, whatever its size. Only src/store is imported, so services may use this module the
 * way they use the stores.
 */

export type DeltaKind = 'added' | 'removed';

/** A delta as the stream and the webhook publish it. */
export type LedgerDelta = {
  id: string; orgId: string; accountId: string; kind: DeltaKind; reasons: string[]; cause: string; occurredAt: Date; streamSeq: bigint;
};

export type WebhookDeliveryStatus = 'pending' | 'sent' | 'dead';

/** A delivery the sender claimed: the delta, where to send it and with which secret (as stored: see webhook-secret.ts). */
export type ClaimedDelivery = {
  deltaId: string; orgId: string; accountId: string; kind: DeltaKind; reasons: string[]; cause: string; occurredAt: Date;
  /** Attempts including this one. */
  attempts: number;
  url: string; secretEnc: string;
};

/** The outcome of one attempt, recorded only if the delivery still is the claimed attempt. */
export type DeliveryOutcome = {
  deltaId: string; attempts: number; status: WebhookDeliveryStatus; nextAttemptAt: Date;
  httpStatus: number | null; error: string | null;
};

export type BatchResult = { claimed: number; applied: number; webhooksQueued: number };

export const ledgerStore = {
  /**
   * The ledger lock: a transaction-level advisory lock, held until the caller's transaction
   * ends. Its key is derived from the schema, so databases that keep several orgsync schemas
   * (the tests do) do not serialise each other's ledgers.
   */
  async lock(tx: Tx): Promise<void> {
    // Also, for this transaction only: no bitmap scans. Without table statistics (PGlite never
    // runs autovacuum/ANALYZE) the planner would read every unapplied row through a bitmap scan
    // and sort them to pick the first `limit`; the ordered index scan reads `limit` rows.
    await tx.$executeRaw`
      SELECT pg_advisory_xact_lock(hashtextextended('orgsync:ledger:' || current_schema(), 0)),
             set_config('enable_bitmapscan', 'off', true)`;
  },

  /**
   * Claims up to `limit` unapplied outbox rows in seq order (FOR UPDATE SKIP LOCKED), appends
   * the ones the ledger does not hold yet with the next stream positions in that order, marks
   * every claimed row applied, and queues a webhook delivery for each delta of an org that has
   * a webhook. One statement. The caller must hold the ledger lock (see delivery-worker.ts).
   */
  async applyBatch(tx: Tx, limit: number, now: Date): Promise<BatchResult> {
    const rows = await tx.$queryRaw<{ claimed: number; applied: number; queued: number }[]>`
      WITH claimed AS MATERIALIZED (
        SELECT "id", "seq", "orgId", "accountId", "kind", "reasons", "cause", "occurredAt"
        FROM "BillableDelta"
        WHERE "appliedAt" IS NULL
        -- = ORDER BY seq here, but in the order of the ("appliedAt", seq) index, so the claim is
        -- one range scan of the unapplied rows, not a walk over every applied one (quadratic drain).
        ORDER BY "appliedAt", "seq"
        LIMIT ${limit}::int
        FOR UPDATE SKIP LOCKED
      ),
      fresh AS MATERIALIZED (
        SELECT c.*, row_number() OVER (ORDER BY c."seq") AS rn
        FROM claimed c
        WHERE NOT EXISTS (SELECT 1 FROM "LedgerEntry" l WHERE l."deltaId" = c."id")
      ),
      ledger AS (
        INSERT INTO "LedgerEntry" ("deltaId", "orgId", "accountId", "kind", "reasons", "cause", "occurredAt", "streamSeq", "appliedAt")
        SELECT f."id", f."orgId", f."accountId", f."kind", f."reasons", f."cause", f."occurredAt",
               (SELECT coalesce(max("streamSeq"), 0) FROM "LedgerEntry") + f.rn, ${now}::timestamptz
        FROM fresh f
        ORDER BY f.rn
        ON CONFLICT ("deltaId") DO NOTHING
        RETURNING 1
      ),
      marked AS (
        UPDATE "BillableDelta" b SET "appliedAt" = ${now}::timestamptz
        FROM claimed c
        WHERE b."id" = c."id"
        RETURNING 1
      ),
      queued AS (
        INSERT INTO "WebhookDelivery" ("deltaId", "orgId", "status", "attempts", "nextAttemptAt", "createdAt")
        SELECT c."id", c."orgId", 'pending', 0, ${now}::timestamptz, ${now}::timestamptz
        FROM claimed c
        JOIN "BillingWebhook" w ON w."orgId" = c."orgId"
        ON CONFLICT ("deltaId") DO NOTHING
        RETURNING 1
      )
      SELECT (SELECT count(*) FROM claimed)::int AS claimed,
             (SELECT count(*) FROM ledger)::int AS applied,
             (SELECT count(*) FROM queued)::int AS queued`;
    // `marked` is referenced by nothing: PostgreSQL runs every data-modifying CTE exactly once anyway.
    const r = rows[0]!;
    return { claimed: Number(r.claimed), applied: Number(r.applied), webhooksQueued: Number(r.queued) };
  },

  /** One page of an org's stream: entries strictly after `after`, in stream (commit) order. */
  async streamAfter(tx: Tx, orgId: string, after: bigint, limit: number): Promise<LedgerDelta[]> {
    const rows = await tx.ledgerEntry.findMany({
      where: { orgId, streamSeq: { gt: after } },
      orderBy: { streamSeq: 'asc' },
      take: limit,
      select: { deltaId: true, orgId: true, accountId: true, kind: true, reasons: true, cause: true, occurredAt: true, streamSeq: true },
    });
    return rows.map(({ deltaId, ...r }) => ({ id: deltaId, ...r }));
  },
};

/** `secretEnc`: the signing secret as stored (sealed; see webhook-secret.ts). */
export type WebhookRow = { orgId: string; url: string; secretEnc: string; createdAt: Date; updatedAt: Date };

export const webhookStore = {
  async get(tx: Tx, orgId: string): Promise<WebhookRow | null> {
    return tx.billingWebhook.findUnique({ where: { orgId } });
  },
  async create(tx: Tx, orgId: string, w: { url: string; secretEnc: string; now: Date }): Promise<WebhookRow> {
    return tx.billingWebhook.create({ data: { orgId, url: w.url, secretEnc: w.secretEnc, createdAt: w.now, updatedAt: w.now } });
  },
  async update(tx: Tx, orgId: string, data: { url?: string; secretEnc?: string; now: Date }): Promise<WebhookRow> {
    const { now, ...rest } = data;
    return tx.billingWebhook.update({ where: { orgId }, data: { ...rest, updatedAt: now } });
  },
  /** Webhooks whose secret is still stored in plaintext (written before it was sealed). */
  async plaintextSecrets(tx: Tx): Promise<{ orgId: string; secretEnc: string }[]> {
    return tx.billingWebhook.findMany({ where: { secretEnc: { startsWith: 'whsec_' } }, select: { orgId: true, secretEnc: true } });
  },
  /** Replaces a stored secret only if it still is `from` (a rotation in between wins); true when replaced. */
  async replaceSecret(tx: Tx, orgId: string, from: string, to: string): Promise<boolean> {
    return (await tx.billingWebhook.updateMany({ where: { orgId, secretEnc: from }, data: { secretEnc: to } })).count > 0;
  },
  /** Removes the webhook and its pending deliveries (they have nowhere to go); sent and dead ones stay as history. */
  async remove(tx: Tx, orgId: string): Promise<{ pendingDropped: number }> {
    await tx.billingWebhook.delete({ where: { orgId } });
    const { count } = await tx.webhookDelivery.deleteMany({ where: { orgId, status: 'pending' } });
    return { pendingDropped: count };
  },
  async counts(tx: Tx, orgId: string): Promise<Record<WebhookDeliveryStatus, number>> {
    const groups = await tx.webhookDelivery.groupBy({ by: ['status'], where: { orgId }, _count: { _all: true } });
    const out: Record<WebhookDeliveryStatus, number> = { pending: 0, sent: 0, dead: 0 };
    for (const g of groups) out[g.status] = g._count._all;
    return out;
  },

  /**
   * Puts matching deliveries back to pending with attempts 0, due now. With explicit deltaIds,
   * ledger entries of the org that never had a delivery (applied before the webhook existed)
   * get one. Returns the ids replayed.
   */
  async replay(
    tx: Tx, orgId: string,
    f: { deltaIds: string[] | null; statuses: WebhookDeliveryStatus[]; since: Date | null; now: Date },
  ): Promise<string[]> {
    const ids = f.deltaIds ? JSON.stringify(f.deltaIds) : null;
    const statuses = JSON.stringify(f.statuses);
    const reset = await tx.$queryRaw<{ deltaId: string }[]>`
      UPDATE "WebhookDelivery" d
      SET "status" = 'pending', "attempts" = 0, "nextAttemptAt" = ${f.now}::timestamptz, "lastError" = NULL, "lastStatus" = NULL, "sentAt" = NULL
      FROM "LedgerEntry" l
      WHERE d."orgId" = ${orgId}::uuid
        AND l."deltaId" = d."deltaId"
        AND d."status"::text IN (SELECT jsonb_array_elements_text(${statuses}::jsonb))
        AND (${ids}::jsonb IS NULL OR d."deltaId" IN (SELECT (jsonb_array_elements_text(${ids}::jsonb))::uuid))
        AND (${f.since}::timestamptz IS NULL OR l."occurredAt" >= ${f.since}::timestamptz)
      RETURNING d."deltaId"::text AS "deltaId"`;
    if (!ids) return reset.map((r) => r.deltaId);
    const created = await tx.$queryRaw<{ deltaId: string }[]>`
      INSERT INTO "WebhookDelivery" ("deltaId", "orgId", "status", "attempts", "nextAttemptAt", "createdAt")
      SELECT l."deltaId", l."orgId", 'pending', 0, ${f.now}::timestamptz, ${f.now}::timestamptz
      FROM "LedgerEntry" l
      WHERE l."orgId" = ${orgId}::uuid
        AND l."deltaId" IN (SELECT (jsonb_array_elements_text(${ids}::jsonb))::uuid)
        AND (${f.since}::timestamptz IS NULL OR l."occurredAt" >= ${f.since}::timestamptz)
      ON CONFLICT ("deltaId") DO NOTHING
      RETURNING "deltaId"::text AS "deltaId"`;
    return [...reset, ...created].map((r) => r.deltaId);
  },

  /** Which of these ids are deltas of the org's ledger. */
  async knownDeltaIds(tx: Tx, orgId: string, ids: string[]): Promise<Set<string>> {
    const rows = await tx.ledgerEntry.findMany({ where: { orgId, deltaId: { in: ids } }, select: { deltaId: true } });
    return new Set(rows.map((r) => r.deltaId));
  },

  /**
   * Claims up to `limit` due pending deliveries of orgs that have a webhook, in one statement:
   * FOR UPDATE SKIP LOCKED picks rows no other sender holds, and the same statement counts the
   * attempt and pushes nextAttemptAt to `leaseUntil`. When it returns the row locks are gone
   * (autocommit), so no lock is held during the HTTP call; another sender skips these rows until
   * the lease ends (a sender that died mid-call leaves them to be retried then).
   */
  async claimDue(tx: Tx, limit: number, now: Date, leaseUntil: Date): Promise<ClaimedDelivery[]> {
    const rows = await tx.$queryRaw<(Omit<ClaimedDelivery, 'attempts'> & { attempts: number })[]>`
      WITH due AS (
        SELECT d."deltaId"
        FROM "WebhookDelivery" d
        WHERE d."status" = 'pending' AND d."nextAttemptAt" <= ${now}::timestamptz
          AND EXISTS (SELECT 1 FROM "BillingWebhook" w WHERE w."orgId" = d."orgId")
          AND EXISTS (SELECT 1 FROM "LedgerEntry" l WHERE l."deltaId" = d."deltaId")
        ORDER BY d."nextAttemptAt", d."deltaId"
        LIMIT ${limit}::int
        FOR UPDATE SKIP LOCKED
      ),
      claimed AS (
        UPDATE "WebhookDelivery" d
        SET "attempts" = d."attempts" + 1, "nextAttemptAt" = ${leaseUntil}::timestamptz
        FROM due
        WHERE d."deltaId" = due."deltaId"
        RETURNING d."deltaId", d."orgId", d."attempts"
      )
      SELECT c."deltaId"::text AS "deltaId", c."orgId"::text AS "orgId", c."attempts"::int AS "attempts",
             l."accountId"::text AS "accountId", l."kind"::text AS "kind", l."reasons", l."cause", l."occurredAt",
             w."url", w."secretEnc"
      FROM claimed c
      JOIN "LedgerEntry" l ON l."deltaId" = c."deltaId"
      JOIN "BillingWebhook" w ON w."orgId" = c."orgId"
      ORDER BY l."streamSeq"`;
    return rows.map((r) => ({ ...r, attempts: Number(r.attempts), occurredAt: new Date(r.occurredAt) }));
  },

  /**
   * Records attempt outcomes in one statement. An outcome is dropped when the delivery is no
   * longer the attempt that was claimed (a replay reset it meanwhile): it will be sent again.
   */
  async recordOutcomes(tx: Tx, outcomes: DeliveryOutcome[], now: Date): Promise<void> {
    if (!outcomes.length) return;
    const json = JSON.stringify(outcomes.map((o) => ({
      id: o.deltaId, attempts: o.attempts, status: o.status, next: o.nextAttemptAt.toISOString(), http: o.httpStatus, err: o.error,
    })));
    await tx.$executeRaw`
      UPDATE "WebhookDelivery" d
      SET "status" = o.status::"WebhookDeliveryStatus",
          "nextAttemptAt" = o.next,
          "lastStatus" = o.http,
          "lastError" = o.err,
          "sentAt" = CASE WHEN o.status = 'sent' THEN ${now}::timestamptz ELSE d."sentAt" END
      FROM jsonb_to_recordset(${json}::jsonb) AS o(id uuid, attempts int, status text, next timestamptz, http int, err text)
      WHERE d."deltaId" = o.id AND d."attempts" = o.attempts AND d."status" = 'pending'`;
  },
};
