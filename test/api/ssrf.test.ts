/**
 * Issue 12 §3 over HTTP, with OUTBOUND_ALLOW_HOSTS empty (the production default): a billing
 * webhook, an OIDC issuer, an endpoint named by discovery and domain verification never reach the
 * service's own network — its database port, its own admin API, loopback IdPs — and the answer
 * never tells an open port from a closed one.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDnsHttpsVerifier } from '../../src/services/domain-verifier.js';
import { createOutbound } from '../../src/net/outbound.js';
import { createOidcRelyingParty, createOidcLoginSecrets } from '../../src/sso/oidc/index.js';
import { bearer, createOrg, startTestApp, type TestApp } from '../support/app.js';
import { insertDeltas, newIds } from '../billing/delivery-support.js';

let app: TestApp;
let org: { id: string; key: string };
let internal: Server;
let internalPort: number;
let hits: string[] = [];
let closedPort: number;

const listen = (handler: Parameters<typeof createServer>[1]) => new Promise<{ server: Server; port: number }>((resolve) => {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port }));
});

beforeAll(async () => {
  app = await startTestApp({ OUTBOUND_ALLOW_HOSTS: '' });
  org = await createOrg(app, 'SSRF Co');
  ({ server: internal, port: internalPort } = await listen((req, res) => { hits.push(`${req.method} ${req.url}`); res.end('{}'); }));
  const spare = await listen(() => {});
  closedPort = spare.port;
  await new Promise((r) => spare.server.close(r));
});
afterAll(async () => {
  internal?.closeAllConnections();
  await new Promise((r) => internal?.close(r));
  await app?.close();
});

const ownPort = () => new URL(app.svc.url).port;

describe('billing webhook URL', () => {
  const forms = () => [
    'http://127.0.0.1:5432/', `http://0.0.0.0:${ownPort()}/`, 'http://[::ffff:127.0.0.1]/', 'http://2130706433/',
    `http://127.0.0.1:${ownPort()}/api/v1/orgs`, `http://localhost:${internalPort}/`, 'http://169.254.169.254/latest/meta-data/',
    'http://10.1.2.3/hook', 'http://[fd00::1]/', 'http://0x7f.1/', 'http://0177.0.0.1/',
  ];
  it('each form is refused at save: 400 naming url with one fixed sentence; nothing stored', async () => {
    for (const url of forms()) {
      const res = await app.http.put(`/api/v1/orgs/${org.id}/billing/webhook`).set(bearer(org.key)).send({ url });
      expect(res.status, `${url}: ${res.text}`).toBe(400);
      expect(res.body.errors, url).toEqual([{ path: 'url', message: expect.stringMatching(/^destination not allowed: \S+ (is|resolves to) a private address$/) }]);
    }
    expect((await app.http.get(`/api/v1/orgs/${org.id}/billing/webhook`).set(bearer(org.key))).status).toBe(404);
    expect(hits).toEqual([]);
  });

  it('a webhook row that points inside (saved before the upgrade, or its DNS changed since) is refused at delivery, and nothing is sent', async () => {
    const other = await createOrg(app, 'SSRF Delivery Co');
    await app.svc.db.prisma.billingWebhook.create({ data: { orgId: other.id, url: `http://127.0.0.1:${internalPort}/hook`, secretEnc: 'whsec_legacy0123456789' } });
    await insertDeltas(app.svc.db, other.id, newIds(1), 1);
    await app.svc.scheduler.runJobOnce('outbox-delivery');
    const d = await app.svc.db.prisma.webhookDelivery.findFirstOrThrow({ where: { orgId: other.id } });
    expect(d.status).not.toBe('sent');
    expect(d.lastError).toMatch(/destination not allowed: 127\.0\.0\.1 is a private address/);
    expect(hits).toEqual([]);
  });
});

describe('OIDC issuer', () => {
  it('an issuer on loopback is refused at save in the same words whether its port is open (our API, a listener) or closed', async () => {
    const details: string[] = [];
    for (const port of [ownPort(), String(internalPort), String(closedPort), '5432']) {
      const res = await app.http.post(`/api/v1/orgs/${org.id}/sso-connections`).set(bearer(org.key))
        .send({ type: 'oidc', name: `Loopback ${port}`, issuer: `http://127.0.0.1:${port}`, clientId: 'c', clientSecret: 's'.repeat(32) });
      expect(res.status, res.text).toBe(400);
      details.push(JSON.stringify({ ...res.body, requestId: undefined }).replaceAll(port, 'PORT'));
    }
    expect(new Set(details).size, details.join('\n')).toBe(1);
    expect(details[0]).toMatch(/destination not allowed: 127\.0\.0\.1 is a private address/);
    expect(hits).toEqual([]);
  });

  it('a discovery document that points the token endpoint at another loopback port: the code is never POSTed there', async () => {
    // The issuer itself is allowed by name (an IdP inside the company network); its discovery document lies.
    const { server: op, port: opPort } = await listen((req, res) => {
      const issuer = `http://localhost:${(op.address() as { port: number }).port}`;
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({
        issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `http://127.0.0.1:${internalPort}/steal`,
        jwks_uri: `${issuer}/jwks`, response_types_supported: ['code'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'],
      }));
    });
    try {
      const rp = createOidcRelyingParty({ fetch: createOutbound({ allowHosts: ['localhost'], timeoutMs: 2000, maxResponseBytes: 65536 }).fetch });
      const conn = { id: 'c1', issuer: `http://localhost:${opPort}`, clientId: 'c', clientSecret: 's'.repeat(32) };
      const s = createOidcLoginSecrets();
      const err = await rp.completeCallback(conn, {
        redirectUri: 'http://localhost:3000/sso/c1/oidc/callback', params: new URLSearchParams({ code: 'attacker-chosen', state: s.state }),
        expectedState: s.state, expectedNonce: s.nonce, codeVerifier: s.codeVerifier, now: new Date(), clockSkewSeconds: 60,
      }).then(() => null, (e: Error) => e);
      expect(err?.message).toMatch(/destination not allowed: 127\.0\.0\.1 is a private address/);
      expect(hits).toEqual([]);
      // As the service builds it (with the guard's save-time check), the save itself is refused.
      const guard = createOutbound({ allowHosts: ['localhost'], timeoutMs: 2000, maxResponseBytes: 65536 });
      const saving = createOidcRelyingParty({ fetch: guard.fetch, checkUrl: guard.check });
      const atSave = await saving.validateIssuer(conn.issuer).then(() => null, (e: Error) => e);
      expect(atSave?.message).toMatch(/token_endpoint: destination not allowed: 127\.0\.0\.1 is a private address/);
    } finally {
      op.closeAllConnections();
      await new Promise((r) => op.close(r));
    }
  });
});

describe('domain verification', () => {
  it('the HTTPS proof of a name that resolves to loopback is not fetched; the admin reads one fixed sentence, no status', async () => {
    const verifier = createDnsHttpsVerifier({ fetch: createOutbound({ allowHosts: [], timeoutMs: 2000, maxResponseBytes: 65536 }).fetch });
    const out = await verifier.check('localhost', 'token');
    expect(out.ok).toBe(false);
    expect(out.ok ? [] : out.tried).toContain('https://localhost/.well-known/orgsync-verification.txt: destination not allowed: localhost resolves to a private address');
  });
});
