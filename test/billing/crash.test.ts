import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/store/database.js';
import { reconcileOrg } from '../../src/billing/reconcile.js';
import { alternationProblems, ledgerInStreamOrder } from './delivery-support.js';
import { freshDatabase, spawnService, waitUntil, type ChildService } from '../jobs/child-service.js';
import { prng, randomOp, setupOrg, type OrgState } from '../jobs/workload.js';
import { driftReport } from './drift-report.js';

/**
 * Crash safety of the outbox and the ledger: a service process with its jobs on (delivery every
 * second) takes a stream of changes and is killed with SIGKILL at random moments — mid-request,
 * mid-transaction, mid-delivery — then restarted, at least 10 times; at the end it drains.
 * Zero lost (every committed delta is in the ledger) and zero duplicated (the ledger holds each
 * delta once), and no drift: a change and its delta committed together or not at all.
 *
 * PostgreSQL only: PGlite runs inside the killed process, and a SIGKILL during a write can leave
 * its data directory unusable — durability across process kills is PostgreSQL's to give.
 */
const url = process.env.DATABASE_URL;
const OP = 'crash-test-operator-token';
const KILLS = 10;
const seed = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));

describe.runIf(url)(`SIGKILL at ${KILLS} random points (seed ${seed})`, () => {
  let dbh: { url: string; drop(): Promise<void> };
  let db: Database;
  let svc: ChildService | null = null;
  const env = () => ({ DATABASE_URL: dbh.url, ORGSYNC_OPERATOR_TOKEN: OP, JOBS_ENABLED: 'true', JOBS_FAST: 'true' });

  beforeAll(async () => {
    dbh = await freshDatabase(url!);
    db = await openDatabase({ kind: 'postgres', url: dbh.url, poolSize: 4 });
  });
  afterAll(async () => {
    await svc?.kill('SIGKILL');
    await db?.close();
    await dbh?.drop();
  });

  it('loses no delta and applies none twice', { timeout: 150_000 }, async () => {
    const r = prng(seed);
    svc = await spawnService(env());
    // One stream per org: this test is about crashes, not about concurrent changes to one account.
    const orgs: OrgState[] = [];
    for (const name of ['Crash One', 'Crash Two', 'Crash Three', 'Crash Four']) orgs.push(await setupOrg([svc.url], OP, name));
    let ok = 0;
    let cut = 0;
    const killedDuring = { pending: 0, requests: 0 };

    for (let k = 0; k < KILLS; k++) {
      const current = svc;
      // Four concurrent streams of changes, one per org, until the kill (a fresh process is slow for its first requests).
      let killed = false;
      const stream = async (i: number) => {
        while (!killed) {
          try {
            await randomOp(current.url, OP, orgs[i]!, r, ok + cut);
            ok++;
          } catch (err) {
            if (!killed) throw err;
            cut++;
          }
        }
      };
      const streams = [0, 1, 2, 3].map(stream);
      await new Promise((res) => setTimeout(res, 1000 + r.int(1500)));
      killedDuring.pending += await db.prisma.billableDelta.count({ where: { appliedAt: null } });
      killed = true;
      await current.kill('SIGKILL');
      await Promise.all(streams);
      svc = await spawnService(env());
    }

    // The last incarnation drains the outbox by itself (delivery job), then stops cleanly.
    await waitUntil(async () => (await db.prisma.billableDelta.count({ where: { appliedAt: null } })) === 0, 20_000, 'the outbox to drain');
    await svc.kill('SIGTERM');
    svc = null;

    expect(ok, 'changes went through between the kills').toBeGreaterThan(40);
    // Zero lost: every committed delta has its ledger entry. Zero duplicated: one entry per delta.
    const [lost] = await db.prisma.$queryRaw<{ n: bigint }[]>`
      SELECT count(*) AS n FROM "BillableDelta" d WHERE NOT EXISTS (SELECT 1 FROM "LedgerEntry" l WHERE l."deltaId" = d."id")`;
    expect(Number(lost!.n), 'deltas missing from the ledger').toBe(0);
    const [orphans] = await db.prisma.$queryRaw<{ n: bigint }[]>`
      SELECT count(*) AS n FROM "LedgerEntry" l WHERE NOT EXISTS (SELECT 1 FROM "BillableDelta" d WHERE d."id" = l."deltaId")`;
    expect(Number(orphans!.n)).toBe(0);
    expect(await db.prisma.ledgerEntry.count()).toBe(await db.prisma.billableDelta.count());
    const [streamDup] = await db.prisma.$queryRaw<{ n: bigint }[]>`
      SELECT count(*) - count(DISTINCT "streamSeq") AS n FROM "LedgerEntry"`;
    expect(Number(streamDup!.n)).toBe(0);
    expect(alternationProblems(await ledgerInStreamOrder(db)), `seed ${seed}`).toEqual([]);

    // And no drift: what was committed, was committed with its delta.
    for (const org of orgs) {
      const run = await reconcileOrg(db, org.id, { trigger: 'test' });
      expect(run.corrections, run.corrections ? await driftReport(db, org.id, run.id, seed) : '').toBe(0);
    }
    // Ticks killed mid-run stay unfinished in JobTick; none was finished twice.
    const ticks = await db.prisma.jobTick.findMany();
    expect(new Set(ticks.map((t) => `${t.job} ${t.tickAt.toISOString()}`)).size).toBe(ticks.length);
    expect(new Set(ticks.map((t) => t.startedBy)).size, 'ticks from every incarnation').toBeGreaterThanOrEqual(KILLS);
    expect(killedDuring.pending + cut, 'kills landed while work was in flight').toBeGreaterThan(0);
  });
});
