import type { Database } from '../store/database.js';
import { ANCHOR_STEP, scimTotals, type CountToken } from './scim-totals.js';
import { deferWrite, inSqlTransaction, inTransaction, isUniqueViolation, lockOrg, WriteConflict, type SqlTx } from '../store/transaction.js';
import { auditStore } from '../store/audit-store.js';
import { scimAccountStore, type LinkedAccount } from '../store/scim-account-store.js';
import { sameEmails, scimEmailsOf, scimUserStore, type ListKey, type ScimEmail, type ScimUserColumns, type ScimUserRow } from '../store/scim-user-store.js';
import type { Prisma } from '../generated/prisma/client.js';
import { Conflict, InvalidInput, NotFound, PreconditionFailed } from '../domain/errors.js';
import { parseEmail } from '../domain/identity.js';
import { syncBillability } from './billability-sync.js';
import { lockDirectoryForGroupWrite, syncGroupAccess } from './group-access.js';
import { actorLabel, type RequestContext } from './context.js';

export { scimEmailsOf } from '../store/scim-user-store.js';

/** An audit row of a SCIM write, collected and written with the others in one INSERT. */
type AuditRow = { action: string; targetType: string; targetId?: string | null; before?: unknown; after?: unknown };
/** What settling an account's status needs to know of it. */
type KnownAccount = { id: string; source: string; status: string };

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

/** Audited account changes that can change who is billable (see afterWrite). */
const BILLABILITY_INPUT_ACTIONS = new Set(['account.enable', 'account.disable', 'account.claim', 'policy.members.move']);
/** An account.update that changed `managed` (a rename to another domain) changes billability too. */
const changesBillability = (a: AuditRow) =>
  BILLABILITY_INPUT_ACTIONS.has(a.action) || (a.action === 'account.update' && typeof a.after === 'object' && a.after !== null && 'managed' in a.after);

/** The account names the IdP owns (issue 11 §4): they follow every create, PUT and PATCH. */
type Profile = { displayName: string | null; givenName: string | null; familyName: string | null };
const PROFILE_FIELDS = ['displayName', 'givenName', 'familyName'] as const;

/**
 * The account's names after a push: each name the IdP sent replaces the account's; one it did
 * not send (absent, or removed by a PATCH) leaves the account's as it is. Null when nothing changes.
 */
export function profileAfterPush(account: Profile, cols: Pick<ScimUserColumns, keyof Profile>): Profile | null {
  const next = { displayName: cols.displayName ?? account.displayName, givenName: cols.givenName ?? account.givenName, familyName: cols.familyName ?? account.familyName };
  return PROFILE_FIELDS.every((f) => next[f] === account[f]) ? null : next;
}

