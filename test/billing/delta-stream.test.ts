import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliverPending, drainPending } from '../../src/billing/delivery-worker.js';
import { bearer, createOrg, startTestApp, verifyDomain, type TestApp } from '../support/app.js';
import { alternationProblems, insertDeltas, newIds } from './delivery-support.js';

type Org = { id: string; key: string };
type Delta = { id: string; accountId: string; kind: 'added' | 'removed'; reasons: string[]; cause: string; occurredAt: string };
type Page = { items: Delta[]; next: string | null };

let app: TestApp;
const u = (o: Org, p: string) => `/api/v1/orgs/${o.id}/${p}`;
const db = () => app.svc.db;

beforeAll(async () => {
  app = await startTestApp({ JOBS_ENABLED: 'false' });
});
afterAll(async () => app?.close());

async function page(org: Org, after: string | null, limit = 100): Promise<Page> {
  const q = new URLSearchParams({ limit: String(limit), ...(after ? { after } : {}) });
  return (await app.http.get(u(org, `billing/deltas?${q}`)).set(bearer(org.key)).expect(200)).body;
}

/** Follows the stream from `after` to its current end; returns what it read and where it stopped. */
async function follow(org: Org, after: string | null, limit = 3): Promise<{ items: Delta[]; cursor: string | null }> {
  const items: Delta[] = [];
  let cursor = after;
  for (;;) {
    const p = await page(org, cursor, limit);
    if (!p.next) return { items, cursor };
    expect(p.items.length).toBeGreaterThan(0);
    items.push(...p.items);
    cursor = p.next;
  }
}

/** An org whose account becomes billable and flips as the test toggles it, all through the admin API. */
async function billingOrg(name: string, domain: string) {
  const org = await createOrg(app, name);
  await verifyDomain(app, org, domain);
  await app.http.post(u(org, 'subscription/trial')).set(bearer(org.key)).send({}).expect(200);
  const site = (await app.http.post(u(org, 'sites')).set(bearer(org.key)).send({ name: 'prod', products: ['jira'] }).expect(201)).body;
  const newAccount = async (local: string) => {
    const acc = (await app.http.post(u(org, 'accounts')).set(bearer(org.key)).send({ email: `${local}@${domain}` }).expect(201)).body;
    await app.http.post(u(org, `sites/${site.id}/access`)).set(bearer(org.key)).send({ accountId: acc.id, product: 'jira' }).expect(201);
    return acc.id as string;
  };
  return { org, newAccount };
}

