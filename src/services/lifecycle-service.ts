import type { Database } from '../store/database.js';
import { inTransaction, lockOrg, type Tx } from '../store/transaction.js';
import { ssoConnectionStore } from '../store/sso-store.js';
import { subscriptionStore } from '../store/subscription-store.js';
import { groupMappingStore } from '../store/group-mapping-store.js';
import { configurationRetained, subscriptionStatus } from '../domain/subscription.js';
import { audit } from './audit.js';
import { syncBillability } from './billability-sync.js';
import type { RequestContext } from './context.js';
import { subscriptionView } from './subscription-service.js';
import { invalidateDirectoryCredentials } from './directory-service.js';

/** The audit action that marks a trial end as applied: written once per org, with its effect. */
export const TRIAL_ENDED_ACTION = 'subscription.trial.ended';
export const RETENTION_PURGED_ACTION = 'subscription.retention.purged';

export type TrialEndApplied = { orgId: string; state: string; added: number; removed: number };
export type RetentionPurged = { orgId: string; directories: string[]; ssoConnections: string[]; accessRevoked: number; accountsRecomputed: number };

const systemCtx = (orgId: string, job: string, now: Date): RequestContext => ({ orgId, actor: { kind: 'system', name: job }, requestId: null, now });

/**
 * The time-driven half of SPEC §4. The subscription state is derived from stored facts and `now`
 * (src/domain/subscription.ts), so nothing needs to flip a state column; what lags is the stored
 * billability. These use cases close that gap and apply the 14-day purge.
 *
 * - Trial ends: a trial's end is the only state change that happens by the passing of time alone
 *   (cancel and resubscribe recompute at once in the subscription service). The last applied
 *   state is recorded as an audit event `subscription.trial.ended` (one per org — a trial starts
 *   once), written in the same transaction as the recomputation: an org whose trial has ended and
 *   that has no such event is due; the check is repeated under the org's lock, so two replicas or
 *   two ticks never apply it twice, and a crash before commit leaves it due.
 * - Retention purge: an org unsubscribed for 14 days or more loses its SCIM directories for good
 *   (users, groups, memberships, mappings and request events cascade or are deleted; the product
 *   access its group mappings granted is revoked, since nothing could ever revoke it again). Orgs,
 *   domains, accounts, policies and direct access stay. Its SAML/OIDC connections go in the same
 *   purge, whether or not the org has a SCIM directory.
 */
