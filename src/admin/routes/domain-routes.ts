import type { Services } from '../../composition.js';
import { route, type RouteSpec } from '../route-spec.js';
import { claimDomainBody, domainOut, domainParams, orgParams, verifyDomainBody } from '../schemas.js';

export function domainRoutes(s: Services): RouteSpec[] {
  return [
    route({
      method: 'post', path: '/api/v1/orgs/{orgId}/domains', tag: 'domains', auth: 'org', summary: 'Claim a domain',
      params: orgParams, body: claimDomainBody, responses: { 201: { description: 'claimed, with what to publish to verify it', schema: domainOut } },
      handler: async ({ ctx, body }) => ({ status: 201, body: await s.domains.claim(ctx, body) }),
    }),
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/domains', tag: 'domains', auth: 'org', summary: 'List claimed domains',
      params: orgParams, responses: { 200: { description: 'domains' } },
      handler: async ({ ctx }) => ({ status: 200, body: { items: await s.domains.list(ctx), next: null } }),
    }),
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/domains/{domain}', tag: 'domains', auth: 'org', summary: 'One claimed domain',
      params: domainParams, responses: { 200: { description: 'the domain', schema: domainOut } },
      handler: async ({ ctx, params }) => ({ status: 200, body: await s.domains.get(ctx, params.domain) }),
    }),
    route({
      method: 'post', path: '/api/v1/orgs/{orgId}/domains/{domain}/verify', tag: 'domains', auth: 'org',
      summary: 'Verify by DNS TXT or HTTPS file; the operator may send {"override": true} (audited). Accounts on the domain become managed.',
      params: domainParams, body: verifyDomainBody,
      responses: { 200: { description: 'verified' }, 422: { description: 'neither proof was found; the body says what was tried' } },
      handler: async ({ ctx, params, body }) => ({ status: 200, body: await s.domains.verify(ctx, params.domain, body) }),
    }),
  ];
}
