import { z } from 'zod';
import type { Services } from '../../composition.js';
import { route, type RouteSpec } from '../route-spec.js';
import { createAdminKeyBody, createOrgBody, orgParams, pageQuery, uuid } from '../schemas.js';

export function orgRoutes(s: Services): RouteSpec[] {
  return [
    route({
      method: 'post', path: '/api/v1/orgs', tag: 'operator', auth: 'operator', summary: 'Create an org (operator). The admin key is shown once.',
      body: createOrgBody,
      responses: { 201: { description: 'the org, its default policy and its first admin key' } },
      handler: async ({ ctx, body }) => ({ status: 201, body: await s.orgs.createOrg(body, ctx.actor, ctx.requestId, ctx.now) }),
    }),
    route({
      method: 'get', path: '/api/v1/orgs', tag: 'operator', auth: 'operator', summary: 'List orgs (operator)',
      query: pageQuery, responses: { 200: { description: 'orgs, oldest first' } },
      handler: async ({ query }) => ({ status: 200, body: await s.orgs.listOrgs(query) }),
    }),
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}', tag: 'org', auth: 'org', summary: 'The org', params: orgParams,
      responses: { 200: { description: 'the org' } },
      handler: async ({ ctx }) => ({ status: 200, body: await s.orgs.getOrg(ctx.orgId) }),
    }),
    route({
      method: 'post', path: '/api/v1/orgs/{orgId}/admin-keys', tag: 'org', auth: 'org', summary: 'Create another admin key (shown once)',
      params: orgParams, body: createAdminKeyBody, responses: { 201: { description: 'the key, with its secret this once' } },
      handler: async ({ ctx, body }) => ({ status: 201, body: await s.orgs.createAdminKey(ctx, body) }),
    }),
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/admin-keys', tag: 'org', auth: 'org', summary: 'List admin keys (never their secrets)',
      params: orgParams, responses: { 200: { description: 'keys' } },
      handler: async ({ ctx }) => ({ status: 200, body: { items: await s.orgs.listAdminKeys(ctx), next: null } }),
    }),
    route({
      method: 'delete', path: '/api/v1/orgs/{orgId}/admin-keys/{id}', tag: 'org', auth: 'org', summary: 'Revoke an admin key',
      params: z.strictObject({ orgId: z.string(), id: uuid }), responses: { 200: { description: 'the revoked key' } },
      handler: async ({ ctx, params }) => ({ status: 200, body: await s.orgs.revokeAdminKey(ctx, params.id) }),
    }),
  ];
}
