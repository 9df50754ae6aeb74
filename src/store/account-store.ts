import type { Tx } from './transaction.js';
import type { Prisma } from '../generated/prisma/client.js';
import { afterCursor, orderBy, toPage, type PageRequest } from './paging.js';
import type { AccessFact } from '../domain/billability.js';
import type { AccountSource, AccountStatus, RoleKind } from '../domain/types.js';

export type AccountRow = {
  id: string; orgId: string; email: string; emailNormalized: string; displayName: string | null; givenName: string | null; familyName: string | null;
  managed: boolean; status: AccountStatus; source: AccountSource; directoryId: string | null; externalId: string | null;
  policyId: string | null; billable: boolean; lastSignInAt: Date | null; lastSignInConnectionId: string | null; createdAt: Date; updatedAt: Date;
};

export type NewAccount = {
  email: string; emailNormalized: string; emailDomain: string; displayName?: string | null; givenName?: string | null;
  familyName?: string | null; managed: boolean; policyId: string | null; source: AccountSource;
  directoryId?: string | null; externalId?: string | null;
};

/** GET accounts filters; every one is a column of Account. */
export type AccountFilter = {
  emailNormalized?: string | undefined; managed?: boolean | undefined; source?: AccountSource | undefined;
  status?: AccountStatus | undefined; billable?: boolean | undefined; policyId?: string | undefined;
  /** Accounts that have not signed in since then (or never). */
  inactiveSince?: Date | undefined;
};

export type AccountProfileChange = {
  displayName?: string | null; givenName?: string | null; familyName?: string | null;
  email?: string; emailNormalized?: string; emailDomain?: string; managed?: boolean; policyId?: string | null;
};

/** What billability needs to know about one account, loaded in one query. */
export type BillabilityFacts = {
  id: string; billable: boolean; managed: boolean; status: AccountStatus; inNonBillablePolicy: boolean; access: AccessFact[];
};

const accountSelect = {
  id: true, orgId: true, email: true, emailNormalized: true, displayName: true, givenName: true, familyName: true, managed: true, status: true,
  source: true, directoryId: true, externalId: true, policyId: true, billable: true, lastSignInAt: true, lastSignInConnectionId: true,
  createdAt: true, updatedAt: true,
} as const;

