import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliverPending, drainPending } from '../../src/billing/delivery-worker.js';
import { readDeltaStream } from '../../src/billing/delta-stream.js';
import { migrate } from '../../src/store/migrator.js';
import { createTestDatabase, onPostgres, type TestDatabase } from '../support/database.js';
import { alternationProblems, insertDeltas, ledgerInStreamOrder, newIds } from './delivery-support.js';

let tdb: TestDatabase;
const db = () => tdb.db;

beforeAll(async () => {
  tdb = await createTestDatabase();
  await migrate(tdb.db);
});
afterAll(async () => tdb?.drop());

async function resetBilling() {
  await db().prisma.$executeRaw`TRUNCATE "BillableDelta", "LedgerEntry", "WebhookDelivery", "BillingWebhook"`;
}

async function expectLedgerMatchesOutbox() {
  const [outbox, unapplied, ledger] = await Promise.all([
    db().prisma.billableDelta.count(),
    db().prisma.billableDelta.count({ where: { appliedAt: null } }),
    ledgerInStreamOrder(db()),
  ]);
  expect(unapplied, 'every outbox row is marked applied').toBe(0);
  expect(ledger.length, 'one ledger entry per delta').toBe(outbox);
  expect(new Set(ledger.map((l) => l.deltaId)).size, 'no delta twice').toBe(ledger.length);
  expect(new Set(ledger.map((l) => l.streamSeq)).size, 'no stream position twice').toBe(ledger.length);
  return ledger;
}

describe('delivery worker: outbox → ledger', () => {
  it('applies every delta exactly once with five workers running concurrently and repeatedly, in outbox order', async () => {
    await resetBilling();
    const org = randomUUID();
    const accounts = newIds(37);
    // Writers and workers overlap: deltas keep arriving while the workers drain.
    const writer = (async () => {
      for (let i = 0; i < 10; i++) await insertDeltas(db(), org, accounts, 150);
    })();
    const workers = Array.from({ length: 5 }, async () => {
      for (let round = 0; round < 6; round++) await drainPending(db(), { batchSize: 40 });
    });
    await Promise.all([writer, ...workers]);
    await Promise.all(Array.from({ length: 5 }, () => deliverPending(db(), { batchSize: 100 })));
    await drainPending(db());

    const ledger = await expectLedgerMatchesOutbox();
    expect(ledger).toHaveLength(1500);
    expect(ledger.map((l) => Number(l.streamSeq)), 'positions 1..n without gaps').toEqual(ledger.map((_, i) => i + 1));
    const seqs = ledger.map((l) => l.seq);
    expect(seqs, 'the stream keeps the order in which outbox rows committed (here: seq order)').toEqual([...seqs].sort((a, b) => (a < b ? -1 : 1)));
    expect(alternationProblems(ledger), 'per account, added and removed alternate').toEqual([]);
    const applied = await db().prisma.billableDelta.findMany({ select: { appliedAt: true } });
    expect(applied.every((r) => r.appliedAt instanceof Date)).toBe(true);
  });

  it('a redelivered delta is not applied twice (appliedAt lost, e.g. a restored outbox)', async () => {
    await resetBilling();
    const org = randomUUID();
    await insertDeltas(db(), org, newIds(5), 50);
    expect(await deliverPending(db(), {})).toEqual({ applied: 50, webhooksQueued: 0 });
    const before = await ledgerInStreamOrder(db());
    await db().prisma.$executeRaw`UPDATE "BillableDelta" SET "appliedAt" = NULL WHERE "seq" % 3 = 0`;
    const again = await Promise.all([deliverPending(db(), {}), deliverPending(db(), {})]);
    expect(again.reduce((n, r) => n + r.applied, 0), 'nothing new reaches the ledger').toBe(0);
    expect(await ledgerInStreamOrder(db()), 'ledger unchanged, positions unchanged').toEqual(before);
    await expectLedgerMatchesOutbox();
  });

  it('queues a webhook delivery only for orgs with a webhook, once per delta', async () => {
    await resetBilling();
    const withHook = randomUUID();
    const without = randomUUID();
    await db().prisma.billingWebhook.create({ data: { orgId: withHook, url: 'https://billing.example/hook', secretEnc: 'whsec_test' } });
    await insertDeltas(db(), withHook, newIds(3), 12);
    await insertDeltas(db(), without, newIds(3), 7);
    const r = await drainPending(db(), { batchSize: 5 });
    expect(r).toMatchObject({ applied: 19, webhooksQueued: 12 });
    const deliveries = await db().prisma.webhookDelivery.findMany();
    expect(deliveries).toHaveLength(12);
    expect(new Set(deliveries.map((d) => d.orgId))).toEqual(new Set([withHook]));
    expect(deliveries.every((d) => d.status === 'pending' && d.attempts === 0)).toBe(true);
  });

  it('uses the given clock for appliedAt and the first delivery time', async () => {
    await resetBilling();
    const org = randomUUID();
    await db().prisma.billingWebhook.create({ data: { orgId: org, url: 'https://billing.example/hook', secretEnc: 'whsec_test' } });
    await insertDeltas(db(), org, newIds(1), 2);
    const at = new Date('2031-05-06T07:08:09.123Z');
    await deliverPending(db(), { now: () => at });
    expect((await db().prisma.ledgerEntry.findMany()).map((l) => l.appliedAt)).toEqual([at, at]);
    expect((await db().prisma.billableDelta.findMany()).map((b) => b.appliedAt)).toEqual([at, at]);
    expect((await db().prisma.webhookDelivery.findMany()).map((d) => d.nextAttemptAt)).toEqual([at, at]);
  });

  it('refuses a batch size that is not a positive integer', async () => {
    await expect(deliverPending(db(), { batchSize: 0 })).rejects.toThrow(RangeError);
  });
});

