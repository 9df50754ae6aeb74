import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, startTestApp, type TestApp } from '../support/app.js';

/**
 * Regression (found by test/api/hostile-input.property.test.ts on PostgreSQL, seed -1391648105):
 * SAML metadata that has no root element — `x`, or the bytes of malformed percent-encoding —
 * made xmldom throw past its error handler: 500 on the console's add-connection form and the
 * admin API. It is a 400 naming metadataXml, and no connection is stored.
 */
let app: TestApp;
let org: { id: string; key: string };
beforeAll(async () => {
  app = await startTestApp();
  org = await createOrg(app, 'Metadata Co');
});
afterAll(async () => app?.close());

const count = () => app.svc.db.prisma.ssoConnection.count({ where: { orgId: org.id } });

describe('SAML metadata without a root element', () => {
  it.each(['x', '\uFFFD\uFFFD', '   ', '<'])('admin API: %j is a 400 on metadataXml', async (metadataXml) => {
    const res = await app.http.post(`/api/v1/orgs/${org.id}/sso-connections`).set(bearer(org.key)).send({ type: 'saml', name: `m${Math.random()}`, metadataXml });
    expect(res.status, res.text).toBe(400);
    expect(JSON.stringify(res.body)).toContain('metadataXml');
    expect(await count()).toBe(0);
  });

  it('console: the add-connection form answers 400 with the field named', async () => {
    const agent = request.agent(app.svc.url);
    const form = await agent.get('/console');
    const loginCsrf = /name="csrf" value="([^"]+)"/.exec(form.text)![1]!.replace(/&amp;/g, '&');
    await agent.post('/console/sign-in').type('form').send({ csrf: loginCsrf, adminKey: org.key }).expect(303);
    const page = await agent.get('/console/sso').expect(200);
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)![1]!.replace(/&amp;/g, '&');
    const res = await agent.post('/console/sso').set('Content-Type', 'application/x-www-form-urlencoded').send(`csrf=${encodeURIComponent(csrf)}&name=x&metadataXml=%E0%A4%A`);
    expect(res.status).toBe(400);
    expect(res.text).toContain('not well-formed XML');
    expect(await count()).toBe(0);
  });
});
