import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, createSamlConnection, startTestApp, verifyDomain, type TestApp } from '../support/app.js';
import { orgWithDirectory, scim, user, SCIM_GROUP } from '../support/scim.js';
import { drainPending } from '../../src/billing/delivery-worker.js';
import { reconcileOrg } from '../../src/billing/reconcile.js';

let app: TestApp;
type Org = { id: string; key: string };
const u = (o: Org, p: string) => `/api/v1/orgs/${o.id}/${p}`;
const DAY = 86_400_000;
const ago = (ms: number) => new Date(Date.now() - ms);

beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => app?.close());

async function trialOrg(name: string, n: number): Promise<{ org: Org; accounts: string[] }> {
  const org = await createOrg(app, name);
  const domain = `${name.toLowerCase().replace(/\W+/g, '-')}.example`;
  await verifyDomain(app, org, domain);
  await app.http.post(u(org, 'subscription/trial')).set(bearer(org.key)).send({}).expect(200);
  const site = (await app.http.post(u(org, 'sites')).set(bearer(org.key)).send({ name: 'main', products: ['jira'] }).expect(201)).body;
  const accounts: string[] = [];
  for (let i = 0; i < n; i++) {
    const a = (await app.http.post(u(org, 'accounts')).set(bearer(org.key)).send({ email: `u${i}@${domain}` }).expect(201)).body;
    await app.http.post(u(org, `sites/${site.id}/access`)).set(bearer(org.key)).send({ accountId: a.id, product: 'jira' }).expect(201);
    accounts.push(a.id);
  }
  return { org, accounts };
}

/** Moves an org's trial into the past: it started 31 days ago and ended a minute ago. */
async function endTrial(orgId: string, paymentMethod: boolean) {
  const end = ago(60_000);
  await app.svc.db.prisma.subscription.update({
    where: { orgId },
    data: { trialStartedAt: new Date(end.getTime() - 30 * DAY), trialEndsAt: end, paymentMethodAddedAt: paymentMethod ? new Date(end.getTime() - DAY) : null },
  });
}

const runJob = (name: 'trial-ends' | 'retention-purge', now?: Date) => app.svc.scheduler.runJobOnce(name, now ? { now } : {});
const flags = async (ids: string[]) => (await app.svc.db.prisma.account.findMany({ where: { id: { in: ids } }, select: { billable: true } })).map((a) => a.billable);

describe('trial end (job trial-ends)', () => {
  it('without a payment method: the org is unsubscribed, every account leaves the bill with a delta, and it is audited once', async () => {
    const { org, accounts } = await trialOrg('Lapsed Co', 3);
    expect(await flags(accounts)).toEqual([true, true, true]);
    await endTrial(org.id, false);
    expect((await app.http.get(u(org, 'subscription')).set(bearer(org.key)).expect(200)).body.state).toBe('unsubscribed');

    const out = await runJob('trial-ends');
    expect(out.status).toBe('done');
    expect(await flags(accounts)).toEqual([false, false, false]);
    const deltas = await app.svc.db.prisma.billableDelta.findMany({ where: { orgId: org.id, cause: 'trial-ended' } });
    expect(deltas.map((d) => [d.kind, d.reasons[0]])).toEqual(accounts.map(() => ['removed', 'subscription-unsubscribed']));
    const audit = (await app.http.get(u(org, 'audit?action=subscription.trial.ended')).set(bearer(org.key)).expect(200)).body.items;
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: 'system:trial-ends', after: { state: 'unsubscribed', billableRemoved: 3, billableAdded: 0 } });

    // Applied once: the next tick finds nothing due for this org.
    await runJob('trial-ends');
    expect(await app.svc.db.prisma.billableDelta.count({ where: { orgId: org.id, cause: 'trial-ended' } })).toBe(3);
    expect(await app.svc.db.prisma.auditEvent.count({ where: { orgId: org.id, action: 'subscription.trial.ended' } })).toBe(1);

    await drainPending(app.svc.db);
    expect((await reconcileOrg(app.svc.db, org.id, { trigger: 'test' })).corrections).toBe(0);
  });

  it('with a payment method: a monthly subscription starts at the trial end; nobody leaves the bill; refundable in its first month', async () => {
    const { org, accounts } = await trialOrg('Paying Co', 2);
    await endTrial(org.id, true);
    const sub = (await app.http.get(u(org, 'subscription')).set(bearer(org.key)).expect(200)).body;
    expect(sub).toMatchObject({ state: 'active', cycle: 'monthly', refundEligible: true });
    await runJob('trial-ends');
    expect(await flags(accounts)).toEqual([true, true]);
    expect(await app.svc.db.prisma.billableDelta.count({ where: { orgId: org.id, cause: 'trial-ended' } })).toBe(0);
    const audit = (await app.http.get(u(org, 'audit?action=subscription.trial.ended')).set(bearer(org.key)).expect(200)).body.items;
    expect(audit[0]).toMatchObject({ after: { state: 'active', billableAdded: 0, billableRemoved: 0 } });
  });

  it('a trial that has not ended is not touched', async () => {
    const { org, accounts } = await trialOrg('Still Trialling Co', 1);
    await runJob('trial-ends');
    expect(await flags(accounts)).toEqual([true]);
    expect(await app.svc.db.prisma.auditEvent.count({ where: { orgId: org.id, action: 'subscription.trial.ended' } })).toBe(0);
    // …until its end: the job's `now` is the tick's time.
    const sub = await app.svc.db.prisma.subscription.findUniqueOrThrow({ where: { orgId: org.id } });
    await runJob('trial-ends', new Date(sub.trialEndsAt!.getTime() + 1000));
    expect(await flags(accounts)).toEqual([false]);
  });
});

