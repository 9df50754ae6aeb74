import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deliverPending } from '../../src/billing/delivery-worker.js';
import { sendDueWebhooks } from '../../src/billing/webhook-sender.js';
import { verifySignature } from '../../src/billing/webhook-signature.js';
import { createSecretBox } from '../../src/services/secret-box.js';
import { migrateAndRepair } from '../../src/services/migration-repairs.js';
import { bearer, createOrg, startTestApp, type TestApp } from '../support/app.js';
import { fakeClock, insertDeltas, newIds, startReceiver, type Receiver } from './delivery-support.js';

/**
 * Issue 12 §5, regression "the billing webhook signing secret is stored in plaintext": the row
 * holds it sealed (AES-256-GCM under SECRET_KEY), deliveries are still signed with the secret the
 * admin was shown, rows written before the migration are read as they are and sealed by the
 * post-migration repair. And regression "the secret box accepts 4-byte AES-GCM tags".
 */
const SECRET_KEY = 'webhook-secret-at-rest-test-key-0123456789';
const MIGRATION = '20261207110000_console_sessions_sealed_webhook_secret';
let app: TestApp;
let receiver: Receiver;
const db = () => app.svc.db;
const box = createSecretBox(SECRET_KEY);
const u = (o: { id: string }, p: string) => `/api/v1/orgs/${o.id}/${p}`;
const stored = async (orgId: string) => (await db().prisma.billingWebhook.findUniqueOrThrow({ where: { orgId } })).secretEnc;

beforeAll(async () => {
  app = await startTestApp({ SECRET_KEY, JOBS_ENABLED: 'false' });
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
  await app?.close();
});
afterEach(() => void (receiver.requests.length = 0));

/** Applies pending deltas and sends them; returns what the receiver got. */
async function deliverAll(orgId: string, n = 2) {
  const clock = fakeClock();
  await insertDeltas(db(), orgId, newIds(1), n);
  await deliverPending(db(), { now: clock.now });
  const sent = await sendDueWebhooks(db(), { maxAttempts: 3, baseDelayMs: 10, timeoutMs: 2000, now: clock.now, box: app.svc.services.box });
  return { sent, clock, requests: receiver.requests.filter((r) => JSON.parse(r.rawBody).orgId === orgId) };
}

const verifies = (secret: string, r: { headers: Record<string, unknown>; rawBody: string }, now: Date) =>
  verifySignature(secret, r.headers['orgsync-signature'] as string, r.rawBody, 300, { now }).ok;

describe('billing webhook secret at rest (issue 12 §5)', () => {
  it('regression: the stored row is not the plaintext secret; it opens with SECRET_KEY; deliveries verify with the secret shown', async () => {
    const org = await createOrg(app, 'Sealed Co');
    const res = await app.http.put(u(org, 'billing/webhook')).set(bearer(org.key)).send({ url: receiver.url }).expect(200);
    const secret: string = res.body.secret;
    expect(secret).toMatch(/^whsec_/);
    const row = await stored(org.id);
    expect(row).not.toContain(secret);
    expect(row).not.toContain(secret.slice(6));
    expect(row).toMatch(/^v1\./);
    expect(box.decrypt(row)).toBe(secret);
    const everything = JSON.stringify(await db().prisma.$queryRawUnsafe('SELECT * FROM "BillingWebhook"'));
    expect(everything).not.toContain(secret.slice(6));

    const { sent, clock, requests } = await deliverAll(org.id);
    expect(sent).toEqual({ sent: 2, failed: 0, dead: 0 });
    expect(requests).toHaveLength(2);
    for (const r of requests) expect(verifies(secret, r, clock.now())).toBe(true);
  });

  it('rotation stores the new secret sealed; later deliveries verify with it and not with the old one', async () => {
    const org = await createOrg(app, 'Rotate Co');
    const first = (await app.http.put(u(org, 'billing/webhook')).set(bearer(org.key)).send({ url: receiver.url }).expect(200)).body.secret as string;
    const rotated = (await app.http.post(u(org, 'billing/webhook/secret')).set(bearer(org.key)).send({}).expect(200)).body.secret as string;
    expect(rotated).not.toBe(first);
    const row = await stored(org.id);
    expect(row).not.toContain(rotated);
    expect(box.decrypt(row)).toBe(rotated);
    const { clock, requests } = await deliverAll(org.id, 1);
    expect(verifies(rotated, requests[0]!, clock.now())).toBe(true);
    expect(verifies(first, requests[0]!, clock.now())).toBe(false);
  });

  it('a secret sealed under another SECRET_KEY is never sent unsigned: the attempt fails, naming the fix', async () => {
    const org = await createOrg(app, 'Other Key Co');
    await app.http.put(u(org, 'billing/webhook')).set(bearer(org.key)).send({ url: receiver.url }).expect(200);
    await db().prisma.billingWebhook.update({ where: { orgId: org.id }, data: { secretEnc: createSecretBox('another-key-another-key-another-key!').encrypt('whsec_x') } });
    const { sent, requests } = await deliverAll(org.id, 1);
    expect(sent).toEqual({ sent: 0, failed: 1, dead: 0 });
    expect(requests).toHaveLength(0);
    const [d] = await db().prisma.webhookDelivery.findMany({ where: { orgId: org.id } });
    expect(d!.lastError).toContain('cannot be decrypted with this service\'s SECRET_KEY');
    expect(d!.lastError).toContain('billing/webhook/secret');
  });
});

