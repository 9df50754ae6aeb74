import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../support/app.js';
import { bearer, orgWithDirectory, PATCH_OP, scim, SCIM_GROUP, startTestApp, user, type Directory } from '../support/scim.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => app?.close());

const deltas = (accountId: string) =>
  app.svc.db.prisma.billableDelta.findMany({ where: { accountId }, orderBy: { seq: 'asc' }, select: { kind: true, cause: true } });
const accountOf = async (dir: Directory, email: string) =>
  (await app.svc.db.prisma.account.findFirst({ where: { orgId: dir.orgId, emailNormalized: email } }))!;

describe('Okta dialect over HTTP', () => {
  let dir: Directory;
  let s: ReturnType<typeof scim>;
  beforeAll(async () => {
    dir = await orgWithDirectory(app, { name: 'Okta Co', domain: 'okta-co.example', idp: 'okta', trial: true });
    s = scim(app, dir);
  });

  it('deactivation by full PUT with active:false disables the account; PATCH answers 200 with the resource', async () => {
    const u = (await s.post('/Users', user('put@okta-co.example')).expect(201)).body;
    await s.put(`/Users/${u.id}`, user('put@okta-co.example', { active: false })).expect(200);
    expect((await accountOf(dir, 'put@okta-co.example')).status).toBe('disabled');
    const res = await s.patch(`/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', value: { active: true } }] });
    expect(res.status).toBe(200);
    expect(res.body.active).toBe(true);
    expect((await accountOf(dir, 'put@okta-co.example')).status).toBe('active');
  });

  it('a PATCH that changes nothing writes nothing (the version stays)', async () => {
    const u = (await s.post('/Users', user('noop@okta-co.example')).expect(201)).body;
    const res = await s.patch(`/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', value: { password: 'new-secret' } }] }).expect(200);
    expect(res.headers.etag).toBe('W/"1"');
    expect(JSON.stringify(res.body)).not.toContain('new-secret');
  });

  it('group rename sent together with membership changes, as Okta does', async () => {
    const a = (await s.post('/Users', user('oa@okta-co.example')).expect(201)).body.id;
    const b = (await s.post('/Users', user('ob@okta-co.example')).expect(201)).body.id;
    const g = (await s.post('/Groups', { schemas: [SCIM_GROUP], displayName: 'Okta Team', members: [{ value: a }] }).expect(201)).body;
    const res = await s.patch(`/Groups/${g.id}`, {
      schemas: [PATCH_OP],
      Operations: [
        { op: 'replace', value: { id: g.id, displayName: 'Okta Team Renamed' } },
        { op: 'add', path: 'members', value: [{ value: b, display: 'ob' }] },
      ],
    }).expect(200);
    expect(res.body.displayName).toBe('Okta Team Renamed');
    expect(res.body.members.map((m: { value: string }) => m.value).sort()).toEqual([a, b].sort());
    const again = await s.patch(`/Groups/${g.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: [{ value: b }] }] }).expect(200);
    expect(again.body.members, 'a retried add does not duplicate the member').toHaveLength(2);
  });
});

describe('Entra dialect over HTTP', () => {
  let dir: Directory;
  let s: ReturnType<typeof scim>;
  beforeAll(async () => {
    dir = await orgWithDirectory(app, { name: 'Entra Co', domain: 'entra-co.example', idp: 'entra', trial: true });
    s = scim(app, dir);
  });

  it('PATCH answers 204 with the new ETag; Prefer: return=representation gets 200 and the body', async () => {
    const u = (await s.post('/Users', user('e1@entra-co.example')).expect(201)).body;
    const res = await s.patch(`/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'Replace', path: 'displayName', value: 'E One' }] });
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expect(res.headers.etag).toBe('W/"2"');
    const full = await s.patch(`/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'Replace', path: 'displayName', value: 'E 1' }] }).set('Prefer', 'return=representation');
    expect(full.status).toBe(200);
    expect(full.body.displayName).toBe('E 1');
  });

  it('no-path PATCH with URN-qualified and dotted keys, string booleans', async () => {
    const u = (await s.post('/Users', user('e2@entra-co.example')).expect(201)).body;
    await s.patch(`/Users/${u.id}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'Replace', value: { 'name.givenName': 'Grace', 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department': 'R&D', active: 'True' } }],
    }).expect(204);
    const got = (await s.get(`/Users/${u.id}`).expect(200)).body;
    expect(got.name.givenName).toBe('Grace');
    expect(got.name.familyName, 'the other name parts are kept').toBe('Family');
    expect(got['urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'].department).toBe('R&D');
    const filtered = await s.get('/Users?filter=' + encodeURIComponent('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "r&d"')).expect(200);
    expect(filtered.body.Resources.map((x: { id: string }) => x.id)).toEqual([u.id]);
  });

  it('first work phone added through a filtered path that matches nothing yet', async () => {
    const u = (await s.post('/Users', user('e3@entra-co.example')).expect(201)).body;
    await s.patch(`/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'Add', path: 'phoneNumbers[type eq "work"].value', value: '+1 555 0100' }] }).expect(204);
    const got = (await s.get(`/Users/${u.id}`).expect(200)).body;
    expect(got.phoneNumbers).toEqual([{ type: 'work', value: '+1 555 0100' }]);
  });

  it('group membership drives mapped product access and billable deltas, end to end', async () => {
    const site = (await app.http.post(`/api/v1/orgs/${dir.orgId}/sites`).set(bearer(dir.orgKey)).send({ name: 'entra-site', products: ['jira'] }).expect(201)).body;
    await app.http.post(`/api/v1/orgs/${dir.orgId}/directories/${dir.id}/group-mappings`).set(bearer(dir.orgKey)).send({ group: 'Jira Users', siteId: site.id, product: 'jira' }).expect(201);
    const u = (await s.post('/Users', user('member@entra-co.example')).expect(201)).body;
    const acc = await accountOf(dir, 'member@entra-co.example');
    expect(await deltas(acc.id)).toEqual([]);

    const g = (await s.post('/Groups', { schemas: [SCIM_GROUP], displayName: 'jira users', members: [{ value: u.id }] }).expect(201)).body;
    const view = (await app.http.get(`/api/v1/orgs/${dir.orgId}/accounts/${acc.id}`).set(bearer(dir.orgKey)).expect(200)).body;
    expect(view).toMatchObject({ billable: true, billableReasons: ['managed', 'active', 'access:jira'] });
    expect(view.access).toEqual([expect.objectContaining({ siteId: site.id, product: 'jira', role: 'user', grantedBy: expect.stringMatching(/^group:/) })]);

    await s.patch(`/Groups/${g.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'Remove', path: 'members', value: [{ value: u.id }] }] }).expect(204);
    expect((await deltas(acc.id)).map((d) => [d.kind, d.cause])).toEqual([['added', 'scim-group-membership'], ['removed', 'scim-group-membership']]);
    expect(await app.svc.db.prisma.productAccess.count({ where: { accountId: acc.id } })).toBe(0);
  });

  it('a member id that names no user is skipped, and the event log says so', async () => {
    const u = (await s.post('/Users', user('known@entra-co.example')).expect(201)).body;
    const g = await s.post('/Groups', { schemas: [SCIM_GROUP], displayName: 'With ghosts', members: [{ value: u.id }, { value: 'stringid1' }] });
    expect(g.status).toBe(201);
    expect(g.body.members.map((m: { value: string }) => m.value)).toEqual([u.id]);
    const events = await app.http.get(`/api/v1/orgs/${dir.orgId}/directories/${dir.id}/events?limit=1`).set(bearer(dir.orgKey)).expect(200);
    expect(events.body.items[0]).toMatchObject({ method: 'POST', path: '/Groups', status: 201, detail: expect.stringContaining('stringid1') });
  });
});

