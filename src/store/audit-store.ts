import type { Tx } from './transaction.js';
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
  async appendMany(tx: Tx, orgId: string, entries: AuditEntry[]): Promise<void> {
    if (!entries.length) return;
    await tx.auditEvent.createMany({
      data: entries.map((e) => ({
        orgId, actor: e.actor, action: e.action, targetType: e.targetType, targetId: e.targetId ?? null,
        before: json(e.before), after: json(e.after), requestId: e.requestId ?? null,
      })),
    });
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
