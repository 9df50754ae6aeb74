import type { Database } from '../store/database.js';
import { inTransaction, isUniqueViolation, lockOrg, type Tx } from '../store/transaction.js';
import { accountStore, type AccountFilter, type AccountProfileChange, type AccountRow } from '../store/account-store.js';
import { domainStore } from '../store/domain-store.js';
import { policyStore } from '../store/policy-store.js';
import { siteStore } from '../store/site-store.js';
import type { PageRequest } from '../store/paging.js';
import { Conflict, InvalidInput, NotFound, PolicyViolation } from '../domain/errors.js';
import { parseEmail } from '../domain/identity.js';
import { SITE_ROLES, type AccountSource, type AccountStatus, type RoleKind } from '../domain/types.js';
import { audit } from './audit.js';
import { currentBillability, syncBillability } from './billability-sync.js';
import type { RequestContext } from './context.js';

export type AccountListFilter = {
  email?: string | undefined; managed?: boolean | undefined; source?: AccountSource | undefined;
  status?: AccountStatus | undefined; billable?: boolean | undefined; policyId?: string | undefined;
  inactiveSince?: Date | undefined;
};
export type AccountProfileInput = { email?: string | undefined; displayName?: string | null | undefined; givenName?: string | null | undefined; familyName?: string | null | undefined };

export type NewAccountInput = { email: string; displayName?: string | undefined; givenName?: string | undefined; familyName?: string | undefined };

const summary = (a: AccountRow) => ({
  id: a.id, email: a.email, displayName: a.displayName, givenName: a.givenName, familyName: a.familyName,
  managed: a.managed, status: a.status, source: a.source, directoryId: a.directoryId, externalId: a.externalId,
  policyId: a.policyId, lastSignInAt: a.lastSignInAt, lastSignInConnectionId: a.lastSignInConnectionId,
  createdAt: a.createdAt, updatedAt: a.updatedAt,
});

/** The API's filter as the store reads it: the email by its normalised form. */
function storeFilter(filter: AccountListFilter): AccountFilter {
  const { email, ...columns } = filter;
  return { ...columns, emailNormalized: email ? parseEmail(email).normalized : undefined };
}

