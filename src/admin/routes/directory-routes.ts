import type { Services } from '../../composition.js';
import { route, type RouteSpec } from '../route-spec.js';
import {
  createDirectoryBody, createGroupMappingBody, directoryCreatedOut, directoryEventsQuery, directoryLists, directoryOut, directoryTokenOut,
  groupMappingOut, groupMappingParams, idParams, orgParams, pageQuery, rotateTokenBody,
} from '../schemas.js';

export function directoryRoutes(s: Services): RouteSpec[] {
  return [
    route({
      method: 'post', path: '/api/v1/orgs/{orgId}/directories', tag: 'directories', auth: 'org',
      summary: 'Create a SCIM directory for an identity provider; its bearer token is shown once',
      params: orgParams, body: createDirectoryBody,
      responses: { 201: { description: 'the directory, its SCIM base URL and its token', schema: directoryCreatedOut } },
      handler: async ({ ctx, body }) => ({ status: 201, body: await s.directories.create(ctx, body) }),
    }),
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/directories', tag: 'directories', auth: 'org', summary: 'List directories (never their tokens)',
      params: orgParams, query: pageQuery, responses: { 200: { description: 'directories', schema: directoryLists.directories } },
      handler: async ({ ctx, query }) => ({ status: 200, body: await s.directories.list(ctx, query) }),
    }),
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/directories/{id}', tag: 'directories', auth: 'org',
      summary: 'One directory: token times, last use, user and group counts',
      params: idParams, responses: { 200: { description: 'the directory', schema: directoryOut } },
      handler: async ({ ctx, params }) => ({ status: 200, body: await s.directories.get(ctx, params.id) }),
    }),
    route({
      method: 'post', path: '/api/v1/orgs/{orgId}/directories/{id}/token', tag: 'directories', auth: 'org',
      summary: 'Rotate the SCIM token; the old one works for graceSeconds more (default from config; 0 revokes it at once)',
      params: idParams, body: rotateTokenBody,
      responses: { 200: { description: 'the new token (shown once) and when the old one stops working', schema: directoryTokenOut } },
      handler: async ({ ctx, params, body }) => ({ status: 200, body: await s.directories.rotateToken(ctx, params.id, body) }),
    }),
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/directories/{id}/sync-issues', tag: 'directories', auth: 'org',
      summary: 'Pushed users the org cannot manage: external accounts (unverified email domain) and users without an email',
      params: idParams, query: pageQuery, responses: { 200: { description: 'sync issues, oldest first' } },
      handler: async ({ ctx, params, query }) => ({ status: 200, body: await s.directories.syncIssues(ctx, params.id, query) }),
    }),
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/directories/{id}/events', tag: 'directories', auth: 'org',
      summary: 'The SCIM request log, newest first; failedOnly=true keeps the failed ones',
      params: idParams, query: directoryEventsQuery, responses: { 200: { description: 'SCIM requests', schema: directoryLists.events } },
      handler: async ({ ctx, params, query }) => ({
        status: 200,
        body: await s.directories.events(ctx, params.id, { limit: query.limit, cursor: query.cursor }, { failedOnly: query.failedOnly === 'true' }),
      }),
    }),
    route({
      method: 'post', path: '/api/v1/orgs/{orgId}/directories/{id}/group-mappings', tag: 'directories', auth: 'org',
      summary: 'Map a SCIM group (by displayName, ignoring case) to product access on a site; current members get it at once',
      params: idParams, body: createGroupMappingBody, responses: { 201: { description: 'the mapping', schema: groupMappingOut } },
      handler: async ({ ctx, params, body }) => ({ status: 201, body: await s.directories.createMapping(ctx, params.id, body) }),
    }),
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/directories/{id}/group-mappings', tag: 'directories', auth: 'org', summary: 'List group mappings',
      params: idParams, query: pageQuery, responses: { 200: { description: 'group mappings', schema: directoryLists.groupMappings } },
      handler: async ({ ctx, params, query }) => ({ status: 200, body: await s.directories.listMappings(ctx, params.id, query) }),
    }),
    route({
      method: 'delete', path: '/api/v1/orgs/{orgId}/directories/{id}/group-mappings/{mappingId}', tag: 'directories', auth: 'org',
      summary: 'Delete a group mapping; the access it granted is revoked at once',
      params: groupMappingParams, responses: { 204: { description: 'deleted' } },
      handler: async ({ ctx, params }) => (await s.directories.deleteMapping(ctx, params.id, params.mappingId), { status: 204 }),
    }),
  ];
}
