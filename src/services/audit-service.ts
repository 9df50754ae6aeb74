import type { Database } from '../store/database.js';
import { auditStore } from '../store/audit-store.js';
import type { PageRequest } from '../store/paging.js';
import type { RequestContext } from './context.js';

export function createAuditService(db: Database) {
  return {
    async list(ctx: RequestContext, page: PageRequest, filter: { action?: string | undefined; targetId?: string | undefined }) {
      const res = await auditStore.list(db.prisma, ctx.orgId, page, filter);
      return {
        items: res.items.map((e) => ({
          id: e.id, at: e.createdAt, actor: e.actor, action: e.action, targetType: e.targetType, targetId: e.targetId,
          before: e.before, after: e.after, requestId: e.requestId,
        })),
        next: res.next,
      };
    },
  };
}