describe('sync issues', () => {
  it('external accounts and users without an email are listed, with the reason; the IdP got 201 for both', async () => {
    const dir = await orgWithDirectory(app, { name: 'Issues Co', domain: 'issues.example' });
    const s = scim(app, dir);
    await s.post('/Users', user('fine@issues.example')).expect(201);
    await s.post('/Users', user('guest@elsewhere.example')).expect(201);
    await s.post('/Users', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'NoMail', emails: [{ value: 'emailName357', type: 'work' }] }).expect(201);
    const res = await app.http.get(`/api/v1/orgs/${dir.orgId}/directories/${dir.id}/sync-issues`).set(bearer(dir.orgKey)).expect(200);
    expect(res.body.items.map((i: { userName: string; issue: string }) => [i.userName, i.issue])).toEqual([['guest@elsewhere.example', 'external-account'], ['NoMail', 'no-email']]);
    expect(res.body.items[0].detail).toContain('elsewhere.example');
  });
});

describe('tokens', () => {
  it('rotation keeps the old token for the grace period; graceSeconds 0 revokes it at once', async () => {
    const dir = await orgWithDirectory(app, { name: 'Rotate Co' });
    const rotated = (await app.http.post(`/api/v1/orgs/${dir.orgId}/directories/${dir.id}/token`).set(bearer(dir.orgKey)).send({ graceSeconds: 3600 }).expect(200)).body;
    await app.http.get(`${dir.base}/Users`).set(bearer(dir.token)).expect(200);
    await app.http.get(`${dir.base}/Users`).set(bearer(rotated.token)).expect(200);
    const again = (await app.http.post(`/api/v1/orgs/${dir.orgId}/directories/${dir.id}/token`).set(bearer(dir.orgKey)).send({ graceSeconds: 0 }).expect(200)).body;
    expect((await app.http.get(`${dir.base}/Users`).set(bearer(rotated.token))).status).toBe(401);
    expect((await app.http.get(`${dir.base}/Users`).set(bearer(dir.token))).status).toBe(401);
    await app.http.get(`${dir.base}/Users`).set(bearer(again.token)).expect(200);
  });
});

