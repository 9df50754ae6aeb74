import type { Tx } from './transaction.js';
import type { Database } from './database.js';
import { jsonParam } from './json-param.js';
import { afterCursor, orderBy, toPage, type PageRequest } from './paging.js';

export type ScimEventEntry = {
  directoryId: string; method: string; path: string; status: number; scimType?: string | null;
  detail?: string | null; resourceId?: string | null; durationMs: number; requestId?: string | null;
};

const APPEND_SQL = `
  INSERT INTO "ScimEvent" ("id", "orgId", "directoryId", "method", "path", "status", "scimType", "detail", "resourceId", "durationMs", "requestId", "createdAt")
  SELECT gen_random_uuid(), e."orgId", e."directoryId", e."method", e."path", e."status", e."scimType", e."detail", e."resourceId", e."durationMs", e."requestId", e."createdAt"
  FROM json_to_recordset($1::json) AS e("orgId" uuid, "directoryId" uuid, "method" text, "path" text, "status" int, "scimType" text,
    "detail" text, "resourceId" text, "durationMs" int, "requestId" text, "createdAt" timestamptz)`;

export const scimEventStore = {
  async append(tx: Tx, orgId: string, e: ScimEventEntry): Promise<void> {
    await tx.scimEvent.create({ data: { ...e, orgId } });
  },
  /**
   * Many events in one INSERT (the SCIM router buffers them, see directory-service recordEvent),
   * the rows travelling as one JSON parameter: a prepared statement outside Prisma, whose
   * createMany of 200 rows cost more CPU than the 200 lookups it recorded (docs/scim.md).
   */
  async appendMany(db: Database, events: { orgId: string; entry: ScimEventEntry & { createdAt: Date } }[]): Promise<void> {
    if (!events.length) return;
    const rows = events.map(({ orgId, entry: e }) => ({
      orgId, directoryId: e.directoryId, method: e.method, path: e.path, status: e.status, scimType: e.scimType ?? null,
      detail: e.detail ?? null, resourceId: e.resourceId ?? null, durationMs: Math.round(e.durationMs), requestId: e.requestId ?? null,
      createdAt: e.createdAt.toISOString(),
    }));
    await db.sql('scim-events-append', APPEND_SQL, [jsonParam(rows)]);
  },
  /** Newest first: "why did the last push fail?" */
  async list(tx: Tx, orgId: string, directoryId: string, page: PageRequest, filter: { failedOnly?: boolean | undefined } = {}) {
    const rows = await tx.scimEvent.findMany({
      where: { orgId, directoryId, ...(filter.failedOnly ? { status: { gte: 400 } } : {}), ...afterCursor(page.cursor, 'desc') },
      orderBy: [...orderBy('desc')],
      take: page.limit + 1,
    });
    return toPage(rows, page.limit, (r) => r);
  },
};
