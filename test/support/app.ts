import request from 'supertest';
import { loadConfig } from '../../src/config.js';
import { startService, type RunningService } from '../../src/server.js';
import type { DomainVerifier, VerificationResult } from '../../src/services/domain-verifier.js';
import { createTestDatabase, type TestDatabase } from './database.js';

export const OPERATOR_TOKEN = 'test-operator-token-0123456789';

/**
 * A verifier the test drives: domains listed in `published` answer with their token over
 * DNS, everything else fails the way a real lookup would.
 */
export function scriptedVerifier() {
  const published = new Map<string, Set<string>>();
  const verifier: DomainVerifier = {
    async check(domain, token): Promise<VerificationResult> {
      if (published.get(domain)?.has(token)) return { ok: true, method: 'dns' };
      return { ok: false, tried: [`DNS TXT ${domain}: ENOTFOUND`, `https://${domain}/.well-known/orgsync-verification.txt: fetch failed`] };
    },
  };
  return { verifier, publish: (domain: string, token: string) => void published.set(domain, (published.get(domain) ?? new Set()).add(token)) };
}

export type TestApp = {
  svc: RunningService;
  tdb: TestDatabase;
  http: ReturnType<typeof request>;
  verifier: ReturnType<typeof scriptedVerifier>;
  close(): Promise<void>;
};

/**
 * The tests' identity providers and webhook receivers listen on loopback: allowed by default here.
 * Tests of the outbound guard pass OUTBOUND_ALLOW_HOSTS: '' (nothing allowed, the production default).
 */
export const TEST_OUTBOUND = { OUTBOUND_ALLOW_HOSTS: '127.0.0.1,localhost,::1' };

/** The real service on a real HTTP server over the test's own database. */
export async function startTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const tdb = await createTestDatabase();
  const verifier = scriptedVerifier();
  // Cron jobs stay off unless a test turns them on (JOBS_ENABLED=true); svc.scheduler.runJobOnce works either way.
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: 'memory', ORGSYNC_OPERATOR_TOKEN: OPERATOR_TOKEN, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', JOBS_ENABLED: 'false', ...TEST_OUTBOUND, ...env });
  const svc = await startService(config, { db: tdb.db, verifier: verifier.verifier });
  return {
    svc, tdb, verifier,
    http: request(svc.url),
    close: async () => {
      await svc.stop();
      if (tdb.schema) await tdb.drop();
    },
  };
}

export const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/** Creates an org through the operator API and returns its id and first admin key. */
export async function createOrg(app: TestApp, name = 'Acme'): Promise<{ id: string; key: string; defaultPolicyId: string }> {
  const res = await app.http.post('/api/v1/orgs').set(bearer(OPERATOR_TOKEN)).send({ name }).expect(201);
  return { id: res.body.id, key: res.body.adminKey, defaultPolicyId: res.body.defaultPolicyId };
}

/** Claims and verifies a domain the way an admin would (the DNS record is "published" first). */
export async function verifyDomain(app: TestApp, org: { id: string; key: string }, domain: string): Promise<void> {
  const claim = await app.http.post(`/api/v1/orgs/${org.id}/domains`).set(bearer(org.key)).send({ domain }).expect(201);
  app.verifier.publish(domain, claim.body.verificationToken);
  await app.http.post(`/api/v1/orgs/${org.id}/domains/${domain}/verify`).set(bearer(org.key)).send({}).expect(200);
}

/** A SAML connection through the admin API, signed by the test IdP key in fixtures/saml/. */
export async function createSamlConnection(
  app: TestApp, org: { id: string; key: string },
  fields: { name?: string; entityId?: string; ssoUrl?: string; jit?: boolean; allowIdpInitiated?: boolean; rolloutPolicyId?: string | null } = {},
): Promise<{ id: string; body: Record<string, unknown> }> {
  const { readFileSync } = await import('node:fs');
  const certificate = readFileSync(new URL('../../fixtures/saml/idp-cert.pem', import.meta.url), 'utf8');
  const res = await app.http.post(`/api/v1/orgs/${org.id}/sso-connections`).set(bearer(org.key)).send({
    type: 'saml', name: fields.name ?? 'Test IdP', entityId: fields.entityId ?? 'https://idp.test.example/metadata',
    ssoUrl: fields.ssoUrl ?? 'http://127.0.0.1:9/sso', certificate, ...fields,
  });
  if (res.status !== 201) throw new Error(`creating the SAML connection: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.id, body: res.body };
}
