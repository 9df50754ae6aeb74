import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, OPERATOR_TOKEN, startTestApp, type TestApp } from '../support/app.js';
import { orgSnapshot } from '../support/snapshot.js';

let app: TestApp;
let org: { id: string; key: string; defaultPolicyId: string };
const u = (p: string) => `/api/v1/orgs/${org.id}/${p}`;

beforeAll(async () => {
  app = await startTestApp();
  org = await createOrg(app, 'Bad Input Ltd');
});
afterAll(async () => app?.close());

async function unchanged<T>(fn: () => Promise<T>): Promise<T> {
  const before = await orgSnapshot(app.svc.db, org.id);
  const orgs = await app.svc.db.prisma.org.count();
  const out = await fn();
  expect(await orgSnapshot(app.svc.db, org.id), 'nothing changed').toEqual(before);
  expect(await app.svc.db.prisma.org.count(), 'no org created').toBe(orgs);
  return out;
}

describe('malformed, mistyped and oversized bodies → 4xx problem+json, nothing changes', () => {
  it.each([
    ['truncated JSON', '{"name": "x"', 400, 'malformed-json'],
    ['trailing garbage', '{"name": "x"} x', 400, 'malformed-json'],
    ['a JSON string', '"policy"', 400, 'malformed-json'],
    ['a JSON array', '[{"name":"x"}]', 400, 'invalid-input'],
    ['JSON null', 'null', 400, 'malformed-json'],
  ])('%s', async (_name, raw, status, type) => {
    const res = await unchanged(() => app.http.post(u('policies')).set(bearer(org.key)).set('Content-Type', 'application/json').send(raw));
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ type: `https://orgsync.dev/problems/${type}`, status });
    expect(res.body.requestId).toBe(res.headers['x-request-id']);
  });

  it('wrong types and unknown fields: every bad field is listed', async () => {
    const res = await unchanged(() =>
      app.http.post(u('policies')).set(bearer(org.key)).send({
        name: 42, nonBillable: 'yes', sessionDurationMinutes: 1.5, passwordPolicy: { minStrength: 9, colour: 'red' }, ssoConnectionId: 'abc', extra: true,
      }),
    );
    expect(res.status).toBe(400);
    const paths = res.body.errors.map((e: { path: string }) => e.path).sort();
    expect(paths).toEqual(['extra', 'name', 'nonBillable', 'passwordPolicy.colour', 'passwordPolicy.minStrength', 'sessionDurationMinutes', 'ssoConnectionId']);
    expect(res.body.errors.find((e: { path: string }) => e.path === 'extra').message).toBe('unknown field');
  });

  it('a missing required field is named', async () => {
    const res = await unchanged(() => app.http.post(u('accounts')).set(bearer(org.key)).send({ displayName: 'No Email' }));
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([expect.objectContaining({ path: 'email' })]);
  });

  it('a body over the cap → 413', async () => {
    const res = await unchanged(() => app.http.post(u('accounts')).set(bearer(org.key)).send({ email: 'a@b.example', displayName: 'x'.repeat(200_000) }));
    expect(res.status).toBe(413);
    expect(res.body.type).toBe('https://orgsync.dev/problems/body-too-large');
  });

  it('strings over their own cap → 400 even under the body cap', async () => {
    const res = await unchanged(() => app.http.post(u('sites')).set(bearer(org.key)).send({ name: 'x'.repeat(5000), products: ['jira'] }));
    expect(res.status).toBe(400);
    expect(res.body.errors[0]).toEqual({ path: 'name', message: 'at most 200 characters' });
  });

  it('a body in another format → 415', async () => {
    const res = await unchanged(() => app.http.post(u('policies')).set(bearer(org.key)).set('Content-Type', 'text/plain').send('name=x'));
    expect(res.status).toBe(415);
    const form = await unchanged(() => app.http.post(u('policies')).set(bearer(org.key)).type('form').send({ name: 'x' }));
    expect(form.status).toBe(415);
  });

  it('application/scim+json-style vendor types are accepted as JSON', async () => {
    const res = await app.http.post(u('sites')).set(bearer(org.key)).set('Content-Type', 'application/vnd.orgsync+json').send(JSON.stringify({ name: 'vendor', products: [] }));
    expect(res.status).toBe(201);
  });

  it('an unknown enum value names the allowed ones', async () => {
    const res = await unchanged(() => app.http.post(u('sites')).set(bearer(org.key)).send({ name: 's', products: ['jira', 'excel'] }));
    expect(res.status).toBe(400);
    expect(res.body.errors[0].path).toBe('products.1');
    expect(res.body.errors[0].message).toMatch(/jira/);
  });

  it('bad query parameters → 400 naming them', async () => {
    const res = await app.http.get(u('accounts?limit=0&bogus=1')).set(bearer(org.key));
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['query.bogus', 'query.limit']);
    const cursor = await app.http.get(u('accounts?cursor=notacursor')).set(bearer(org.key));
    expect(cursor.status).toBe(400);
    expect(cursor.body.errors[0].path).toBe('cursor');
  });

  it('a bad email or domain is refused with the field named', async () => {
    const email = await unchanged(() => app.http.post(u('accounts')).set(bearer(org.key)).send({ email: 'not-an-email' }));
    expect(email.status).toBe(400);
    expect(email.body.errors[0].path).toBe('email');
    const domain = await unchanged(() => app.http.post(u('domains')).set(bearer(org.key)).send({ domain: 'no_dots' }));
    expect(domain.status).toBe(400);
    expect(domain.body.errors[0].path).toBe('domain');
  });
});