export function createScimUserService(db: Database) {
  /**
   * Finds or creates the account for an email and makes it a synced account of this directory.
   * A claimed account sitting in the non-billable policy moves to the default policy here, in
   * the same transaction (SPEC §3: a non-billable policy never holds synced accounts).
   * Audit rows go to `audits`, written with the push's own in one INSERT.
   */
  async function linkAccount(tx: SqlTx, ctx: DirectoryContext, rawEmail: string, input: ScimUserInput, audits: AuditRow[]): Promise<LinkedAccount> {
    const email = parseEmail(rawEmail);
    let written = false;
    // Insert first (one statement for a new person, the common case of a push); managed (verified
    // domain, default policy) or external is decided by the INSERT itself. null: the org already
    // has the account — perhaps created by a concurrent push — and both end up on it.
    const created = await scimAccountStore.createIfAbsent(tx, ctx.orgId, {
      email: email.email, emailNormalized: email.normalized, emailDomain: email.domain,
      displayName: input.columns.displayName, givenName: input.columns.givenName, familyName: input.columns.familyName,
      directoryId: ctx.directoryId, externalId: input.columns.externalId,
    });
    if (created) {
      audits.push({ action: 'account.create', targetType: 'account', targetId: created.id, after: { email: created.email, managed: created.managed, source: 'scim', directoryId: ctx.directoryId } });
    }
    // Locked before it is read (lock order: docs/decisions.md): the policy flag read here is the
    // one a concurrent policy change or move committed, or that change waits for this claim.
    const account = created ?? (await scimAccountStore.findByEmailForUpdate(tx, ctx.orgId, email.normalized))!;
    // The identity provider wins (issue 11): an account claimed in a non-billable policy leaves it
    // first (the schema refuses a synced account there: Account_synced_never_non_billable_check).
    if (account.policyId && account.policyNonBillable) {
      const target = { id: await scimAccountStore.moveToDefaultPolicy(tx, ctx.orgId, account.id) };
      written = true;
      audits.push({
        action: 'policy.members.move', targetType: 'account', targetId: account.id,
        before: { policyId: account.policyId, nonBillable: true }, after: { policyId: target.id, reason: 'synced accounts cannot sit in the non-billable policy' },
      });
    }
    if (account.source !== 'scim' || account.directoryId !== ctx.directoryId) {
      await scimAccountStore.markSynced(tx, ctx.orgId, account.id, ctx.directoryId, input.columns.externalId);
      written = true;
      audits.push({ action: 'account.claim', targetType: 'account', targetId: account.id, before: { source: account.source, directoryId: account.directoryId }, after: { source: 'scim', directoryId: ctx.directoryId } });
    }
    return written ? (await scimAccountStore.findByEmailForUpdate(tx, ctx.orgId, email.normalized))! : account;
  }

  /** The IdP's names onto the account (profileAfterPush), audited when they change. */
  async function followProfile(tx: SqlTx, ctx: DirectoryContext, account: Profile & { id: string }, input: ScimUserInput, audits: AuditRow[]): Promise<void> {
    const next = profileAfterPush(account, input.columns);
    if (!next) return;
    await deferWrite(tx, scimAccountStore.setProfile(tx, ctx.orgId, account.id, next));
    const changed = PROFILE_FIELDS.filter((f) => next[f] !== account[f]);
    audits.push({
      action: 'account.update', targetType: 'account', targetId: account.id,
      before: Object.fromEntries(changed.map((f) => [f, account[f]])), after: { ...Object.fromEntries(changed.map((f) => [f, next[f]])), by: 'scim' },
    });
  }

  /**
   * The IdP renamed the user (a new userName or primary email: Okta rename, Entra UPN change):
   * the same account takes the new address — id, policy, access and billing history stay, no
   * second account. Answers the address the account could not take (null when it followed):
   * another account of the org holds it, or another live SCIM user shares the account (its
   * pushes would rename it back). The link stays either way, the IdP is refused nothing, and
   * the user is listed as an `email-conflict` sync issue while it lasts.
   */
  async function followEmail(tx: SqlTx, ctx: DirectoryContext, userId: string, accountId: string, rawEmail: string, audits: AuditRow[]): Promise<string | null> {
    const email = parseEmail(rawEmail);
    if ((await scimUserStore.otherLiveLinks(tx, ctx.orgId, accountId, userId)) > 0) return email.email;
    const before = (await scimAccountStore.get(tx, ctx.orgId, accountId))!;
    // A new domain can change `managed` (and the policy): serialised with domain verification,
    // which turns the accounts of a domain managed under the same lock.
    if (parseEmail(before.email).domain !== email.domain) await lockOrg(tx, ctx.orgId);
    const after = await scimAccountStore.changeEmail(tx, ctx.orgId, accountId, email);
    if (!after) return email.email;
    const flipped = after.managed !== before.managed;
    audits.push({
      action: 'account.update', targetType: 'account', targetId: accountId,
      before: { email: before.email, ...(flipped ? { managed: before.managed, policyId: before.policyId } : {}) },
      after: { email: email.email, ...(flipped ? { managed: after.managed, policyId: after.policyId } : {}), by: 'scim' },
    });
    return null;
  }

  /**
   * A synced account is active while any live SCIM user linked to it is active. `known` is the
   * account as this transaction last read or wrote it (then it is not read again); when this user
   * is live, active and linked to it, the other links need not be counted.
   */
  async function settleAccountStatus(tx: SqlTx, ctx: DirectoryContext, user: ScimUserRow, accountId: string, known: KnownAccount | null, audits: AuditRow[]): Promise<void> {
    const account = known ?? (await scimAccountStore.get(tx, ctx.orgId, accountId));
    if (!account || account.source !== 'scim') return;
    const thisActive = user.id && user.deletedAt === null && user.active && user.accountId === accountId;
    const status = thisActive || (await scimUserStore.activeLinks(tx, ctx.orgId, accountId, user.id)) > 0 ? 'active' : 'disabled';
    if (status !== account.status) {
      await deferWrite(tx, scimAccountStore.setStatus(tx, ctx.orgId, accountId, status));
      audits.push({ action: status === 'disabled' ? 'account.disable' : 'account.enable', targetType: 'account', targetId: accountId, before: { status: account.status }, after: { status, by: 'scim' } });
    }
  }

  /**
   * What every write does after changing the ScimUser row: account status, the audit rows (one
   * INSERT), group-granted access, billability.
   *
   * Group access depends on the user only through deletedAt, active, accountId and its group
   * memberships (which only group writes and DELETE change). When none of them changed — a new
   * user is in no group yet — it cannot change, and the directory's group-access lock is not taken.
   * When the user moved to another account, the old account is recomputed too: it loses what only
   * this user justified (issue: relinked users kept group access on their old account).
   *
   * Billability (SPEC §5) depends on the account's status, managed flag, policy and product
   * access, the org's subscription and plan — never on the SCIM user's own attributes. So it is
   * recomputed here only when this write changed one of those for an account (the audit rows name
   * every account change: enable/disable, claim, policy move) or moved the user to another account;
   * group access recomputes the accounts whose access it changed by itself. A new account needs
   * nothing: it has no product access, which is never billable, and its flag starts false.
   * A PATCH of displayName or title is then a handful of statements, without the account locks.
   */
  async function afterWrite(
    tx: SqlTx, ctx: DirectoryContext, user: ScimUserRow, before: Pick<ScimUserRow, 'accountId' | 'active' | 'deletedAt'> | null,
    known: KnownAccount[], audits: AuditRow[], cause: string,
  ) {
    const ids = [...new Set([before?.accountId ?? null, user.accountId].filter((a): a is string => a !== null))];
    const groupInputsChanged = before !== null &&
      (before.accountId !== user.accountId || before.active !== user.active || (before.deletedAt === null) !== (user.deletedAt === null));
    // The directory's group locks before the account rows (lock order: directory → accounts): a
    // group write holding them waits for no account this write holds (deactivation vs member add
    // deadlocked otherwise).
    if (groupInputsChanged) await lockDirectoryForGroupWrite(tx, ctx.directoryId);
    for (const id of ids) await settleAccountStatus(tx, ctx, user, id, known.find((a) => a.id === id) ?? null, audits);
    await deferWrite(tx, auditStore.appendMany(tx, ctx.orgId, audits.map((a) => ({ ...a, actor: actorLabel(ctx.actor), requestId: ctx.requestId }))));
    if (groupInputsChanged) {
      const previous = before.accountId !== null && before.accountId !== user.accountId ? [before.accountId] : [];
      await syncGroupAccess(tx, ctx, ctx.directoryId, [user.id], cause, previous);
    }
    const accountsChanged = audits.some(changesBillability) || (before !== null && before.accountId !== user.accountId);
    if (accountsChanged) await syncBillability(tx, ctx, ids, cause);
  }

  function mapUnique(err: unknown, userName: string): never {
    if (isUniqueViolation(err, 'userNameNormalized') || isUniqueViolation(err, 'ScimUser_directoryId_userNameNormalized_key')) {
      throw new Conflict('uniqueness', `userName "${userName}" is already in use in this directory`);
    }
    throw err;
  }

  /**
   * The anchor at or before a deep page of an unfiltered list (scim-totals): cached, or read now
   * (one OFFSET to it, which later pages of this stretch no longer pay). None past the last user.
   */
  async function anchorFor(directoryId: string, skip: number, token: CountToken): Promise<{ key: ListKey; position: number } | null> {
    const position = Math.floor(skip / ANCHOR_STEP) * ANCHOR_STEP;
    let key = scimTotals.anchor(db, directoryId, position);
    if (key === undefined && !scimTotals.writtenRecently(db, directoryId)) {
      await loadIndex(directoryId, token);
      key = scimTotals.anchor(db, directoryId, position);
    }
    return key ? { key, position } : null;
  }

  /** One load of a directory's total and anchors at a time, shared by the lists that wait for it. */
  const loading = new Map<string, Promise<void>>();
  function loadIndex(directoryId: string, token: CountToken): Promise<void> {
    let p = loading.get(directoryId);
    if (!p) {
      p = scimUserStore.liveIndex(db, directoryId, ANCHOR_STEP)
        .then((idx) => scimTotals.setIndex(db, directoryId, idx.total, idx.anchors, token))
        .finally(() => loading.delete(directoryId));
      loading.set(directoryId, p);
    }
    return p;
  }

  /** POST /Users, the general path: a userName in use (409, or the revival of a deleted user), an existing account. */
  async function createGeneral(ctx: DirectoryContext, input: ScimUserInput, email: string | null): Promise<{ user: ScimUserRow; revived: boolean }> {
    return inSqlTransaction(db, async (tx) => {
      const audits: AuditRow[] = [];
      const existing = await scimUserStore.byUserName(tx, ctx.directoryId, input.columns.userNameNormalized);
      if (existing && !existing.deletedAt) throw new Conflict('uniqueness', `userName "${input.columns.userName}" is already in use in this directory`);
      const account = email ? await linkAccount(tx, ctx, email, input, audits) : null;
      const accountId = account?.id ?? null;
      // An existing account takes the names the IdP sends (a new one was created with them).
      if (account) await followProfile(tx, ctx, account, input, audits);
      let user: ScimUserRow;
      if (existing) {
        // Revival (API.md): the tombstoned record comes back with the new attributes.
        const emails = sameEmails(scimEmailsOf(existing.resource), input.emails) ? null : input.emails;
        const data = { ...input.columns, accountId, resource: input.resource, deletedAt: null, createdAt: ctx.now, pendingEmail: null };
        user = (await scimUserStore.update(tx, existing, existing.version, data, emails, ctx.now))!;
      } else {
        user = await scimUserStore.create(tx, ctx.orgId, ctx.directoryId, accountId, input.columns, input.emails, input.resource, ctx.now);
      }
      audits.push({ action: existing ? 'scim.user.revive' : 'scim.user.create', targetType: 'scim-user', targetId: user.id, after: { userName: user.userName, accountId, active: user.active } });
      await afterWrite(tx, ctx, user, existing, account ? [account] : [], audits, existing ? 'scim-user-revived' : 'scim-user-created');
      return { user, revived: Boolean(existing) };
    });
  }

  /**
   * POST /Users of a new person — a userName the directory never had, an address the org has no
   * account for, active — in one statement and one round trip (scimUserStore.createWithNewAccount).
   * Null when the address has an account, or the user comes inactive or without an address
   * (linking, claiming or disabling is the general path's work); 'taken' when the userName is in
   * use, live or deleted (the general path answers 409 or revives). Null and 'taken' wrote nothing.
   * Such a user needs nothing else: its new account has no product access (never billable) and
   * starts active, and a new user is in no group.
   */
  async function createAlone(ctx: DirectoryContext, input: ScimUserInput, email: string | null): Promise<{ user: ScimUserRow; revived: boolean } | 'taken' | null> {
    if (email === null || !input.columns.active) return null;
    try {
      const user = await scimUserStore.createWithNewAccount(db, {
        orgId: ctx.orgId, directoryId: ctx.directoryId, email: parseEmail(email), cols: input.columns, emails: input.emails,
        resource: input.resource, at: ctx.now, actor: actorLabel(ctx.actor), requestId: ctx.requestId,
      });
      return user ? { user, revived: false } : null;
    } catch (err) {
      if (isUniqueViolation(err, 'userNameNormalized') || isUniqueViolation(err, 'ScimUser_directoryId_userNameNormalized_key')) return 'taken';
      throw err;
    }
  }

  /**
   * PUT and PATCH: in one transaction, reads the live user (with its account), asks `change` for
   * the new state, and writes it. The UPDATE is guarded by the version read: a concurrent write
   * in between is not lost, the transaction runs again on the new state (WriteConflict).
   */
  async function writeUser(ctx: DirectoryContext, id: string, change: (current: ScimUserRow) => Promise<ScimUserInput | null>, retried = false): Promise<ScimUserRow> {
    let userName: string | null = null;
    try {
      // The transaction answers the row's promise (sendUpdate), settled by the time it committed.
      const written = await inSqlTransaction(db, async (tx): Promise<{ answer: Promise<ScimUserRow | null> }> => {
        const audits: AuditRow[] = [];
        const found = await scimUserStore.getForWrite(tx, ctx.directoryId, id);
        if (!found) throw new NotFound('User', id);
        const { account: current, ...before } = found;
        const input = await change(before);
        if (!input) return { answer: Promise.resolve(before) };
        userName = input.columns.userName;
        const email = linkingEmail(input);
        // Same email: same account. A new email of a synced account's user renames that account
        // (followEmail: one person, one account); only a user without a synced account links
        // (or creates) the account of its email.
        const synced = email !== null && current !== null && current.source === 'scim' ? current : null;
        const pendingEmail = synced && synced.emailNormalized !== parseEmail(email!).normalized
          ? await followEmail(tx, ctx, id, synced.id, email!, audits) : null;
        const linked = email === null || synced ? null : await linkAccount(tx, ctx, email, input, audits);
        const accountId = email === null ? null : synced ? synced.id : linked!.id;
        const profileOf: (Profile & { id: string }) | null = synced ?? linked;
        if (profileOf) await followProfile(tx, ctx, profileOf, input, audits);
        // Email rows are rewritten only when they change (PATCHes of other attributes leave them).
        const emails = sameEmails(scimEmailsOf(before.resource), input.emails) ? null : input.emails;
        // Sent, not waited for: the row is locked (getForWrite), so the UPDATE matches, and what
        // follows needs only what it sets. Its answer is read at the end, after the statements
        // below have gone out behind it (one round trip to PostgreSQL less per write).
        const updating = await scimUserStore.sendUpdate(tx, before, before.version, { ...input.columns, accountId, resource: input.resource, pendingEmail }, emails, ctx.now);
        const next: ScimUserRow = { ...before, ...input.columns, accountId, resource: input.resource, version: before.version + 1, updatedAt: ctx.now };
        if (before.active !== next.active) {
          audits.push({ action: next.active ? 'scim.user.activate' : 'scim.user.deactivate', targetType: 'scim-user', targetId: id, before: { active: before.active }, after: { active: next.active } });
        } else {
          audits.push({ action: 'scim.user.update', targetType: 'scim-user', targetId: id, before: { userName: before.userName, version: before.version }, after: { userName: next.userName, version: next.version } });
        }
        const known: KnownAccount[] = [...(linked ? [linked] : []), ...(current ? [current] : [])];
        await afterWrite(tx, ctx, next, before, known, audits, next.active === before.active ? 'scim-user-updated' : next.active ? 'scim-user-activated' : 'scim-user-deactivated');
        // Not waited for here: the COMMIT goes out with the statements above. A miss of the
        // UPDATE (impossible under the lock) fails the transaction in the database (sendUpdate).
        return { answer: updating.answer };
      });
      const user = await written.answer;
      if (!user) throw new Error('the SCIM user\'s UPDATE matched no row, yet its transaction committed'); // unreachable: orgsync_expect
      return user;
    } catch (err) {
      // A concurrent write gave the account's new address to another account between followEmail's
      // check and its UPDATE: once more from the start, which then sees the holder (a sync issue).
      if (!retried && isUniqueViolation(err, 'Account_orgId_emailNormalized_key')) return writeUser(ctx, id, change, true);
      if (userName === null) throw err;
      mapUnique(err, userName);
    }
  }

  /** DELETE: tombstones the record, leaves its groups, disables the account (kept; purged after 14 days by the retention job). */
  async function deleteUser(ctx: DirectoryContext, id: string): Promise<void> {
    await inSqlTransaction(db, async (tx) => {
      const audits: AuditRow[] = [];
      // The user leaves its groups: the directory's group locks first (lock order: directory → user rows).
      await lockDirectoryForGroupWrite(tx, ctx.directoryId);
      const before = await scimUserStore.getForWrite(tx, ctx.directoryId, id);
      if (!before) throw new NotFound('User', id);
      // FOR UPDATE: a concurrent group add (FOR KEY SHARE of its users) waits for this commit and
      // then sees the user deleted, or commits first and its membership row is removed below.
      await scimUserStore.lockForDelete(tx, id);
      const user = await scimUserStore.update(tx, before, before.version, { deletedAt: ctx.now, active: false }, null, ctx.now);
      if (!user) throw new WriteConflict('the user');
      await scimUserStore.removeMemberships(tx, id);
      audits.push({ action: 'scim.user.delete', targetType: 'scim-user', targetId: id, before: { userName: before.userName, active: before.active }, after: { deletedAt: ctx.now } });
      await afterWrite(tx, ctx, user, before, before.account ? [before.account] : [], audits, 'scim-user-deleted');
    });
  }

  return {
    async get(ctx: DirectoryContext, id: string): Promise<ScimUserRow> {
      const u = await scimUserStore.getLive(db, ctx.directoryId, id);
      if (!u) throw new NotFound('User', id);
      return u;
    },

    /** A page of live users; an unfiltered list takes its total from scim-totals when it can. */
    async list(ctx: DirectoryContext, where: Prisma.ScimUserWhereInput, orderBy: Prisma.ScimUserOrderByWithRelationInput[], skip: number, take: number) {
      const dir = ctx.directoryId;
      const unfiltered = Object.keys(where).length === 0;
      const known = unfiltered ? scimTotals.get(db, dir) : null;
      const token = scimTotals.token(db, dir);
      const from = unfiltered && skip >= ANCHOR_STEP ? await anchorFor(dir, skip, token) : null;
      const res = await scimUserStore.list(db, dir, where, orderBy, skip, take, known ?? (unfiltered ? scimTotals.get(db, dir) : null), from);
      if (unfiltered && res.counted) scimTotals.set(db, dir, res.total, token);
      return { total: res.total, rows: res.rows };
    },

    /** POST /Users: a new user, or the revival of a deleted one with the same userName. */
    async create(ctx: DirectoryContext, input: ScimUserInput): Promise<{ user: ScimUserRow; revived: boolean }> {
      const email = linkingEmail(input);
      try {
        const created = db.sqlAlone ? await createAlone(ctx, input, email) : null;
        return created && created !== 'taken' ? created : await createGeneral(ctx, input, email);
      } catch (err) {
        mapUnique(err, input.columns.userName);
      } finally {
        // After the commit (or the rollback): unfiltered lists count this directory again.
        scimTotals.invalidate(db, ctx.directoryId);
      }
    },

    /** PUT: replaces the user; `expectedVersion` (If-Match) must be its current version. */
    async replace(ctx: DirectoryContext, id: string, input: ScimUserInput, expectedVersion: number | null): Promise<ScimUserRow> {
      return writeUser(ctx, id, async (before) => {
        if (expectedVersion !== null && before.version !== expectedVersion) {
          throw new PreconditionFailed(`the user changed since version ${expectedVersion} (now ${before.version}); read it again`);
        }
        return input;
      });
    },

    /**
     * PATCH: `change` computes the new user from the current one (applying the PatchOp; it checks
     * If-Match), inside the write's transaction — the read is the transaction's first statement,
     * not a round trip of its own before it. Null: nothing changed, nothing is written.
     */
    async patch(ctx: DirectoryContext, id: string, change: (current: ScimUserRow) => Promise<ScimUserInput | null>): Promise<ScimUserRow> {
      return writeUser(ctx, id, change);
    },
    /** DELETE (deleteUser); then unfiltered lists count this directory again. */
    async delete(ctx: DirectoryContext, id: string): Promise<void> {
      try {
        await deleteUser(ctx, id);
      } finally {
        scimTotals.invalidate(db, ctx.directoryId);
      }
    },
  };
}

export type ScimUserService = ReturnType<typeof createScimUserService>;
