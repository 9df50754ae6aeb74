import type { Tx } from './transaction.js';
import { afterCursor, orderBy, toPage, type PageRequest } from './paging.js';

export type ScimEventEntry = {
  directoryId: string; method: string; path: string; status: number; scimType?: string | null;
  detail?: string | null; resourceId?: string | null; durationMs: number; requestId?: string | null;
};

export const scimEventStore = {
  async append(tx: Tx, orgId: string, e: ScimEventEntry): Promise<void> {
    await tx.scimEvent.create({ data: { ...e, orgId } });
  },
  /** Many events in one INSERT (the SCIM router buffers them, see directory-service recordEvent). */
  async appendMany(tx: Tx, events: { orgId: string; entry: ScimEventEntry & { createdAt: Date } }[]): Promise<void> {
    if (events.length) await tx.scimEvent.createMany({ data: events.map((e) => ({ ...e.entry, orgId: e.orgId })) });
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
