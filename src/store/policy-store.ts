import type { Tx } from './transaction.js';
import { afterCursor, orderBy, toPage, type PageRequest } from './paging.js';

export type PolicyRow = {
  id: string; orgId: string; name: string; isDefault: boolean; nonBillable: boolean; enforceSso: boolean;
  ssoConnectionId: string | null; requireTwoFactor: boolean; blockApiTokens: boolean; passwordMinStrength: number | null;
  passwordExpiryDays: number | null; sessionDurationMinutes: number; createdAt: Date; updatedAt: Date;
};
export type PolicyWithCount = PolicyRow & { memberCount: number };
export type PolicyData = Partial<Omit<PolicyRow, 'id' | 'orgId' | 'createdAt' | 'updatedAt'>>;

const withCount = { _count: { select: { accounts: true } } } as const;
const flatten = ({ _count, ...p }: PolicyRow & { _count: { accounts: number } }): PolicyWithCount => ({ ...p, memberCount: _count.accounts });

export const policyStore = {
  async create(tx: Tx, orgId: string, data: PolicyData & { name: string }): Promise<PolicyRow> {
    return tx.policy.create({ data: { ...data, orgId } });
  },
  async get(tx: Tx, orgId: string, id: string): Promise<PolicyRow | null> {
    return tx.policy.findFirst({ where: { id, orgId } });
  },
  async getWithCount(tx: Tx, orgId: string, id: string): Promise<PolicyWithCount | null> {
    const p = await tx.policy.findFirst({ where: { id, orgId }, include: withCount });
    return p ? flatten(p) : null;
  },
  async byName(tx: Tx, orgId: string, name: string): Promise<PolicyRow | null> {
    return tx.policy.findUnique({ where: { orgId_name: { orgId, name } } });
  },
  async list(tx: Tx, orgId: string, page: PageRequest) {
    const rows = await tx.policy.findMany({ where: { orgId, ...afterCursor(page.cursor) }, orderBy: [...orderBy()], take: page.limit + 1, include: withCount });
    return toPage(rows, page.limit, flatten);
  },
  async defaultPolicy(tx: Tx, orgId: string): Promise<PolicyRow> {
    const p = await tx.policy.findFirst({ where: { orgId, isDefault: true } });
    if (!p) throw new Error(`org ${orgId} has no default policy`); // an invariant, not client input
    return p;
  },
  async nonBillablePolicy(tx: Tx, orgId: string): Promise<PolicyRow | null> {
    return tx.policy.findFirst({ where: { orgId, nonBillable: true } });
  },
  /** Step 3 of the lock order: the policy's member accounts, FOR UPDATE, in id order. */
  async lockMembers(tx: Tx, orgId: string, policyId: string): Promise<void> {
    await tx.$executeRaw`SELECT 1 FROM "Account" WHERE "orgId" = ${orgId}::uuid AND "policyId" = ${policyId}::uuid ORDER BY "id" FOR UPDATE`;
  },
  async syncedMemberCount(tx: Tx, orgId: string, policyId: string): Promise<number> {
    return tx.account.count({ where: { orgId, policyId, source: 'scim' } });
  },
  async update(tx: Tx, orgId: string, id: string, data: PolicyData): Promise<PolicyRow> {
    await tx.policy.updateMany({ where: { id, orgId }, data });
    return (await policyStore.get(tx, orgId, id))!;
  },
  async delete(tx: Tx, orgId: string, id: string): Promise<void> {
    await tx.policy.deleteMany({ where: { id, orgId } });
  },
};
