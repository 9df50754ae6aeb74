import type { Services } from '../../composition.js';
import { route, type RouteSpec } from '../route-spec.js';
import {
  createSsoConnectionBody, emptyBody, idParams, orgParams, pageQuery, ssoConnectionOut, ssoLists, ssoTestOut, ssoTestParams, ssoTestStartOut,
  updateSsoConnectionBody,
} from '../schemas.js';

export function ssoRoutes(s: Services): RouteSpec[] {
  return [
    route({
      method: 'post', path: '/api/v1/orgs/{orgId}/sso-connections', tag: 'sso', auth: 'org',
      summary: 'Add an identity provider: SAML (metadataXml, or entityId + ssoUrl + certificate) or OIDC (issuer, clientId, clientSecret)',
      params: orgParams, body: createSsoConnectionBody,
      responses: { 201: { description: 'the connection, with the URLs to give the IdP; secrets are never echoed', schema: ssoConnectionOut } },
      handler: async ({ ctx, body }) => ({ status: 201, body: await s.ssoConnections.create(ctx, body) }),
    }),
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/sso-connections', tag: 'sso', auth: 'org', summary: 'List SSO connections',
      params: orgParams, query: pageQuery, responses: { 200: { description: 'connections', schema: ssoLists.connections } },
      handler: async ({ ctx, query }) => ({ status: 200, body: await s.ssoConnections.list(ctx, query) }),
    }),
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/sso-connections/{id}', tag: 'sso', auth: 'org',
      summary: 'One SSO connection, with the policies that enforce SSO through it',
      params: idParams, responses: { 200: { description: 'the connection', schema: ssoConnectionOut } },
      handler: async ({ ctx, params }) => ({ status: 200, body: await s.ssoConnections.get(ctx, params.id) }),
    }),
    route({
      method: 'patch', path: '/api/v1/orgs/{orgId}/sso-connections/{id}', tag: 'sso', auth: 'org',
      summary: 'Change an SSO connection (e.g. a new certificate while the IdP rolls its key: send both in certificates)',
      params: idParams, body: updateSsoConnectionBody, responses: { 200: { description: 'the connection', schema: ssoConnectionOut } },
      handler: async ({ ctx, params, body }) => ({ status: 200, body: await s.ssoConnections.update(ctx, params.id, body) }),
    }),
    route({
      method: 'delete', path: '/api/v1/orgs/{orgId}/sso-connections/{id}', tag: 'sso', auth: 'org',
      summary: 'Delete an SSO connection; refused (409 sso-connection-in-use) while a policy enforces SSO through it',
      params: idParams, responses: { 204: { description: 'deleted' } },
      handler: async ({ ctx, params }) => (await s.ssoConnections.delete(ctx, params.id), { status: 204 }),
    }),
    route({
      method: 'post', path: '/api/v1/orgs/{orgId}/sso-connections/{id}/test', tag: 'sso', auth: 'org',
      summary: 'Start a rollout test: open the returned URL in a browser, sign in at the IdP, and see every check — no session is created',
      params: idParams, body: emptyBody, responses: { 201: { description: 'the one-time test URL (15 minutes) and where its result appears', schema: ssoTestStartOut } },
      handler: async ({ ctx, params }) => ({ status: 201, body: await s.ssoConnections.startTest(ctx, params.id) }),
    }),
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/sso-connections/{id}/tests', tag: 'sso', auth: 'org', summary: 'Past rollout tests, newest first',
      params: idParams, query: pageQuery, responses: { 200: { description: 'test runs', schema: ssoLists.tests } },
      handler: async ({ ctx, params, query }) => ({ status: 200, body: await s.ssoConnections.tests(ctx, params.id, query) }),
    }),
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/sso-connections/{id}/tests/{testId}', tag: 'sso', auth: 'org',
      summary: 'One rollout test: each check, the attributes received, the mapped profile, the account and policy a real login would use',
      params: ssoTestParams, responses: { 200: { description: 'the test run', schema: ssoTestOut } },
      handler: async ({ ctx, params }) => ({ status: 200, body: await s.ssoConnections.test(ctx, params.id, params.testId) }),
    }),
  ];
}
