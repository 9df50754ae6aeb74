import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/store/database.js';
import { billableSet } from '../../src/store/billable-set.js';
import { reconcileOrg } from '../../src/billing/reconcile.js';
import { alternationProblems, ledgerInStreamOrder } from '../billing/delivery-support.js';
import { freshDatabase, spawnService, waitUntil, type ChildService } from './child-service.js';
import { prng, randomOp, setupOrg, type OrgState } from './workload.js';

/**
 * Two `orgsync serve` processes on one PostgreSQL database, each running the delivery worker and
 * every cron job on fast schedules (JOBS_FAST=true), while 1,000 random changes go to both.
 * Afterwards: no job tick ran twice, no delta was applied twice, no drift.
 * PostgreSQL only: a PGlite data directory belongs to one process.
 */
const url = process.env.DATABASE_URL;
const OP = 'two-replicas-operator-token';
const OPS = 1000;
const seed = Number(process.env.DRIFT_SEED ?? Math.floor(Math.random() * 2 ** 31));

describe.runIf(url)(`two service processes, one database (seed ${seed})`, () => {
  let dbh: { url: string; drop(): Promise<void> };
  let replicas: ChildService[] = [];
  let db: Database;
  let orgs: OrgState[];

  beforeAll(async () => {
    dbh = await freshDatabase(url!);
    const env = { DATABASE_URL: dbh.url, ORGSYNC_OPERATOR_TOKEN: OP, JOBS_ENABLED: 'true', JOBS_FAST: 'true', DATABASE_POOL_SIZE: '8' };
    // Both start at once on an empty database: the migrator's lock lets one migrate.
    replicas = await Promise.all([spawnService(env), spawnService(env)]);
    db = await openDatabase({ kind: 'postgres', url: dbh.url, poolSize: 4 });
    orgs = [await setupOrg([replicas[0]!.url], OP, 'Replica One'), await setupOrg([replicas[1]!.url], OP, 'Replica Two')];
  }, 120_000);

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.kill('SIGTERM')));
    await db?.close();
    await dbh?.drop();
  });

  it('spreads 1,000 changes over both; jobs run once per tick; every delta reaches the ledger once; zero drift', { timeout: 150_000 }, async () => {
    // Two concurrent streams, one per org; each operation goes to either process at random.
    const streams = orgs.map(async (org, k) => {
      const r = prng(seed + k);
      for (let i = 0; i < OPS / orgs.length; i++) {
        const base = replicas[r.int(replicas.length)]!.url;
        await randomOp(base, OP, org, r, i * orgs.length + k);
      }
    });
    await Promise.all(streams);

    // The replicas' delivery workers drain the outbox on their own.
    await waitUntil(async () => (await db.prisma.billableDelta.count({ where: { appliedAt: null } })) === 0, 20_000, 'the outbox to drain');
    // Let a few more job ticks happen on both (reconciliation every 5 s in fast mode).
    const since = new Date();
    await waitUntil(async () => (await db.prisma.jobTick.count({ where: { job: 'reconciliation', finishedAt: { gt: since } } })) >= 1, 15_000, 'a reconciliation tick');

    // No delta applied twice, none lost.
    const deltas = await db.prisma.billableDelta.count();
    // Enough billing changes for the rest to mean something. How many a random workload makes
    // depends on its seed: seed 1741489862 makes 94 (it failed a bound of 100 without any fault).
    expect(deltas).toBeGreaterThan(50);
    expect(await db.prisma.ledgerEntry.count()).toBe(deltas);
    const [dup] = await db.prisma.$queryRaw<{ n: bigint }[]>`
      SELECT count(*) AS n FROM (SELECT "deltaId" FROM "LedgerEntry" GROUP BY "deltaId" HAVING count(*) > 1) d`;
    expect(Number(dup!.n)).toBe(0);
    expect(alternationProblems(await ledgerInStreamOrder(db)), `seed ${seed}`).toEqual([]);

    // No job tick ran twice: one JobTick row per (job, tickAt) by the primary key, and the logs of
    // the two processes never both report the same tick as done.
    const done = replicas.map((rep) => rep.logs().filter((l) => l.msg === 'job done').map((l) => `${l.job} ${l.tickAt}`));
    const both = done[0]!.filter((t) => new Set(done[1]).has(t));
    expect(both, 'ticks run by both processes').toEqual([]);
    for (const [i, d] of done.entries()) expect(d.length, `replica ${i} ran jobs`).toBeGreaterThan(0);
    const ticks = await db.prisma.jobTick.findMany({ where: { finishedAt: { not: null } } });
    expect(new Set(ticks.map((t) => `${t.job} ${t.tickAt.toISOString()}`)).size).toBe(ticks.length);
    expect(new Set(ticks.map((t) => t.startedBy)).size, 'both replicas claimed ticks').toBe(2);
    const jobs = new Set(ticks.map((t) => t.job));
    expect([...jobs].sort()).toEqual(['bill-notices', 'outbox-delivery', 'reconciliation', 'retention-purge', 'trial-ends']);
    const failedTicks = ticks.filter((t) => (t.result as { status?: string } | null)?.status === 'failed');
    expect(failedTicks, 'no job failed').toEqual([]);

    // The nightly (here: every 5 s) reconciliation ran during the stream and never had to correct anything.
    const runs = await db.prisma.reconciliationRun.findMany({ where: { trigger: 'nightly' } });
    expect(runs.length).toBeGreaterThan(0);
    expect(runs.filter((r) => r.corrections > 0 || r.status !== 'done').map((r) => r.report), `seed ${seed}`).toEqual([]);

    for (const org of orgs) {
      const run = await reconcileOrg(db, org.id, { trigger: 'test' });
      expect(run.corrections, `seed ${seed}`).toBe(0);
      const truth = await billableSet(db.prisma, org.id, new Date());
      const billable = [...truth].filter(([, b]) => b.billable).map(([id]) => id).sort();
      const ledger = await db.prisma.$queryRaw<{ accountId: string }[]>`
        SELECT "accountId"::text AS "accountId" FROM (
          SELECT DISTINCT ON ("accountId") "accountId", "kind" FROM "LedgerEntry" WHERE "orgId" = ${org.id}::uuid ORDER BY "accountId", "streamSeq" DESC
        ) t WHERE "kind" = 'added' ORDER BY 1`;
      expect(ledger.map((r) => r.accountId)).toEqual(billable);
    }
  });
});
