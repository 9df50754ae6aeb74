import type { Database } from '../store/database.js';
import { inTransaction, isCheckViolation, isUniqueViolation, lockOrg, lockPolicy, type Tx } from '../store/transaction.js';
import { policyStore, type PolicyData, type PolicyRow, type PolicyWithCount } from '../store/policy-store.js';
import { accountStore } from '../store/account-store.js';
import { subscriptionStore } from '../store/subscription-store.js';
import { ssoConnectionStore } from '../store/sso-store.js';
import type { PageRequest } from '../store/paging.js';
import { Conflict, InvalidInput, NotFound, PolicyViolation } from '../domain/errors.js';
import { assertDeletable, assertMembership, assertPolicyChange, type PolicySettings } from '../domain/policy-rules.js';
import { subscriptionStatus } from '../domain/subscription.js';
import { audit } from './audit.js';
import { syncBillability } from './billability-sync.js';
import type { RequestContext } from './context.js';

export type PolicyInput = {
  name?: string | undefined;
  isDefault?: boolean | undefined;
  nonBillable?: boolean | undefined;
  enforceSso?: boolean | undefined;
  ssoConnectionId?: string | null | undefined;
  requireTwoFactor?: boolean | undefined;
  blockApiTokens?: boolean | undefined;
  passwordPolicy?: { minStrength?: number | null | undefined; expiryDays?: number | null | undefined } | undefined;
  sessionDurationMinutes?: number | undefined;
};

export const policyView = (p: PolicyRow | PolicyWithCount) => ({
  id: p.id, name: p.name, isDefault: p.isDefault, nonBillable: p.nonBillable, enforceSso: p.enforceSso,
  ssoConnectionId: p.ssoConnectionId, requireTwoFactor: p.requireTwoFactor, blockApiTokens: p.blockApiTokens,
  passwordPolicy: { minStrength: p.passwordMinStrength, expiryDays: p.passwordExpiryDays },
  sessionDurationMinutes: p.sessionDurationMinutes,
  ...('memberCount' in p ? { memberCount: p.memberCount } : {}),
  createdAt: p.createdAt, updatedAt: p.updatedAt,
});

function toData(input: PolicyInput): PolicyData {
  const d: PolicyData = {};
  if (input.name !== undefined) d.name = input.name;
  if (input.isDefault !== undefined) d.isDefault = input.isDefault;
  if (input.nonBillable !== undefined) d.nonBillable = input.nonBillable;
  if (input.enforceSso !== undefined) d.enforceSso = input.enforceSso;
  if (input.ssoConnectionId !== undefined) d.ssoConnectionId = input.ssoConnectionId;
  if (input.requireTwoFactor !== undefined) d.requireTwoFactor = input.requireTwoFactor;
  if (input.blockApiTokens !== undefined) d.blockApiTokens = input.blockApiTokens;
  if (input.passwordPolicy?.minStrength !== undefined) d.passwordMinStrength = input.passwordPolicy.minStrength;
  if (input.passwordPolicy?.expiryDays !== undefined) d.passwordExpiryDays = input.passwordPolicy.expiryDays;
  if (input.sessionDurationMinutes !== undefined) d.sessionDurationMinutes = input.sessionDurationMinutes;
  return d;
}

const settings = (p: Pick<PolicyRow, keyof PolicySettings>): PolicySettings => ({
  isDefault: p.isDefault, nonBillable: p.nonBillable, enforceSso: p.enforceSso, ssoConnectionId: p.ssoConnectionId,
  requireTwoFactor: p.requireTwoFactor, blockApiTokens: p.blockApiTokens,
});

const DEFAULTS: PolicySettings = { isDefault: false, nonBillable: false, enforceSso: false, ssoConnectionId: null, requireTwoFactor: false, blockApiTokens: false };

/**
 * Every write here first locks the org row, so rule checks and writes of concurrent requests
 * for one org happen one after the other; partial unique indexes and CHECK constraints in the
 * schema back the rules up should any path ever skip a check.
 *
 * Paths outside this service change accounts without the org lock (a SCIM claim, a JIT sign-in),
 * so a write that depends on who is in a policy also takes the lock order's next steps
 * (docs/decisions.md, "Lock order"): org → policy → the accounts, in id order. Making a policy
 * non-billable locks its members before counting the synced ones: a claim in flight has either
 * committed (and is counted: 409) or waits, and then finds the account non-billable and moves it
 * out (the IdP wins). The schema refuses whatever slips through (Account_synced_never_non_billable_check).
 */
