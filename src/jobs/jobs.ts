import type { Config, JobName } from '../config.js';
import { Conflict } from '../domain/errors.js';
import { purgeScimTombstones } from '../services/scim-user-service.js';
import { createLifecycleService } from '../services/lifecycle-service.js';
import { purgeExpiredSso } from '../services/sign-in-service.js';
import { purgeExpiredConsoleSessions } from '../services/console-session-service.js';
import { deliverBatch } from '../billing/delivery-worker.js';
import { sendDueWebhooks } from '../billing/webhook-sender.js';
import { orgsToReconcile, reconcileOrg } from '../billing/reconcile.js';
import { sendBillNotices } from '../billing/notices.js';
import { createMailer, type Mailer } from '../billing/mailer.js';
import type { Job, JobContext } from './scheduler.js';
import type { Outbound } from '../net/outbound.js';
import type { SecretBox } from '../services/secret-box.js';

/**
 * Default schedules (node-cron, seconds first, UTC). JOBS_FAST=true runs every job every few
 * seconds (tests, demos); JOBS_SCHEDULE={"job":"cron"} replaces single ones.
 */
export const DEFAULT_SCHEDULES: Readonly<Record<JobName, string>> = {
  'outbox-delivery': '*/5 * * * * *', // every 5 s
  reconciliation: '0 30 2 * * *', // nightly, 02:30
  'trial-ends': '0 * * * * *', // every minute
  'retention-purge': '0 15 * * * *', // hourly, at :15
  'bill-notices': '0 0 8 * * *', // daily, 08:00
};

export const FAST_SCHEDULES: Readonly<Record<JobName, string>> = {
  'outbox-delivery': '* * * * * *',
  reconciliation: '*/5 * * * * *',
  'trial-ends': '*/2 * * * * *',
  'retention-purge': '*/3 * * * * *',
  'bill-notices': '*/4 * * * * *',
};

export function schedulesFor(config: Pick<Config, 'jobs'>): Record<JobName, string> {
  return { ...(config.jobs.fast ? FAST_SCHEDULES : DEFAULT_SCHEDULES), ...config.jobs.schedules };
}

/** How long one outbox-delivery tick keeps draining before it leaves the rest to the next tick. */
const DELIVERY_BUDGET_MS = 4_000;

export type JobDeps = {
  config: Pick<Config, 'jobs' | 'billing' | 'mail'>;
  /** Overrides the mailer built from config.mail (tests). null: no mail. */
  mailer?: Mailer | null;
  /** The service's secret box: opens the stored billing webhook secrets. */
  box: SecretBox;
  /** The outbound-request guard webhook deliveries go through (the service's one instance). */
  outbound?: Pick<Outbound, 'fetch'>;
};

