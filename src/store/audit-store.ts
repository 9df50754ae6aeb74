import type { SqlTx, Tx } from './transaction.js';
import { jsonParam } from './json-param.js';
import { afterCursor, orderBy, toPage, type PageRequest } from './paging.js';
import { Prisma } from '../generated/prisma/client.js';

export type AuditEntry = {
  actor: string; action: string; targetType: string; targetId?: string | null;
  before?: unknown; after?: unknown; requestId?: string | null;
};

const json = (v: unknown) => (v === undefined || v === null ? Prisma.DbNull : (JSON.parse(JSON.stringify(v)) as Prisma.InputJsonValue));

export const auditStore = {
  async append(tx: Tx, orgId: string, e: AuditEntry): Promise<void> {
    await tx.auditEvent.create({
      data: {
        orgId, actor: e.actor, action: e.action, targetType: e.targetType, targetId: e.targetId ?? null,
        before: json(e.before), after: json(e.after), requestId: e.requestId ?? null,
      },
    });
  },
  /** Several rows in one INSERT (a SCIM push that audits two or three changes makes one round trip). */
  /** Many rows in one INSERT, travelling as one JSON parameter (raw SQL: the SCIM write path runs it outside Prisma). */
  async appendMany(tx: SqlTx, orgId: string, entries: AuditEntry[]): Promise<void> {
    if (!entries.length) return;
    const rows = jsonParam(entries.map((e) => ({
      actor: e.actor, action: e.action, targetType: e.targetType, targetId: e.targetId ?? null,
      before: e.before ?? null, after: e.after ?? null, requestId: e.requestId ?? null,
    })));
    // A JSON null for before/after is stored as SQL NULL, as Prisma's DbNull did.
    await tx.$executeRaw`
      INSERT INTO "AuditEvent" ("id", "orgId", "actor", "action", "targetType", "targetId", "before", "after", "requestId")
      SELECT gen_random_uuid(), ${orgId}::uuid, e."actor", e."action", e."targetType", e."targetId",
             NULLIF(e."before", 'null'::jsonb), NULLIF(e."after", 'null'::jsonb), e."requestId"
      FROM jsonb_to_recordset(${rows}::jsonb) AS e("actor" text, "action" text, "targetType" text, "targetId" text, "before" jsonb, "after" jsonb, "requestId" text)`;
  },
  /**
   * The accounts a migration moved whose billability is not recomputed yet, per org: the audit
   * rows the migration wrote (actor system:migration, after.billabilitySynced = false).
   */
  async unsyncedMigrationMoves(tx: SqlTx, migration: string): Promise<{ orgId: string; accountIds: string[] }[]> {
    return tx.$queryRaw<{ orgId: string; accountIds: string[] }[]>`
      SELECT "orgId"::text AS "orgId", array_agg("targetId" ORDER BY "targetId") AS "accountIds" FROM "AuditEvent"
      WHERE "actor" = 'system:migration' AND "action" = 'policy.members.move'
        AND "after"->>'migration' = ${migration} AND "after"->>'billabilitySynced' = 'false'
      GROUP BY "orgId"`;
  },
  async markMigrationMovesSynced(tx: SqlTx, orgId: string, migration: string): Promise<void> {
    await tx.$executeRaw`
      UPDATE "AuditEvent" SET "after" = jsonb_set("after", '{billabilitySynced}', 'true'::jsonb)
      WHERE "orgId" = ${orgId}::uuid AND "actor" = 'system:migration' AND "action" = 'policy.members.move'
        AND "after"->>'migration' = ${migration} AND "after"->>'billabilitySynced' = 'false'`;
  },
  /** Newest first: an admin asks "what just happened". */
  async list(tx: Tx, orgId: string, page: PageRequest, filter: { action?: string | undefined; targetId?: string | undefined } = {}) {
    const rows = await tx.auditEvent.findMany({
      where: {
        orgId,
        ...(filter.action ? { action: filter.action } : {}),
        ...(filter.targetId ? { targetId: filter.targetId } : {}),
        ...afterCursor(page.cursor, 'desc'),
      },
      orderBy: [...orderBy('desc')],
      take: page.limit + 1,
    });
    return toPage(rows, page.limit, (r) => r);
  },
};
