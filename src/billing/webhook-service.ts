import type { Database } from '../store/database.js';
import type { Outbound } from '../net/outbound.js';
import { inTransaction, lockOrg } from '../store/transaction.js';
import { InvalidInput, NotFound } from '../domain/errors.js';
import { webhookStore, type WebhookDeliveryStatus, type WebhookRow } from './ledger-store.js';
import { newWebhookSecret } from './webhook-signature.js';
import { sealWebhookSecret } from './webhook-secret.js';
import type { SecretBox } from '../services/secret-box.js';
import { readDeltaStream } from './delta-stream.js';
import { audit } from '../services/audit.js';
import type { RequestContext } from '../services/context.js';

export const MAX_WEBHOOK_URL_LENGTH = 2048;

/**
 * Why a billing webhook URL is refused, or null. http(s) only; no user:password (the secret
 * signs requests; a credential in the URL would be stored and logged as plain text).
 */
export function webhookUrlProblem(raw: string): string | null {
  if (raw.length > MAX_WEBHOOK_URL_LENGTH) return `at most ${MAX_WEBHOOK_URL_LENGTH} characters`;
  if (raw.trim() !== raw || /[\s\x00-\x1f\x7f]/.test(raw)) return 'must not contain spaces or control characters';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be an absolute http:// or https:// URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an http:// or https:// URL';
  if (url.username || url.password || /^[a-z]+:\/\/[^/?#]*@/i.test(raw)) return 'must not contain credentials (user:password@); the signature authenticates deliveries';
  if (!url.hostname) return 'must name a host';
  if (url.hash) return 'must not contain a #fragment';
  return null;
}

/** The URL for the audit log: the query string may carry a receiver's token, so it is not kept. */
const auditUrl = (raw: string) => {
  const u = new URL(raw);
  return `${u.origin}${u.pathname}${u.search ? '?…' : ''}`;
};

export type ReplayInput = { deltaIds?: string[] | undefined; status?: 'dead' | 'sent' | undefined; since?: string | Date | undefined };

/**
 * The billing webhook of an org (where its billable deltas are pushed) and the pull stream
 * of its deltas. Every change is audited in its own transaction.
 */
export function createBillingWebhookService(db: Database, opts: { box: SecretBox; outbound?: Pick<Outbound, 'check'> }) {
  async function mustGet(ctx: RequestContext): Promise<WebhookRow> {
    const w = await webhookStore.get(db.prisma, ctx.orgId);
    if (!w) throw new NotFound('billing webhook');
    return w;
  }

  return {
    /**
     * Creates the webhook (with a new secret, returned this once) or changes its URL (the
     * secret stays; `secret` is then absent). Deltas applied from now on are queued for it.
     */
    async put(ctx: RequestContext, input: { url: string }): Promise<{ url: string; secret?: string; createdAt: Date; updatedAt: Date }> {
      const problem = webhookUrlProblem(input.url);
      if (problem) throw new InvalidInput('invalid webhook URL', [{ path: 'url', message: problem }]);
      // Refused at save for a good error; the delivery's own connection is checked again (DNS may change).
      const refused = await opts.outbound?.check(input.url);
      if (refused) throw new InvalidInput('invalid webhook URL', [{ path: 'url', message: refused.message }]);
      return inTransaction(db, async (tx) => {
        // Serialises two concurrent PUTs of one org: exactly one creates, the other updates.
        if (!(await lockOrg(tx, ctx.orgId))) throw new NotFound('org', ctx.orgId);
        const before = await webhookStore.get(tx, ctx.orgId);
        if (!before) {
          const secret = newWebhookSecret();
          const w = await webhookStore.create(tx, ctx.orgId, { url: input.url, secretEnc: sealWebhookSecret(opts.box, secret), now: ctx.now });
          await audit(tx, ctx, { action: 'billing.webhook.create', targetType: 'billing-webhook', targetId: ctx.orgId, after: { url: auditUrl(w.url) } });
          return { url: w.url, secret, createdAt: w.createdAt, updatedAt: w.updatedAt };
        }
        const w = await webhookStore.update(tx, ctx.orgId, { url: input.url, now: ctx.now });
        await audit(tx, ctx, {
          action: 'billing.webhook.update', targetType: 'billing-webhook', targetId: ctx.orgId,
          before: { url: auditUrl(before.url) }, after: { url: auditUrl(w.url) },
        });
        return { url: w.url, createdAt: w.createdAt, updatedAt: w.updatedAt };
      });
    },

    /** A new secret, effective for every delivery sent from now on (retries included); shown this once. */
    async rotateSecret(ctx: RequestContext): Promise<{ url: string; secret: string; updatedAt: Date }> {
      return inTransaction(db, async (tx) => {
        if (!(await lockOrg(tx, ctx.orgId))) throw new NotFound('org', ctx.orgId);
        if (!(await webhookStore.get(tx, ctx.orgId))) throw new NotFound('billing webhook');
        const secret = newWebhookSecret();
        const w = await webhookStore.update(tx, ctx.orgId, { secretEnc: sealWebhookSecret(opts.box, secret), now: ctx.now });
        await audit(tx, ctx, { action: 'billing.webhook.secret.rotate', targetType: 'billing-webhook', targetId: ctx.orgId, after: { rotatedAt: ctx.now } });
        return { url: w.url, secret, updatedAt: w.updatedAt };
      });
    },

    /** The webhook (never its secret) and how its deliveries stand. */
    async get(ctx: RequestContext) {
      const w = await mustGet(ctx);
      const deliveries = await webhookStore.counts(db.prisma, ctx.orgId);
      return { url: w.url, createdAt: w.createdAt, updatedAt: w.updatedAt, deliveries };
    },

    /** Removes the webhook; its pending deliveries are dropped, sent and dead ones stay as history. */
    async remove(ctx: RequestContext): Promise<void> {
      await inTransaction(db, async (tx) => {
        if (!(await lockOrg(tx, ctx.orgId))) throw new NotFound('org', ctx.orgId);
        const before = await webhookStore.get(tx, ctx.orgId);
        if (!before) throw new NotFound('billing webhook');
        const { pendingDropped } = await webhookStore.remove(tx, ctx.orgId);
        await audit(tx, ctx, {
          action: 'billing.webhook.delete', targetType: 'billing-webhook', targetId: ctx.orgId, before: { url: auditUrl(before.url) }, after: { pendingDropped },
        });
      });
    },

    /**
     * Sends deliveries again: each matching one goes back to pending, attempts 0, due now, with
     * the same delta id (and so the same Idempotency-Key). Without deltaIds, `status` (default
     * dead) selects; with deltaIds, every listed delta that is not pending right now is resent,
     * including ledger deltas that never had a delivery. `since` keeps deltas that occurred at
     * or after it.
     */
    async replay(ctx: RequestContext, input: ReplayInput): Promise<{ replayed: number; unknownDeltaIds: string[] }> {
      const since = input.since === undefined ? null : new Date(input.since);
      if (since && Number.isNaN(since.getTime())) throw new InvalidInput('invalid since', [{ path: 'since', message: 'must be a date-time' }]);
      const deltaIds = input.deltaIds ? [...new Set(input.deltaIds.map((id) => id.toLowerCase()))] : null;
      const statuses: WebhookDeliveryStatus[] = input.status ? [input.status] : deltaIds ? ['dead', 'sent'] : ['dead'];
      return inTransaction(db, async (tx) => {
        if (!(await lockOrg(tx, ctx.orgId))) throw new NotFound('org', ctx.orgId);
        if (!(await webhookStore.get(tx, ctx.orgId))) throw new NotFound('billing webhook');
        const known = deltaIds ? await webhookStore.knownDeltaIds(tx, ctx.orgId, deltaIds) : null;
        const unknownDeltaIds = deltaIds && known ? deltaIds.filter((id) => !known.has(id)) : [];
        const replayed = await webhookStore.replay(tx, ctx.orgId, { deltaIds, statuses, since, now: ctx.now });
        await audit(tx, ctx, {
          action: 'billing.webhook.replay', targetType: 'billing-webhook', targetId: ctx.orgId,
          after: {
            filter: { deltaIds: deltaIds?.length ?? null, statuses, since },
            replayed: replayed.length,
            // The ids themselves for small replays; a count is enough for a bulk one.
            ...(replayed.length <= 100 ? { deltaIds: replayed } : {}),
          },
        });
        return { replayed: replayed.length, unknownDeltaIds };
      });
    },

    /** The org's deltas strictly after the cursor, in commit order (see src/billing/delta-stream.ts). */
    async deltas(ctx: RequestContext, page: { after?: string | undefined; limit?: number | undefined }) {
      return readDeltaStream(db.prisma, ctx.orgId, page);
    },
  };
}

export type BillingWebhookService = ReturnType<typeof createBillingWebhookService>;
