// The PATCH engine through HTTP (issue 13): what it stores, what it refuses, and the two defects
// validators found in PATCH — the enterprise extension removed by its URN, unknown attributes
// ignored (and named once as a sync issue) on POST, PUT and PATCH alike.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../support/app.js';
import { bearer, orgWithDirectory, PATCH_OP, scim, startTestApp, user, type Directory } from '../support/scim.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => app?.close());

const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const db = () => app.svc.db.prisma;
const patchOf = (...Operations: unknown[]) => ({ schemas: [PATCH_OP], Operations });
const stored = async (id: string) => (await db().scimUser.findUnique({ where: { id } }))!;
const syncIssues = async (dir: Directory) =>
  (await app.http.get(`/api/v1/orgs/${dir.orgId}/directories/${dir.id}/sync-issues`).set(bearer(dir.orgKey)).expect(200)).body;

describe('PATCH engine', () => {
  let dir: Directory;
  beforeAll(async () => {
    dir = await orgWithDirectory(app, { name: 'Patch Engine Co', domain: 'patch-engine.example' });
  });

  it('PATCH remove of the enterprise extension by its URN removes it (RFC 7644 §3.5.2.2; was 400 "Cannot convert undefined or null to object")', async () => {
    const s = scim(app, dir);
    const u = (await s.post('/Users', { ...user('ext.remove@patch-engine.example'), schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', ENT], [ENT]: { department: 'R&D', employeeNumber: '42' } }).expect(201)).body;
    expect(u[ENT]).toEqual({ department: 'R&D', employeeNumber: '42' });
    const res = await s.patch(`/Users/${u.id}`, patchOf({ op: 'remove', path: ENT }));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body[ENT]).toBeUndefined();
    expect(res.body.schemas).toEqual(['urn:ietf:params:scim:schemas:core:2.0:User']);
    const row = await stored(u.id);
    expect(row.department).toBeNull();
    expect(row.employeeNumber).toBeNull();
    expect((row.resource as Record<string, unknown>)[ENT]).toBeUndefined();
    // Removing what is not there changes nothing: same version.
    const again = await s.patch(`/Users/${u.id}`, patchOf({ op: 'remove', path: ENT }));
    expect(again.status).toBe(200);
    expect(again.body.meta.version).toBe(res.body.meta.version);
  });

  it('unknown attributes are ignored alike by POST, PUT and PATCH and named once as sync issues (PATCH answered invalidPath)', async () => {
    const d = await orgWithDirectory(app, { name: 'Unknown Attr Co', domain: 'unknown-attr.example' });
    const s = scim(app, d);
    const u = (await s.post('/Users', { ...user('custom@unknown-attr.example'), costCenter: 'CC-1', name: { givenName: 'Ada', middleInitial: 'B' } }).expect(201)).body;
    expect(u.costCenter).toBeUndefined();
    await s.put(`/Users/${u.id}`, { ...user('custom@unknown-attr.example'), costCenter: 'CC-2' }).expect(200);
    const res = await s.patch(`/Users/${u.id}`, patchOf(
      { op: 'replace', path: 'costCenter', value: 'CC-3' },
      { op: 'add', path: 'urn:example:okta:custom:1.0:User:badge', value: '7' },
      { op: 'replace', path: 'title', value: 'Engineer' },
    ));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.title).toBe('Engineer');
    expect(res.body.costCenter).toBeUndefined();
    // A PATCH of nothing but unknown attributes changes nothing and succeeds.
    const only = await s.patch(`/Users/${u.id}`, patchOf({ op: 'replace', path: 'costCenter', value: 'CC-4' }));
    expect(only.status).toBe(200);
    expect(only.body.meta.version).toBe(res.body.meta.version);
    const g = (await s.post('/Groups', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Eng', owner: 'x' }).expect(201)).body;
    await s.patch(`/Groups/${g.id}`, patchOf({ op: 'replace', path: 'owner', value: 'y' }, { op: 'replace', path: 'displayName', value: 'Engineering' })).expect(200);
    expect((await s.get(`/Groups/${g.id}`).expect(200)).body.displayName).toBe('Engineering');

    const issues = await syncIssues(d);
    expect(issues.ignoredAttributes.map((a: { resourceType: string; attribute: string }) => `${a.resourceType} ${a.attribute}`).sort()).toEqual([
      'Group owner', 'User costCenter', 'User name.middleInitial', 'User urn:example:okta:custom:1.0:User:badge',
    ]);
    expect(issues.ignoredAttributes[0]).toMatchObject({ issue: 'ignored-attribute' });
    expect(issues.ignoredAttributes[0].detail).toMatch(/ignored/);
    expect(await db().scimIgnoredAttribute.count({ where: { directoryId: d.id } }), 'each once').toBe(4);
  });

  it('filters: eq, or and not select entries; a filter (other than plain eq) that matches nothing is 400 noTarget and writes nothing', async () => {
    const s = scim(app, dir);
    const u = (await s.post('/Users', {
      ...user('filters@patch-engine.example'),
      emails: [{ value: 'filters@patch-engine.example', type: 'work', primary: true }, { value: 'home@patch-engine.example', type: 'home' }],
      phoneNumbers: [{ value: '+1 555 0100', type: 'work' }, { value: '+1 555 0199', type: 'mobile' }],
    }).expect(201)).body;
    const res = await s.patch(`/Users/${u.id}`, patchOf(
      { op: 'replace', path: 'phoneNumbers[type eq "mobile"].value', value: '+1 555 0111' },
      { op: 'add', path: 'emails[type eq "work" or type eq "home"].display', value: 'Mail' },
      { op: 'remove', path: 'phoneNumbers[not (type eq "mobile")]' },
    ));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.phoneNumbers).toEqual([{ value: '+1 555 0111', type: 'mobile' }]);
    expect(res.body.emails.map((e: { display?: string }) => e.display)).toEqual(['Mail', 'Mail']);
    const version = (await stored(u.id)).version;
    // (A plain eq filter that matches nothing adds the entry: Entra's first work email, dialect.ts.)
    const miss = await s.patch(`/Users/${u.id}`, patchOf({ op: 'replace', path: 'emails[type eq "other" or type eq "x"].value', value: 'x@patch-engine.example' }));
    expect(miss.status).toBe(400);
    expect(miss.body.scimType).toBe('noTarget');
    expect((await stored(u.id)).version, 'nothing written').toBe(version);
  });

  it('a new primary email demotes the old one (RFC 7643 §2.4: primary true at most once)', async () => {
    const s = scim(app, dir);
    const u = (await s.post('/Users', { ...user('primary@patch-engine.example'), emails: [{ value: 'primary@patch-engine.example', type: 'work', primary: true }] }).expect(201)).body;
    const res = await s.patch(`/Users/${u.id}`, patchOf({ op: 'add', path: 'emails', value: [{ value: 'new.primary@patch-engine.example', type: 'home', primary: true }] }));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.emails.filter((e: { primary?: boolean }) => e.primary).map((e: { value: string }) => e.value)).toEqual(['new.primary@patch-engine.example']);
    const emails = await db().scimUserEmail.findMany({ where: { userId: u.id, primary: true } });
    expect(emails.map((e) => e.value)).toEqual(['new.primary@patch-engine.example']);
  });

  it('removing userName (required) is 400 and writes nothing', async () => {
    const s = scim(app, dir);
    const u = (await s.post('/Users', user('required@patch-engine.example')).expect(201)).body;
    const res = await s.patch(`/Users/${u.id}`, patchOf({ op: 'remove', path: 'userName' }));
    expect(res.status).toBe(400);
    expect((await stored(u.id)).userName).toBe('required@patch-engine.example');
  });

  it('a value of the wrong type is 400 invalidValue and writes nothing', async () => {
    const s = scim(app, dir);
    const u = (await s.post('/Users', user('types@patch-engine.example')).expect(201)).body;
    const res = await s.patch(`/Users/${u.id}`, patchOf({ op: 'replace', path: 'active', value: 'perhaps' }));
    expect(res.status).toBe(400);
    expect(res.body.scimType).toBe('invalidValue');
    expect((await stored(u.id)).version).toBe(1);
  });
});
