import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, startTestApp, verifyDomain, type TestApp } from '../support/app.js';

let app: TestApp;
type Org = { id: string; key: string; defaultPolicyId: string };
const u = (o: Org, p: string) => `/api/v1/orgs/${o.id}/${p}`;

beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => app?.close());

const deltas = (accountId: string) =>
  app.svc.db.prisma.billableDelta.findMany({ where: { accountId }, orderBy: { seq: 'asc' }, select: { kind: true, cause: true, reasons: true } });

describe('accounts and domains', () => {
  it('an account on an unverified domain is external and in no policy; verifying the domain makes it managed', async () => {
    const org = await createOrg(app, 'Managed Co');
    const acc = await app.http.post(u(org, 'accounts')).set(bearer(org.key)).send({ email: 'Zoe.Smith@Managed.Example', displayName: 'Zoe' }).expect(201);
    expect(acc.body).toMatchObject({ email: 'Zoe.Smith@Managed.Example', managed: false, status: 'active', source: 'manual', policyId: null, billable: false });
    expect(acc.body.billableReasons).toContain('external');

    await verifyDomain(app, org, 'managed.example');
    const after = await app.http.get(u(org, `accounts/${acc.body.id}`)).set(bearer(org.key)).expect(200);
    expect(after.body).toMatchObject({ managed: true, policyId: org.defaultPolicyId });
    const audit = await app.http.get(u(org, 'audit?action=domain.verify')).set(bearer(org.key)).expect(200);
    expect(audit.body.items[0].after).toMatchObject({ verified: true, method: 'dns', accountsManaged: 1 });
  });

  it('email lookup is case-insensitive and a duplicate email is a 409', async () => {
    const org = await createOrg(app, 'Dup Co');
    await app.http.post(u(org, 'accounts')).set(bearer(org.key)).send({ email: 'kim@dup.example' }).expect(201);
    const dup = await app.http.post(u(org, 'accounts')).set(bearer(org.key)).send({ email: 'KIM@dup.example' });
    expect(dup.status).toBe(409);
    expect(dup.body.type).toBe('https://orgsync.dev/problems/account-email-taken');
    const found = await app.http.get(u(org, 'accounts?email=Kim@DUP.example')).set(bearer(org.key)).expect(200);
    expect(found.body.items.map((a: { email: string }) => a.email)).toEqual(['kim@dup.example']);
    expect(found.body.next).toBeNull();
  });

  it('lists page with a cursor in creation order, without repeats or gaps', async () => {
    const org = await createOrg(app, 'Pages Co');
    for (let i = 0; i < 7; i++) await app.http.post(u(org, 'accounts')).set(bearer(org.key)).send({ email: `p${i}@pages.example` }).expect(201);
    const seen: string[] = [];
    let next: string | null = null;
    do {
      const res: { body: { items: { email: string }[]; next: string | null } } = await app.http
        .get(u(org, `accounts?limit=3${next ? `&cursor=${next}` : ''}`)).set(bearer(org.key)).expect(200);
      expect(res.body.items.length).toBeLessThanOrEqual(3);
      seen.push(...res.body.items.map((a) => a.email));
      next = res.body.next;
    } while (next);
    expect(seen).toEqual(Array.from({ length: 7 }, (_, i) => `p${i}@pages.example`));
  });

  it('roles: org-wide roles take no site, site roles need one', async () => {
    const org = await createOrg(app, 'Roles Co');
    const acc = (await app.http.post(u(org, 'accounts')).set(bearer(org.key)).send({ email: 'r@roles.example' }).expect(201)).body;
    const site = (await app.http.post(u(org, 'sites')).set(bearer(org.key)).send({ name: 'main', products: ['jira'] }).expect(201)).body;
    await app.http.post(u(org, `accounts/${acc.id}/roles`)).set(bearer(org.key)).send({ role: 'org_admin' }).expect(201);
    const siteAdmin = await app.http.post(u(org, `accounts/${acc.id}/roles`)).set(bearer(org.key)).send({ role: 'site_admin', siteId: site.id }).expect(201);
    expect((await app.http.post(u(org, `accounts/${acc.id}/roles`)).set(bearer(org.key)).send({ role: 'site_admin' })).body.errors[0].path).toBe('siteId');
    expect((await app.http.post(u(org, `accounts/${acc.id}/roles`)).set(bearer(org.key)).send({ role: 'billing_contact', siteId: site.id })).status).toBe(400);
    expect((await app.http.post(u(org, `accounts/${acc.id}/roles`)).set(bearer(org.key)).send({ role: 'org_admin' })).status).toBe(409);
    const view = await app.http.get(u(org, `accounts/${acc.id}`)).set(bearer(org.key)).expect(200);
    expect(view.body.roles).toEqual([{ id: expect.any(String), role: 'org_admin' }, { id: siteAdmin.body.id, role: 'site_admin', siteId: site.id }]);
    await app.http.delete(u(org, `accounts/${acc.id}/roles/${siteAdmin.body.id}`)).set(bearer(org.key)).expect(204);
    expect((await app.http.get(u(org, `accounts/${acc.id}`)).set(bearer(org.key))).body.roles).toHaveLength(1);
  });
});

