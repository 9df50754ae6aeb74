import type { Services } from '../../composition.js';
import { route, type RouteSpec } from '../route-spec.js';
import { createPolicyBody, idParams, lists, orgParams, pageQuery, policyMembersBody, policyOut, problemOut, updatePolicyBody } from '../schemas.js';

const ruleViolation = { description: 'a rule of SPEC §3 would break; `type` ends with the rule name, nothing changed', schema: problemOut };

export function policyRoutes(s: Services): RouteSpec[] {
  return [
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/policies', tag: 'policies', auth: 'org', summary: 'List authentication policies',
      params: orgParams, query: pageQuery, responses: { 200: { description: 'policies', schema: lists.policies } },
      handler: async ({ ctx, query }) => ({ status: 200, body: await s.policies.list(ctx, query) }),
    }),
    route({
      method: 'post', path: '/api/v1/orgs/{orgId}/policies', tag: 'policies', auth: 'org', summary: 'Create a policy',
      params: orgParams, body: createPolicyBody, responses: { 201: { description: 'the policy', schema: policyOut }, 409: ruleViolation },
      handler: async ({ ctx, body }) => ({ status: 201, body: await s.policies.create(ctx, body) }),
    }),
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/policies/{id}', tag: 'policies', auth: 'org', summary: 'One policy',
      params: idParams, responses: { 200: { description: 'the policy', schema: policyOut } },
      handler: async ({ ctx, params }) => ({ status: 200, body: await s.policies.get(ctx, params.id) }),
    }),
    route({
      method: 'patch', path: '/api/v1/orgs/{orgId}/policies/{id}', tag: 'policies', auth: 'org',
      summary: 'Change a policy; {"isDefault": true} makes it the default in place of the current one',
      params: idParams, body: updatePolicyBody, responses: { 200: { description: 'the policy', schema: policyOut }, 409: ruleViolation },
      handler: async ({ ctx, params, body }) => ({ status: 200, body: await s.policies.update(ctx, params.id, body) }),
    }),
    route({
      method: 'delete', path: '/api/v1/orgs/{orgId}/policies/{id}', tag: 'policies', auth: 'org', summary: 'Delete a policy; its members move to the default policy',
      params: idParams, responses: { 200: { description: 'where the members went' }, 409: ruleViolation },
      handler: async ({ ctx, params }) => ({ status: 200, body: await s.policies.delete(ctx, params.id) }),
    }),
    route({
      method: 'post', path: '/api/v1/orgs/{orgId}/policies/{id}/members', tag: 'policies', auth: 'org',
      summary: 'Move accounts into the policy (out of their previous one)',
      params: idParams, body: policyMembersBody, responses: { 200: { description: 'the policy and how many accounts moved' }, 409: ruleViolation },
      handler: async ({ ctx, params, body }) => ({ status: 200, body: await s.policies.addMembers(ctx, params.id, body.accountIds) }),
    }),
  ];
}
