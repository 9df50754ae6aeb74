/**
 * Issue 12 §4: a refused SAML answer is written as an `sso.login.refused` audit row, and nobody
 * had to authenticate to send it. One client address can no longer fill a connection's audit log:
 * a burst of 20 rows per connection and address, then one per 10 s; the refusal page is shown
 * every time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrg, createSamlConnection, startTestApp, type TestApp } from '../../support/app.js';
import { b64 } from '../../support/saml-idp.js';

let app: TestApp;
let org: { id: string; key: string };
let conn: string;
let other: string;

beforeAll(async () => {
  app = await startTestApp();
  org = await createOrg(app, 'Throttle Co');
  conn = (await createSamlConnection(app, org, { name: 'One' })).id;
  other = (await createSamlConnection(app, org, { name: 'Two', entityId: 'https://idp2.test.example/metadata' })).id;
});
afterAll(async () => app?.close());

const refusals = (connectionId: string) => app.svc.db.prisma.auditEvent.count({ where: { orgId: org.id, action: 'sso.login.refused', targetId: connectionId } });
const post = (connectionId: string) => app.http.post(`/sso/${connectionId}/saml/acs`).type('form').set('Accept', 'application/json').send({ SAMLResponse: b64('<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>') });

describe('refusal audit rows are throttled per connection and client address', () => {
  it('60 junk answers from one address: every one refused, 20 audit rows; another connection still gets its own', async () => {
    for (let i = 0; i < 60; i++) {
      const res = await post(conn);
      expect(res.status, res.text).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(res.body.reason).toBeTruthy();
    }
    expect(await refusals(conn)).toBe(20);
    await post(other).expect((r) => expect(r.status).toBeGreaterThanOrEqual(400));
    expect(await refusals(other)).toBe(1);
  });
});
