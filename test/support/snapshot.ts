import type { Database } from '../../src/store/database.js';

/**
 * Everything an org's admin change could touch. Two equal snapshots prove a refused
 * request changed nothing: no policy, membership, audit row or billable delta.
 */
export async function orgSnapshot(db: Database, orgId: string) {
  const p = db.prisma;
  const [policies, accounts, access, audit, deltas, domains, subscription] = await Promise.all([
    p.policy.findMany({ where: { orgId }, orderBy: { id: 'asc' } }),
    p.account.findMany({ where: { orgId }, orderBy: { id: 'asc' } }),
    p.productAccess.findMany({ where: { orgId }, orderBy: { id: 'asc' } }),
    p.auditEvent.count({ where: { orgId } }),
    p.billableDelta.count({ where: { orgId } }),
    p.domain.findMany({ where: { orgId }, orderBy: { id: 'asc' } }),
    p.subscription.findUnique({ where: { orgId } }),
  ]);
  return { policies, accounts, access, audit, deltas, domains, subscription };
}