describe('authentication', () => {
  it.each([
    ['no header', undefined],
    ['another scheme', 'Basic dXNlcjpwYXNz'],
    ['garbage token', 'Bearer nope'],
    ['well-formed but unknown key', `Bearer osk_${'0'.repeat(32)}_${'A'.repeat(43)}`],
  ])('%s → 401 with WWW-Authenticate', async (_n, header) => {
    const req = app.http.get(u('accounts'));
    const res = await (header ? req.set('Authorization', header) : req);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(res.body.type).toBe('https://orgsync.dev/problems/unauthorized');
  });

  it('an org key on an operator route → 403; the operator creates orgs', async () => {
    const res = await unchanged(() => app.http.post('/api/v1/orgs').set(bearer(org.key)).send({ name: 'Nope' }));
    expect(res.status).toBe(403);
    const ok = await app.http.post('/api/v1/orgs').set(bearer(OPERATOR_TOKEN)).send({ name: 'Yes' });
    expect(ok.status).toBe(201);
    expect(ok.body.adminKey).toMatch(/^osk_/);
  });

  it('only the operator may verify a domain by override; an org admin gets 403 and nothing changes', async () => {
    await app.http.post(u('domains')).set(bearer(org.key)).send({ domain: 'override.example' }).expect(201);
    const res = await unchanged(() => app.http.post(u('domains/override.example/verify')).set(bearer(org.key)).send({ override: true }));
    expect(res.status).toBe(403);
    const op = await app.http.post(u('domains/override.example/verify')).set(bearer(OPERATOR_TOKEN)).send({ override: true }).expect(200);
    expect(op.body).toMatchObject({ verified: true, verifiedBy: 'operator-override' });
    const audit = await app.http.get(u('audit?action=domain.verify.override')).set(bearer(org.key)).expect(200);
    expect(audit.body.items).toHaveLength(1);
    expect(audit.body.items[0]).toMatchObject({ actor: 'operator', targetId: 'override.example', after: { verified: true, method: 'operator-override' } });
  });

  it('a failed verification → 422 saying what was tried, domain stays unverified', async () => {
    await app.http.post(u('domains')).set(bearer(org.key)).send({ domain: 'unproven.example' }).expect(201);
    const res = await unchanged(() => app.http.post(u('domains/unproven.example/verify')).set(bearer(org.key)).send({}));
    expect(res.status).toBe(422);
    expect(res.body.detail).toContain('DNS TXT unproven.example');
    expect(res.body.detail).toContain('/.well-known/orgsync-verification.txt');
  });
});

describe('unknown routes and ids', () => {
  it('an unknown path → 404 problem', async () => {
    const res = await app.http.get('/api/v1/nope').set(bearer(org.key));
    expect(res.status).toBe(404);
    expect(res.body.type).toBe('https://orgsync.dev/problems/not-found');
  });
  it('a malformed id → 400 naming it; a well-formed unknown id → 404', async () => {
    const bad = await app.http.get(u('accounts/123')).set(bearer(org.key));
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0]).toEqual({ path: 'params.id', message: 'must be a UUID' });
    await app.http.get(u('accounts/00000000-0000-4000-8000-000000000000')).set(bearer(org.key)).expect(404);
  });
});
