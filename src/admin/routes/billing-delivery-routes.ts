import type { Services } from '../../composition.js';
import { route, type RouteSpec } from '../route-spec.js';
import { z } from '../zod.js';
import { emptyBody, orgParams, uuid } from '../schemas.js';

// Request and response schemas of the billing webhook and the delta stream (strict, size-capped).
export const putWebhookBody = z.strictObject({
  url: z.string({ error: 'must be a string' }).min(1, 'must not be empty').max(2048, 'at most 2048 characters'),
}).openapi('PutBillingWebhook');
export const replayBody = z.strictObject({
  deltaIds: z.array(uuid).min(1, 'give at least one delta id, or leave deltaIds out').max(1000, 'at most 1000 delta ids a call').optional(),
  status: z.enum(['dead', 'sent'], { error: 'must be dead or sent' }).optional(),
  since: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time, e.g. 2026-01-31T00:00:00Z' }).optional(),
}).openapi('ReplayBillingWebhook');
export const deltasQuery = z.strictObject({
  after: z.string().max(32, 'at most 32 characters').optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

const deliveryCounts = z.object({ pending: z.number(), sent: z.number(), dead: z.number() });
export const webhookPutOut = z.object({
  url: z.string(), secret: z.string().optional().describe('present when the webhook was created by this call: shown once'),
  createdAt: z.string(), updatedAt: z.string(),
}).openapi('BillingWebhookSet');
export const webhookSecretOut = z.object({ url: z.string(), secret: z.string(), updatedAt: z.string() }).openapi('BillingWebhookSecret');
export const webhookOut = z.object({ url: z.string(), createdAt: z.string(), updatedAt: z.string(), deliveries: deliveryCounts }).openapi('BillingWebhook');
export const replayOut = z.object({ replayed: z.number(), unknownDeltaIds: z.array(uuid) }).openapi('BillingWebhookReplay');
export const deltaOut = z.object({
  id: uuid, accountId: uuid, kind: z.enum(['added', 'removed']), reasons: z.array(z.string()), cause: z.string(), occurredAt: z.string(),
}).openapi('BillableDelta');
export const deltaPageOut = z.object({
  items: z.array(deltaOut),
  next: z.string().nullable().describe('pass as `after` to continue; null when this page is empty (keep your cursor and ask again later)'),
}).openapi('BillableDeltaPage');

const base = '/api/v1/orgs/{orgId}/billing';

export function billingDeliveryRoutes(s: Services): RouteSpec[] {
  return [
    route({
      method: 'put', path: `${base}/webhook`, tag: 'billing', auth: 'org',
      summary: 'Create the billing webhook (its signing secret is in this answer only) or change its URL; http(s) only, no credentials in the URL',
      params: orgParams, body: putWebhookBody,
      responses: { 200: { description: 'the webhook; `secret` when it was created', schema: webhookPutOut }, 400: { description: 'a URL that cannot be used' } },
      handler: async ({ ctx, body }) => ({ status: 200, body: await s.billingWebhooks.put(ctx, body) }),
    }),
    route({
      method: 'get', path: `${base}/webhook`, tag: 'billing', auth: 'org', summary: 'The billing webhook (never its secret) and how many deliveries are pending, sent and dead',
      params: orgParams, responses: { 200: { description: 'the webhook', schema: webhookOut }, 404: { description: 'no webhook is set' } },
      handler: async ({ ctx }) => ({ status: 200, body: await s.billingWebhooks.get(ctx) }),
    }),
    route({
      method: 'delete', path: `${base}/webhook`, tag: 'billing', auth: 'org', summary: 'Remove the billing webhook; its pending deliveries are dropped',
      params: orgParams, responses: { 204: { description: 'removed' }, 404: { description: 'no webhook is set' } },
      handler: async ({ ctx }) => (await s.billingWebhooks.remove(ctx), { status: 204 }),
    }),
    route({
      method: 'post', path: `${base}/webhook/secret`, tag: 'billing', auth: 'org', summary: 'Rotate the signing secret (shown once); every later attempt is signed with it',
      params: orgParams, body: emptyBody, responses: { 200: { description: 'the new secret', schema: webhookSecretOut } },
      handler: async ({ ctx }) => ({ status: 200, body: await s.billingWebhooks.rotateSecret(ctx) }),
    }),
    route({
      method: 'post', path: `${base}/webhook/replay`, tag: 'billing', auth: 'org',
      summary: 'Send deliveries again with the same delta id and Idempotency-Key: by deltaIds, by status (default dead) and/or since an occurrence time',
      params: orgParams, body: replayBody, responses: { 200: { description: 'how many deliveries were put back to pending', schema: replayOut } },
      handler: async ({ ctx, body }) => ({ status: 200, body: await s.billingWebhooks.replay(ctx, body) }),
    }),
    route({
      method: 'get', path: `${base}/deltas`, tag: 'billing', auth: 'org',
      summary: 'Billable deltas strictly after the cursor `after`, in commit order: a reader following `next` while changes happen sees exactly what a later full read sees',
      params: orgParams, query: deltasQuery, responses: { 200: { description: 'a page of the delta stream', schema: deltaPageOut } },
      handler: async ({ ctx, query }) => ({ status: 200, body: await s.billingWebhooks.deltas(ctx, query) }),
    }),
  ];
}
