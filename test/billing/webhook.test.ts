import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deliverPending, drainPending } from '../../src/billing/delivery-worker.js';
import { webhookStore } from '../../src/billing/ledger-store.js';
import { retryDelayMs, sendDueWebhooks } from '../../src/billing/webhook-sender.js';
import { signatureHeader, verifySignature } from '../../src/billing/webhook-signature.js';
import { webhookUrlProblem } from '../../src/billing/webhook-service.js';
import { bearer, createOrg, startTestApp, type TestApp } from '../support/app.js';
import { orgSnapshot } from '../support/snapshot.js';
import { fakeClock, insertDeltas, newIds, startReceiver, type Receiver } from './delivery-support.js';

type Org = { id: string; key: string };
let app: TestApp;
let receiver: Receiver;
const u = (o: Org, p: string) => `/api/v1/orgs/${o.id}/${p}`;
const db = () => app.svc.db;

beforeAll(async () => {
  // Jobs off: these tests drive the worker and the sender by hand, with their own clocks.
  app = await startTestApp({ JOBS_ENABLED: 'false' });
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
  await app?.close();
});
afterEach(() => {
  receiver.requests.length = 0;
  Object.assign(receiver.state, { failNext: 0, failStatus: 500, delayMs: 0, status: 204, redirectTo: null });
});

/** An org with a webhook pointing at the receiver; returns its secret. */
async function orgWithWebhook(name: string): Promise<Org & { secret: string }> {
  const org = await createOrg(app, name);
  const res = await app.http.put(u(org, 'billing/webhook')).set(bearer(org.key)).send({ url: receiver.url }).expect(200);
  return { ...org, secret: res.body.secret };
}

const delivery = (deltaId: string) => db().prisma.webhookDelivery.findUniqueOrThrow({ where: { deltaId } });

describe('webhook signature', () => {
  const secret = 'whsec_0123456789abcdef';
  const body = JSON.stringify({ id: 'b7d8f0a4-9d2c-4c1e-9f77-1c3a8e2f4d10', kind: 'added' });
  const at = new Date('2030-01-01T00:00:00Z');
  const t = Math.floor(at.getTime() / 1000);
  const header = signatureHeader(secret, 'b7d8f0a4-9d2c-4c1e-9f77-1c3a8e2f4d10', t, body);

  it('has the documented format and verifies with the secret', () => {
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifySignature(secret, header, body, 300, { now: at })).toEqual({ ok: true, id: 'b7d8f0a4-9d2c-4c1e-9f77-1c3a8e2f4d10', timestamp: t });
    expect(verifySignature(secret, header, Buffer.from(body), 300, { now: new Date(at.getTime() + 299_000) }).ok).toBe(true);
  });

  it.each([
    ['a wrong secret', () => verifySignature('whsec_other', header, body, 300, { now: at }), 'signature-mismatch'],
    ['a changed body', () => verifySignature(secret, header, body.replace('added', 'removed'), 300, { now: at }), 'signature-mismatch'],
    ['another delta id', () => verifySignature(secret, header, body, 300, { now: at, id: randomUUID() }), 'signature-mismatch'],
    ['a stale timestamp', () => verifySignature(secret, header, body, 300, { now: new Date(at.getTime() + 301_000) }), 'stale-timestamp'],
    ['a timestamp from the future', () => verifySignature(secret, header, body, 300, { now: new Date(at.getTime() - 301_000) }), 'stale-timestamp'],
    ['a moved timestamp', () => verifySignature(secret, header.replace(`t=${t}`, `t=${t + 1}`), body, 300, { now: at }), 'signature-mismatch'],
    ['no header', () => verifySignature(secret, undefined, body, 300, { now: at }), 'malformed-header'],
    ['no v1', () => verifySignature(secret, `t=${t}`, body, 300, { now: at }), 'malformed-header'],
    ['a short v1', () => verifySignature(secret, `t=${t},v1=abc`, body, 300, { now: at }), 'malformed-header'],
    ['a body without id', () => verifySignature(secret, header, '{"x":1}', 300, { now: at }), 'malformed-body'],
  ] as const)('fails with %s', (_name, check, reason) => {
    expect(check()).toEqual({ ok: false, reason });
  });

  it('accepts any of several v1 signatures (a receiver mid-rotation)', () => {
    const other = signatureHeader('whsec_old', 'b7d8f0a4-9d2c-4c1e-9f77-1c3a8e2f4d10', t, body).split(',')[1];
    expect(verifySignature(secret, `${header},${other}`, body, 300, { now: at }).ok).toBe(true);
  });
});