/** The five jobs of the billing module, each a plain async function of its tick. */
export function createJobs(deps: JobDeps): Job[] {
  const schedules = schedulesFor(deps.config);
  const mailer = deps.mailer !== undefined ? deps.mailer : createMailer(deps.config.mail);
  const webhook = deps.config.billing.webhook;

  const outboxDelivery = async ({ db }: JobContext) => {
    const t0 = Date.now();
    let applied = 0;
    let webhooksQueued = 0;
    let batches = 0;
    for (;;) {
      const r = await deliverBatch(db);
      applied += r.applied;
      webhooksQueued += r.webhooksQueued;
      if (r.claimed === 0) break;
      batches++;
      if (Date.now() - t0 > DELIVERY_BUDGET_MS) break;
    }
    const sent = await sendDueWebhooks(db, { maxAttempts: webhook.maxAttempts, baseDelayMs: webhook.baseDelayMs, timeoutMs: webhook.timeoutMs, box: deps.box, ...(deps.outbound ? { fetchImpl: deps.outbound.fetch as typeof fetch } : {}) });
    return { applied, webhooksQueued, batches, ...sent };
  };

  const reconciliation = async ({ db, logger, now }: JobContext) => {
    const orgs = await orgsToReconcile(db);
    let corrections = 0;
    let corrected = 0;
    let busy = 0;
    let failed = 0;
    for (const orgId of orgs) {
      try {
        const r = await reconcileOrg(db, orgId, { trigger: 'nightly', now });
        // Loud on purpose: the schema makes this impossible; finding one means the guarantee broke.
        if (r.invariantViolations > 0) logger.error({ orgId, runId: r.id, invariantViolations: r.invariantViolations, rule: 'non-billable-no-synced-accounts' }, 'reconciliation found synced accounts in a non-billable policy (moved them to the default policy)');
        corrections += r.corrections;
        if (r.corrections > 0) {
          corrected++;
          logger.warn({ orgId, runId: r.id, corrections: r.corrections }, 'reconciliation corrected drift');
        }
      } catch (err) {
        if (err instanceof Conflict) {
          busy++;
          continue;
        }
        failed++;
        logger.error({ err, orgId }, 'reconciliation of an org failed');
      }
    }
    if (failed) throw new Error(`reconciliation failed for ${failed} of ${orgs.length} orgs (corrections elsewhere: ${corrections})`);
    return { orgs: orgs.length, corrections, orgsCorrected: corrected, skippedBusy: busy };
  };

  const trialEnds = async ({ db, logger, now }: JobContext) => {
    const lifecycle = createLifecycleService(db);
    const due = await lifecycle.dueTrialEnds(now);
    let applied = 0;
    let added = 0;
    let removed = 0;
    for (const orgId of due) {
      const r = await lifecycle.applyTrialEnd(orgId, now);
      if (!r) continue;
      applied++;
      added += r.added;
      removed += r.removed;
      logger.info({ orgId, state: r.state, added: r.added, removed: r.removed }, 'trial end applied');
    }
    return { due: due.length, applied, billableAdded: added, billableRemoved: removed };
  };

  const retentionPurge = async ({ db, logger, now }: JobContext) => {
    const lifecycle = createLifecycleService(db);
    const due = await lifecycle.dueRetentionPurges(now);
    let purged = 0;
    let directories = 0;
    for (const orgId of due) {
      const r = await lifecycle.purgeRetention(orgId, now);
      if (!r) continue;
      purged++;
      directories += r.directories.length;
      logger.info({ orgId, directories: r.directories.length, ssoConnections: r.ssoConnections.length, accessRevoked: r.accessRevoked }, 'SCIM and SSO configuration purged after retention');
    }
    // SCIM users deleted by their IdP are kept 14 days (a re-create revives them), then purged.
    const scimTombstones = await purgeScimTombstones(db, now);
    // Old tick rows are history nobody reads after a week; one statement keeps the table small.
    const ticks = await db.prisma.jobTick.deleteMany({ where: { tickAt: { lt: new Date(now.getTime() - 7 * 86_400_000) } } });
    // Expired SSO requests, replay-cache entries and sessions: nothing can use them any more.
    const sso = await purgeExpiredSso(db, now);
    const consoleSessions = await purgeExpiredConsoleSessions(db, now);
    return {
      due: due.length, orgsPurged: purged, directoriesDeleted: directories, scimTombstonesPurged: scimTombstones, jobTicksPruned: ticks.count,
      ssoExpired: sso, consoleSessionsExpired: consoleSessions,
    };
  };

  const billNotices = async ({ db, logger, now }: JobContext) => {
    if (!mailer) {
      logger.warn('SMTP_URL is not set: bill notices are not sent');
      return { skipped: 'no-smtp' };
    }
    return { ...(await sendBillNotices(db, { mailer, tiers: deps.config.billing.tiers, currency: deps.config.billing.currency, now, logger })) };
  };

  const jobs: Job[] = [
    { name: 'outbox-delivery', schedule: schedules['outbox-delivery'], run: outboxDelivery },
    { name: 'reconciliation', schedule: schedules.reconciliation, run: reconciliation },
    { name: 'trial-ends', schedule: schedules['trial-ends'], run: trialEnds },
    { name: 'retention-purge', schedule: schedules['retention-purge'], run: retentionPurge },
    { name: 'bill-notices', schedule: schedules['bill-notices'], run: billNotices },
  ];
  return jobs;
}