describe('the migration and its repair step', () => {
  it('a plaintext secret from before the migration is read as it is (deliveries keep working), then sealed by the repair; without a durable key it is left alone', async () => {
    const org = await createOrg(app, 'Legacy Co');
    await app.http.put(u(org, 'billing/webhook')).set(bearer(org.key)).send({ url: receiver.url }).expect(200);
    const legacy = `whsec_${randomBytes(32).toString('base64url')}`;

    // The database as an older version left it: the column `secret`, in plaintext, and the migration not applied.
    for (const stmt of [
      `DROP TABLE "ConsoleSession"`,
      `ALTER TABLE "BillingWebhook" RENAME COLUMN "secretEnc" TO "secret"`,
      `UPDATE "BillingWebhook" SET "secret" = '${legacy}' WHERE "orgId" = '${org.id}'`,
      `DELETE FROM "_prisma_migrations" WHERE "migration_name" = '${MIGRATION}'`,
    ]) await db().prisma.$executeRawUnsafe(stmt);

    // A process whose key is not durable migrates but does not seal.
    const first = await migrateAndRepair(db(), { box: null });
    expect(first.applied).toEqual([MIGRATION]);
    expect(first.webhookSecretsSealed).toBeNull();
    expect(await stored(org.id), 'still the plaintext, in the renamed column').toBe(legacy);
    // Reads tolerate the transition: deliveries are signed with the legacy secret.
    let out = await deliverAll(org.id, 1);
    // sendDueWebhooks counts every org's due deliveries (an earlier test's failed one may come due
    // again, its retry delay is jittered): this org's own delivery is what must have been sent.
    expect(out.sent.sent).toBeGreaterThanOrEqual(1);
    expect((await db().prisma.webhookDelivery.findMany({ where: { orgId: org.id } })).map((d) => d.status)).toEqual(['sent']);
    expect(verifies(legacy, out.requests[0]!, out.clock.now())).toBe(true);
    receiver.requests.length = 0;

    // The next run with the durable key seals it (and a run after that finds nothing to do).
    const second = await migrateAndRepair(db(), { box });
    expect(second).toMatchObject({ applied: [], webhookSecretsSealed: 1 });
    const row = await stored(org.id);
    expect(row).not.toContain(legacy);
    expect(box.decrypt(row)).toBe(legacy);
    expect((await migrateAndRepair(db(), { box })).webhookSecretsSealed).toBe(0);
    out = await deliverAll(org.id, 1);
    expect(verifies(legacy, out.requests[0]!, out.clock.now()), 'the receiver keeps its secret').toBe(true);
  });
});

describe('secret box: the full AES-GCM tag (issue 12 §5)', () => {
  const sealed = box.encrypt('whsec_the_secret');
  const [v, iv, tag, ct] = sealed.split('.') as [string, string, string, string];
  const withTag = (t: Buffer) => [v, iv, t.toString('base64url'), ct].join('.');

  it('opens what it sealed (16-byte tag, 12-byte IV)', () => {
    expect(Buffer.from(tag, 'base64url')).toHaveLength(16);
    expect(Buffer.from(iv, 'base64url')).toHaveLength(12);
    expect(box.decrypt(sealed)).toBe('whsec_the_secret');
  });

  it.each([4, 8, 12, 15])('regression: refuses the genuine tag truncated to %i bytes (GCM would verify the prefix)', (n) => {
    expect(() => box.decrypt(withTag(Buffer.from(tag, 'base64url').subarray(0, n)))).toThrow(/wrong length/);
  });

  it('refuses a 4-byte tag computed with the right key (a forgery needs ~2^32 tries at that length)', () => {
    // What an attacker who guessed a 4-byte tag would hold: the real key's own truncated tag.
    const encKey = Buffer.from(hkdfSync('sha256', Buffer.from(SECRET_KEY), Buffer.from('orgsync'), Buffer.from('orgsync secret encryption v1'), 32));
    const ivBytes = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', encKey, ivBytes, { authTagLength: 4 });
    const body = Buffer.concat([c.update('whsec_forged', 'utf8'), c.final()]);
    const forged = ['v1', ivBytes.toString('base64url'), c.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
    expect(() => box.decrypt(forged)).toThrow();
  });

  it('refuses a longer tag, another IV length, a flipped tag bit and a missing part', () => {
    expect(() => box.decrypt(withTag(Buffer.concat([Buffer.from(tag, 'base64url'), Buffer.alloc(1)])))).toThrow();
    expect(() => box.decrypt([v, randomBytes(16).toString('base64url'), tag, ct].join('.'))).toThrow(/wrong length/);
    const flipped = Buffer.from(tag, 'base64url');
    flipped[0]! ^= 1;
    expect(() => box.decrypt(withTag(flipped))).toThrow();
    expect(() => box.decrypt([v, iv, tag].join('.'))).toThrow();
  });
});
