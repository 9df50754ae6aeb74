import type { Database } from '../store/database.js';
import { inTransaction, isUniqueViolation, type Tx } from '../store/transaction.js';
import { accountStore, type AccountRow } from '../store/account-store.js';
import { domainStore } from '../store/domain-store.js';
import { policyStore, type PolicyRow } from '../store/policy-store.js';
import { scimUserStore, type ScimEmail, type ScimUserColumns, type ScimUserRow } from '../store/scim-user-store.js';
import type { Prisma } from '../generated/prisma/client.js';
import { Conflict, InvalidInput, NotFound, PreconditionFailed } from '../domain/errors.js';
import { parseEmail } from '../domain/identity.js';
import { audit } from './audit.js';
import { syncBillability } from './billability-sync.js';
import { syncGroupAccess } from './group-access.js';
import type { RequestContext } from './context.js';

/** A SCIM user as the SCIM surface hands it over: filterable columns, emails, and the whole resource. */
export type ScimUserInput = { columns: ScimUserColumns; emails: ScimEmail[]; resource: Record<string, unknown> };
export type DirectoryContext = RequestContext & { directoryId: string };

/**
 * The address that links a SCIM user to an account: primary email, else a work email, else the
 * first, else an email-shaped userName. Null when there is none: the user is stored unlinked and
 * listed as a sync issue (RFC 7643 does not require emails; the IdP still gets success).
 */
export function linkingEmail(input: ScimUserInput): string | null {
  const ordered = [
    input.emails.find((x) => x.primary), input.emails.find((x) => x.type === 'work'), ...input.emails,
  ].filter((e): e is ScimEmail => Boolean(e)).map((e) => e.value);
  for (const candidate of [...ordered, input.columns.userName]) {
    try {
      return parseEmail(candidate).email;
    } catch {
      // not an email: try the next candidate
    }
  }
  return null;
}

/** How long a deleted SCIM user is kept (API.md: a later POST of the same userName revives it). */
export const TOMBSTONE_DAYS = 14;

/** Purges SCIM users deleted more than 14 days ago; called by the retention job. */
export async function purgeScimTombstones(db: Database, now: Date): Promise<number> {
  return inTransaction(db, (tx) => scimUserStore.purgeTombstones(tx, new Date(now.getTime() - TOMBSTONE_DAYS * 86_400_000)));
}