describe('GET billing/deltas', () => {
  it('streams the deltas of real changes once the worker applied them, with the delta fields and ids', async () => {
    const { org, newAccount } = await billingOrg('Stream Co', 'stream.example');
    const accountId = await newAccount('sam');
    await app.http.post(u(org, `accounts/${accountId}/disable`)).set(bearer(org.key)).expect(200);
    await app.http.post(u(org, `accounts/${accountId}/enable`)).set(bearer(org.key)).expect(200);

    expect((await page(org, null)).items, 'nothing before the worker ran').toEqual([]);
    await drainPending(db());
    const all = await page(org, null);
    const outbox = await db().prisma.billableDelta.findMany({ where: { orgId: org.id }, orderBy: { seq: 'asc' } });
    expect(outbox.length).toBeGreaterThanOrEqual(3);
    expect(all.items).toEqual(outbox.map((d) => ({
      id: d.id, accountId: d.accountId, kind: d.kind, reasons: d.reasons, cause: d.cause, occurredAt: d.occurredAt.toISOString(),
    })));
    expect(all.items.slice(-3).map((d) => d.kind)).toEqual(['added', 'removed', 'added']);
    expect(all.items.slice(-2).map((d) => d.cause)).toEqual(['account-disabled', 'account-enabled']);
    expect(alternationProblems(all.items)).toEqual([]);
    expect(all.next).toEqual(expect.any(String));
  });

  it('pages strictly after the cursor; an empty page answers next: null and the cursor keeps working later', async () => {
    const org = await createOrg(app, 'Paging Co');
    await insertDeltas(db(), org.id, newIds(3), 10);
    await deliverPending(db(), {});
    const read = await follow(org, null, 4);
    expect(read.items).toHaveLength(10);
    expect(new Set(read.items.map((d) => d.id)).size).toBe(10);
    expect(await page(org, read.cursor)).toEqual({ items: [], next: null });

    await insertDeltas(db(), org.id, newIds(2), 3);
    await deliverPending(db(), {});
    const more = await follow(org, read.cursor, 2);
    expect(more.items).toHaveLength(3);
    const full = await follow(org, null, 100);
    expect([...read.items, ...more.items]).toEqual(full.items);
  });

  it('never shows another org\'s deltas, even though stream positions are shared', async () => {
    const a = await createOrg(app, 'Stream A');
    const b = await createOrg(app, 'Stream B');
    await insertDeltas(db(), a.id, newIds(2), 5);
    await insertDeltas(db(), b.id, newIds(2), 5);
    await insertDeltas(db(), a.id, newIds(2), 5);
    await deliverPending(db(), {});
    const aIds = new Set((await db().prisma.billableDelta.findMany({ where: { orgId: a.id } })).map((d) => d.id));
    const readA = await follow(a, null, 4);
    expect(readA.items).toHaveLength(10);
    expect(readA.items.every((d) => aIds.has(d.id))).toBe(true);
    // B's key on A's stream is a 404 like every other path of A.
    await app.http.get(u(a, 'billing/deltas')).set(bearer(b.key)).expect(404);
  });

  it.each([
    ['after=abc', 'after'],
    ['after=-1', 'after'],
    ['after=1.5', 'after'],
    ['after=007', 'after'],
    ['after=99999999999999999999', 'after'],
    ['limit=0', 'limit'],
    ['limit=1001', 'limit'],
    ['limit=x', 'limit'],
    ['cursor=1', 'cursor'],
  ])('?%s → 400 naming %s', async (query, path) => {
    const org = await createOrg(app, 'Bad Cursor Co');
    const res = await app.http.get(u(org, `billing/deltas?${query}`)).set(bearer(org.key));
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual([expect.stringContaining(path)]);
  });

  it('a reader following the cursor over HTTP while admins change accounts and workers deliver sees exactly the later full read', async () => {
    const { org, newAccount } = await billingOrg('Live Co', 'live.example');
    const accounts = [await newAccount('a'), await newAccount('b'), await newAccount('c')];
    let changing = true;
    const followed: Delta[] = [];
    let cursor: string | null = null;

    const admins = accounts.map(async (id) => {
      for (let i = 0; i < 6; i++) {
        await app.http.post(u(org, `accounts/${id}/${i % 2 === 0 ? 'disable' : 'enable'}`)).set(bearer(org.key)).expect(200);
      }
    });
    const workers = [0, 1].map(async () => {
      while (changing) {
        await deliverPending(db(), { batchSize: 3 });
        await new Promise((r) => setTimeout(r, 3));
      }
    });
    const reader = (async () => {
      while (changing) {
        const p = await page(org, cursor, 4);
        followed.push(...p.items);
        if (p.next) cursor = p.next;
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    await Promise.all(admins);
    changing = false;
    await Promise.all([...workers, reader]);
    await drainPending(db());
    followed.push(...(await follow(org, cursor, 5)).items);

    const full = await follow(org, null, 50);
    expect(full.items.length, '3 accounts added, then 6 flips each').toBe(3 + 18);
    expect(followed.map((d) => d.id)).toEqual(full.items.map((d) => d.id));
    expect(alternationProblems(full.items), 'per account the stream alternates added/removed').toEqual([]);
  });

  it('a delta committed with a lower seq after higher ones were read is still after the reader\'s cursor', async () => {
    const org = await createOrg(app, 'Late Co');
    const early = (await db().prisma.$queryRaw<{ seq: bigint }[]>`SELECT nextval(pg_get_serial_sequence('"BillableDelta"', 'seq')) AS seq`)[0]!.seq;
    await insertDeltas(db(), org.id, newIds(2), 4);
    await deliverPending(db(), {});
    const first = await follow(org, null);
    const lateId = randomUUID();
    await db().prisma.$executeRaw`
      INSERT INTO "BillableDelta" ("id", "seq", "orgId", "accountId", "kind", "reasons", "cause")
      VALUES (${lateId}::uuid, ${early}, ${org.id}::uuid, ${randomUUID()}::uuid, 'added', ARRAY['test'], 'late')`;
    await deliverPending(db(), {});
    const second = await follow(org, first.cursor);
    expect(second.items.map((d) => d.id)).toEqual([lateId]);
    expect([...first.items, ...second.items]).toEqual((await follow(org, null)).items);
  });
});