export const accountStore = {
  async create(tx: Tx, orgId: string, a: NewAccount): Promise<AccountRow> {
    return tx.account.create({ data: { ...a, orgId }, select: accountSelect });
  },
  /**
   * Locks accounts FOR UPDATE in id order. Taken first by every transaction that changes an
   * account's billability inputs, so such transactions queue instead of deadlocking (a later
   * lock would have to upgrade the KEY SHARE lock a foreign-key insert already took).
   */
  async lockForUpdate(tx: Tx, orgId: string, ids: string[]): Promise<void> {
    if (!ids.length) return;
    await tx.$executeRaw`
      SELECT 1 FROM "Account" WHERE "orgId" = ${orgId}::uuid AND "id" = ANY(string_to_array(${[...new Set(ids)].sort().join(',')}, ',')::uuid[])
      ORDER BY "id" FOR UPDATE`;
  },
  async get(tx: Tx, orgId: string, id: string): Promise<AccountRow | null> {
    return tx.account.findFirst({ where: { id, orgId }, select: accountSelect });
  },
  async getMany(tx: Tx, orgId: string, ids: string[]): Promise<AccountRow[]> {
    return tx.account.findMany({ where: { orgId, id: { in: ids } }, select: accountSelect });
  },
  async findByEmail(tx: Tx, orgId: string, emailNormalized: string): Promise<AccountRow | null> {
    return tx.account.findUnique({ where: { orgId_emailNormalized: { orgId, emailNormalized } }, select: accountSelect });
  },
  async byEmails(tx: Tx, orgId: string, emailsNormalized: string[]): Promise<{ id: string; email: string; emailNormalized: string }[]> {
    if (!emailsNormalized.length) return [];
    return tx.account.findMany({ where: { orgId, emailNormalized: { in: emailsNormalized } }, select: { id: true, email: true, emailNormalized: true } });
  },
  /** One page of the org's accounts matching `filter`, and how many match in all (both in SQL). */
  async list(tx: Tx, orgId: string, page: PageRequest, filter: AccountFilter = {}, opts: { count?: boolean } = {}) {
    const where: Prisma.AccountWhereInput = { orgId };
    if (filter.emailNormalized !== undefined) where.emailNormalized = filter.emailNormalized;
    if (filter.managed !== undefined) where.managed = filter.managed;
    if (filter.source !== undefined) where.source = filter.source;
    if (filter.status !== undefined) where.status = filter.status;
    if (filter.billable !== undefined) where.billable = filter.billable;
    if (filter.policyId !== undefined) where.policyId = filter.policyId;
    if (filter.inactiveSince !== undefined) where.OR = [{ lastSignInAt: null }, { lastSignInAt: { lt: filter.inactiveSince } }];
    // Sequential on purpose: a transaction handle runs one query at a time.
    const rows = await tx.account.findMany({ where: { ...where, ...afterCursor(page.cursor) }, orderBy: [...orderBy()], take: page.limit + 1, select: accountSelect });
    const total = opts.count === false ? null : await tx.account.count({ where });
    return { ...toPage(rows, page.limit, (r) => r), total };
  },
  /**
   * A sign-in created a session for the account (sign-in-service): when, and through which SSO
   * connection. Raw, so updatedAt (the profile's) does not move at every sign-in.
   */
  async recordSignIn(tx: Tx, orgId: string, id: string, connectionId: string | null, at: Date): Promise<void> {
    await tx.$executeRaw`
      UPDATE "Account" SET "lastSignInAt" = ${at}::timestamptz, "lastSignInConnectionId" = ${connectionId}::uuid
      WHERE "id" = ${id}::uuid AND "orgId" = ${orgId}::uuid`;
  },
  /** An admin's edit of an account's names and email (managed and policy follow the email's domain). */
  async updateProfile(tx: Tx, orgId: string, id: string, data: AccountProfileChange): Promise<AccountRow> {
    await tx.account.updateMany({ where: { id, orgId }, data });
    return (await accountStore.get(tx, orgId, id))!;
  },
  async setStatus(tx: Tx, orgId: string, id: string, status: AccountStatus): Promise<AccountRow> {
    await tx.account.updateMany({ where: { id, orgId }, data: { status } });
    return (await accountStore.get(tx, orgId, id))!;
  },
  async setPolicy(tx: Tx, orgId: string, ids: string[], policyId: string): Promise<number> {
    return (await tx.account.updateMany({ where: { orgId, id: { in: ids } }, data: { policyId } })).count;
  },
  async movePolicyMembers(tx: Tx, orgId: string, fromPolicyId: string, toPolicyId: string): Promise<string[]> {
    const moved = await tx.account.findMany({ where: { orgId, policyId: fromPolicyId }, select: { id: true } });
    await tx.account.updateMany({ where: { orgId, policyId: fromPolicyId }, data: { policyId: toPolicyId } });
    return moved.map((m) => m.id);
  },
  /** Turns every external account on a newly verified domain managed, placing it in the default policy. */
  async manageDomainAccounts(tx: Tx, orgId: string, domain: string, defaultPolicyId: string): Promise<string[]> {
    const ids = await tx.account.findMany({ where: { orgId, emailDomain: domain, managed: false }, select: { id: true } });
    await tx.account.updateMany({ where: { orgId, emailDomain: domain, managed: false }, data: { managed: true, policyId: defaultPolicyId } });
    return ids.map((r) => r.id);
  },
  async idsWithAccessOnSite(tx: Tx, orgId: string, siteId: string): Promise<string[]> {
    const rows = await tx.productAccess.findMany({ where: { orgId, siteId }, select: { accountId: true }, distinct: ['accountId'] });
    return rows.map((r) => r.accountId);
  },
  /** One page of a policy's members, keyset-paged in SQL (oldest first). */
  async policyMembers(tx: Tx, orgId: string, policyId: string, page: PageRequest) {
    const rows = await tx.account.findMany({
      where: { orgId, policyId, ...afterCursor(page.cursor) }, orderBy: [...orderBy()], take: page.limit + 1, select: accountSelect,
    });
    return toPage(rows, page.limit, (r) => r);
  },
  async policyMemberIds(tx: Tx, orgId: string, policyId: string): Promise<string[]> {
    return (await tx.account.findMany({ where: { orgId, policyId }, select: { id: true } })).map((r) => r.id);
  },
  async allIds(tx: Tx, orgId: string): Promise<string[]> {
    return (await tx.account.findMany({ where: { orgId }, select: { id: true } })).map((r) => r.id);
  },
  async billabilityFacts(tx: Tx, orgId: string, ids: string[]): Promise<BillabilityFacts[]> {
    const rows = await tx.account.findMany({
      where: { orgId, id: { in: ids } },
      select: {
        id: true, billable: true, managed: true, status: true,
        policy: { select: { nonBillable: true } },
        access: { select: { product: true, role: true, site: { select: { enterprise: true } } } },
      },
    });
    return rows.map((r) => ({
      id: r.id, billable: r.billable, managed: r.managed, status: r.status,
      inNonBillablePolicy: r.policy?.nonBillable ?? false,
      access: r.access.map((a) => ({ product: a.product, role: a.role, siteEnterprise: a.site.enterprise })),
    }));
  },
  async setBillable(tx: Tx, orgId: string, ids: string[], billable: boolean): Promise<void> {
    if (ids.length) await tx.account.updateMany({ where: { orgId, id: { in: ids } }, data: { billable } });
  },
  /** Roles of several accounts in one query (a page of accounts costs a constant number of queries). */
  async rolesOf(tx: Tx, orgId: string, accountIds: string[]) {
    return tx.roleAssignment.findMany({
      where: { orgId, accountId: { in: accountIds } }, orderBy: [...orderBy()],
      select: { id: true, accountId: true, role: true, scopeId: true },
    });
  },
  async addRole(tx: Tx, orgId: string, accountId: string, role: RoleKind, scopeId: string) {
    return tx.roleAssignment.create({ data: { orgId, accountId, role, scopeId }, select: { id: true, role: true, scopeId: true, createdAt: true } });
  },
  async removeRole(tx: Tx, orgId: string, accountId: string, roleId: string): Promise<boolean> {
    return (await tx.roleAssignment.deleteMany({ where: { orgId, accountId, id: roleId } })).count > 0;
  },
  async accessOf(tx: Tx, orgId: string, accountIds: string[]) {
    return tx.productAccess.findMany({
      where: { orgId, accountId: { in: accountIds } }, orderBy: [...orderBy()],
      select: { accountId: true, siteId: true, product: true, role: true, grantedBy: true },
    });
  },
};
