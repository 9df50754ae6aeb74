import type { Tx } from './transaction.js';
import { afterCursor, orderBy, toPage, type PageRequest } from './paging.js';

export type OrgRow = { id: string; name: string; createdAt: Date };
export type AdminKeyRow = { id: string; orgId: string; name: string; secretHash: string; createdAt: Date; lastUsedAt: Date | null; revokedAt: Date | null };

export const orgStore = {
  async create(tx: Tx, id: string, name: string): Promise<OrgRow> {
    return tx.org.create({ data: { id, orgId: id, name }, select: { id: true, name: true, createdAt: true } });
  },
  async get(tx: Tx, orgId: string): Promise<OrgRow | null> {
    return tx.org.findUnique({ where: { id: orgId }, select: { id: true, name: true, createdAt: true } });
  },
  async list(tx: Tx, page: PageRequest) {
    const rows = await tx.org.findMany({
      where: afterCursor(page.cursor),
      orderBy: [...orderBy()],
      take: page.limit + 1,
      select: { id: true, name: true, createdAt: true },
    });
    return toPage(rows, page.limit, (r) => r);
  },
  async createAdminKey(tx: Tx, orgId: string, key: { id: string; name: string; secretHash: string }): Promise<AdminKeyRow> {
    return tx.adminKey.create({ data: { ...key, orgId } });
  },
  async findAdminKey(tx: Tx, id: string): Promise<AdminKeyRow | null> {
    return tx.adminKey.findUnique({ where: { id } });
  },
  async listAdminKeys(tx: Tx, orgId: string): Promise<AdminKeyRow[]> {
    return tx.adminKey.findMany({ where: { orgId }, orderBy: [...orderBy()] });
  },
  async touchAdminKey(tx: Tx, id: string, at: Date): Promise<void> {
    await tx.adminKey.update({ where: { id }, data: { lastUsedAt: at } });
  },
  async revokeAdminKey(tx: Tx, orgId: string, id: string, at: Date): Promise<AdminKeyRow | null> {
    const res = await tx.adminKey.updateMany({ where: { id, orgId, revokedAt: null }, data: { revokedAt: at } });
    return res.count ? tx.adminKey.findUnique({ where: { id } }) : null;
  },
};
