// Issue 11 §4: PATCH accounts/{id} (an admin edits a manual account's names and email; a synced
// account's profile is the IdP's) and GET accounts filters with a total, through HTTP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, startTestApp, verifyDomain, type TestApp } from '../support/app.js';
import { orgWithDirectory, scim, user } from '../support/scim.js';

let app: TestApp;
type Org = { id: string; key: string; defaultPolicyId: string };
const u = (o: Org, p: string) => `/api/v1/orgs/${o.id}/${p}`;
const db = () => app.svc.db.prisma;
const row = async (id: string) => (await db().account.findUnique({ where: { id } }))!;

beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => app?.close());

describe('PATCH accounts/{id}', () => {
  it('edits the names and email of a manual account: stored, audited with the changed fields', async () => {
    const org = await createOrg(app, 'Edit Co');
    await verifyDomain(app, org, 'edit.example');
    const acc = (await app.http.post(u(org, 'accounts')).set(bearer(org.key)).send({ email: 'jo@edit.example', displayName: 'Jo', givenName: 'Jo' }).expect(201)).body;
    const res = await app.http.patch(u(org, `accounts/${acc.id}`)).set(bearer(org.key))
      .send({ email: 'Joanna.Roe@edit.example', displayName: 'Joanna Roe', givenName: 'Joanna', familyName: 'Roe' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: acc.id, email: 'Joanna.Roe@edit.example', displayName: 'Joanna Roe', givenName: 'Joanna', familyName: 'Roe', managed: true, policyId: org.defaultPolicyId });
    expect(await row(acc.id)).toMatchObject({ email: 'Joanna.Roe@edit.example', emailNormalized: 'joanna.roe@edit.example', displayName: 'Joanna Roe', givenName: 'Joanna', familyName: 'Roe', source: 'manual' });
    const audit = await db().auditEvent.findMany({ where: { orgId: org.id, targetId: acc.id, action: 'account.update' }, select: { before: true, after: true, actor: true } });
    expect(audit).toEqual([{
      before: { email: 'jo@edit.example', displayName: 'Jo', givenName: 'Jo', familyName: null },
      after: { email: 'Joanna.Roe@edit.example', displayName: 'Joanna Roe', givenName: 'Joanna', familyName: 'Roe' },
      actor: expect.any(String),
    }]);
    // null clears a name; the same values again change nothing and write no audit row.
    await app.http.patch(u(org, `accounts/${acc.id}`)).set(bearer(org.key)).send({ familyName: null }).expect(200);
    expect((await row(acc.id)).familyName).toBeNull();
    await app.http.patch(u(org, `accounts/${acc.id}`)).set(bearer(org.key)).send({ displayName: 'Joanna Roe' }).expect(200);
    expect(await db().auditEvent.count({ where: { orgId: org.id, targetId: acc.id, action: 'account.update' } })).toBe(2);
  });

  it('an email on another domain: managed follows the domain (policy and billability with it)', async () => {
    const org = await createOrg(app, 'Edit Domain Co');
    await verifyDomain(app, org, 'edit-domain.example');
    await app.http.post(u(org, 'subscription/trial')).set(bearer(org.key)).send({}).expect(200);
    const site = (await app.http.post(u(org, 'sites')).set(bearer(org.key)).send({ name: 'prod', products: ['jira'] }).expect(201)).body.id;
    const acc = (await app.http.post(u(org, 'accounts')).set(bearer(org.key)).send({ email: 'max@edit-domain.example' }).expect(201)).body;
    await app.http.post(u(org, `sites/${site}/access`)).set(bearer(org.key)).send({ accountId: acc.id, product: 'jira' }).expect(201);
    const out = await app.http.patch(u(org, `accounts/${acc.id}`)).set(bearer(org.key)).send({ email: 'max@elsewhere.example' }).expect(200);
    expect(out.body).toMatchObject({ managed: false, policyId: null, billable: false });
    expect(await row(acc.id)).toMatchObject({ managed: false, policyId: null, billable: false, emailDomain: 'elsewhere.example' });
    const back = await app.http.patch(u(org, `accounts/${acc.id}`)).set(bearer(org.key)).send({ email: 'max@edit-domain.example' }).expect(200);
    expect(back.body).toMatchObject({ managed: true, policyId: org.defaultPolicyId, billable: true });
    const deltas = await db().billableDelta.findMany({ where: { accountId: acc.id }, orderBy: { seq: 'asc' }, select: { kind: true, cause: true } });
    expect(deltas).toEqual([
      { kind: 'added', cause: 'access-granted' }, { kind: 'removed', cause: 'account-email-changed' }, { kind: 'added', cause: 'account-email-changed' },
    ]);
  });

  it('an email another account holds is 409 account-email-taken; a bad email or field is 400; nothing changes', async () => {
    const org = await createOrg(app, 'Edit Taken Co');
    const a = (await app.http.post(u(org, 'accounts')).set(bearer(org.key)).send({ email: 'a@taken.example' }).expect(201)).body;
    await app.http.post(u(org, 'accounts')).set(bearer(org.key)).send({ email: 'b@taken.example' }).expect(201);
    const taken = await app.http.patch(u(org, `accounts/${a.id}`)).set(bearer(org.key)).send({ email: 'B@Taken.example', displayName: 'A' });
    expect(taken.status).toBe(409);
    expect(taken.body.type).toBe('https://orgsync.dev/problems/account-email-taken');
    const bad = await app.http.patch(u(org, `accounts/${a.id}`)).set(bearer(org.key)).send({ email: 'not-an-email' });
    expect(bad.status).toBe(400);
    expect(bad.body.errors).toEqual([expect.objectContaining({ path: 'email' })]);
    const unknown = await app.http.patch(u(org, `accounts/${a.id}`)).set(bearer(org.key)).send({ status: 'disabled' });
    expect(unknown.status).toBe(400);
    expect(await row(a.id)).toMatchObject({ email: 'a@taken.example', displayName: null });
    const missing = await app.http.patch(u(org, 'accounts/00000000-0000-4000-8000-000000000000')).set(bearer(org.key)).send({ displayName: 'X' });
    expect(missing.status).toBe(404);
  });

  it('a synced account is refused 409 synced-profile-owned-by-idp, and nothing changes', async () => {
    const dir = await orgWithDirectory(app, { name: 'Edit Synced Co', domain: 'edit-synced.example' });
    await scim(app, dir).post('/Users', user('ida@edit-synced.example')).expect(201);
    const acc = (await db().account.findFirst({ where: { orgId: dir.orgId } }))!;
    const res = await app.http.patch(`/api/v1/orgs/${dir.orgId}/accounts/${acc.id}`).set(bearer(dir.orgKey)).send({ displayName: 'Someone Else', email: 'other@edit-synced.example' });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ type: 'https://orgsync.dev/rules/synced-profile-owned-by-idp', rule: 'synced-profile-owned-by-idp' });
    expect(await row(acc.id)).toMatchObject({ email: 'ida@edit-synced.example', displayName: acc.displayName, updatedAt: acc.updatedAt });
    expect(await db().auditEvent.count({ where: { orgId: dir.orgId, targetId: acc.id, action: 'account.update' } })).toBe(0);
  });
});