describe('billability and billable deltas (outbox rows written with the change)', () => {
  let org: Org;
  let siteId: string;
  let accountId: string;

  beforeAll(async () => {
    org = await createOrg(app, 'Bill Co');
    await verifyDomain(app, org, 'bill.example');
    await app.http.post(u(org, 'subscription/trial')).set(bearer(org.key)).send({}).expect(200);
    siteId = (await app.http.post(u(org, 'sites')).set(bearer(org.key)).send({ name: 'prod', products: ['jira', 'jsm', 'confluence'] }).expect(201)).body.id;
    accountId = (await app.http.post(u(org, 'accounts')).set(bearer(org.key)).send({ email: 'bo@bill.example' }).expect(201)).body.id;
  });

  it('no product access: not billable, no delta', async () => {
    const acc = await app.http.get(u(org, `accounts/${accountId}`)).set(bearer(org.key)).expect(200);
    expect(acc.body).toMatchObject({ billable: false, billableReasons: ['no-product-access'] });
    expect(await deltas(accountId)).toEqual([]);
  });

  it('a JSM portal-only customer does not count; an agent does', async () => {
    await app.http.post(u(org, `sites/${siteId}/access`)).set(bearer(org.key)).send({ accountId, product: 'jsm', role: 'customer' }).expect(201);
    expect((await app.http.get(u(org, `accounts/${accountId}`)).set(bearer(org.key))).body.billableReasons).toEqual(['jsm-portal-only']);
    expect(await deltas(accountId)).toEqual([]);
    const agent = await app.http.post(u(org, `sites/${siteId}/access`)).set(bearer(org.key)).send({ accountId, product: 'jsm', role: 'agent' });
    expect(agent.status, 'an existing grant is updated in place').toBe(200);
    expect(await deltas(accountId)).toEqual([{ kind: 'added', cause: 'access-granted', reasons: ['managed', 'active', 'access:jsm'] }]);
  });

  it('a second product does not add a second delta: a person counts once', async () => {
    await app.http.post(u(org, `sites/${siteId}/access`)).set(bearer(org.key)).send({ accountId, product: 'jira' }).expect(201);
    const acc = await app.http.get(u(org, `accounts/${accountId}`)).set(bearer(org.key)).expect(200);
    expect(acc.body).toMatchObject({ billable: true, billableReasons: ['managed', 'active', 'access:jira', 'access:jsm'] });
    expect(await deltas(accountId)).toHaveLength(1);
  });

  it('disable → removed; enable → added; disabling twice writes nothing more', async () => {
    await app.http.post(u(org, `accounts/${accountId}/disable`)).set(bearer(org.key)).expect(200);
    await app.http.post(u(org, `accounts/${accountId}/disable`)).set(bearer(org.key)).expect(200);
    await app.http.post(u(org, `accounts/${accountId}/enable`)).set(bearer(org.key)).expect(200);
    const d = await deltas(accountId);
    expect(d.slice(1).map((x) => [x.kind, x.cause])).toEqual([['removed', 'account-disabled'], ['added', 'account-enabled']]);
    expect(d[1]!.reasons).toEqual(['disabled']);
  });

  it('joining the non-billable policy → removed; leaving it → added', async () => {
    const nb = (await app.http.post(u(org, 'policies')).set(bearer(org.key)).send({ name: 'Free', nonBillable: true }).expect(201)).body;
    const moved = await app.http.post(u(org, `policies/${nb.id}/members`)).set(bearer(org.key)).send({ accountIds: [accountId] }).expect(200);
    expect(moved.body).toMatchObject({ moved: 1, policy: { id: nb.id, memberCount: 1 } });
    await app.http.patch(u(org, `policies/${nb.id}`)).set(bearer(org.key)).send({ nonBillable: false }).expect(200);
    const d = await deltas(accountId);
    expect(d.slice(3).map((x) => [x.kind, x.cause])).toEqual([['removed', 'policy-membership-changed'], ['added', 'policy-made-billable']]);
  });

  it('an Enterprise site covers its users: removed; not Enterprise again: added', async () => {
    await app.http.patch(u(org, `sites/${siteId}`)).set(bearer(org.key)).send({ enterprise: true }).expect(200);
    expect((await app.http.get(u(org, `accounts/${accountId}`)).set(bearer(org.key))).body.billableReasons).toEqual(['enterprise-covered']);
    await app.http.patch(u(org, `sites/${siteId}`)).set(bearer(org.key)).send({ enterprise: false }).expect(200);
    const d = await deltas(accountId);
    expect(d.slice(5).map((x) => [x.kind, x.cause])).toEqual([['removed', 'site-changed'], ['added', 'site-changed']]);
  });

  it('revoking the last counting access → removed; deltas alternate per account', async () => {
    await app.http.delete(u(org, `sites/${siteId}/access/${accountId}/jira`)).set(bearer(org.key)).expect(204);
    await app.http.delete(u(org, `sites/${siteId}/access/${accountId}/jsm`)).set(bearer(org.key)).expect(204);
    await app.http.delete(u(org, `sites/${siteId}/access/${accountId}/jsm`)).set(bearer(org.key)).expect(404);
    const d = await deltas(accountId);
    expect(d.at(-1)).toEqual({ kind: 'removed', cause: 'access-revoked', reasons: ['no-product-access'] });
    d.forEach((x, i) => expect(x.kind, `delta ${i} alternates`).toBe(i % 2 === 0 ? 'added' : 'removed'));
    const stored = await app.svc.db.prisma.account.findUnique({ where: { id: accountId } });
    expect(stored?.billable).toBe(false);
  });

  it('access to a product the site does not host → 409; JSM role rules → 400', async () => {
    const site2 = (await app.http.post(u(org, 'sites')).set(bearer(org.key)).send({ name: 'wiki', products: ['confluence'] }).expect(201)).body;
    const res = await app.http.post(u(org, `sites/${site2.id}/access`)).set(bearer(org.key)).send({ accountId, product: 'jira' });
    expect(res.status).toBe(409);
    expect(res.body.type).toBe('https://orgsync.dev/problems/product-not-on-site');
    const jsmUser = await app.http.post(u(org, `sites/${siteId}/access`)).set(bearer(org.key)).send({ accountId, product: 'jsm', role: 'user' });
    expect(jsmUser.status).toBe(400);
    const jiraAgent = await app.http.post(u(org, `sites/${siteId}/access`)).set(bearer(org.key)).send({ accountId, product: 'jira', role: 'agent' });
    expect(jiraAgent.status).toBe(400);
  });

  it('unsubscribing takes every billable account off at once; resubscribing puts them back', async () => {
    await app.http.post(u(org, `sites/${siteId}/access`)).set(bearer(org.key)).send({ accountId, product: 'confluence' }).expect(201);
    await app.http.post(u(org, 'subscription/cancel')).set(bearer(org.key)).send({}).expect(200);
    expect((await deltas(accountId)).at(-1)).toMatchObject({ kind: 'removed', cause: 'subscription-unsubscribed', reasons: ['subscription-unsubscribed'] });
    const resub = await app.http.post(u(org, 'subscription/resubscribe')).set(bearer(org.key)).send({});
    expect(resub.status, 'needs a payment method').toBe(409);
    expect(resub.body.type).toBe('https://orgsync.dev/problems/payment-method-required');
    await app.http.post(u(org, 'subscription/payment-method')).set(bearer(org.key)).send({ cycle: 'annual' }).expect(200);
    const ok = await app.http.post(u(org, 'subscription/resubscribe')).set(bearer(org.key)).send({}).expect(200);
    expect(ok.body).toMatchObject({ state: 'active', cycle: 'annual', paymentMethod: true, refundEligible: true, retentionEndsAt: null });
    expect((await deltas(accountId)).at(-1)).toMatchObject({ kind: 'added', cause: 'subscription-active' });
  });
});

