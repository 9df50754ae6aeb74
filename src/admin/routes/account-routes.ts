import type { Services } from '../../composition.js';
import { route, type RouteSpec } from '../route-spec.js';
import { accountOut, accountQuery, createAccountBody, emptyBody, grantRoleBody, idParams, lists, orgParams, roleParams } from '../schemas.js';

export function accountRoutes(s: Services): RouteSpec[] {
  return [
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/accounts', tag: 'accounts', auth: 'org', summary: 'List accounts; ?email= finds one',
      params: orgParams, query: accountQuery, responses: { 200: { description: 'accounts', schema: lists.accounts } },
      handler: async ({ ctx, query }) => ({ status: 200, body: await s.accounts.list(ctx, query, { email: query.email }) }),
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