export function createLifecycleService(db: Database) {
  return {
    /** Orgs whose trial has ended and whose end has not been applied yet. */
    async dueTrialEnds(now: Date): Promise<string[]> {
      const rows = await db.prisma.$queryRaw<{ orgId: string }[]>`
        SELECT s."orgId"::text AS "orgId" FROM "Subscription" s
        WHERE s."trialEndsAt" IS NOT NULL AND s."trialEndsAt" <= ${now}
          AND NOT EXISTS (SELECT 1 FROM "AuditEvent" a WHERE a."orgId" = s."orgId" AND a."action" = ${TRIAL_ENDED_ACTION})
        ORDER BY s."trialEndsAt", s."orgId"`;
      return rows.map((r) => r.orgId);
    },

    /** Applies one org's trial end (idempotent): recompute every account's billability, audit it. */
    async applyTrialEnd(orgId: string, now: Date, job = 'trial-ends'): Promise<TrialEndApplied | null> {
      return inTransaction(db, async (tx) => {
        if (!(await lockOrg(tx, orgId))) return null;
        if (await alreadyApplied(tx, orgId)) return null;
        const facts = await subscriptionStore.get(tx, orgId);
        if (!facts.trialEndsAt || facts.trialEndsAt > now) return null;
        const status = subscriptionStatus(facts, now);
        const ctx = systemCtx(orgId, job, now);
        const deltas = await syncBillability(tx, ctx, 'all', 'trial-ended');
        const added = deltas.filter((d) => d.kind === 'added').length;
        const removed = deltas.length - added;
        await audit(tx, ctx, {
          action: TRIAL_ENDED_ACTION, targetType: 'subscription', targetId: orgId,
          after: { ...subscriptionView(status), billableAdded: added, billableRemoved: removed },
        });
        return { orgId, state: status.state, added, removed };
      });
    },

    /**
     * Orgs holding SAML/OIDC or SCIM configuration whose 14 days after unsubscribing are over: an
     * org with SSO connections and no SCIM directory is due too (issue 11 §5; it used to be skipped).
     */
    async dueRetentionPurges(now: Date): Promise<string[]> {
      const rows = await db.prisma.subscription.findMany({
        where: {
          AND: [
            { OR: [{ cancelledAt: { not: null } }, { trialEndsAt: { not: null } }] },
            { OR: [{ org: { directories: { some: {} } } }, { org: { ssoConnections: { some: {} } } }] },
          ],
        },
      });
      return rows
        .filter((s) => {
          const { orgId: _o, updatedAt: _u, ...facts } = s;
          return !configurationRetained(subscriptionStatus(facts, now), now);
        })
        .map((s) => s.orgId);
    },

    /** Deletes one org's SCIM configuration if its retention is over (re-checked under the org lock). */
    async purgeRetention(orgId: string, now: Date, job = 'retention-purge'): Promise<RetentionPurged | null> {
      const purged = await inTransaction(db, async (tx) => {
        if (!(await lockOrg(tx, orgId))) return null;
        const status = subscriptionStatus(await subscriptionStore.get(tx, orgId), now);
        if (configurationRetained(status, now)) return null;
        const directories = await tx.directory.findMany({ where: { orgId }, select: { id: true, name: true, idp: true } });
        const connections = await ssoConnectionStore.allOfOrg(tx, orgId);
        if (!directories.length && !connections.length) return null;
        // SAML/OIDC configuration goes too (SPEC §4): policies stop naming it first (enforcement
        // is already off while unsubscribed), then the connections and their requests and tests.
        const policiesReset = await tx.policy.updateMany({ where: { orgId, ssoConnectionId: { not: null } }, data: { enforceSso: false, ssoConnectionId: null } });
        for (const c of connections) await ssoConnectionStore.delete(tx, orgId, c.id);
        const dirIds = directories.map((d) => d.id);
        const mappings = await tx.groupMapping.findMany({ where: { orgId, directoryId: { in: dirIds } }, select: { id: true } });
        const touched = new Set<string>();
        let accessRevoked = 0;
        for (const m of mappings) {
          const r = await groupMappingStore.revokeAllOf(tx, orgId, m.id);
          accessRevoked += r.rows;
          for (const a of r.accountIds) touched.add(a);
        }
        await tx.scimEvent.deleteMany({ where: { orgId, directoryId: { in: dirIds } } });
        // Cascades: SCIM users (+ emails, memberships), groups, group mappings.
        await tx.directory.deleteMany({ where: { orgId, id: { in: dirIds } } });
        const ctx = systemCtx(orgId, job, now);
        // The org is unsubscribed, so nothing it holds is billable; recomputed anyway so that the
        // flags and the outbox stay exact whatever the rules become.
        await syncBillability(tx, ctx, [...touched], 'retention-purge');
        await audit(tx, ctx, {
          action: RETENTION_PURGED_ACTION, targetType: 'subscription', targetId: orgId,
          before: { directories, ssoConnections: connections },
          after: { directories: [], ssoConnections: [], policiesNoLongerEnforcingSso: policiesReset.count, accessRevoked, retentionEndsAt: status.retentionEndsAt },
        });
        return { orgId, directories: dirIds, ssoConnections: connections.map((c) => c.id), accessRevoked, accountsRecomputed: touched.size };
      });
      // SCIM trusts directory credentials from a short cache: the purged directories' tokens stop working here now.
      if (purged) invalidateDirectoryCredentials(db, purged.directories);
      return purged;
    },
  };
}

async function alreadyApplied(tx: Tx, orgId: string): Promise<boolean> {
  return (await tx.auditEvent.count({ where: { orgId, action: TRIAL_ENDED_ACTION } })) > 0;
}

export type LifecycleService = ReturnType<typeof createLifecycleService>;
