import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, createSamlConnection, startTestApp, verifyDomain, type TestApp } from '../support/app.js';
import { orgSnapshot } from '../support/snapshot.js';

let app: TestApp;
type Org = { id: string; key: string; defaultPolicyId: string };
let org: Org;
let nonBillableId: string;
let ssoPolicyId: string;
let syncedId: string;
let manualId: string;
let externalId: string;
let conn: string;

const url = (o: Org, p: string) => `/api/v1/orgs/${o.id}/${p}`;

beforeAll(async () => {
  app = await startTestApp();
  org = await createOrg(app, 'Rules Inc');
  await verifyDomain(app, org, 'rules.example');
  await app.http.post(url(org, 'subscription/trial')).set(bearer(org.key)).send({}).expect(200);
  conn = (await createSamlConnection(app, org)).id;
  const nb = await app.http.post(url(org, 'policies')).set(bearer(org.key)).send({ name: 'Contractors', nonBillable: true }).expect(201);
  nonBillableId = nb.body.id;
  const sso = await app.http.post(url(org, 'policies')).set(bearer(org.key)).send({ name: 'SSO pilot', enforceSso: true, ssoConnectionId: conn }).expect(201);
  ssoPolicyId = sso.body.id;
  manualId = (await app.http.post(url(org, 'accounts')).set(bearer(org.key)).send({ email: 'mia@rules.example' }).expect(201)).body.id;
  externalId = (await app.http.post(url(org, 'accounts')).set(bearer(org.key)).send({ email: 'ext@elsewhere.example' }).expect(201)).body.id;
  // A synced account as a directory push leaves it (the SCIM surface arrives in a later issue).
  const synced = await app.svc.db.prisma.account.create({
    data: {
      orgId: org.id, email: 'sam@rules.example', emailNormalized: 'sam@rules.example', emailDomain: 'rules.example',
      managed: true, policyId: org.defaultPolicyId, source: 'scim', externalId: 'okta-00u1',
    },
  });
  syncedId = synced.id;
});
afterAll(async () => app?.close());

type Case = [rule: string, method: 'post' | 'patch' | 'delete', path: () => string, body: () => object];
const cases: Case[] = [
  ['one-non-billable-policy', 'post', () => url(org, 'policies'), () => ({ name: 'Second free', nonBillable: true })],
  ['one-non-billable-policy', 'patch', () => url(org, `policies/${ssoPolicyId}`), () => ({ nonBillable: true, enforceSso: false })],
  ['default-policy-billable', 'patch', () => url(org, `policies/${org.defaultPolicyId}`), () => ({ nonBillable: true })],
  ['default-policy-billable', 'patch', () => url(org, `policies/${nonBillableId}`), () => ({ isDefault: true })],
  ['one-default-policy', 'patch', () => url(org, `policies/${org.defaultPolicyId}`), () => ({ isDefault: false })],
  ['non-billable-no-sso', 'patch', () => url(org, `policies/${nonBillableId}`), () => ({ enforceSso: true, ssoConnectionId: conn })],
  ['non-billable-no-2fa', 'patch', () => url(org, `policies/${nonBillableId}`), () => ({ requireTwoFactor: true })],
  ['non-billable-no-token-block', 'patch', () => url(org, `policies/${nonBillableId}`), () => ({ blockApiTokens: true })],
  ['non-billable-no-synced-accounts', 'post', () => url(org, `policies/${nonBillableId}/members`), () => ({ accountIds: [manualId, syncedId] })],
  ['policy-members-managed', 'post', () => url(org, `policies/${ssoPolicyId}/members`), () => ({ accountIds: [externalId] })],
  ['sso-needs-connection', 'patch', () => url(org, `policies/${ssoPolicyId}`), () => ({ ssoConnectionId: null })],
  ['default-policy-not-deletable', 'delete', () => url(org, `policies/${org.defaultPolicyId}`), () => ({})],
];

