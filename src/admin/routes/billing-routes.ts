import type { Services } from '../../composition.js';
import type { BillableUser } from '../../store/billable-set.js';
import { route, type RouteResult, type RouteSpec } from '../route-spec.js';
import { z } from '../zod.js';
import { orgParams, pageQuery, uuid } from '../schemas.js';
import { CYCLES, PLANS } from '../../domain/types.js';

// Schemas of the estimate and the billable-users list.
export const billableUsersQuery = pageQuery.extend({
  format: z.enum(['json', 'csv'], { error: 'must be json or csv' }).optional()
    .describe('csv streams every billable user (limit and cursor are ignored); the Accept header (text/csv) chooses too'),
});
const tierLineOut = z.object({
  from: z.number(), to: z.number(), users: z.number(), unitPrice: z.number(), amount: z.number(),
  basis: z.enum(['standard', 'premium', 'price-difference']),
}).openapi('BillTierLine');
export const estimateOut = z.object({
  billableUsers: z.number().describe('who is billable now'),
  periodBillableUsers: z.number().describe('unique billable users of the period so far (from the ledger): the amount is computed from it'),
  priceDifferenceUsers: z.number().describe('Premium users covered by Cloud Enterprise, priced at premium − standard'),
  amount: z.number().describe('in the currency\'s minor unit (cents)'),
  currency: z.string(),
  cycle: z.enum(CYCLES),
  plan: z.enum(PLANS).nullable(),
  edition: z.enum(['commercial', 'community', 'academic']),
  state: z.enum(['none', 'trial', 'active', 'unsubscribed']),
  periodStart: z.string(),
  periodEnd: z.string(),
  monthsCharged: z.number().describe('1 monthly, 10 annual (ten months for twelve), 0 free'),
  free: z.string().nullable(),
  tiers: z.array(tierLineOut).describe('the lines of every segment, in order; they add up to wouldBeAmount'),
  charged: z.boolean().describe('false when no part of the period is paid for (a trial, unsubscribed, no subscription, a free edition): amount is then 0'),
  wouldBeAmount: z.number().describe('the amount had every segment been paid for (cents); equals amount when the whole period is paid'),
  segments: z.array(z.object({
    plan: z.enum(PLANS).nullable(),
    from: z.string(), to: z.string(),
    share: z.number().describe('(to − from) / period length: the segment\'s lines are prorated by it'),
    charged: z.boolean().describe('paid for: the org is active throughout the segment'),
    users: z.number().describe('unique users billable under this plan during the segment'),
    priceDifferenceUsers: z.number(),
    amount: z.number().describe('the segment\'s prorated price (cents), in amount only when charged'),
    tiers: z.array(tierLineOut),
  }).openapi('BillEstimateSegment')).describe('the period cut at plan changes and where it turns paid or unpaid (docs/billing.md)'),
}).openapi('BillEstimate');
export const billableUserOut = z.object({
  accountId: uuid, email: z.string(), displayName: z.string().nullable(), managed: z.boolean(), status: z.enum(['active', 'disabled']),
  billable: z.literal(true), reasons: z.array(z.string()),
}).openapi('BillableUser');
export const billableUsersOut = z.object({ items: z.array(billableUserOut), next: z.string().nullable() }).openapi('BillableUsers');

export const CSV_COLUMNS = ['email', 'displayName', 'managed', 'reasons'] as const;

/**
 * One CSV field (RFC 4180 §2): quoted when it holds a comma, a quote, CR or LF, quotes doubled.
 * A text field starting with = + - @ TAB or CR is prefixed with ' so a spreadsheet opening the
 * export never runs an IdP-supplied display name as a formula (OWASP "CSV injection").
 */
export function csvField(value: string): string {
  const v = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}

export function csvRow(u: Pick<BillableUser, 'email' | 'displayName' | 'managed' | 'reasons'>): string {
  return [csvField(u.email), csvField(u.displayName ?? ''), String(u.managed), csvField(u.reasons.join(';'))].join(',') + '\r\n';
}

/** The CSV export, one chunk per page of billable users: header row, then CRLF-terminated records. */
export async function* billableUsersCsv(pages: AsyncIterable<BillableUser[]>): AsyncGenerator<string> {
  yield CSV_COLUMNS.join(',') + '\r\n';
  for await (const page of pages) yield page.map(csvRow).join('');
}

export function billingRoutes(s: Services): RouteSpec[] {
  return [
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/billing/estimate', tag: 'billing', auth: 'org',
      summary: 'What the bill of the current period will be: billable users now and in the period, tiers used, amount',
      params: orgParams, responses: { 200: { description: 'the estimate', schema: estimateOut } },
      handler: async ({ ctx }) => ({ status: 200, body: await s.billing.estimate(ctx) }),
    }),
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/billing/billable-users', tag: 'billing', auth: 'org',
      summary: 'Who is on the bill and why, paged in creation order; ?format=csv or Accept: text/csv streams them all as CSV',
      params: orgParams, query: billableUsersQuery,
      responses: { 200: { description: 'billable users (JSON page, or text/csv with a header row: email, displayName, managed, reasons)', schema: billableUsersOut } },
      handler: async ({ ctx, query, accepts }): Promise<RouteResult> => {
        const format = query.format ?? (accepts?.(['application/json', 'text/csv']) === 'text/csv' ? 'csv' : 'json');
        if (format === 'json') return { status: 200, headers: { Vary: 'Accept' }, body: await s.billing.billableUsers(ctx, query) };
        return {
          status: 200,
          contentType: 'text/csv; charset=utf-8; header=present',
          headers: { 'Content-Disposition': 'attachment; filename="billable-users.csv"', Vary: 'Accept' },
          stream: billableUsersCsv(s.billing.allBillableUsers(ctx)),
        };
      },
    }),
  ];
}
