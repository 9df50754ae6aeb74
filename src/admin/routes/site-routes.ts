import type { Services } from '../../composition.js';
import { route, type RouteSpec } from '../route-spec.js';
import { accessParams, createSiteBody, grantAccessBody, idParams, lists, orgParams, pageQuery, siteOut, updateSiteBody } from '../schemas.js';

export function siteRoutes(s: Services): RouteSpec[] {
  return [
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/sites', tag: 'sites', auth: 'org', summary: 'List sites',
      params: orgParams, query: pageQuery, responses: { 200: { description: 'sites', schema: lists.sites } },
      handler: async ({ ctx, query }) => ({ status: 200, body: await s.sites.list(ctx, query) }),
    }),
    route({
      method: 'post', path: '/api/v1/orgs/{orgId}/sites', tag: 'sites', auth: 'org', summary: 'Create a site with its products',
      params: orgParams, body: createSiteBody, responses: { 201: { description: 'the site', schema: siteOut } },
      handler: async ({ ctx, body }) => ({ status: 201, body: await s.sites.create(ctx, body) }),
    }),
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/sites/{id}', tag: 'sites', auth: 'org', summary: 'One site',
      params: idParams, responses: { 200: { description: 'the site', schema: siteOut } },
      handler: async ({ ctx, params }) => ({ status: 200, body: await s.sites.get(ctx, params.id) }),
    }),
    route({
      method: 'patch', path: '/api/v1/orgs/{orgId}/sites/{id}', tag: 'sites', auth: 'org',
      summary: 'Rename, change products (access to a removed product is revoked) or the Enterprise flag',
      params: idParams, body: updateSiteBody, responses: { 200: { description: 'the site', schema: siteOut } },
      handler: async ({ ctx, params, body }) => ({ status: 200, body: await s.sites.update(ctx, params.id, body) }),
    }),
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/sites/{id}/access', tag: 'sites', auth: 'org', summary: 'Who has access to what on the site',
      params: idParams, query: pageQuery, responses: { 200: { description: 'access grants' } },
      handler: async ({ ctx, params, query }) => ({ status: 200, body: await s.sites.listAccess(ctx, params.id, query) }),
    }),
    route({
      method: 'post', path: '/api/v1/orgs/{orgId}/sites/{id}/access', tag: 'sites', auth: 'org',
      summary: 'Grant direct product access; role is user, or agent/customer for JSM',
      params: idParams, body: grantAccessBody,
      responses: { 201: { description: 'granted' }, 200: { description: 'already granted (role updated if it differed)' } },
      handler: async ({ ctx, params, body }) => {
        const r = await s.sites.grantAccess(ctx, params.id, body);
        return { status: r.created ? 201 : 200, body: r.access };
      },
    }),
    route({
      method: 'delete', path: '/api/v1/orgs/{orgId}/sites/{id}/access/{accountId}/{product}', tag: 'sites', auth: 'org', summary: 'Revoke direct access',
      params: accessParams, responses: { 204: { description: 'revoked' } },
      handler: async ({ ctx, params }) => (await s.sites.revokeAccess(ctx, params.id, params.accountId, params.product), { status: 204 }),
    }),
  ];
}