describe('retention (job retention-purge)', () => {
  /** An org with a SCIM directory whose group mapping grants Jira to one pushed user, plus a direct grant. */
  async function orgWithScim(name: string, domain: string) {
    const dir = await orgWithDirectory(app, { name, domain, trial: true });
    const org = { id: dir.orgId, key: dir.orgKey };
    const s = scim(app, dir);
    const site = (await app.http.post(u(org, 'sites')).set(bearer(org.key)).send({ name: 'main', products: ['jira', 'confluence'] }).expect(201)).body;
    await app.http.post(u(org, `directories/${dir.id}/group-mappings`)).set(bearer(org.key)).send({ group: 'Jira Users', siteId: site.id, product: 'jira' }).expect(201);
    const pushed = (await s.post('/Users', user(`synced@${domain}`)).expect(201)).body;
    await s.post('/Groups', { schemas: [SCIM_GROUP], displayName: 'Jira Users', members: [{ value: pushed.id }] }).expect(201);
    const acc = (await app.http.get(u(org, `accounts?email=synced@${domain}`)).set(bearer(org.key)).expect(200)).body.items[0];
    await app.http.post(u(org, `sites/${site.id}/access`)).set(bearer(org.key)).send({ accountId: acc.id, product: 'confluence' }).expect(201);
    return { dir, org, s, accountId: acc.id as string };
  }

  it('keeps SAML/SCIM configuration (and SCIM working) for 14 days after unsubscribing, then removes it for good; accounts stay', async () => {
    const { dir, org, s, accountId } = await orgWithScim('Purged Co', 'purged.example');
    await app.http.post(u(org, 'subscription/cancel')).set(bearer(org.key)).send({}).expect(200);
    const sub = (await app.http.get(u(org, 'subscription')).set(bearer(org.key)).expect(200)).body;
    expect(sub.state).toBe('unsubscribed');
    expect(new Date(sub.retentionEndsAt).getTime() - new Date(sub.unsubscribedAt).getTime()).toBe(14 * DAY);
    // During retention SCIM keeps provisioning (docs/decisions.md, "Billing and lifecycle").
    await s.post('/Users', user('late@purged.example')).expect(201);

    await runJob('retention-purge', new Date(Date.now() + 13 * DAY));
    expect(await app.svc.db.prisma.directory.count({ where: { id: dir.id } })).toBe(1);

    await runJob('retention-purge', new Date(Date.now() + 14 * DAY + 60_000));
    const db = app.svc.db.prisma;
    expect(await db.directory.count({ where: { orgId: org.id } })).toBe(0);
    expect(await db.scimUser.count({ where: { orgId: org.id } })).toBe(0);
    expect(await db.scimGroup.count({ where: { orgId: org.id } })).toBe(0);
    expect(await db.groupMapping.count({ where: { orgId: org.id } })).toBe(0);
    // The org, its domain and its accounts are untouched; access granted by the purged mappings is gone, direct access stays.
    expect(await db.account.count({ where: { orgId: org.id } })).toBe(2);
    expect(await db.domain.count({ where: { orgId: org.id, verified: true } })).toBe(1);
    expect((await db.productAccess.findMany({ where: { accountId } })).map((a) => [a.product, a.grantedBy])).toEqual([['confluence', 'direct']]);
    const audit = (await app.http.get(u(org, 'audit?action=subscription.retention.purged')).set(bearer(org.key)).expect(200)).body.items;
    expect(audit[0]).toMatchObject({ actor: 'system:retention-purge', after: { accessRevoked: 1 } });
    // The directory's token is worthless now.
    expect((await s.get('/Users')).status).toBeGreaterThanOrEqual(401);
    await drainPending(app.svc.db);
    expect((await reconcileOrg(app.svc.db, org.id, { trigger: 'test' })).corrections).toBe(0);
  });

  it('resubscribing within 14 days keeps everything', async () => {
    const { dir, org } = await orgWithScim('Returning Co', 'returning.example');
    await app.http.post(u(org, 'subscription/payment-method')).set(bearer(org.key)).send({}).expect(200);
    await app.http.post(u(org, 'subscription/cancel')).set(bearer(org.key)).send({}).expect(200);
    await app.svc.db.prisma.subscription.update({ where: { orgId: org.id }, data: { cancelledAt: ago(13 * DAY) } });
    await app.http.post(u(org, 'subscription/resubscribe')).set(bearer(org.key)).send({}).expect(200);
    await runJob('retention-purge', new Date(Date.now() + 30 * DAY));
    expect(await app.svc.db.prisma.directory.count({ where: { id: dir.id } })).toBe(1);
    expect(await app.svc.db.prisma.scimUser.count({ where: { directoryId: dir.id } })).toBe(1);
  });

  it('retention purge of an org with SSO but no SCIM directory: the job removes its SAML connection too (it used to select only orgs with a directory)', async () => {
    const { org } = await trialOrg('Sso Only Co', 1);
    const conn = await createSamlConnection(app, org, { entityId: 'https://idp.sso-only.example/metadata' });
    const policy = (await app.http.get(u(org, 'policies')).set(bearer(org.key)).expect(200)).body.items[0];
    await app.http.patch(u(org, `policies/${policy.id}`)).set(bearer(org.key)).send({ ssoConnectionId: conn.id }).expect(200);
    expect(await app.svc.db.prisma.directory.count({ where: { orgId: org.id } })).toBe(0);
    await app.http.post(u(org, 'subscription/cancel')).set(bearer(org.key)).send({}).expect(200);

    const early = await runJob('retention-purge', new Date(Date.now() + 13 * DAY));
    expect(early.status).toBe('done');
    expect(await app.svc.db.prisma.ssoConnection.count({ where: { orgId: org.id } })).toBe(1);

    const out = await runJob('retention-purge', new Date(Date.now() + 14 * DAY + 60_000));
    expect(out).toMatchObject({ status: 'done', result: { orgsPurged: expect.any(Number) } });
    expect(out.status === 'done' && (out.result.orgsPurged as number)).toBeGreaterThanOrEqual(1);
    expect(await app.svc.db.prisma.ssoConnection.count({ where: { orgId: org.id } })).toBe(0);
    const p = await app.svc.db.prisma.policy.findUniqueOrThrow({ where: { id: policy.id } });
    expect(p.ssoConnectionId).toBeNull();
    const audit = (await app.http.get(u(org, 'audit?action=subscription.retention.purged')).set(bearer(org.key)).expect(200)).body.items;
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: 'system:retention-purge', before: { directories: [], ssoConnections: [{ id: conn.id }] }, after: { ssoConnections: [] } });
    // The org, its domain and its account stay.
    expect(await app.svc.db.prisma.account.count({ where: { orgId: org.id } })).toBe(1);
  });

  it('an org that never subscribed keeps its directories', async () => {
    const dir = await orgWithDirectory(app, { name: 'Never Co', domain: 'never.example' });
    await runJob('retention-purge', new Date(Date.now() + 365 * DAY));
    expect(await app.svc.db.prisma.directory.count({ where: { id: dir.id } })).toBe(1);
  });
});

describe('unsubscribing stops enforcement at once', () => {
  it('cancel recomputes billability in the same request; nothing waits for a job', async () => {
    const { org, accounts } = await trialOrg('Cancel Co', 2);
    await app.http.post(u(org, 'subscription/cancel')).set(bearer(org.key)).send({}).expect(200);
    expect(await flags(accounts)).toEqual([false, false]);
    const deltas = await app.svc.db.prisma.billableDelta.findMany({ where: { orgId: org.id, kind: 'removed' } });
    expect(deltas.map((d) => d.cause)).toEqual(['subscription-unsubscribed', 'subscription-unsubscribed']);
  });
});
