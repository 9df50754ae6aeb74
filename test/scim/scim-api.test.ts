import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../support/app.js';
import { bearer, orgWithDirectory, PATCH_OP, scim, SCIM_GROUP, startTestApp, user, type Directory } from '../support/scim.js';

let app: TestApp;
let dir: Directory;
let s: ReturnType<typeof scim>;
const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

beforeAll(async () => {
  app = await startTestApp();
  dir = await orgWithDirectory(app, { name: 'Acme SCIM', domain: 'acme.example', trial: true });
  s = scim(app, dir);
});
afterAll(async () => app?.close());

const account = (email: string) => app.svc.db.prisma.account.findFirst({ where: { orgId: dir.orgId, emailNormalized: email.toLowerCase() } });

describe('authentication on every endpoint', () => {
  it.each(['/Users', '/Groups', '/ServiceProviderConfig', '/ResourceTypes', '/Schemas'])('%s without a token → 401 SCIM error', async (p) => {
    const res = await app.http.get(`${dir.base}${p}`);
    expect(res.status).toBe(401);
    expect(res.body.schemas).toEqual([ERROR]);
    expect(res.body.status).toBe('401');
    expect(res.body.detail).toMatch(/Bearer/);
  });

  it('a wrong token, another scheme, and another directory\'s token → 401', async () => {
    const other = await orgWithDirectory(app, { name: 'Other org' });
    for (const header of ['Bearer nope', `Basic ${dir.token}`, `Bearer ${other.token}`]) {
      const res = await app.http.get(`${dir.base}/Users`).set('Authorization', header);
      expect(res.status, header).toBe(401);
      expect(res.body.schemas).toEqual([ERROR]);
    }
  });
});

describe('discovery tells the truth', () => {
  it('ServiceProviderConfig: patch, filter with maxResults, sort, etag; no bulk, no changePassword', async () => {
    const res = await s.get('/ServiceProviderConfig').expect(200);
    expect(res.headers['content-type']).toMatch(/application\/scim\+json/);
    expect(res.body).toMatchObject({ patch: { supported: true }, filter: { supported: true, maxResults: 200 }, sort: { supported: true }, etag: { supported: true }, bulk: { supported: false }, changePassword: { supported: false } });
    expect(res.body.authenticationSchemes[0].type).toBe('oauthbearertoken');
  });
  it('ResourceTypes lists User (with the enterprise extension) and Group at this directory', async () => {
    const res = await s.get('/ResourceTypes').expect(200);
    const names = res.body.Resources.map((r: { name: string }) => r.name).sort();
    expect(names).toEqual(['Group', 'User']);
    const u = res.body.Resources.find((r: { name: string }) => r.name === 'User');
    expect(u.schemaExtensions[0].schema).toBe('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User');
    expect(JSON.stringify(res.body)).toContain(dir.base);
  });
  it('Schemas has the User, Group and EnterpriseUser schemas', async () => {
    const res = await s.get('/Schemas').expect(200);
    expect(res.body.Resources.map((r: { id: string }) => r.id)).toEqual(expect.arrayContaining([
      'urn:ietf:params:scim:schemas:core:2.0:User', 'urn:ietf:params:scim:schemas:core:2.0:Group', 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
    ]));
  });
});

