/**
 * Issue 12 §1: a NUL byte or a lone surrogate in a text field, a query parameter or a path
 * answered 500 on almost every route (PostgreSQL's text and jsonb cannot hold either). Each is
 * now a 400 naming the field, on every surface, and nothing is written.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, OPERATOR_TOKEN, startTestApp, type TestApp } from '../support/app.js';
import { orgSnapshot } from '../support/snapshot.js';
import { rawRequest } from '../support/raw-http.js';
import { orgWithDirectory, SCIM_USER, type Directory } from '../support/scim.js';

let app: TestApp;
let org: { id: string; key: string; defaultPolicyId: string };
let dir: Directory;
let accountId: string;
let siteId: string;
const u = (p: string) => `/api/v1/orgs/${org.id}/${p}`;

beforeAll(async () => {
  app = await startTestApp();
  org = await createOrg(app, 'Unstorable Ltd');
  dir = await orgWithDirectory(app, { name: 'Unstorable SCIM' });
  const acc = await app.http.post(u('accounts')).set(bearer(org.key)).send({ email: 'ann@unstorable.example', displayName: 'Ann' });
  expect(acc.status, acc.text).toBe(201);
  accountId = acc.body.id;
  const site = await app.http.get(u('sites')).set(bearer(org.key)).expect(200);
  siteId = site.body.items?.[0]?.id ?? '00000000-0000-4000-8000-000000000000';
});
afterAll(async () => app?.close());

async function unchanged<T>(orgId: string, fn: () => Promise<T>): Promise<T> {
  const before = await orgSnapshot(app.svc.db, orgId);
  const orgs = await app.svc.db.prisma.org.count();
  const users = await app.svc.db.prisma.scimUser.count();
  const out = await fn();
  expect(await orgSnapshot(app.svc.db, orgId), 'nothing changed').toEqual(before);
  expect(await app.svc.db.prisma.org.count(), 'no org created').toBe(orgs);
  expect(await app.svc.db.prisma.scimUser.count(), 'no SCIM user created').toBe(users);
  return out;
}

const NUL = 'Ann\u0000Admin';
const LONE = 'Ann\ud800Admin';

describe('admin API: a NUL or lone surrogate in a body field → 400 invalid-input naming the field', () => {
  const cases: [string, 'post' | 'patch', () => string, string, (v: string) => object][] = [
    ['org name (operator)', 'post', () => '/api/v1/orgs', 'name', (v) => ({ name: v })],
    ['policy name', 'post', () => u('policies'), 'name', (v) => ({ name: v })],
    ['site name', 'patch', () => u(`sites/${siteId}`), 'name', (v) => ({ name: v })],
    ['admin-key name', 'post', () => u('admin-keys'), 'name', (v) => ({ name: v })],
    ['directory name', 'post', () => u('directories'), 'name', (v) => ({ name: v, idp: 'okta' })],
    ['group-mapping group name', 'post', () => u(`directories/${dir.id}/group-mappings`), 'groupDisplayName', (v) => ({ groupDisplayName: v, grant: { kind: 'policy', policyId: org.defaultPolicyId } })],
    ['account display name', 'patch', () => u(`accounts/${accountId}`), 'displayName', (v) => ({ displayName: v })],
    ['nested field', 'post', () => u('policies'), 'passwordPolicy.minStrength', (v) => ({ name: 'ok', passwordPolicy: { minStrength: v } })],
  ];
  for (const [what, value] of [['NUL', NUL], ['lone surrogate', LONE]] as const) {
    it.each(cases)(`${what} in %s`, async (_name, method, path, field, body) => {
      const token = path().startsWith('/api/v1/orgs/') ? org.key : OPERATOR_TOKEN;
      const res = await unchanged(org.id, () => app.http[method](path()).set(bearer(token)).send(body(value)));
      expect(res.status, res.text).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.type).toBe('https://orgsync.dev/problems/invalid-input');
      expect(res.body.errors).toEqual([{ path: field, message: expect.stringMatching(what === 'NUL' ? /NUL character \(U\+0000\)/ : /lone UTF-16 surrogate/) }]);
    });
  }

  it('a NUL in an attribute name is named too', async () => {
    const res = await unchanged(org.id, () => app.http.post(u('policies')).set(bearer(org.key)).set('Content-Type', 'application/json').send('{"name":"x","a\\u0000b":1}'));
    expect(res.status).toBe(400);
    expect(res.body.errors[0]).toEqual({ path: 'a\u0000b', message: expect.stringMatching(/^the attribute name contains a NUL/) });
  });

  it('nested JSON with a NUL at the bottom: found, with its path', async () => {
    const raw = `{"name":${'['.repeat(30)}"\\u0000"${']'.repeat(30)}}`;
    const res = await unchanged(org.id, () => app.http.post(u('policies')).set(bearer(org.key)).set('Content-Type', 'application/json').send(raw));
    expect(res.status).toBe(400);
    expect(res.body.errors[0].path).toBe(`name${'[0]'.repeat(30)}`);
  });

  it('JSON nested deeper than 32 levels: 400 naming the depth, before it is parsed (issue 12 §2)', async () => {
    const raw = `{"name":${'['.repeat(5000)}"\\u0000"${']'.repeat(5000)}}`;
    const res = await unchanged(org.id, () => app.http.post(u('policies')).set(bearer(org.key)).set('Content-Type', 'application/json').send(raw));
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toMatch(/nests deeper than 32 levels of arrays and objects/);
  });
});

describe('admin API: query parameters and path segments', () => {
  it.each([
    ['accounts?email=', 'accounts?email=a%00b', 'query.email'],
    ['audit?action=', 'audit?action=policy%00', 'query.action'],
    ['accounts?email= (lone surrogate)', 'accounts?email=a%ED%A0%80b', null],
    ['a path segment', 'policies/%00', 'path'],
  ])('%s', async (_name, path, field) => {
    const res = await unchanged(org.id, () => rawRequest(app.svc.url, { method: 'GET', path: u(path), headers: bearer(org.key) }));
    expect(res.status, res.text).toBe(400);
    const body = JSON.parse(res.text);
    // %ED%A0%80 is not UTF-8 at all: the query parser reads it as U+FFFD (stored fine, found nothing) or refuses it — never a 500.
    if (field) expect(body.errors[0].path).toBe(field);
  });
});

describe('SCIM: NUL and lone surrogates in user bodies → 400 invalidValue naming the attribute', () => {
  it.each([
    ['userName', { userName: 'ann\u0000@unstorable.example' }, 'userName'],
    ['displayName', { userName: 'ann2@unstorable.example', displayName: NUL }, 'displayName'],
    ['title', { userName: 'ann3@unstorable.example', title: NUL }, 'title'],
    ['emails[0].value (lone surrogate)', { userName: 'ann4@unstorable.example', emails: [{ value: 'a\udc00@x.example', primary: true }] }, 'emails[0].value'],
    ['name.givenName (lone surrogate)', { userName: 'ann5@unstorable.example', name: { givenName: LONE } }, 'name.givenName'],
  ])('%s', async (_name, fields, path) => {
    const res = await unchanged(dir.orgId, () => app.http.post(`${dir.base}/Users`).set(bearer(dir.token)).set('Content-Type', 'application/scim+json')
      .send(JSON.stringify({ schemas: [SCIM_USER], active: true, ...fields })));
    expect(res.status, res.text).toBe(400);
    expect(res.body.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:Error']);
    expect(res.body.scimType).toBe('invalidValue');
    expect(res.body.detail).toMatch(new RegExp(`^${path.replace(/[[\].]/g, '\\$&')}: contains a (NUL|lone)`));
  });

  it('a NUL in a list filter', async () => {
    const res = await rawRequest(app.svc.url, { method: 'GET', path: `${dir.base}/Users?filter=${encodeURIComponent('userName eq "a\u0000"')}`, headers: bearer(dir.token) });
    expect(res.status, res.text).toBe(400);
    expect(JSON.parse(res.text).detail).toMatch(/^query\.filter: contains a NUL/);
  });

  it('a NUL in the directory id of the path (looked up before authentication)', async () => {
    const res = await rawRequest(app.svc.url, { method: 'GET', path: '/scim/v2/%00/Users', headers: bearer(dir.token) });
    expect(res.status, res.text).toBe(400);
    expect(JSON.parse(res.text).scimType).toBe('invalidValue');
  });
});

describe('sign-in surfaces', () => {
  it('POST /login with a NUL in the email → 400 problem naming email', async () => {
    const res = await app.http.post('/login').send({ email: 'ceo\u0000@unstorable.example' });
    expect(res.status, res.text).toBe(400);
    expect(res.body.errors).toEqual([{ path: 'email', message: expect.stringMatching(/NUL/) }]);
  });

  it('POST /login form-encoded with %00 → 400', async () => {
    const res = await rawRequest(app.svc.url, { method: 'POST', path: '/login', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' }, body: 'email=ceo%00%40x.example' });
    expect(res.status, res.text).toBe(400);
  });

  it('the SAML ACS with a NUL in RelayState → 400, not a 500', async () => {
    const res = await rawRequest(app.svc.url, { method: 'POST', path: '/sso/00000000-0000-4000-8000-000000000000/saml/acs', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'SAMLResponse=PHg%2B&RelayState=%00' });
    expect(res.status, res.text).toBe(400);
    expect(res.text).toMatch(/RelayState/);
  });

  it('console sign-in with a NUL in the admin key → 400 page naming the field', async () => {
    const agent = request.agent(app.svc.url);
    const form = await agent.get('/console').expect(200);
    const csrf = /name="csrf" value="([^"]+)"/.exec(form.text)![1]!.replace(/&amp;/g, '&');
    const res = await agent.post('/console/sign-in').type('form').send(`csrf=${encodeURIComponent(csrf)}&adminKey=osk_%00`);
    expect(res.status, res.text).toBe(400);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toMatch(/adminKey: contains a NUL/);
  });

  it('a console path with %00 → 400 page', async () => {
    const res = await rawRequest(app.svc.url, { method: 'GET', path: '/console/sso/%00' });
    expect(res.status, res.text).toBe(400);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
  });
});
