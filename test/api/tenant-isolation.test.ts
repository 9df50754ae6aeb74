import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminRoutes } from '../../src/admin/index.js';
import { createServices } from '../../src/composition.js';
import { bearer, createOrg, OPERATOR_TOKEN, startTestApp, verifyDomain, type TestApp } from '../support/app.js';

let app: TestApp;
let a: { id: string; key: string; defaultPolicyId: string };
let b: { id: string; key: string; defaultPolicyId: string };
let aAccountId: string;
let aSiteId: string;

// The route table itself drives this test, so a route added later is covered without edits.
const specs = adminRoutes(createServices({ db: null as never, operatorToken: undefined })).filter((s) => s.auth === 'org');

function pathFor(template: string, orgId: string): string {
  return template
    .replace('{orgId}', orgId)
    .replace('{domain}', 'a.example')
    .replace('{product}', 'jira')
    .replace('{accountId}', aAccountId)
    .replace('{roleId}', '00000000-0000-4000-8000-000000000000')
    .replace('{mappingId}', '00000000-0000-4000-8000-000000000001')
    .replace('{id}', aAccountId);
}

async function auditCount(orgId: string): Promise<number> {
  return app.svc.db.prisma.auditEvent.count({ where: { orgId } });
}

beforeAll(async () => {
  app = await startTestApp();
  a = await createOrg(app, 'Org A');
  b = await createOrg(app, 'Org B');
  await verifyDomain(app, a, 'a.example');
  const acc = await app.http.post(`/api/v1/orgs/${a.id}/accounts`).set(bearer(a.key)).send({ email: 'ann@a.example' }).expect(201);
  aAccountId = acc.body.id;
  const site = await app.http.post(`/api/v1/orgs/${a.id}/sites`).set(bearer(a.key)).send({ name: 'a-site', products: ['jira'] }).expect(201);
  aSiteId = site.body.id;
});
afterAll(async () => app?.close());

describe('tenant isolation: an admin key of org B on org A', () => {
  it('covers every org route of the admin API', () => {
    expect(specs.length, 'the admin API has org routes').toBeGreaterThan(25);
  });

  it.each(specs.map((s) => [s.method.toUpperCase(), s.path, s] as const))('%s %s → 404, nothing changed', async (_m, _p, spec) => {
    const before = await auditCount(a.id);
    const res = await app.http[spec.method](pathFor(spec.path, a.id)).set(bearer(b.key)).send(spec.method === 'get' || spec.method === 'delete' ? undefined : {});
    expect(res.status, `${spec.method} ${spec.path} answered ${res.status}: ${JSON.stringify(res.body)}`).toBe(404);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.body.detail).not.toContain(aAccountId);
    expect(await auditCount(a.id), 'org A audit log unchanged').toBe(before);
  });
});

describe('tenant isolation: ids of org A through org B paths', () => {
  it.each([
    ['account', () => `/api/v1/orgs/${b.id}/accounts/${aAccountId}`],
    ['site', () => `/api/v1/orgs/${b.id}/sites/${aSiteId}`],
    ['policy', () => `/api/v1/orgs/${b.id}/policies/${a.defaultPolicyId}`],
    ['domain', () => `/api/v1/orgs/${b.id}/domains/a.example`],
  ])('%s of A read with B key on B path → 404', async (_name, path) => {
    const res = await app.http.get(path()).set(bearer(b.key));
    expect(res.status).toBe(404);
  });

  it('B cannot move A accounts into its policies, nor grant them access on its sites', async () => {
    const moved = await app.http.post(`/api/v1/orgs/${b.id}/policies/${b.defaultPolicyId}/members`).set(bearer(b.key)).send({ accountIds: [aAccountId] });
    expect(moved.status).toBe(400);
    expect(moved.body.errors).toEqual([{ path: 'accountIds.0', message: `no account ${aAccountId} in this org` }]);
    const site = await app.http.post(`/api/v1/orgs/${b.id}/sites`).set(bearer(b.key)).send({ name: 'b-site', products: ['jira'] }).expect(201);
    const grant = await app.http.post(`/api/v1/orgs/${b.id}/sites/${site.body.id}/access`).set(bearer(b.key)).send({ accountId: aAccountId, product: 'jira' });
    expect(grant.status).toBe(400);
    const row = await app.svc.db.prisma.account.findUnique({ where: { id: aAccountId } });
    expect(row?.policyId, 'A account still in A default policy').toBe(a.defaultPolicyId);
    expect(await app.svc.db.prisma.productAccess.count({ where: { accountId: aAccountId } })).toBe(0);
  });

  it('B listing accounts never sees A accounts', async () => {
    const res = await app.http.get(`/api/v1/orgs/${b.id}/accounts`).set(bearer(b.key)).expect(200);
    expect(res.body.items).toEqual([]);
    const byEmail = await app.http.get(`/api/v1/orgs/${b.id}/accounts?email=ann@a.example`).set(bearer(b.key)).expect(200);
    expect(byEmail.body.items).toEqual([]);
  });

  it('the operator token reaches any org; an unknown org is 404 for it too', async () => {
    const ok = await app.http.get(`/api/v1/orgs/${a.id}/accounts`).set(bearer(OPERATOR_TOKEN)).expect(200);
    expect(ok.body.items.map((x: { id: string }) => x.id)).toEqual([aAccountId]);
    await app.http.get('/api/v1/orgs/00000000-0000-4000-8000-000000000000/accounts').set(bearer(OPERATOR_TOKEN)).expect(404);
    await app.http.get('/api/v1/orgs/not-a-uuid/accounts').set(bearer(OPERATOR_TOKEN)).expect(404);
  });

  it('a revoked key stops working at once', async () => {
    const created = await app.http.post(`/api/v1/orgs/${b.id}/admin-keys`).set(bearer(b.key)).send({ name: 'ci' }).expect(201);
    expect(created.body.key).toMatch(/^osk_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
    await app.http.get(`/api/v1/orgs/${b.id}`).set(bearer(created.body.key)).expect(200);
    await app.http.delete(`/api/v1/orgs/${b.id}/admin-keys/${created.body.id}`).set(bearer(b.key)).expect(200);
    const res = await app.http.get(`/api/v1/orgs/${b.id}`).set(bearer(created.body.key));
    expect(res.status).toBe(401);
    const stored = await app.svc.db.prisma.adminKey.findUnique({ where: { id: created.body.id } });
    expect(stored?.secretHash, 'only a sha256 hex digest is stored').toMatch(/^[0-9a-f]{64}$/);
    expect(created.body.key).not.toContain(stored!.secretHash);
  });
});
