import type { Tx } from './transaction.js';
import { afterCursor, orderBy, toPage, type PageRequest } from './paging.js';
import type { AccessRole, Product } from '../domain/types.js';

export type SiteRow = { id: string; orgId: string; name: string; products: Product[]; enterprise: boolean; createdAt: Date };
export type AccessRow = { id: string; siteId: string; accountId: string; product: Product; role: AccessRole; grantedBy: string; createdAt: Date };

export const siteStore = {
  async create(tx: Tx, orgId: string, s: { name: string; products: Product[]; enterprise: boolean }): Promise<SiteRow> {
    return tx.site.create({ data: { ...s, orgId } });
  },
  async get(tx: Tx, orgId: string, id: string): Promise<SiteRow | null> {
    return tx.site.findFirst({ where: { id, orgId } });
  },
  async list(tx: Tx, orgId: string, page: PageRequest) {
    const rows = await tx.site.findMany({ where: { orgId, ...afterCursor(page.cursor) }, orderBy: [...orderBy()], take: page.limit + 1 });
    return toPage(rows, page.limit, (r) => r);
  },
  async update(tx: Tx, orgId: string, id: string, data: Partial<Pick<SiteRow, 'name' | 'products' | 'enterprise'>>): Promise<SiteRow> {
    await tx.site.updateMany({ where: { id, orgId }, data });
    return (await siteStore.get(tx, orgId, id))!;
  },
  /** Removes access to products a site no longer hosts; returns the affected accounts. */
  async dropAccessNotIn(tx: Tx, orgId: string, siteId: string, products: Product[]): Promise<string[]> {
    const gone = await tx.productAccess.findMany({ where: { orgId, siteId, product: { notIn: products } }, select: { accountId: true } });
    await tx.productAccess.deleteMany({ where: { orgId, siteId, product: { notIn: products } } });
    return [...new Set(gone.map((g) => g.accountId))];
  },
  async findAccess(tx: Tx, orgId: string, siteId: string, accountId: string, product: Product, grantedBy = 'direct'): Promise<AccessRow | null> {
    return tx.productAccess.findFirst({ where: { orgId, siteId, accountId, product, grantedBy } });
  },
  async upsertAccess(tx: Tx, orgId: string, a: { siteId: string; accountId: string; product: Product; role: AccessRole; grantedBy?: string }): Promise<AccessRow> {
    const grantedBy = a.grantedBy ?? 'direct';
    return tx.productAccess.upsert({
      where: { accountId_siteId_product_grantedBy: { accountId: a.accountId, siteId: a.siteId, product: a.product, grantedBy } },
      create: { orgId, ...a, grantedBy },
      update: { role: a.role },
    });
  },
  async deleteAccess(tx: Tx, orgId: string, siteId: string, accountId: string, product: Product, grantedBy = 'direct'): Promise<boolean> {
    return (await tx.productAccess.deleteMany({ where: { orgId, siteId, accountId, product, grantedBy } })).count > 0;
  },
  async listAccess(tx: Tx, orgId: string, siteId: string, page: PageRequest) {
    const rows = await tx.productAccess.findMany({ where: { orgId, siteId, ...afterCursor(page.cursor) }, orderBy: [...orderBy()], take: page.limit + 1 });
    return toPage(rows, page.limit, (r) => r);
  },
};