describe('tenant isolation under load', () => {
  it('200 concurrent creates alternating between two orgs\' directories each land in their own org', async () => {
    const a = await orgWithDirectory(app, { name: 'Load A', domain: 'load-a.example' });
    const b = await orgWithDirectory(app, { name: 'Load B', domain: 'load-b.example' });
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => {
      const dir = i % 2 === 0 ? a : b;
      return scim(app, dir).post('/Users', user(`u${i}@${i % 2 === 0 ? 'load-a' : 'load-b'}.example`));
    }));
    expect(results.map((r) => r.status).every((c) => c === 201)).toBe(true);
    const count = (orgId: string, dirId: string) => app.svc.db.prisma.scimUser.count({ where: { orgId, directoryId: dirId } });
    expect(await count(a.orgId, a.id)).toBe(100);
    expect(await count(b.orgId, b.id)).toBe(100);
    expect(await app.svc.db.prisma.account.count({ where: { orgId: a.orgId, emailDomain: 'load-b.example' } })).toBe(0);
    expect(await app.svc.db.prisma.account.count({ where: { orgId: b.orgId, emailDomain: 'load-a.example' } })).toBe(0);
    expect(await app.svc.db.prisma.account.count({ where: { orgId: a.orgId, managed: true, source: 'scim' } })).toBe(100);
    const listA = await scim(app, a).get('/Users?count=200').expect(200);
    expect(listA.body.totalResults).toBe(100);
    expect(listA.body.Resources.every((u: { userName: string }) => u.userName.endsWith('@load-a.example'))).toBe(true);
  });
});