describe('stream positions follow commit order, so a cursor never skips a late commit', () => {
  /** Reads everything after `cursor` through the stream; returns the ids and the new cursor. */
  async function follow(orgId: string, cursor: string | undefined) {
    const seen: string[] = [];
    for (;;) {
      const page = await readDeltaStream(db().prisma, orgId, { after: cursor, limit: 7 });
      if (!page.next) return { seen, cursor };
      seen.push(...page.items.map((d) => d.id));
      cursor = page.next;
    }
  }

  it('a delta with a lower seq that becomes visible after higher ones were streamed comes after them (simulated on any database)', async () => {
    await resetBilling();
    const org = randomUUID();
    // Reserve a low seq the way a transaction that started early would, then let others pass it.
    const early = (await db().prisma.$queryRaw<{ seq: bigint }[]>`SELECT nextval(pg_get_serial_sequence('"BillableDelta"', 'seq')) AS seq`)[0]!.seq;
    await insertDeltas(db(), org, newIds(4), 20);
    await deliverPending(db(), {});
    const first = await follow(org, undefined);
    expect(first.seen).toHaveLength(20);

    // The early transaction commits now, with its old (lower) seq.
    const lateId = randomUUID();
    await db().prisma.$executeRaw`
      INSERT INTO "BillableDelta" ("id", "seq", "orgId", "accountId", "kind", "reasons", "cause")
      VALUES (${lateId}::uuid, ${early}, ${org}::uuid, ${randomUUID()}::uuid, 'added', ARRAY['test'], 'late')`;
    await deliverPending(db(), {});
    const second = await follow(org, first.cursor);
    expect(second.seen, 'the follower gets the late delta after its cursor').toEqual([lateId]);

    const full = await follow(org, undefined);
    expect([...first.seen, ...second.seen], 'following = a later full read, same order').toEqual(full.seen);
    const ledger = await ledgerInStreamOrder(db());
    expect(ledger.at(-1)).toMatchObject({ deltaId: lateId, seq: early });
  });

  it.runIf(onPostgres)('two writers commit out of seq order: the reader following the cursor still sees every delta once (PostgreSQL)', async () => {
    await resetBilling();
    const org = randomUUID();
    const insert = `INSERT INTO "BillableDelta" ("id", "orgId", "accountId", "kind", "reasons", "cause")
      VALUES (gen_random_uuid(), $1::uuid, gen_random_uuid(), 'added', ARRAY['test'], $2) RETURNING "id"::text AS id, "seq"::text AS seq`;
    await insertDeltas(db(), org, newIds(2), 4);
    await deliverPending(db(), {});
    const start = await follow(org, undefined);

    await db().withSession(async (low) => {
      await db().withSession(async (high) => {
        await low.exec('BEGIN');
        const [l] = await low.query<{ id: string; seq: string }>(insert, [org, 'low']);
        await high.exec('BEGIN');
        const [h] = await high.query<{ id: string; seq: string }>(insert, [org, 'high']);
        expect(BigInt(l!.seq)).toBeLessThan(BigInt(h!.seq));
        await high.exec('COMMIT');

        // The worker runs while `low` is still open: its row is invisible, not blocking.
        expect(await deliverPending(db(), {})).toMatchObject({ applied: 1 });
        const mid = await follow(org, start.cursor);
        expect(mid.seen).toEqual([h!.id]);

        await low.exec('COMMIT');
        expect(await deliverPending(db(), {})).toMatchObject({ applied: 1 });
        const end = await follow(org, mid.cursor);
        expect(end.seen, 'the late, lower-seq delta is after the cursor').toEqual([l!.id]);

        const full = await follow(org, undefined);
        expect([...start.seen, ...mid.seen, ...end.seen]).toEqual(full.seen);
        expect(new Set(full.seen).size).toBe(6);
      });
    });
  });

  it.runIf(onPostgres)('a row locked by another session is skipped, not waited for, and applied once released (PostgreSQL)', async () => {
    await resetBilling();
    const org = randomUUID();
    await insertDeltas(db(), org, newIds(3), 9);
    const [locked] = await db().prisma.$queryRaw<{ id: string }[]>`SELECT "id"::text AS id FROM "BillableDelta" ORDER BY "seq" LIMIT 1`;
    await db().withSession(async (s) => {
      await s.exec('BEGIN');
      await s.query(`SELECT 1 FROM "BillableDelta" WHERE "id" = $1::uuid FOR UPDATE`, [locked!.id]);
      expect(await deliverPending(db(), {})).toMatchObject({ applied: 8 });
      await s.exec('COMMIT');
    });
    expect(await deliverPending(db(), {})).toMatchObject({ applied: 1 });
    await expectLedgerMatchesOutbox();
  });

  it('writers, workers and a follower all at once: the follower ends with exactly the full read', async () => {
    await resetBilling();
    const org = randomUUID();
    const accounts = newIds(11);
    let writing = true;
    const followed: string[] = [];
    let cursor: string | undefined;

    const writers = Array.from({ length: 3 }, async (_, w) => {
      for (let i = 0; i < 8; i++) {
        if (onPostgres) {
          // A transaction that stays open a little while others commit: out-of-order commits.
          await db().withSession(async (s) => {
            await s.exec('BEGIN');
            await s.query(
              `INSERT INTO "BillableDelta" ("id", "orgId", "accountId", "kind", "reasons", "cause")
               SELECT gen_random_uuid(), $1::uuid, gen_random_uuid(), 'added', ARRAY['test'], $2 FROM generate_series(1, 5)`,
              [org, `writer-${w}`],
            );
            await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 15)));
            await s.exec('COMMIT');
          });
        } else {
          await insertDeltas(db(), org, accounts, 5, `writer-${w}`);
        }
      }
    });
    const workers = Array.from({ length: 3 }, async () => {
      while (writing) {
        await deliverPending(db(), { batchSize: 7 });
        await new Promise((r) => setTimeout(r, 2));
      }
    });
    const follower = (async () => {
      while (writing) {
        const page = await readDeltaStream(db().prisma, org, { after: cursor, limit: 9 });
        followed.push(...page.items.map((d) => d.id));
        if (page.next) cursor = page.next;
        await new Promise((r) => setTimeout(r, 1));
      }
    })();
    await Promise.all(writers);
    writing = false;
    await Promise.all([...workers, follower]);
    await drainPending(db());
    for (;;) {
      const page = await readDeltaStream(db().prisma, org, { after: cursor, limit: 50 });
      if (!page.next) break;
      followed.push(...page.items.map((d) => d.id));
      cursor = page.next;
    }
    const full = (await readDeltaStream(db().prisma, org, { limit: 1000 })).items.map((d) => d.id);
    expect(full).toHaveLength(120);
    expect(followed, 'seen once each, in the order of the full read').toEqual(full);
    await expectLedgerMatchesOutbox();
  });
});
