/**
 * Issue 12 §1 (part): errors that already carry a 4xx keep it. A path parameter that is not
 * valid percent-encoding, and a body whose Content-Encoding does not inflate, answered 500 on
 * every surface; now 400 with a body that names the problem, and nothing is written.
 */
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, OPERATOR_TOKEN, startTestApp, type TestApp } from '../support/app.js';

let app: TestApp;
let org: { id: string; key: string };
beforeAll(async () => {
  app = await startTestApp();
  org = await createOrg(app, 'Carried Co');
});
afterAll(async () => {
  await app?.close();
});

const BAD = '%E0%A4%A';
const corruptGzip = () => { const z = gzipSync(Buffer.from('{"name":"x"}')); z[z.length - 5]! ^= 0xff; return z.subarray(0, z.length - 3); };

describe('malformed percent-encoding in a path parameter is a 400 on every surface', () => {
  it.each([
    ['admin API', `/api/v1/orgs/${BAD}`],
    ['admin API, nested', `/api/v1/orgs/ORG/policies/${BAD}`],
    ['SCIM', `/scim/v2/${BAD}/Users`],
    ['SSO', `/sso/${BAD}/saml/metadata`],
    ['console', `/console/sso/${BAD}`],
  ])('%s: %s', async (_surface, path) => {
    const res = await app.http.get(path.replace('ORG', org.id)).set(bearer(org.key)).set('Accept', 'application/json');
    expect(res.status, res.text.slice(0, 300)).toBe(400);
    expect(res.text).toMatch(/percent-encoding|decode/i);
  });
});

describe('a corrupt gzip body is a 400, nothing written', () => {
  it('admin API POST policies', async () => {
    const before = (await app.http.get(`/api/v1/orgs/${org.id}/policies`).set(bearer(org.key)).expect(200)).body.items.length;
    const res = await app.http.post(`/api/v1/orgs/${org.id}/policies`).set(bearer(org.key))
      .set('Content-Type', 'application/json').set('Content-Encoding', 'gzip').send(corruptGzip());
    expect(res.status, res.text).toBe(400);
    expect(res.body.status).toBe(400);
    expect((await app.http.get(`/api/v1/orgs/${org.id}/policies`).set(bearer(org.key)).expect(200)).body.items.length).toBe(before);
  });

  it('operator API POST orgs', async () => {
    const res = await app.http.post('/api/v1/orgs').set(bearer(OPERATOR_TOKEN)).set('Content-Type', 'application/json').set('Content-Encoding', 'gzip').send(corruptGzip());
    expect(res.status, res.text).toBe(400);
  });

  it('POST /login', async () => {
    const res = await app.http.post('/login').set('Content-Type', 'application/json').set('Content-Encoding', 'gzip').set('Accept', 'application/json').send(corruptGzip());
    expect(res.status, res.text).toBe(400);
  });
});