describe('hostile input', () => {
  it('leaves Object.prototype untouched and answers 4xx, never 5xx', async () => {
    const dir = await orgWithDirectory(app, { name: 'Hostile Co' });
    const s = scim(app, dir);
    const u = (await s.post('/Users', user('h@hostile.example')).expect(201)).body;
    const attempts = [
      s.get('/Users?filter=' + encodeURIComponent('__proto__.polluted eq "x"')),
      s.get('/Users?filter=' + encodeURIComponent('constructor.prototype.polluted eq "x"')),
      s.get('/Users?attributes=__proto__,constructor'),
      s.get('/Users?excludedAttributes=prototype'),
      s.get('/Users?filter=' + encodeURIComponent('(' .repeat(30) + 'userName eq "a"' + ')'.repeat(30))),
      s.get('/Users?filter=' + encodeURIComponent(Array.from({ length: 18 }, (_, i) => `(userName eq "${i}" or userName eq "x${i}")`).join(' and '))),
      s.post('/Users', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'p1', '__proto__': { polluted: true }, 'urn:ietf:params:scim:schemas:core:2.0:User:__proto__.polluted': 'x' }),
      s.patch(`/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: '__proto__.polluted', value: 'x' }] }),
      s.patch(`/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'remove', path: 'emails[__proto__ eq "x"]' }] }),
      s.patch(`/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', value: { '__proto__': { polluted: 1 }, 'constructor.prototype.polluted': 1 } }] }),
      s.get('/Users/not-a-uuid'),
      s.delete('/Groups/null'),
      s.put('/Users/00000000-0000-4000-8000-000000000000', user('x@hostile.example')),
    ];
    const results = await Promise.all(attempts);
    results.forEach((r, i) => expect(r.status, `attempt ${i} → ${r.status} ${JSON.stringify(r.body)}`).toBeLessThan(500));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });
});

describe('rate limit', () => {
  it('answers 429 with an integer Retry-After once a token exceeds its rate', async () => {
    const limited = await startTestApp({ SCIM_RATE_LIMIT_PER_SECOND: '1', SCIM_RATE_LIMIT_BURST: '3' });
    try {
      const dir = await orgWithDirectory(limited, { name: 'Limited' });
      const codes: number[] = [];
      let last: { headers: Record<string, string>; body: { status: string; schemas: string[] } } | null = null;
      for (let i = 0; i < 5; i++) {
        const r = await limited.http.get(`${dir.base}/Users`).set(bearer(dir.token));
        codes.push(r.status);
        if (r.status === 429) last = r as never;
      }
      expect(codes.slice(0, 3)).toEqual([200, 200, 200]);
      expect(codes.slice(3)).toEqual([429, 429]);
      expect(last!.headers['retry-after']).toMatch(/^[1-9]\d*$/);
      expect(last!.body).toMatchObject({ status: '429', schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'] });
    } finally {
      await limited.close();
    }
  });
});

describe('tombstones', () => {
  it('a deleted user is kept 14 days, then purged; a later POST creates it afresh', async () => {
    const { purgeScimTombstones } = await import('../../src/services/scim-user-service.js');
    const dir = await orgWithDirectory(app, { name: 'Tomb Co', domain: 'tomb.example' });
    const s = scim(app, dir);
    const id = (await s.post('/Users', user('t@tomb.example')).expect(201)).body.id;
    await s.delete(`/Users/${id}`).expect(204);
    const deletedAt = (await app.svc.db.prisma.scimUser.findUnique({ where: { id } }))!.deletedAt!;
    expect(await purgeScimTombstones(app.svc.db, new Date(deletedAt.getTime() + 13 * 86_400_000))).toBe(0);
    expect(await app.svc.db.prisma.scimUser.count({ where: { id } })).toBe(1);
    expect(await purgeScimTombstones(app.svc.db, new Date(deletedAt.getTime() + 14 * 86_400_000 + 1))).toBeGreaterThanOrEqual(1);
    expect(await app.svc.db.prisma.scimUser.count({ where: { id } })).toBe(0);
    expect((await accountOf(dir, 't@tomb.example')).status, 'the account stays, disabled').toBe('disabled');
    const again = await s.post('/Users', user('t@tomb.example')).expect(201);
    expect(again.body.id).not.toBe(id);
    expect((await accountOf(dir, 't@tomb.example')).status).toBe('active');
  });
});