describe('users', () => {
  it('POST creates a managed account in the default policy, drops the password, answers 201 with Location and ETag', async () => {
    const res = await s.post('/Users', { ...user('ann@acme.example'), password: 'hunter2', groups: [] });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.headers.location).toMatch(new RegExp(`^https?://[^/]+${dir.base}/Users/${res.body.id}$`));
    expect(res.headers.etag).toBe('W/"1"');
    expect(res.body).toMatchObject({ userName: 'ann@acme.example', active: true, meta: { resourceType: 'User', version: 'W/"1"' } });
    expect(res.body.password).toBeUndefined();
    const stored = await app.svc.db.prisma.scimUser.findUnique({ where: { id: res.body.id } });
    expect(JSON.stringify(stored?.resource)).not.toContain('hunter2');
    const acc = await account('ann@acme.example');
    expect(acc).toMatchObject({ managed: true, source: 'scim', directoryId: dir.id, policyId: dir.defaultPolicyId, status: 'active' });
  });

  it('an email on an unverified domain makes an external account; the IdP still gets 201', async () => {
    const res = await s.post('/Users', user('bob@partner.example'));
    expect(res.status).toBe(201);
    expect(await account('bob@partner.example')).toMatchObject({ managed: false, policyId: null, source: 'scim' });
  });

  it('userName is unique per directory ignoring case → 409 uniqueness', async () => {
    const res = await s.post('/Users', user('ANN@acme.example'));
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ schemas: [ERROR], status: '409', scimType: 'uniqueness' });
  });

  it('50 concurrent creates of one userName → exactly one 201, the rest 409 uniqueness', async () => {
    const results = await Promise.all(Array.from({ length: 50 }, () => s.post('/Users', user('race@acme.example'))));
    const codes = results.map((r) => r.status);
    expect(codes.filter((c) => c === 201)).toHaveLength(1);
    expect(codes.filter((c) => c === 409)).toHaveLength(49);
    for (const r of results.filter((x) => x.status === 409)) expect(r.body.scimType).toBe('uniqueness');
    expect(await app.svc.db.prisma.scimUser.count({ where: { directoryId: dir.id, userNameNormalized: 'race@acme.example' } })).toBe(1);
    expect(await app.svc.db.prisma.account.count({ where: { orgId: dir.orgId, emailNormalized: 'race@acme.example' } })).toBe(1);
  });

  it('filters run in SQL: case-insensitive userName eq, no match → 200 empty list, never 404', async () => {
    const hit = await s.get('/Users?filter=' + encodeURIComponent('userName eq "Ann@ACME.example"')).expect(200);
    expect(hit.body).toMatchObject({ totalResults: 1, startIndex: 1, itemsPerPage: 1 });
    expect(hit.body.Resources[0].userName).toBe('ann@acme.example');
    const none = await s.get('/Users?filter=' + encodeURIComponent('userName eq "nobody@acme.example"')).expect(200);
    expect(none.body).toMatchObject({ totalResults: 0, Resources: [] });
  });

  it('an unsupported filter → 400 invalidFilter', async () => {
    for (const f of ['nickName eq "x"', 'userName eq', '__proto__.polluted eq "x"', 'userName zz "x"']) {
      const res = await s.get('/Users?filter=' + encodeURIComponent(f));
      expect(res.status, f).toBe(400);
      expect(res.body.scimType, f).toBe('invalidFilter');
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('paging: startIndex/count clamped, totalResults from a SQL count, stable creation order', async () => {
    for (let i = 0; i < 5; i++) await s.post('/Users', user(`page${i}@acme.example`)).expect(201);
    const total = (await s.get('/Users?count=0').expect(200)).body;
    expect(total.Resources).toEqual([]);
    expect(total.totalResults).toBe(await app.svc.db.prisma.scimUser.count({ where: { directoryId: dir.id, deletedAt: null } }));
    const page = await s.get('/Users?filter=' + encodeURIComponent('userName sw "page"') + '&startIndex=2&count=2').expect(200);
    expect(page.body).toMatchObject({ totalResults: 5, startIndex: 2, itemsPerPage: 2 });
    expect(page.body.Resources.map((u: { userName: string }) => u.userName)).toEqual(['page1@acme.example', 'page2@acme.example']);
    const clamped = await s.get('/Users?filter=' + encodeURIComponent('userName sw "page"') + '&startIndex=-4&count=-1').expect(200);
    expect(clamped.body).toMatchObject({ startIndex: 1, itemsPerPage: 0, totalResults: 5 });
    const big = await s.get('/Users?count=100000').expect(200);
    expect(big.body.itemsPerPage).toBeLessThanOrEqual(200);
  });

  it('attributes and excludedAttributes shape the response', async () => {
    const only = await s.get('/Users?attributes=userName&filter=' + encodeURIComponent('userName eq "ann@acme.example"')).expect(200);
    // schemas and id are always returned (RFC 7643 §3; issue 13 defect 1: schemas was dropped).
    expect(Object.keys(only.body.Resources[0]).sort()).toEqual(['id', 'schemas', 'userName']);
    const without = await s.get('/Users?excludedAttributes=emails,name&filter=' + encodeURIComponent('userName eq "ann@acme.example"')).expect(200);
    expect(without.body.Resources[0].emails).toBeUndefined();
    expect(without.body.Resources[0].userName).toBe('ann@acme.example');
  });

  it('If-Match with a stale version → 412 and nothing changes', async () => {
    const created = await s.post('/Users', user('etag@acme.example')).expect(201);
    const res = await s.put(`/Users/${created.body.id}`, user('etag@acme.example', { displayName: 'New' })).set('If-Match', 'W/"7"');
    expect(res.status).toBe(412);
    const after = await s.get(`/Users/${created.body.id}`).expect(200);
    expect(after.body.displayName).toBeUndefined();
    const ok = await s.put(`/Users/${created.body.id}`, user('etag@acme.example', { displayName: 'New' })).set('If-Match', 'W/"1"').expect(200);
    expect(ok.headers.etag).toBe('W/"2"');
  });

  it('deactivation by PATCH active:false disables the account at once; active:true re-enables', async () => {
    const created = await s.post('/Users', user('deact@acme.example')).expect(201);
    await s.patch(`/Users/${created.body.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] }).expect(200);
    expect((await account('deact@acme.example'))?.status).toBe('disabled');
    const back = await s.patch(`/Users/${created.body.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', value: { active: true } }] }).expect(200);
    expect(back.body.active).toBe(true);
    expect((await account('deact@acme.example'))?.status).toBe('active');
  });

  it('DELETE → 204, then 404; a later POST of the same userName revives it (201)', async () => {
    const created = await s.post('/Users', user('gone@acme.example')).expect(201);
    await s.delete(`/Users/${created.body.id}`).expect(204);
    const missing = await s.get(`/Users/${created.body.id}`);
    expect(missing.status).toBe(404);
    expect(missing.body.schemas).toEqual([ERROR]);
    expect((await account('gone@acme.example'))?.status).toBe('disabled');
    const revived = await s.post('/Users', user('GONE@acme.example')).expect(201);
    expect(revived.body.id).toBe(created.body.id);
    expect((await account('gone@acme.example'))?.status).toBe('active');
  });
});

describe('a push claims an account from the non-billable policy', () => {
  it('moves it to the default policy in the same transaction, audited, with its billable delta', async () => {
    const org = { id: dir.orgId, key: dir.orgKey };
    const site = (await app.http.post(`/api/v1/orgs/${org.id}/sites`).set(bearer(org.key)).send({ name: 'claim-site', products: ['jira'] }).expect(201)).body;
    const acc = (await app.http.post(`/api/v1/orgs/${org.id}/accounts`).set(bearer(org.key)).send({ email: 'free@acme.example' }).expect(201)).body;
    await app.http.post(`/api/v1/orgs/${org.id}/sites/${site.id}/access`).set(bearer(org.key)).send({ accountId: acc.id, product: 'jira' }).expect(201);
    const nb = (await app.http.post(`/api/v1/orgs/${org.id}/policies`).set(bearer(org.key)).send({ name: 'Free tier', nonBillable: true }).expect(201)).body;
    await app.http.post(`/api/v1/orgs/${org.id}/policies/${nb.id}/members`).set(bearer(org.key)).send({ accountIds: [acc.id] }).expect(200);
    expect((await app.http.get(`/api/v1/orgs/${org.id}/accounts/${acc.id}`).set(bearer(org.key))).body.billable).toBe(false);

    await s.post('/Users', user('free@acme.example')).expect(201);
    const after = (await app.http.get(`/api/v1/orgs/${org.id}/accounts/${acc.id}`).set(bearer(org.key)).expect(200)).body;
    expect(after).toMatchObject({ policyId: dir.defaultPolicyId, source: 'scim', billable: true });
    const deltas = await app.svc.db.prisma.billableDelta.findMany({ where: { accountId: acc.id }, orderBy: { seq: 'asc' } });
    expect(deltas.map((d) => [d.kind, d.cause])).toEqual([['added', 'access-granted'], ['removed', 'policy-membership-changed'], ['added', 'scim-user-created']]);
    const audit = await app.http.get(`/api/v1/orgs/${org.id}/audit?action=policy.members.move`).set(bearer(org.key)).expect(200);
    expect(audit.body.items[0]).toMatchObject({ actor: `scim:${dir.id}`, targetId: acc.id, before: { policyId: nb.id } });

    const refused = await app.http.post(`/api/v1/orgs/${org.id}/policies/${nb.id}/members`).set(bearer(org.key)).send({ accountIds: [acc.id] });
    expect(refused.status).toBe(409);
    expect(refused.body.type).toBe('https://orgsync.dev/rules/non-billable-no-synced-accounts');
  });
});

describe('groups', () => {
  it('create with members, Entra-style member removal removes only those members', async () => {
    const a = (await s.post('/Users', user('g1@acme.example')).expect(201)).body.id;
    const b = (await s.post('/Users', user('g2@acme.example')).expect(201)).body.id;
    const g = await s.post('/Groups', { schemas: [SCIM_GROUP], displayName: 'Engineers', members: [{ value: a }, { value: b, $ref: null }] });
    expect(g.status, JSON.stringify(g.body)).toBe(201);
    expect(g.body.members.map((m: { value: string }) => m.value).sort()).toEqual([a, b].sort());
    await s.patch(`/Groups/${g.body.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'Remove', path: 'members', value: [{ value: a }] }] }).expect(200);
    const after = await s.get(`/Groups/${g.body.id}`).expect(200);
    expect(after.body.members.map((m: { value: string }) => m.value)).toEqual([b]);
    const slim = await s.get(`/Groups/${g.body.id}?excludedAttributes=members`).expect(200);
    expect(slim.body.members).toBeUndefined();
    expect(slim.body.displayName).toBe('Engineers');
  });

  it('a member id from another directory → 400 invalidValue, nothing stored', async () => {
    const other = await orgWithDirectory(app, { name: 'Foreign' });
    const foreign = (await scim(app, other).post('/Users', user('f@foreign.example')).expect(201)).body.id;
    const res = await s.post('/Groups', { schemas: [SCIM_GROUP], displayName: 'Sneaky', members: [{ value: foreign }] });
    expect(res.status).toBe(400);
    expect(res.body.scimType).toBe('invalidValue');
    expect(await app.svc.db.prisma.scimGroup.count({ where: { directoryId: dir.id, displayName: 'Sneaky' } })).toBe(0);
  });
});

describe('protocol edges', () => {
  it('malformed JSON → 400 invalidSyntax; other media types → 415; over 1 MiB → 413', async () => {
    const bad = await app.http.post(`${dir.base}/Users`).set({ Authorization: `Bearer ${dir.token}`, 'Content-Type': 'application/scim+json' }).send('{"userName": ');
    expect(bad.status).toBe(400);
    expect(bad.body.scimType).toBe('invalidSyntax');
    const xml = await app.http.post(`${dir.base}/Users`).set({ Authorization: `Bearer ${dir.token}`, 'Content-Type': 'application/xml' }).send('<user/>');
    expect(xml.status).toBe(415);
    const big = await s.post('/Users', user('big@acme.example', { displayName: 'x'.repeat(1_100_000) }));
    expect(big.status).toBe(413);
    expect(big.body.schemas).toEqual([ERROR]);
  });

  it('a body that does not fit the schema → 400 invalidValue naming the attribute', async () => {
    const res = await s.post('/Users', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], active: true });
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(/userName/);
  });

  it('another directory\'s user id → 404 here', async () => {
    const other = await orgWithDirectory(app, { name: 'Isolated' });
    const id = (await scim(app, other).post('/Users', user('iso@isolated.example')).expect(201)).body.id;
    expect((await s.get(`/Users/${id}`)).status).toBe(404);
    expect((await s.delete(`/Users/${id}`)).status).toBe(404);
    expect((await scim(app, other).get(`/Users/${id}`)).status).toBe(200);
  });

  it('lower-case /users works like /Users', async () => {
    const res = await app.http.get(`${dir.base}/users?count=1`).set('Authorization', `Bearer ${dir.token}`);
    expect(res.status).toBe(200);
    expect(res.body.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:ListResponse']);
  });

  it('each request leaves a redacted event the admin can read', async () => {
    await s.post('/Users', user('ANN@acme.example')).expect(409);
    const res = await app.http.get(`/api/v1/orgs/${dir.orgId}/directories/${dir.id}/events?failedOnly=true&limit=1`).set(bearer(dir.orgKey)).expect(200);
    expect(res.body.items[0]).toMatchObject({ method: 'POST', path: '/Users', status: 409, scimType: 'uniqueness' });
    expect(JSON.stringify(res.body)).not.toContain(dir.token);
  });
});