describe('GET accounts filters', () => {
  let org: Org;
  const ids: Record<string, string> = {};
  let policy: string;
  beforeAll(async () => {
    const dir = await orgWithDirectory(app, { name: 'Filter Co', domain: 'filter.example', trial: true });
    org = { id: dir.orgId, key: dir.orgKey, defaultPolicyId: dir.defaultPolicyId };
    const create = async (email: string) => (await app.http.post(u(org, 'accounts')).set(bearer(org.key)).send({ email }).expect(201)).body.id as string;
    ids.m1 = await create('m1@filter.example');
    ids.m2 = await create('m2@filter.example');
    ids.ext = await create('guest@outside.example');
    await scim(app, dir).post('/Users', user('synced@filter.example')).expect(201);
    ids.synced = (await db().account.findFirst({ where: { orgId: org.id, emailNormalized: 'synced@filter.example' } }))!.id;
    await app.http.post(u(org, `accounts/${ids.m2}/disable`)).set(bearer(org.key)).send({}).expect(200);
    const site = (await app.http.post(u(org, 'sites')).set(bearer(org.key)).send({ name: 'prod', products: ['jira'] }).expect(201)).body.id;
    await app.http.post(u(org, `sites/${site}/access`)).set(bearer(org.key)).send({ accountId: ids.m1, product: 'jira' }).expect(201);
    policy = (await app.http.post(u(org, 'policies')).set(bearer(org.key)).send({ name: 'Contractors' }).expect(201)).body.id;
    await app.http.post(u(org, `policies/${policy}/members`)).set(bearer(org.key)).send({ accountIds: [ids.m2] }).expect(200);
  });
  const list = async (q: string) => (await app.http.get(u(org, `accounts?${q}`)).set(bearer(org.key)).expect(200)).body as { items: { id: string }[]; total: number; next: string | null };

  it.each([
    ['', ['m1', 'm2', 'ext', 'synced']],
    ['managed=true', ['m1', 'm2', 'synced']],
    ['managed=false', ['ext']],
    ['source=scim', ['synced']],
    ['source=manual', ['m1', 'm2', 'ext']],
    ['status=disabled', ['m2']],
    ['billable=true', ['m1']],
    ['billable=false&managed=true', ['m2', 'synced']],
    ['policyId=POLICY', ['m2']],
    ['email=M1@Filter.example', ['m1']],
    ['source=jit', []],
  ])('%s', async (q, expected) => {
    const res = await list(q.replace('POLICY', policy));
    expect(res.items.map((a) => a.id)).toEqual(expected.map((k) => ids[k]));
    expect(res.total).toBe(expected.length);
  });

  it('the total counts every match, not the page', async () => {
    const first = await list('managed=true&limit=2');
    expect(first.items).toHaveLength(2);
    expect(first.total).toBe(3);
    const second = await list(`managed=true&limit=2&cursor=${first.next}`);
    expect(second.items.map((a) => a.id)).toEqual([ids.synced]);
    expect(second.total).toBe(3);
  });

  it.each([
    ['managed=yes', 'query.managed'], ['billable=1', 'query.billable'], ['source=ldap', 'query.source'], ['status=gone', 'query.status'],
    ['policyId=nope', 'query.policyId'], ['email=nope', 'email'],
  ])('%s is 400 naming the parameter (%s)', async (q, param) => {
    const res = await app.http.get(u(org, `accounts?${q}`)).set(bearer(org.key));
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(param);
  });
});
