import type { Services } from '../../composition.js';
import { route, type RouteResult, type RouteSpec } from '../route-spec.js';
import type { AccountRow } from '../../store/account-store.js';
import { csvField } from './billing-routes.js';
import { accountOut, accountQuery, createAccountBody, emptyBody, grantRoleBody, idParams, lists, orgParams, problemOut, roleParams, updateAccountBody } from '../schemas.js';

export function accountRoutes(s: Services): RouteSpec[] {
  return [
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/accounts', tag: 'accounts', auth: 'org',
      summary: 'List accounts, filtered by managed, source, status, billable, policyId and inactiveSince, with the total that match; ?email= finds one; ?format=csv or Accept: text/csv streams them all as CSV',
      params: orgParams, query: accountQuery,
      responses: {
        200: { description: 'accounts (JSON page, or text/csv with a header row: ' + ACCOUNT_CSV_COLUMNS.join(', ') + ')', schema: lists.accounts },
        400: { description: 'a filter value is invalid; `errors` names the parameter', schema: problemOut },
      },
      handler: async ({ ctx, query, accepts }): Promise<RouteResult> => {
        const { limit, cursor, format: asked, ...filter } = query;
        const format = asked ?? (accepts?.(['application/json', 'text/csv']) === 'text/csv' ? 'csv' : 'json');
        if (format === 'json') return { status: 200, headers: { Vary: 'Accept' }, body: await s.accounts.list(ctx, { limit, cursor }, filter) };
        return {
          status: 200,
          contentType: 'text/csv; charset=utf-8; header=present',
          headers: { 'Content-Disposition': 'attachment; filename="accounts.csv"', Vary: 'Accept' },
          stream: accountsCsv(s.accounts.allAccounts(ctx, filter)),
        };
      },
    }),
    route({
      method: 'post', path: '/api/v1/orgs/{orgId}/accounts', tag: 'accounts', auth: 'org',
      summary: 'Create an account: managed (and in the default policy) when its email domain is verified, external otherwise',
      params: orgParams, body: createAccountBody, responses: { 201: { description: 'the account', schema: accountOut } },
      handler: async ({ ctx, body }) => ({ status: 201, body: await s.accounts.create(ctx, body) }),
    }),
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/accounts/{id}', tag: 'accounts', auth: 'org', summary: 'One account, with billable and billableReasons',
      params: idParams, responses: { 200: { description: 'the account', schema: accountOut } },
      handler: async ({ ctx, params }) => ({ status: 200, body: await s.accounts.get(ctx, params.id) }),
    }),
    route({
      method: 'patch', path: '/api/v1/orgs/{orgId}/accounts/{id}', tag: 'accounts', auth: 'org',
      summary: 'Edit the names and email of a manual account (managed and policy follow the email\'s domain); a synced account\'s profile is the identity provider\'s (409 synced-profile-owned-by-idp)',
      params: idParams, body: updateAccountBody, responses: {
        200: { description: 'the account', schema: accountOut },
        409: { description: 'the email is another account\'s (account-email-taken), or the account is synced (rule synced-profile-owned-by-idp); nothing changed', schema: problemOut },
      },
      handler: async ({ ctx, params, body }) => ({ status: 200, body: await s.accounts.update(ctx, params.id, body) }),
    }),
    route({
      method: 'post', path: '/api/v1/orgs/{orgId}/accounts/{id}/disable', tag: 'accounts', auth: 'org', summary: 'Disable (idempotent)',
      params: idParams, body: emptyBody, responses: { 200: { description: 'the account', schema: accountOut } },
      handler: async ({ ctx, params }) => ({ status: 200, body: await s.accounts.disable(ctx, params.id) }),
    }),
    route({
      method: 'post', path: '/api/v1/orgs/{orgId}/accounts/{id}/enable', tag: 'accounts', auth: 'org', summary: 'Enable (idempotent)',
      params: idParams, body: emptyBody, responses: { 200: { description: 'the account', schema: accountOut } },
      handler: async ({ ctx, params }) => ({ status: 200, body: await s.accounts.enable(ctx, params.id) }),
    }),
    route({
      method: 'post', path: '/api/v1/orgs/{orgId}/accounts/{id}/roles', tag: 'accounts', auth: 'org',
      summary: 'Grant a role: org_admin, billing_contact, technical_contact (org-wide) or site_admin, product_admin (with siteId)',
      params: idParams, body: grantRoleBody, responses: { 201: { description: 'the role assignment' } },
      handler: async ({ ctx, params, body }) => ({ status: 201, body: await s.accounts.grantRole(ctx, params.id, body) }),
    }),
    route({
      method: 'delete', path: '/api/v1/orgs/{orgId}/accounts/{id}/roles/{roleId}', tag: 'accounts', auth: 'org', summary: 'Revoke a role',
      params: roleParams, responses: { 204: { description: 'revoked' } },
      handler: async ({ ctx, params }) => (await s.accounts.revokeRole(ctx, params.id, params.roleId), { status: 204 }),
    }),
  ];
}

export const ACCOUNT_CSV_COLUMNS = ['id', 'email', 'displayName', 'managed', 'status', 'source', 'policyId', 'billable', 'lastSignInAt', 'lastSignInConnectionId'] as const;

/** The accounts CSV (RFC 4180, formula-safe fields as the billable-users export): header row, then one CRLF record per account. */
export async function* accountsCsv(pages: AsyncIterable<AccountRow[]>): AsyncGenerator<string> {
  yield ACCOUNT_CSV_COLUMNS.join(',') + '\r\n';
  for await (const page of pages) {
    yield page.map((a) => [
      a.id, csvField(a.email), csvField(a.displayName ?? ''), String(a.managed), a.status, a.source, a.policyId ?? '', String(a.billable),
      a.lastSignInAt ? a.lastSignInAt.toISOString() : '', a.lastSignInConnectionId ?? '',
    ].join(',') + '\r\n').join('');
  }
}
