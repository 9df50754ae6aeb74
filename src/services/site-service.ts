import type { Database } from '../store/database.js';
import { inTransaction, isUniqueViolation, type Tx } from '../store/transaction.js';
import { siteStore, type SiteRow } from '../store/site-store.js';
import { accountStore } from '../store/account-store.js';
import type { PageRequest } from '../store/paging.js';
import { Conflict, InvalidInput, NotFound } from '../domain/errors.js';
import type { AccessRole, Product } from '../domain/types.js';
import { audit } from './audit.js';
import { syncBillability } from './billability-sync.js';
import type { RequestContext } from './context.js';

const siteView = (s: SiteRow) => ({ id: s.id, name: s.name, products: s.products, enterprise: s.enterprise, createdAt: s.createdAt });

/** JSM knows agents and portal-only customers; every other product has plain users. */
export function accessRoleFor(product: Product, role: AccessRole | undefined): AccessRole {
  if (product === 'jsm') {
    if (role === undefined) return 'agent';
    if (role === 'user') throw new InvalidInput('invalid role for JSM', [{ path: 'role', message: 'JSM access is "agent" or "customer" (portal-only)' }]);
    return role;
  }
  if (role !== undefined && role !== 'user') {
    throw new InvalidInput(`invalid role for ${product}`, [{ path: 'role', message: `"${role}" applies to JSM only; ${product} access is "user"` }]);
  }
  return 'user';
}

export function createSiteService(db: Database) {
  async function mustGet(tx: Tx, ctx: RequestContext, id: string) {
    const s = await siteStore.get(tx, ctx.orgId, id);
    if (!s) throw new NotFound('site', id);
    return s;
  }
  const dedupe = (products: Product[]) => [...new Set(products)];

  return {
    async create(ctx: RequestContext, input: { name: string; products: Product[]; enterprise?: boolean | undefined }) {
      try {
        return await inTransaction(db, async (tx) => {
          const s = await siteStore.create(tx, ctx.orgId, { name: input.name, products: dedupe(input.products), enterprise: input.enterprise ?? false });
          await audit(tx, ctx, { action: 'site.create', targetType: 'site', targetId: s.id, after: siteView(s) });
          return siteView(s);
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw new Conflict('site-name-taken', `a site named "${input.name}" already exists in this org`);
        throw err;
      }
    },

    async get(ctx: RequestContext, id: string) {
      return siteView(await mustGet(db.prisma, ctx, id));
    },

    async list(ctx: RequestContext, page: PageRequest) {
      const res = await siteStore.list(db.prisma, ctx.orgId, page);
      return { items: res.items.map(siteView), next: res.next };
    },

    /** Changing the Enterprise flag or dropping a product can change who is billable. */
    async update(ctx: RequestContext, id: string, input: { name?: string | undefined; products?: Product[] | undefined; enterprise?: boolean | undefined }) {
      try {
        return await inTransaction(db, async (tx) => {
          const before = await mustGet(tx, ctx, id);
          const data = {
            ...(input.name !== undefined ? { name: input.name } : {}),
            ...(input.products !== undefined ? { products: dedupe(input.products) } : {}),
            ...(input.enterprise !== undefined ? { enterprise: input.enterprise } : {}),
          };
          const after = await siteStore.update(tx, ctx.orgId, id, data);
          const affected = new Set<string>();
          if (input.products) for (const a of await siteStore.dropAccessNotIn(tx, ctx.orgId, id, after.products)) affected.add(a);
          if (input.enterprise !== undefined && input.enterprise !== before.enterprise) {
            for (const a of await accountStore.idsWithAccessOnSite(tx, ctx.orgId, id)) affected.add(a);
          }
          await audit(tx, ctx, { action: 'site.update', targetType: 'site', targetId: id, before: siteView(before), after: siteView(after) });
          await syncBillability(tx, ctx, [...affected], 'site-changed');
          return siteView(after);
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw new Conflict('site-name-taken', `a site named "${input.name}" already exists in this org`);
        throw err;
      }
    },

    /** Grants direct access; granting the same access again is a no-op, a new role replaces the old. */
    async grantAccess(ctx: RequestContext, siteId: string, input: { accountId: string; product: Product; role?: AccessRole | undefined }) {
      const role = accessRoleFor(input.product, input.role);
      return inTransaction(db, async (tx) => {
        await accountStore.lockForUpdate(tx, ctx.orgId, [input.accountId]);
        const site = await mustGet(tx, ctx, siteId);
        if (!site.products.includes(input.product)) {
          throw new Conflict('product-not-on-site', `site "${site.name}" does not host ${input.product}; it hosts ${site.products.join(', ') || 'no products'}`);
        }
        if (!(await accountStore.get(tx, ctx.orgId, input.accountId))) {
          throw new InvalidInput('unknown account', [{ path: 'accountId', message: `no account ${input.accountId} in this org` }]);
        }
        const before = await siteStore.findAccess(tx, ctx.orgId, siteId, input.accountId, input.product);
        const row = await siteStore.upsertAccess(tx, ctx.orgId, { siteId, accountId: input.accountId, product: input.product, role });
        const changed = !before || before.role !== role;
        if (changed) {
          await audit(tx, ctx, {
            action: 'site.access.grant', targetType: 'account', targetId: input.accountId,
            before: before ? { siteId, product: before.product, role: before.role } : null, after: { siteId, product: row.product, role: row.role },
          });
          await syncBillability(tx, ctx, [input.accountId], 'access-granted');
        }
        return { created: !before, access: { siteId, accountId: row.accountId, product: row.product, role: row.role, grantedBy: row.grantedBy } };
      });
    },

    async revokeAccess(ctx: RequestContext, siteId: string, accountId: string, product: Product) {
      return inTransaction(db, async (tx) => {
        await accountStore.lockForUpdate(tx, ctx.orgId, [accountId]);
        await mustGet(tx, ctx, siteId);
        const before = await siteStore.findAccess(tx, ctx.orgId, siteId, accountId, product);
        if (!before) throw new NotFound('direct access', `${accountId}/${product} on site ${siteId}`);
        await siteStore.deleteAccess(tx, ctx.orgId, siteId, accountId, product);
        await audit(tx, ctx, { action: 'site.access.revoke', targetType: 'account', targetId: accountId, before: { siteId, product, role: before.role }, after: null });
        await syncBillability(tx, ctx, [accountId], 'access-revoked');
      });
    },

    async listAccess(ctx: RequestContext, siteId: string, page: PageRequest) {
      await mustGet(db.prisma, ctx, siteId);
      const res = await siteStore.listAccess(db.prisma, ctx.orgId, siteId, page);
      return { items: res.items.map((a) => ({ accountId: a.accountId, product: a.product, role: a.role, grantedBy: a.grantedBy })), next: res.next };
    },
  };
}

export type SiteService = ReturnType<typeof createSiteService>;