export function createPolicyService(db: Database) {
  async function mustGet(tx: Tx, ctx: RequestContext, id: string) {
    const p = await policyStore.get(tx, ctx.orgId, id);
    if (!p) throw new NotFound('policy', id);
    return p;
  }

  async function checkChange(tx: Tx, ctx: RequestContext, before: PolicyRow | null, after: PolicySettings) {
    const nonBillable = await policyStore.nonBillablePolicy(tx, ctx.orgId);
    const { state } = subscriptionStatus(await subscriptionStore.get(tx, ctx.orgId), ctx.now);
    assertPolicyChange({
      before: before ? settings(before) : null,
      after,
      otherNonBillablePolicyId: nonBillable && nonBillable.id !== before?.id ? nonBillable.id : null,
      subscriptionState: state,
      syncedMemberCount: before && after.nonBillable ? await policyStore.syncedMemberCount(tx, ctx.orgId, before.id) : 0,
    });
    // The connection must be one of this org's (the foreign key alone would accept another org's id).
    if (after.ssoConnectionId && after.ssoConnectionId !== before?.ssoConnectionId && !(await ssoConnectionStore.get(tx, ctx.orgId, after.ssoConnectionId))) {
      throw new InvalidInput('invalid body', [{ path: 'ssoConnectionId', message: `no SSO connection ${after.ssoConnectionId} in this org` }]);
    }
  }

  /** Maps a constraint that caught what the checks above should already have refused. */
  function mapConstraint(err: unknown, name?: string): never {
    if (isUniqueViolation(err, 'Policy_one_non_billable_per_org')) throw new PolicyViolation('one-non-billable-policy', 'The org already has a non-billable policy.');
    if (isUniqueViolation(err, 'Policy_one_default_per_org')) throw new PolicyViolation('one-default-policy', 'The org already has a default policy.');
    if (isUniqueViolation(err)) throw new Conflict('policy-name-taken', `a policy named "${name}" already exists in this org`);
    if (isCheckViolation(err, 'Policy_default_billable_check')) throw new PolicyViolation('default-policy-billable', 'The default policy cannot be non-billable.');
    throw err;
  }

  async function makeDefault(tx: Tx, ctx: RequestContext, id: string) {
    const current = await policyStore.defaultPolicy(tx, ctx.orgId);
    if (current.id !== id) await policyStore.update(tx, ctx.orgId, current.id, { isDefault: false });
    return current.id;
  }

  return {
    async list(ctx: RequestContext, page: PageRequest) {
      const res = await policyStore.list(db.prisma, ctx.orgId, page);
      return { items: res.items.map(policyView), next: res.next };
    },

    async get(ctx: RequestContext, id: string) {
      const p = await policyStore.getWithCount(db.prisma, ctx.orgId, id);
      if (!p) throw new NotFound('policy', id);
      return policyView(p);
    },

    async create(ctx: RequestContext, input: PolicyInput & { name: string }) {
      const data = toData(input);
      try {
        return await inTransaction(db, async (tx) => {
          await lockOrg(tx, ctx.orgId);
          await checkChange(tx, ctx, null, { ...DEFAULTS, ...settings({ ...DEFAULTS, ...data } as PolicyRow) });
          // The new default takes over in the same transaction: there is never zero or two defaults.
          const previousDefault = data.isDefault ? await makeDefault(tx, ctx, '') : null;
          const p = await policyStore.create(tx, ctx.orgId, { ...data, name: input.name });
          await audit(tx, ctx, { action: 'policy.create', targetType: 'policy', targetId: p.id, after: { ...policyView(p), previousDefaultPolicyId: previousDefault } });
          return policyView({ ...p, memberCount: 0 });
        });
      } catch (err) {
        mapConstraint(err, input.name);
      }
    },

    async update(ctx: RequestContext, id: string, input: PolicyInput) {
      const data = toData(input);
      try {
        return await inTransaction(db, async (tx) => {
          await lockOrg(tx, ctx.orgId);
          const before = await mustGet(tx, ctx, id);
          // (The default policy is refused below, and locking all its members for that would be waste.)
          if (data.nonBillable === true && !before.nonBillable && !before.isDefault && !data.isDefault) {
            await lockPolicy(tx, ctx.orgId, id, 'update');
            await policyStore.lockMembers(tx, ctx.orgId, id);
          }
          const merged = { ...before, ...data } as PolicyRow;
          await checkChange(tx, ctx, before, settings(merged));
          if (data.isDefault && !before.isDefault) await makeDefault(tx, ctx, id);
          const after = await policyStore.update(tx, ctx.orgId, id, data);
          await audit(tx, ctx, { action: 'policy.update', targetType: 'policy', targetId: id, before: policyView(before), after: policyView(after) });
          if (before.nonBillable !== after.nonBillable) {
            await syncBillability(tx, ctx, await accountStore.policyMemberIds(tx, ctx.orgId, id), after.nonBillable ? 'policy-made-non-billable' : 'policy-made-billable');
          }
          return policyView((await policyStore.getWithCount(tx, ctx.orgId, id))!);
        });
      } catch (err) {
        mapConstraint(err, input.name);
      }
    },

    /** Deleting a policy moves its members to the default policy. */
    async delete(ctx: RequestContext, id: string) {
      return inTransaction(db, async (tx) => {
        await lockOrg(tx, ctx.orgId);
        const p = await mustGet(tx, ctx, id);
        assertDeletable(p);
        // A JIT sign-in placing an account in this policy holds its KEY SHARE lock until it
        // commits; then the move below sees that account too (the foreign key would refuse the delete).
        await lockPolicy(tx, ctx.orgId, id, 'update');
        const target = await policyStore.defaultPolicy(tx, ctx.orgId);
        const moved = await accountStore.movePolicyMembers(tx, ctx.orgId, id, target.id);
        await policyStore.delete(tx, ctx.orgId, id);
        await audit(tx, ctx, { action: 'policy.delete', targetType: 'policy', targetId: id, before: policyView(p), after: { membersMovedTo: target.id, moved: moved.length } });
        if (p.nonBillable) await syncBillability(tx, ctx, moved, 'policy-deleted');
        return { movedTo: target.id, moved: moved.length };
      });
    },

    /** One page of the policy's members (paged in SQL); 404 for a policy of another org. */
    async members(ctx: RequestContext, policyId: string, page: PageRequest) {
      await mustGet(db.prisma, ctx, policyId);
      const res = await accountStore.policyMembers(db.prisma, ctx.orgId, policyId, page);
      return {
        items: res.items.map((a) => ({
          id: a.id, email: a.email, displayName: a.displayName, status: a.status, source: a.source, managed: a.managed, createdAt: a.createdAt,
        })),
        next: res.next,
      };
    },

    /** Moves accounts into the policy (out of whichever policy held them). */
    async addMembers(ctx: RequestContext, id: string, accountIds: string[]) {
      const ids = [...new Set(accountIds)];
      return inTransaction(db, async (tx) => {
        await lockOrg(tx, ctx.orgId);
        const policy = await mustGet(tx, ctx, id);
        await lockPolicy(tx, ctx.orgId, id, 'key share');
        // Locked before they are read: a claim in flight has committed (and the move is refused) or
        // waits, then finds the account in this policy and, if it is non-billable, moves it out.
        await accountStore.lockForUpdate(tx, ctx.orgId, ids.filter((i) => /^[0-9a-f-]{36}$/i.test(i)));
        const accounts = await accountStore.getMany(tx, ctx.orgId, ids);
        const found = new Set(accounts.map((a) => a.id));
        const missing = accountIds.map((a, i) => ({ a, i })).filter(({ a }) => !found.has(a));
        if (missing.length) {
          throw new InvalidInput('unknown accounts', missing.map(({ a, i }) => ({ path: `accountIds.${i}`, message: `no account ${a} in this org` })));
        }
        assertMembership(policy, accounts.map((a) => ({ id: a.id, managed: a.managed, synced: a.source === 'scim' })));
        const moving = accounts.filter((a) => a.policyId !== id);
        await accountStore.setPolicy(tx, ctx.orgId, moving.map((a) => a.id), id);
        if (moving.length) {
          await audit(tx, ctx, {
            action: 'policy.members.add', targetType: 'policy', targetId: id,
            before: moving.map((a) => ({ accountId: a.id, policyId: a.policyId })), after: { policyId: id, accountIds: moving.map((a) => a.id) },
          });
          await syncBillability(tx, ctx, moving.map((a) => a.id), 'policy-membership-changed');
        }
        return { policy: policyView((await policyStore.getWithCount(tx, ctx.orgId, id))!), moved: moving.length };
      });
    },
  };
}

export type PolicyService = ReturnType<typeof createPolicyService>;