export function createAccountService(db: Database) {
  /**
   * Full views of a page of accounts in three queries, whatever the page size. Billability is
   * computed live so its reasons are always current.
   */
  async function views(tx: Tx, ctx: RequestContext, rows: AccountRow[]) {
    const ids = rows.map((a) => a.id);
    if (!ids.length) return [];
    // Sequential on purpose: a transaction handle runs one query at a time.
    const bill = await currentBillability(tx, ctx, ids);
    const roles = await accountStore.rolesOf(tx, ctx.orgId, ids);
    const access = await accountStore.accessOf(tx, ctx.orgId, ids);
    return rows.map((a) => {
      const b = bill.get(a.id) ?? { billable: false, reasons: [] };
      return {
        ...summary(a), billable: b.billable, billableReasons: b.reasons,
        roles: roles.filter((r) => r.accountId === a.id).map((r) => ({ id: r.id, role: r.role, ...(SITE_ROLES.has(r.role) ? { siteId: r.scopeId } : {}) })),
        access: access.filter((x) => x.accountId === a.id).map(({ accountId: _a, ...x }) => x),
      };
    });
  }
  const view = async (tx: Tx, ctx: RequestContext, a: AccountRow) => (await views(tx, ctx, [a]))[0]!;

  async function mustGet(tx: Tx, ctx: RequestContext, id: string) {
    const a = await accountStore.get(tx, ctx.orgId, id);
    if (!a) throw new NotFound('account', id);
    return a;
  }

  async function setStatus(ctx: RequestContext, id: string, status: 'active' | 'disabled') {
    return inTransaction(db, async (tx) => {
      await accountStore.lockForUpdate(tx, ctx.orgId, [id]);
      const before = await mustGet(tx, ctx, id);
      if (before.status === status) return view(tx, ctx, before); // idempotent: nothing changes, nothing is audited
      const after = await accountStore.setStatus(tx, ctx.orgId, id, status);
      await audit(tx, ctx, { action: status === 'disabled' ? 'account.disable' : 'account.enable', targetType: 'account', targetId: id, before: { status: before.status }, after: { status } });
      await syncBillability(tx, ctx, [id], status === 'disabled' ? 'account-disabled' : 'account-enabled');
      return view(tx, ctx, after);
    });
  }

  return {
    async create(ctx: RequestContext, input: NewAccountInput) {
      const email = parseEmail(input.email);
      try {
        return await inTransaction(db, async (tx) => {
          const managed = await domainStore.isVerified(tx, ctx.orgId, email.domain);
          // New managed accounts join the default policy (SPEC §3); external ones sit in none.
          const policyId = managed ? (await policyStore.defaultPolicy(tx, ctx.orgId)).id : null;
          const row = await accountStore.create(tx, ctx.orgId, {
            email: email.email, emailNormalized: email.normalized, emailDomain: email.domain,
            displayName: input.displayName ?? null, givenName: input.givenName ?? null, familyName: input.familyName ?? null,
            managed, policyId, source: 'manual',
          });
          await audit(tx, ctx, { action: 'account.create', targetType: 'account', targetId: row.id, after: summary(row) });
          await syncBillability(tx, ctx, [row.id], 'account-created');
          return view(tx, ctx, row);
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw new Conflict('account-email-taken', `an account with email ${email.email} already exists in this org`);
        throw err;
      }
    },

    async get(ctx: RequestContext, id: string) {
      return view(db.prisma, ctx, await mustGet(db.prisma, ctx, id));
    },

    /** A page of the org's accounts matching the filters (in SQL), and how many match in all. */
    async list(ctx: RequestContext, page: PageRequest, filter: AccountListFilter = {}) {
      const res = await accountStore.list(db.prisma, ctx.orgId, page, storeFilter(filter));
      return { items: await views(db.prisma, ctx, res.items), next: res.next, total: res.total };
    },

    /**
     * Every account the filter selects, a page at a time in the list's order (keyset: constant
     * memory whatever the org's size), for the CSV export. Rows as stored: `billable` is the flag
     * kept with every change (reconciled nightly), not recomputed per row.
     */
    async *allAccounts(ctx: RequestContext, filter: AccountListFilter = {}, batchSize = 1000): AsyncGenerator<AccountRow[]> {
      const where = storeFilter(filter);
      let cursor: string | undefined;
      do {
        const p = await accountStore.list(db.prisma, ctx.orgId, { limit: batchSize, cursor }, where, { count: false });
        if (p.items.length) yield p.items;
        cursor = p.next ?? undefined;
      } while (cursor);
    },

    /**
     * An admin's edit of an account's names and email. Only manual (and JIT) accounts: a synced
     * account's profile is the identity provider's, which sends it on every push
     * (`synced-profile-owned-by-idp`). A new email must be free in the org; `managed` follows its
     * domain as at creation (a managed account keeps its policy, one that becomes managed joins
     * the default policy, one that becomes external leaves its policy). Audited (account.update,
     * the changed fields); a change of `managed` recomputes billability.
     */
    async update(ctx: RequestContext, id: string, input: AccountProfileInput) {
      const email = input.email !== undefined ? parseEmail(input.email) : null;
      try {
        return await inTransaction(db, async (tx) => {
          // Org first (the email's domain decides `managed`, as domain verification does under this lock), then the account.
          await lockOrg(tx, ctx.orgId);
          await accountStore.lockForUpdate(tx, ctx.orgId, [id]);
          const before = await mustGet(tx, ctx, id);
          if (before.source === 'scim') {
            throw new PolicyViolation('synced-profile-owned-by-idp',
              `account ${before.email} is synced from an identity provider (directory ${before.directoryId}): change its name and email there; the next push updates it here`);
          }
          const change: AccountProfileChange = {};
          for (const f of ['displayName', 'givenName', 'familyName'] as const) {
            if (input[f] !== undefined && input[f] !== before[f]) change[f] = input[f];
          }
          if (email && email.email !== before.email) {
            if (email.normalized !== before.emailNormalized) {
              const holder = await accountStore.findByEmail(tx, ctx.orgId, email.normalized);
              if (holder) throw new Conflict('account-email-taken', `an account with email ${email.email} already exists in this org`);
            }
            Object.assign(change, { email: email.email, emailNormalized: email.normalized, emailDomain: email.domain });
            const managed = parseEmail(before.email).domain === email.domain ? before.managed : await domainStore.isVerified(tx, ctx.orgId, email.domain);
            if (managed !== before.managed) {
              change.managed = managed;
              change.policyId = managed ? (await policyStore.defaultPolicy(tx, ctx.orgId)).id : null;
            }
          }
          const fields = Object.keys(change) as (keyof AccountProfileChange)[];
          if (!fields.length) return view(tx, ctx, before); // nothing changes, nothing is audited
          const after = await accountStore.updateProfile(tx, ctx.orgId, id, change);
          const shown = fields.filter((f) => f !== 'emailNormalized' && f !== 'emailDomain');
          await audit(tx, ctx, {
            action: 'account.update', targetType: 'account', targetId: id,
            before: Object.fromEntries(shown.map((f) => [f, before[f]])), after: Object.fromEntries(shown.map((f) => [f, after[f]])),
          });
          if (change.managed !== undefined) await syncBillability(tx, ctx, [id], 'account-email-changed');
          return view(tx, ctx, after);
        });
      } catch (err) {
        // A concurrent create or edit took the address between the check and the UPDATE.
        if (email && isUniqueViolation(err)) throw new Conflict('account-email-taken', `an account with email ${email.email} already exists in this org`);
        throw err;
      }
    },

    disable: (ctx: RequestContext, id: string) => setStatus(ctx, id, 'disabled'),
    enable: (ctx: RequestContext, id: string) => setStatus(ctx, id, 'active'),

    async grantRole(ctx: RequestContext, id: string, input: { role: RoleKind; siteId?: string | undefined }) {
      const siteRole = SITE_ROLES.has(input.role);
      if (siteRole && !input.siteId) throw new InvalidInput('site role needs a site', [{ path: 'siteId', message: `${input.role} is held on one site: give siteId` }]);
      if (!siteRole && input.siteId) throw new InvalidInput('org role takes no site', [{ path: 'siteId', message: `${input.role} is an org-wide role: omit siteId` }]);
      try {
        return await inTransaction(db, async (tx) => {
          await mustGet(tx, ctx, id);
          if (input.siteId && !(await siteStore.get(tx, ctx.orgId, input.siteId))) {
            throw new InvalidInput('unknown site', [{ path: 'siteId', message: `no site ${input.siteId} in this org` }]);
          }
          const row = await accountStore.addRole(tx, ctx.orgId, id, input.role, input.siteId ?? ctx.orgId);
          await audit(tx, ctx, { action: 'account.role.grant', targetType: 'account', targetId: id, after: { role: input.role, siteId: input.siteId ?? null } });
          return { id: row.id, role: row.role, ...(siteRole ? { siteId: row.scopeId } : {}) };
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw new Conflict('role-already-granted', `the account already holds ${input.role}${input.siteId ? ` on site ${input.siteId}` : ''}`);
        throw err;
      }
    },

    async revokeRole(ctx: RequestContext, id: string, roleId: string) {
      return inTransaction(db, async (tx) => {
        await mustGet(tx, ctx, id);
        if (!(await accountStore.removeRole(tx, ctx.orgId, id, roleId))) throw new NotFound('role assignment', roleId);
        await audit(tx, ctx, { action: 'account.role.revoke', targetType: 'account', targetId: id, before: { roleAssignmentId: roleId } });
      });
    },
  };
}

export type AccountService = ReturnType<typeof createAccountService>;
