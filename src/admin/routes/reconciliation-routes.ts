import type { Services } from '../../composition.js';
import { route, type RouteSpec } from '../route-spec.js';
import { z } from '../zod.js';
import { emptyBody, idParams, orgParams, pageQuery, uuid } from '../schemas.js';

export const reconciliationCreatedOut = z.object({
  id: uuid, status: z.enum(['done', 'failed']), corrections: z.number().describe('accounts whose ledger state or stored flag had to be corrected'),
  billableCount: z.number(), ledgerCount: z.number().describe("billable accounts by the ledger's net state before the corrections"),
  invariantViolations: z.number().describe('synced accounts found in a non-billable policy and moved to the default policy (SPEC §3); the schema forbids them, so anything but 0 is a defect to report'),
}).openapi('ReconciliationCreated');

export const reconciliationRunOut = z.object({
  id: uuid, status: z.enum(['running', 'done', 'failed']), trigger: z.string(), corrections: z.number(),
  billableCount: z.number().nullable(), ledgerCount: z.number().nullable(),
  startedAt: z.string(), finishedAt: z.string().nullable(),
  report: z.object({
    accounts: z.number(), billableCount: z.number(), ledgerCount: z.number(), deltasWritten: z.number(),
    added: z.array(uuid), removed: z.array(uuid), flagsFixed: z.number(), flagIds: z.array(uuid), truncated: z.boolean(),
    pendingDeltas: z.number(), durationMs: z.number(),
    invariant: z.object({ rule: z.string(), violations: z.number(), accountIds: z.array(uuid), flagDrift: z.number() }),
  }).partial().extend({ error: z.string().optional() }).nullable(),
}).openapi('ReconciliationRun');

const base = '/api/v1/orgs/{orgId}/billing/reconciliations';

export function reconciliationRoutes(s: Services): RouteSpec[] {
  return [
    route({
      method: 'post', path: base, tag: 'billing', auth: 'org',
      summary: 'Reconcile now: recompute the billable set, compare it with the ledger, write correction deltas for any drift',
      params: orgParams, body: emptyBody,
      responses: {
        201: { description: 'the run, finished', schema: reconciliationCreatedOut },
        409: { description: 'another reconciliation of this org is running (type …/reconciliation-running)' },
      },
      handler: async ({ ctx }) => ({ status: 201, body: await s.reconciliation.run(ctx) }),
    }),
    route({
      method: 'get', path: base, tag: 'billing', auth: 'org', summary: 'Past reconciliation runs, newest first',
      params: orgParams, query: pageQuery,
      responses: { 200: { description: 'runs', schema: z.object({ items: z.array(reconciliationRunOut), next: z.string().nullable() }) } },
      handler: async ({ ctx, query }) => ({ status: 200, body: await s.reconciliation.list(ctx, query) }),
    }),
    route({
      method: 'get', path: `${base}/{id}`, tag: 'billing', auth: 'org', summary: 'One reconciliation run with its report',
      params: idParams, responses: { 200: { description: 'the run', schema: reconciliationRunOut }, 404: { description: 'no such run in this org' } },
      handler: async ({ ctx, params }) => ({ status: 200, body: await s.reconciliation.get(ctx, params.id) }),
    }),
  ];
}