describe('retry delays', () => {
  it('full jitter under an exponentially growing ceiling, capped', () => {
    expect([1, 2, 3, 4].map((n) => retryDelayMs(n, 1000, () => 0.999999))).toEqual([1000, 2000, 4000, 8000]);
    expect(retryDelayMs(3, 1000, () => 0)).toBe(0);
    const capped = retryDelayMs(60, 1000, () => 0.999999);
    expect(capped).toBeLessThanOrEqual(6 * 3600_000);
    expect(capped).toBeGreaterThan(6 * 3600_000 - 100);
  });
});

describe('sending deliveries to a real receiver', () => {
  const opts = (clock: ReturnType<typeof fakeClock>, extra: object = {}) => ({
    maxAttempts: 4, baseDelayMs: 1000, timeoutMs: 2000, now: clock.now, random: () => 0.5, box: app.svc.services.box, ...extra,
  });

  it('POSTs the delta JSON, signed, with timestamp and idempotency key; 2xx → sent', async () => {
    const clock = fakeClock();
    const org = await orgWithWebhook('Signed Co');
    await insertDeltas(db(), org.id, newIds(2), 3);
    expect(await deliverPending(db(), { now: clock.now })).toMatchObject({ applied: 3, webhooksQueued: 3 });
    expect(await sendDueWebhooks(db(), opts(clock))).toEqual({ sent: 3, failed: 0, dead: 0 });

    expect(receiver.requests).toHaveLength(3);
    const ledger = await db().prisma.ledgerEntry.findMany({ where: { orgId: org.id }, orderBy: { streamSeq: 'asc' } });
    for (const r of receiver.requests) {
      expect(r.method).toBe('POST');
      expect(r.headers['content-type']).toBe('application/json');
      const body = JSON.parse(r.rawBody);
      expect(Object.keys(body).sort()).toEqual(['accountId', 'cause', 'id', 'kind', 'occurredAt', 'orgId', 'reasons']);
      const entry = ledger.find((l) => l.deltaId === body.id)!;
      expect(body).toEqual({
        id: entry.deltaId, orgId: org.id, accountId: entry.accountId, kind: entry.kind, reasons: entry.reasons, cause: entry.cause,
        occurredAt: entry.occurredAt.toISOString(),
      });
      expect(r.headers['idempotency-key']).toBe(body.id);
      const t = Math.floor(clock.now().getTime() / 1000);
      expect(r.headers['orgsync-timestamp']).toBe(String(t));
      expect(r.headers['orgsync-signature']).toMatch(new RegExp(`^t=${t},v1=[0-9a-f]{64}$`));
      expect(verifySignature(org.secret, r.headers['orgsync-signature'] as string, r.rawBody, 300, { now: clock.now() })).toMatchObject({ ok: true, id: body.id });
      expect(verifySignature('whsec_wrong', r.headers['orgsync-signature'] as string, r.rawBody, 300, { now: clock.now() }).ok).toBe(false);
    }
    const rows = await db().prisma.webhookDelivery.findMany({ where: { orgId: org.id } });
    expect(rows.map((d) => [d.status, d.attempts, d.lastStatus, d.sentAt?.toISOString()])).toEqual(
      rows.map(() => ['sent', 1, 204, clock.now().toISOString()]),
    );
    // Nothing left to send.
    expect(await sendDueWebhooks(db(), opts(clock))).toEqual({ sent: 0, failed: 0, dead: 0 });
  });

  it('retries with exponential back-off until the receiver accepts', async () => {
    const clock = fakeClock('2030-02-01T00:00:00Z');
    const org = await orgWithWebhook('Retry Co');
    await insertDeltas(db(), org.id, newIds(1), 1);
    await deliverPending(db(), { now: clock.now });
    const { deltaId } = await db().prisma.webhookDelivery.findFirstOrThrow({ where: { orgId: org.id } });
    receiver.failNext(3, 503);

    const waits: number[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      expect(await sendDueWebhooks(db(), opts(clock)), `attempt ${attempt} fails`).toEqual({ sent: 0, failed: 1, dead: 0 });
      const d = await delivery(deltaId);
      expect(d).toMatchObject({ status: 'pending', attempts: attempt, lastStatus: 503, lastError: 'HTTP 503' });
      const wait = d.nextAttemptAt.getTime() - clock.now().getTime();
      waits.push(wait);
      // Not due before its time.
      clock.advance(wait - 1);
      if (wait > 0) expect(await sendDueWebhooks(db(), opts(clock))).toEqual({ sent: 0, failed: 0, dead: 0 });
      clock.advance(1);
    }
    // random() = 0.5: half of 1 s, 2 s, 4 s.
    expect(waits).toEqual([500, 1000, 2000]);
    expect(await sendDueWebhooks(db(), opts(clock))).toEqual({ sent: 1, failed: 0, dead: 0 });
    expect(await delivery(deltaId)).toMatchObject({ status: 'sent', attempts: 4, lastStatus: 204, lastError: null });
    expect(receiver.requests.map((r) => r.status)).toEqual([503, 503, 503, 204]);
    expect(new Set(receiver.requests.map((r) => r.headers['idempotency-key']))).toEqual(new Set([deltaId]));
  });

  it('dead after maxAttempts; replay resends it with the same id and Idempotency-Key; exactly one ledger entry', async () => {
    const clock = fakeClock('2030-03-01T00:00:00Z');
    const org = await orgWithWebhook('Dead Co');
    await insertDeltas(db(), org.id, newIds(1), 1);
    await deliverPending(db(), { now: clock.now });
    const { deltaId } = await db().prisma.webhookDelivery.findFirstOrThrow({ where: { orgId: org.id } });
    receiver.failNext(100, 500);

    const results = [];
    for (let i = 0; i < 3; i++) {
      results.push(await sendDueWebhooks(db(), opts(clock, { maxAttempts: 3 })));
      clock.advance(10_000);
    }
    expect(results).toEqual([{ sent: 0, failed: 1, dead: 0 }, { sent: 0, failed: 1, dead: 0 }, { sent: 0, failed: 0, dead: 1 }]);
    expect(await delivery(deltaId)).toMatchObject({ status: 'dead', attempts: 3, lastStatus: 500 });
    clock.advance(3600_000);
    expect(await sendDueWebhooks(db(), opts(clock, { maxAttempts: 3 })), 'a dead delivery is not retried').toEqual({ sent: 0, failed: 0, dead: 0 });
    const status = await app.http.get(u(org, 'billing/webhook')).set(bearer(org.key)).expect(200);
    expect(status.body.deliveries).toEqual({ pending: 0, sent: 0, dead: 1 });

    receiver.failNext(0);
    const replay = await app.http.post(u(org, 'billing/webhook/replay')).set(bearer(org.key)).send({}).expect(200);
    expect(replay.body).toEqual({ replayed: 1, unknownDeltaIds: [] });
    expect(await delivery(deltaId)).toMatchObject({ status: 'pending', attempts: 0, lastError: null });
    // The replay is due at the real time of the request; move the fake clock past it.
    clock.advance(10 * 365 * 86400_000);
    expect(await sendDueWebhooks(db(), opts(clock, { maxAttempts: 3 }))).toEqual({ sent: 1, failed: 0, dead: 0 });
    expect(receiver.requests).toHaveLength(4);
    const last = receiver.requests.at(-1)!;
    expect(JSON.parse(last.rawBody).id).toBe(deltaId);
    expect(last.headers['idempotency-key']).toBe(deltaId);
    expect(receiver.requests.map((r) => JSON.parse(r.rawBody).id), 'every attempt carried the same delta id').toEqual([deltaId, deltaId, deltaId, deltaId]);
    expect(await db().prisma.ledgerEntry.count({ where: { deltaId } })).toBe(1);

    const audit = await app.http.get(u(org, 'audit?action=billing.webhook.replay')).set(bearer(org.key)).expect(200);
    expect(audit.body.items[0].after).toMatchObject({ replayed: 1, deltaIds: [deltaId] });
  });

  it('at-least-once delivery, exactly-once effect: a lost response means a resend the receiver dedupes by Idempotency-Key', async () => {
    const clock = fakeClock('2030-04-01T00:00:00Z');
    const org = await orgWithWebhook('Once Co');
    const accounts = newIds(3);
    await insertDeltas(db(), org.id, accounts, 6);
    await deliverPending(db(), { now: clock.now });
    // The receiver processes the first two requests but the answers are lost (500s).
    receiver.failNext(2, 500);
    for (let i = 0; i < 5; i++) {
      await sendDueWebhooks(db(), opts(clock));
      clock.advance(60_000);
    }
    // The worker runs again and a redelivered outbox row is offered again: no second entry, no second delivery.
    await db().prisma.$executeRaw`UPDATE "BillableDelta" SET "appliedAt" = NULL WHERE "orgId" = ${org.id}::uuid`;
    expect(await drainPending(db(), { now: clock.now })).toMatchObject({ applied: 0, webhooksQueued: 0 });
    await sendDueWebhooks(db(), opts(clock));

    expect(receiver.requests.length, 'two deltas were sent twice').toBe(8);
    const applied = new Map<string, unknown>();
    for (const r of receiver.requests) applied.set(r.headers['idempotency-key'] as string, JSON.parse(r.rawBody));
    expect(applied.size, 'the receiver applies each delta once').toBe(6);
    expect(await db().prisma.ledgerEntry.count({ where: { orgId: org.id } })).toBe(6);
    expect(await db().prisma.webhookDelivery.count({ where: { orgId: org.id, status: 'sent' } })).toBe(6);
  });

  it('a timeout, a refused connection and a redirect are failures', async () => {
    const clock = fakeClock('2030-05-01T00:00:00Z');
    const org = await orgWithWebhook('Slow Co');
    await insertDeltas(db(), org.id, newIds(1), 1);
    await deliverPending(db(), { now: clock.now });
    const { deltaId } = await db().prisma.webhookDelivery.findFirstOrThrow({ where: { orgId: org.id } });

    receiver.state.delayMs = 1500;
    expect(await sendDueWebhooks(db(), opts(clock, { timeoutMs: 200, maxAttempts: 3 }))).toEqual({ sent: 0, failed: 1, dead: 0 });
    expect(await delivery(deltaId)).toMatchObject({ lastStatus: null, lastError: 'timed out after 200 ms' });
    receiver.state.delayMs = 0;

    clock.advance(60_000);
    receiver.state.redirectTo = 'http://127.0.0.1:1/elsewhere';
    expect(await sendDueWebhooks(db(), opts(clock, { maxAttempts: 3 }))).toEqual({ sent: 0, failed: 1, dead: 0 });
    expect(await delivery(deltaId)).toMatchObject({ lastStatus: 302, lastError: 'HTTP 302' });
    receiver.state.redirectTo = null;

    clock.advance(60_000);
    await db().prisma.billingWebhook.update({ where: { orgId: org.id }, data: { url: 'http://127.0.0.1:1/closed' } });
    expect(await sendDueWebhooks(db(), opts(clock, { maxAttempts: 3 }))).toEqual({ sent: 0, failed: 0, dead: 1 });
    expect((await delivery(deltaId)).lastError).toMatch(/ECONNREFUSED|fetch failed/);
  });

  it('a sender that dies after claiming leaves the delivery to be retried when its lease ends', async () => {
    const clock = fakeClock('2030-06-01T00:00:00Z');
    const org = await orgWithWebhook('Crash Co');
    await insertDeltas(db(), org.id, newIds(1), 1);
    await deliverPending(db(), { now: clock.now });
    // Claimed, then the process is gone: no request, no outcome.
    const claimed = await webhookStore.claimDue(db().prisma, 10, clock.now(), new Date(clock.now().getTime() + 32_000));
    expect(claimed.map((c) => c.orgId)).toContain(org.id);
    expect(await sendDueWebhooks(db(), opts(clock)), 'leased: nobody else sends it').toEqual({ sent: 0, failed: 0, dead: 0 });
    clock.advance(32_000);
    expect(await sendDueWebhooks(db(), opts(clock))).toEqual({ sent: 1, failed: 0, dead: 0 });
    expect(receiver.requests).toHaveLength(1);
    expect(await delivery(claimed[0]!.deltaId)).toMatchObject({ status: 'sent', attempts: 2 });
  });

  it('concurrent senders never send one delivery twice', async () => {
    const clock = fakeClock('2030-07-01T00:00:00Z');
    const org = await orgWithWebhook('Parallel Co');
    await insertDeltas(db(), org.id, newIds(5), 40);
    await deliverPending(db(), { now: clock.now });
    const results = await Promise.all(Array.from({ length: 4 }, () => sendDueWebhooks(db(), opts(clock, { batchSize: 7 }))));
    let total = results.reduce((n, r) => n + r.sent, 0);
    while (total < 40) total += (await sendDueWebhooks(db(), opts(clock))).sent;
    expect(total).toBe(40);
    expect(receiver.requests).toHaveLength(40);
    expect(new Set(receiver.requests.map((r) => r.headers['idempotency-key'])).size).toBe(40);
  });

  it('a rotated secret signs every later attempt; the old one no longer verifies', async () => {
    const clock = fakeClock('2030-08-01T00:00:00Z');
    const org = await orgWithWebhook('Rotate Co');
    const rotated = await app.http.post(u(org, 'billing/webhook/secret')).set(bearer(org.key)).send({}).expect(200);
    expect(rotated.body.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(rotated.body.secret).not.toBe(org.secret);
    await insertDeltas(db(), org.id, newIds(1), 1);
    await deliverPending(db(), { now: clock.now });
    await sendDueWebhooks(db(), opts(clock));
    const [r] = receiver.requests;
    const sig = r!.headers['orgsync-signature'] as string;
    expect(verifySignature(rotated.body.secret, sig, r!.rawBody, 300, { now: clock.now() }).ok).toBe(true);
    expect(verifySignature(org.secret, sig, r!.rawBody, 300, { now: clock.now() })).toEqual({ ok: false, reason: 'signature-mismatch' });
  });
});

describe('billing webhook API', () => {
  it('PUT creates with a secret shown once; GET never shows it; PUT again changes the URL only; DELETE removes', async () => {
    const org = await createOrg(app, 'Api Co');
    await app.http.get(u(org, 'billing/webhook')).set(bearer(org.key)).expect(404);
    const created = await app.http.put(u(org, 'billing/webhook')).set(bearer(org.key)).send({ url: 'https://billing.example/in?token=abc' }).expect(200);
    expect(created.body).toMatchObject({ url: 'https://billing.example/in?token=abc', secret: expect.stringMatching(/^whsec_/) });
    const stored = await db().prisma.billingWebhook.findUniqueOrThrow({ where: { orgId: org.id } });
    expect(stored.secretEnc, 'stored sealed, not in plaintext').not.toContain(created.body.secret);
    expect(app.svc.services.box.decrypt(stored.secretEnc)).toBe(created.body.secret);

    const got = await app.http.get(u(org, 'billing/webhook')).set(bearer(org.key)).expect(200);
    expect(got.body).toEqual({ url: 'https://billing.example/in?token=abc', createdAt: expect.any(String), updatedAt: expect.any(String), deliveries: { pending: 0, sent: 0, dead: 0 } });
    expect(JSON.stringify(got.body)).not.toContain(created.body.secret);

    const changed = await app.http.put(u(org, 'billing/webhook')).set(bearer(org.key)).send({ url: 'http://billing.example:8080/v2' }).expect(200);
    expect(changed.body.url).toBe('http://billing.example:8080/v2');
    expect(changed.body.secret, 'the secret is not shown again').toBeUndefined();
    expect((await db().prisma.billingWebhook.findUniqueOrThrow({ where: { orgId: org.id } })).secretEnc, 'and not changed').toBe(stored.secretEnc);

    await app.http.delete(u(org, 'billing/webhook')).set(bearer(org.key)).expect(204);
    await app.http.get(u(org, 'billing/webhook')).set(bearer(org.key)).expect(404);
    await app.http.delete(u(org, 'billing/webhook')).set(bearer(org.key)).expect(404);
    await app.http.post(u(org, 'billing/webhook/secret')).set(bearer(org.key)).send({}).expect(404);
    await app.http.post(u(org, 'billing/webhook/replay')).set(bearer(org.key)).send({}).expect(404);

    const audit = await app.http.get(u(org, 'audit?limit=10')).set(bearer(org.key)).expect(200);
    const actions = audit.body.items.map((a: { action: string }) => a.action);
    expect(actions.slice(0, 3)).toEqual(['billing.webhook.delete', 'billing.webhook.update', 'billing.webhook.create']);
    expect(JSON.stringify(audit.body.items)).not.toContain(created.body.secret);
    expect(JSON.stringify(audit.body.items), 'the query string is not kept in the audit log').not.toContain('token=abc');
  });

  it.each([
    ['ftp://billing.example/x', 'http:// or https://'],
    ['javascript:alert(1)', 'http:// or https://'],
    ['file:///etc/passwd', 'http:// or https://'],
    ['billing.example/hook', 'absolute'],
    ['https://user:pass@billing.example/hook', 'credentials'],
    ['https://user@billing.example/hook', 'credentials'],
    ['https://billing.example/hook#x', 'fragment'],
    [' https://billing.example/hook', 'spaces'],
    ['https://billing.example/a b', 'spaces'],
    [`https://billing.example/${'a'.repeat(2100)}`, '2048'],
    ['', 'empty'],
  ].map(([url, message]) => [url!.length > 60 ? `${url!.slice(0, 40)}… (${url!.length} characters)` : JSON.stringify(url), url!, message!] as const))(
  'PUT %s → 400, nothing changes', async (_name, url, message) => {
    const org = await createOrg(app, 'Bad Url Co');
    const before = await orgSnapshot(db(), org.id);
    const res = await app.http.put(u(org, 'billing/webhook')).set(bearer(org.key)).send({ url });
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.body.errors).toEqual([{ path: 'url', message: expect.stringContaining(message) }]);
    expect(await db().prisma.billingWebhook.count({ where: { orgId: org.id } })).toBe(0);
    expect(await orgSnapshot(db(), org.id)).toEqual(before);
  });

  it('bodies are strict: unknown fields and wrong types are 400s', async () => {
    const org = await createOrg(app, 'Strict Co');
    const put = await app.http.put(u(org, 'billing/webhook')).set(bearer(org.key)).send({ url: 'https://ok.example/', secret: 'mine' });
    expect(put.status).toBe(400);
    expect(put.body.errors).toEqual([{ path: 'secret', message: 'unknown field' }]);
    await app.http.put(u(org, 'billing/webhook')).set(bearer(org.key)).send({ url: 'https://ok.example/' }).expect(200);
    const bad = await app.http.post(u(org, 'billing/webhook/replay')).set(bearer(org.key))
      .send({ deltaIds: ['nope'], status: 'pending', since: 'yesterday', extra: 1 });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['deltaIds.0', 'extra', 'since', 'status']);
    const empty = await app.http.post(u(org, 'billing/webhook/replay')).set(bearer(org.key)).send({ deltaIds: [] });
    expect(empty.status).toBe(400);
  });

  it('replay selects by deltaIds, status and since; names unknown ids; never touches another org', async () => {
    const clock = fakeClock('2030-09-01T00:00:00Z');
    const a = await orgWithWebhook('Replay A');
    const b = await orgWithWebhook('Replay B');
    await insertDeltas(db(), a.id, newIds(2), 4);
    await insertDeltas(db(), b.id, newIds(2), 2);
    await deliverPending(db(), { now: clock.now });
    await sendDueWebhooks(db(), { maxAttempts: 3, baseDelayMs: 10, timeoutMs: 2000, now: clock.now, box: app.svc.services.box });
    const aIds = (await db().prisma.ledgerEntry.findMany({ where: { orgId: a.id }, orderBy: { streamSeq: 'asc' } })).map((l) => l.deltaId);
    const bIds = (await db().prisma.ledgerEntry.findMany({ where: { orgId: b.id } })).map((l) => l.deltaId);

    // All sent; no dead ones: the default replays nothing.
    expect((await app.http.post(u(a, 'billing/webhook/replay')).set(bearer(a.key)).send({}).expect(200)).body).toEqual({ replayed: 0, unknownDeltaIds: [] });
    // By id (B's id is unknown to A and stays untouched).
    const byId = await app.http.post(u(a, 'billing/webhook/replay')).set(bearer(a.key)).send({ deltaIds: [aIds[0], bIds[0]] }).expect(200);
    expect(byId.body).toEqual({ replayed: 1, unknownDeltaIds: [bIds[0]] });
    expect(await delivery(aIds[0]!)).toMatchObject({ status: 'pending', attempts: 0 });
    expect(await delivery(bIds[0]!)).toMatchObject({ status: 'sent' });
    // By status and since (occurredAt of the deltas is the database's now; the future matches nothing).
    const future = await app.http.post(u(a, 'billing/webhook/replay')).set(bearer(a.key)).send({ status: 'sent', since: '2999-01-01T00:00:00Z' }).expect(200);
    expect(future.body.replayed).toBe(0);
    const sent = await app.http.post(u(a, 'billing/webhook/replay')).set(bearer(a.key)).send({ status: 'sent', since: '2000-01-01T00:00:00+00:00' }).expect(200);
    expect(sent.body.replayed).toBe(3);
    expect(await db().prisma.webhookDelivery.count({ where: { orgId: a.id, status: 'pending' } })).toBe(4);
    expect(await db().prisma.webhookDelivery.count({ where: { orgId: b.id, status: 'sent' } })).toBe(2);
  });

  it('replay by id reaches deltas applied before the webhook existed', async () => {
    const org = await createOrg(app, 'Late Hook Co');
    await insertDeltas(db(), org.id, newIds(1), 2);
    await deliverPending(db(), {});
    expect(await db().prisma.webhookDelivery.count({ where: { orgId: org.id } })).toBe(0);
    await app.http.put(u(org, 'billing/webhook')).set(bearer(org.key)).send({ url: receiver.url }).expect(200);
    const ids = (await db().prisma.ledgerEntry.findMany({ where: { orgId: org.id } })).map((l) => l.deltaId);
    const res = await app.http.post(u(org, 'billing/webhook/replay')).set(bearer(org.key)).send({ deltaIds: ids }).expect(200);
    expect(res.body.replayed).toBe(2);
    expect(await db().prisma.webhookDelivery.count({ where: { orgId: org.id, status: 'pending' } })).toBe(2);
  });

  it('DELETE drops pending deliveries and keeps sent and dead ones as history', async () => {
    const clock = fakeClock('2030-10-01T00:00:00Z');
    const org = await orgWithWebhook('Drop Co');
    await insertDeltas(db(), org.id, newIds(1), 1);
    await deliverPending(db(), { now: clock.now });
    await sendDueWebhooks(db(), { maxAttempts: 3, baseDelayMs: 10, timeoutMs: 2000, now: clock.now, box: app.svc.services.box });
    await insertDeltas(db(), org.id, newIds(1), 2);
    await deliverPending(db(), { now: clock.now });
    await app.http.delete(u(org, 'billing/webhook')).set(bearer(org.key)).expect(204);
    expect(await db().prisma.webhookDelivery.groupBy({ by: ['status'], where: { orgId: org.id }, _count: true })).toEqual([{ status: 'sent', _count: 1 }]);
    const audit = await app.http.get(u(org, 'audit?action=billing.webhook.delete')).set(bearer(org.key)).expect(200);
    expect(audit.body.items[0].after).toEqual({ pendingDropped: 2 });
  });

  it('two concurrent PUTs create one webhook with one secret', async () => {
    const org = await createOrg(app, 'Race Co');
    const [x, y] = await Promise.all([
      app.http.put(u(org, 'billing/webhook')).set(bearer(org.key)).send({ url: 'https://one.example/' }),
      app.http.put(u(org, 'billing/webhook')).set(bearer(org.key)).send({ url: 'https://two.example/' }),
    ]);
    expect([x.status, y.status]).toEqual([200, 200]);
    expect([x.body.secret, y.body.secret].filter(Boolean)).toHaveLength(1);
  });
});

describe('webhook URL rules', () => {
  it.each([
    ['https://billing.example/hook', null],
    ['http://127.0.0.1:8080/hook?x=1', null],
    ['https://[::1]/hook', null],
    ['HTTPS://Billing.Example/', null],
  ])('%s is accepted', (url, problem) => {
    expect(webhookUrlProblem(url)).toBe(problem);
  });
});