export function createScimUserService(db: Database) {
  /**
   * Finds or creates the account for an email and makes it a synced account of this directory.
   * A claimed account sitting in the non-billable policy moves to the default policy here, in
   * the same transaction (SPEC §3: a non-billable policy never holds synced accounts).
   */
  async function linkAccount(tx: Tx, ctx: DirectoryContext, rawEmail: string, input: ScimUserInput): Promise<AccountRow> {
    const email = parseEmail(rawEmail);
    let account = await accountStore.findByEmail(tx, ctx.orgId, email.normalized);
    // Rows this transaction already read are not read again (each read is a round trip, and
    // PATCH/POST of one directory queue behind each other on the group-access lock).
    let defaultPolicy: PolicyRow | null = null;
    let written = false;
    if (!account) {
      const managed = await domainStore.isVerified(tx, ctx.orgId, email.domain);
      if (managed) defaultPolicy = await policyStore.defaultPolicy(tx, ctx.orgId);
      const policyId = defaultPolicy?.id ?? null;
      // ON CONFLICT DO NOTHING: two pushes racing on one email must both end up on the same account,
      // and a unique violation would abort the whole transaction on PostgreSQL.
      await accountStore.createIfAbsent(tx, ctx.orgId, {
        email: email.email, emailNormalized: email.normalized, emailDomain: email.domain,
        displayName: input.columns.displayName, givenName: input.columns.givenName, familyName: input.columns.familyName,
        managed, policyId, source: 'scim', directoryId: ctx.directoryId, externalId: input.columns.externalId,
      });
      account = (await accountStore.findByEmail(tx, ctx.orgId, email.normalized))!;
      if (account.directoryId === ctx.directoryId && account.source === 'scim') {
        await audit(tx, ctx, { action: 'account.create', targetType: 'account', targetId: account.id, after: { email: account.email, managed, source: 'scim', directoryId: ctx.directoryId } });
      }
    }
    if (account.source !== 'scim' || account.directoryId !== ctx.directoryId) {
      await accountStore.markSynced(tx, ctx.orgId, account.id, ctx.directoryId, input.columns.externalId);
      written = true;
      await audit(tx, ctx, { action: 'account.claim', targetType: 'account', targetId: account.id, before: { source: account.source, directoryId: account.directoryId }, after: { source: 'scim', directoryId: ctx.directoryId } });
    }
    if (account.policyId) {
      const policy = account.policyId === defaultPolicy?.id ? defaultPolicy : await policyStore.get(tx, ctx.orgId, account.policyId);
      if (policy?.nonBillable) {
        const target = await policyStore.defaultPolicy(tx, ctx.orgId);
        await accountStore.setPolicy(tx, ctx.orgId, [account.id], target.id);
        written = true;
        await audit(tx, ctx, {
          action: 'policy.members.move', targetType: 'account', targetId: account.id,
          before: { policyId: policy.id, nonBillable: true }, after: { policyId: target.id, reason: 'synced accounts cannot sit in the non-billable policy' },
        });
      }
    }
    return written ? (await accountStore.get(tx, ctx.orgId, account.id))! : account;
  }

  /** A synced account is active while any live SCIM user linked to it is active. */
  async function settleAccountStatus(tx: Tx, ctx: DirectoryContext, user: ScimUserRow, accountId: string): Promise<void> {
    const account = await accountStore.get(tx, ctx.orgId, accountId);
    if (!account || account.source !== 'scim') return;
    const thisActive = user.id && user.deletedAt === null && user.active && user.accountId === accountId;
    const others = await scimUserStore.activeLinks(tx, ctx.orgId, accountId, user.id);
    const status = thisActive || others > 0 ? 'active' : 'disabled';
    if (status !== account.status) {
      await accountStore.setStatus(tx, ctx.orgId, accountId, status);
      await audit(tx, ctx, { action: status === 'disabled' ? 'account.disable' : 'account.enable', targetType: 'account', targetId: accountId, before: { status: account.status }, after: { status, by: 'scim' } });
    }
  }

  async function afterWrite(tx: Tx, ctx: DirectoryContext, user: ScimUserRow, accountIds: (string | null)[], cause: string) {
    const ids = [...new Set(accountIds.filter((a): a is string => a !== null))];
    for (const id of ids) await settleAccountStatus(tx, ctx, user, id);
    await syncGroupAccess(tx, ctx, ctx.directoryId, [user.id], cause);
    await syncBillability(tx, ctx, ids, cause);
  }

  function mapUnique(err: unknown, userName: string): never {
    if (isUniqueViolation(err, 'userNameNormalized') || isUniqueViolation(err, 'ScimUser_directoryId_userNameNormalized_key')) {
      throw new Conflict('uniqueness', `userName "${userName}" is already in use in this directory`);
    }
    throw err;
  }

  return {
    async get(ctx: DirectoryContext, id: string): Promise<ScimUserRow> {
      const u = await scimUserStore.get(db.prisma, ctx.directoryId, id);
      if (!u) throw new NotFound('User', id);
      return u;
    },

    list(ctx: DirectoryContext, where: Prisma.ScimUserWhereInput, orderBy: Prisma.ScimUserOrderByWithRelationInput[], skip: number, take: number) {
      return scimUserStore.list(db.prisma, ctx.directoryId, where, orderBy, skip, take);
    },

    /** POST /Users: a new user, or the revival of a deleted one with the same userName. */
    async create(ctx: DirectoryContext, input: ScimUserInput): Promise<{ user: ScimUserRow; revived: boolean }> {
      const email = linkingEmail(input);
      try {
        return await inTransaction(db, async (tx) => {
          const existing = await scimUserStore.byUserName(tx, ctx.directoryId, input.columns.userNameNormalized);
          if (existing && !existing.deletedAt) throw new Conflict('uniqueness', `userName "${input.columns.userName}" is already in use in this directory`);
          const accountId = email ? (await linkAccount(tx, ctx, email, input)).id : null;
          let user: ScimUserRow;
          if (existing) {
            // Revival (API.md): the tombstoned record comes back with the new attributes.
            user = (await scimUserStore.update(tx, existing, existing.version, { ...input.columns, accountId, resource: input.resource, deletedAt: null, createdAt: ctx.now }, input.emails, ctx.now))!;
          } else {
            user = await scimUserStore.create(tx, ctx.orgId, ctx.directoryId, accountId, input.columns, input.emails, input.resource, ctx.now);
          }
          await audit(tx, ctx, { action: existing ? 'scim.user.revive' : 'scim.user.create', targetType: 'scim-user', targetId: user.id, after: { userName: user.userName, accountId, active: user.active } });
          await afterWrite(tx, ctx, user, [accountId, existing?.accountId ?? null], existing ? 'scim-user-revived' : 'scim-user-created');
          return { user, revived: Boolean(existing) };
        });
      } catch (err) {
        mapUnique(err, input.columns.userName);
      }
    },

    /** PUT (and the write half of PATCH): replaces the user; `expectedVersion` enforces If-Match. */
    async replace(ctx: DirectoryContext, id: string, input: ScimUserInput, expectedVersion: number | null): Promise<ScimUserRow> {
      const email = linkingEmail(input);
      try {
        return await inTransaction(db, async (tx) => {
          const before = await scimUserStore.get(tx, ctx.directoryId, id);
          if (!before) throw new NotFound('User', id);
          if (expectedVersion !== null && before.version !== expectedVersion) {
            throw new PreconditionFailed(`the user changed since version ${expectedVersion} (now ${before.version}); read it again`);
          }
          // Same email: same account. A new email links (or creates) the account of that email.
          const current = before.accountId ? await accountStore.get(tx, ctx.orgId, before.accountId) : null;
          const sameAccount = email !== null && current !== null && current.emailNormalized === parseEmail(email).normalized && current.source === 'scim';
          const accountId = email === null ? null : sameAccount ? current!.id : (await linkAccount(tx, ctx, email, input)).id;
          const user = await scimUserStore.update(tx, before, before.version, { ...input.columns, accountId, resource: input.resource }, input.emails, ctx.now);
          if (!user) throw new PreconditionFailed('the user changed while this request was applied; retry');
          if (before.active !== user.active) {
            await audit(tx, ctx, { action: user.active ? 'scim.user.activate' : 'scim.user.deactivate', targetType: 'scim-user', targetId: id, before: { active: before.active }, after: { active: user.active } });
          } else {
            await audit(tx, ctx, { action: 'scim.user.update', targetType: 'scim-user', targetId: id, before: { userName: before.userName, version: before.version }, after: { userName: user.userName, version: user.version } });
          }
          await afterWrite(tx, ctx, user, [before.accountId, accountId], user.active === before.active ? 'scim-user-updated' : user.active ? 'scim-user-activated' : 'scim-user-deactivated');
          return user;
        });
      } catch (err) {
        mapUnique(err, input.columns.userName);
      }
    },

    /** DELETE: tombstones the record, leaves its groups, disables the account (kept; purged after 14 days by the retention job). */
    async delete(ctx: DirectoryContext, id: string): Promise<void> {
      await inTransaction(db, async (tx) => {
        const before = await scimUserStore.get(tx, ctx.directoryId, id);
        if (!before) throw new NotFound('User', id);
        await scimUserStore.removeMemberships(tx, id);
        const user = (await scimUserStore.update(tx, before, before.version, { deletedAt: ctx.now, active: false }, null, ctx.now))!;
        await audit(tx, ctx, { action: 'scim.user.delete', targetType: 'scim-user', targetId: id, before: { userName: before.userName, active: before.active }, after: { deletedAt: ctx.now } });
        await afterWrite(tx, ctx, user, [before.accountId], 'scim-user-deleted');
      });
    },
  };
}

export type ScimUserService = ReturnType<typeof createScimUserService>;