describe('each rule violation → 409 naming the rule, and nothing changes', () => {
  it.each(cases)('%s (%s)', async (rule, method, path, body) => {
    const before = await orgSnapshot(app.svc.db, org.id);
    const req = app.http[method](path()).set(bearer(org.key));
    const res = method === 'delete' ? await req : await req.send(body());
    expect(res.status, JSON.stringify(res.body)).toBe(409);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.type).toBe(`https://orgsync.dev/rules/${rule}`);
    expect(res.body.rule).toBe(rule);
    expect(res.body.detail.length, 'the detail explains').toBeGreaterThan(20);
    expect(await orgSnapshot(app.svc.db, org.id)).toEqual(before);
  });

  it('a policy holding a synced account cannot be turned non-billable', async () => {
    const p = await app.http.post(url(org, 'policies')).set(bearer(org.key)).send({ name: 'Holds synced' }).expect(201);
    await app.http.post(url(org, `policies/${p.body.id}/members`)).set(bearer(org.key)).send({ accountIds: [syncedId] }).expect(200);
    // Free the non-billable slot first so only the synced-account rule is at stake.
    await app.http.patch(url(org, `policies/${nonBillableId}`)).set(bearer(org.key)).send({ nonBillable: false }).expect(200);
    const before = await orgSnapshot(app.svc.db, org.id);
    const res = await app.http.patch(url(org, `policies/${p.body.id}`)).set(bearer(org.key)).send({ nonBillable: true });
    expect(res.status).toBe(409);
    expect(res.body.rule).toBe('non-billable-no-synced-accounts');
    expect(res.body.detail).toContain('1 account(s)');
    expect(await orgSnapshot(app.svc.db, org.id)).toEqual(before);
    await app.http.patch(url(org, `policies/${nonBillableId}`)).set(bearer(org.key)).send({ nonBillable: true }).expect(200);
  });

  it('non-billable needs a subscription or trial: an org with none is refused', async () => {
    const fresh = await createOrg(app, 'No subscription');
    const before = await orgSnapshot(app.svc.db, fresh.id);
    const res = await app.http.post(url(fresh, 'policies')).set(bearer(fresh.key)).send({ name: 'Free', nonBillable: true });
    expect(res.status).toBe(409);
    expect(res.body.type).toBe('https://orgsync.dev/rules/non-billable-needs-subscription');
    expect(res.body.detail).toContain('none');
    expect(await orgSnapshot(app.svc.db, fresh.id)).toEqual(before);
  });

  it('the database itself refuses a second non-billable policy, even past the service', async () => {
    await expect(
      app.svc.db.prisma.policy.create({ data: { orgId: org.id, name: 'Sneaky', nonBillable: true } }),
    ).rejects.toThrow(/Policy_one_non_billable_per_org|Unique constraint/);
    await expect(
      app.svc.db.prisma.policy.update({ where: { id: org.defaultPolicyId }, data: { nonBillable: true } }),
    ).rejects.toThrow();
  });
});

describe('allowed policy changes', () => {
  it('making another policy the default swaps the flag in one step, audited', async () => {
    const res = await app.http.patch(url(org, `policies/${ssoPolicyId}`)).set(bearer(org.key)).send({ isDefault: true }).expect(200);
    expect(res.body.isDefault).toBe(true);
    const defaults = await app.svc.db.prisma.policy.findMany({ where: { orgId: org.id, isDefault: true } });
    expect(defaults.map((p) => p.id)).toEqual([ssoPolicyId]);
    const audit = await app.http.get(url(org, 'audit?action=policy.update&limit=1')).set(bearer(org.key)).expect(200);
    expect(audit.body.items[0]).toMatchObject({ targetId: ssoPolicyId, before: { isDefault: false }, after: { isDefault: true } });
    await app.http.patch(url(org, `policies/${org.defaultPolicyId}`)).set(bearer(org.key)).send({ isDefault: true }).expect(200);
  });

  it('deleting a policy moves its members to the default policy', async () => {
    const p = await app.http.post(url(org, 'policies')).set(bearer(org.key)).send({ name: 'Temp' }).expect(201);
    await app.http.post(url(org, `policies/${p.body.id}/members`)).set(bearer(org.key)).send({ accountIds: [manualId] }).expect(200);
    const del = await app.http.delete(url(org, `policies/${p.body.id}`)).set(bearer(org.key)).expect(200);
    expect(del.body).toEqual({ movedTo: org.defaultPolicyId, moved: 1 });
    const acc = await app.http.get(url(org, `accounts/${manualId}`)).set(bearer(org.key)).expect(200);
    expect(acc.body.policyId).toBe(org.defaultPolicyId);
  });

  it('memberCount is counted by the database', async () => {
    const res = await app.http.get(url(org, `policies/${org.defaultPolicyId}`)).set(bearer(org.key)).expect(200);
    const count = await app.svc.db.prisma.account.count({ where: { policyId: org.defaultPolicyId } });
    expect(res.body.memberCount).toBe(count);
    expect(count).toBeGreaterThan(0);
  });
});
