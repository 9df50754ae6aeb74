import type { Tx } from '../store/transaction.js';
import { auditStore } from '../store/audit-store.js';
import { actorLabel, type RequestContext } from './context.js';

/** Records an admin change in the same transaction as the change itself. */
export async function audit(
  tx: Tx, ctx: RequestContext,
  e: { action: string; targetType: string; targetId?: string | null; before?: unknown; after?: unknown },
): Promise<void> {
  await auditStore.append(tx, ctx.orgId, { ...e, actor: actorLabel(ctx.actor), requestId: ctx.requestId });
}
