import type { Services } from '../../composition.js';
import { route, type RouteSpec } from '../route-spec.js';
import { auditQuery, emptyBody, orgParams, paymentMethodBody, resubscribeBody, subscriptionOut, trialBody } from '../schemas.js';

const ok = { 200: { description: 'the subscription after the change', schema: subscriptionOut } };

export function subscriptionRoutes(s: Services): RouteSpec[] {
  return [
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/subscription', tag: 'subscription', auth: 'org', summary: 'Subscription state, dates and refund eligibility',
      params: orgParams, responses: ok, handler: async ({ ctx }) => ({ status: 200, body: await s.subscription.get(ctx) }),
    }),
    route({
      method: 'post', path: '/api/v1/orgs/{orgId}/subscription/trial', tag: 'subscription', auth: 'org', summary: 'Start the 30-day trial (needs a verified domain)',
      params: orgParams, body: trialBody, responses: ok, handler: async ({ ctx, body }) => ({ status: 200, body: await s.subscription.startTrial(ctx, body) }),
    }),
    route({
      method: 'post', path: '/api/v1/orgs/{orgId}/subscription/payment-method', tag: 'subscription', auth: 'org',
      summary: 'Record that payment details were added (a trial then turns into a subscription at its end)',
      params: orgParams, body: paymentMethodBody, responses: ok,
      handler: async ({ ctx, body }) => ({ status: 200, body: await s.subscription.addPaymentMethod(ctx, body) }),
    }),
    route({
      method: 'post', path: '/api/v1/orgs/{orgId}/subscription/cancel', tag: 'subscription', auth: 'org',
      summary: 'Unsubscribe now: enforcement stops, SAML/SCIM configuration is kept 14 days',
      params: orgParams, body: emptyBody, responses: ok, handler: async ({ ctx }) => ({ status: 200, body: await s.subscription.cancel(ctx) }),
    }),
    route({
      method: 'post', path: '/api/v1/orgs/{orgId}/subscription/resubscribe', tag: 'subscription', auth: 'org', summary: 'Resubscribe an unsubscribed org',
      params: orgParams, body: resubscribeBody, responses: ok,
      handler: async ({ ctx, body }) => ({ status: 200, body: await s.subscription.resubscribe(ctx, body) }),
    }),
    route({
      method: 'get', path: '/api/v1/orgs/{orgId}/audit', tag: 'audit', auth: 'org', summary: 'Audit log, newest first; ?action= and ?targetId= narrow it',
      params: orgParams, query: auditQuery, responses: { 200: { description: 'audit events' } },
      handler: async ({ ctx, query }) => ({ status: 200, body: await s.audit.list(ctx, query, { action: query.action, targetId: query.targetId }) }),
    }),
  ];
}