describe('subscription lifecycle through the API', () => {
  it('a trial needs a verified domain, starts once, and shows its dates', async () => {
    const org = await createOrg(app, 'Trial Co');
    const none = await app.http.get(u(org, 'subscription')).set(bearer(org.key)).expect(200);
    expect(none.body).toMatchObject({ state: 'none', plan: null, paymentMethod: false, trialEndsAt: null, refundEligible: false });
    const refused = await app.http.post(u(org, 'subscription/trial')).set(bearer(org.key)).send({});
    expect(refused.status).toBe(409);
    expect(refused.body.type).toBe('https://orgsync.dev/rules/trial-needs-verified-domain');
    await verifyDomain(app, org, 'trial.example');
    const t = await app.http.post(u(org, 'subscription/trial')).set(bearer(org.key)).send({ plan: 'premium' }).expect(200);
    expect(t.body).toMatchObject({ state: 'trial', plan: 'premium' });
    const days = (Date.parse(t.body.trialEndsAt) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.99);
    expect(days).toBeLessThanOrEqual(30);
    const again = await app.http.post(u(org, 'subscription/trial')).set(bearer(org.key)).send({});
    expect(again.status).toBe(409);
    const cancel = await app.http.post(u(org, 'subscription/cancel')).set(bearer(org.key)).send({}).expect(200);
    expect(cancel.body.state).toBe('unsubscribed');
    expect(Date.parse(cancel.body.retentionEndsAt) - Date.parse(cancel.body.unsubscribedAt)).toBe(14 * 86_400_000);
    expect((await app.http.post(u(org, 'subscription/cancel')).set(bearer(org.key)).send({})).status).toBe(409);
    const audit = await app.http.get(u(org, 'audit?action=subscription.cancel')).set(bearer(org.key)).expect(200);
    expect(audit.body.items[0]).toMatchObject({ before: { state: 'trial' }, after: { state: 'unsubscribed' } });
  });
});
