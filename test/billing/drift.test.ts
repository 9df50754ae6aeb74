import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPERATOR_TOKEN, startTestApp, type TestApp } from '../support/app.js';
import { drainPending } from '../../src/billing/delivery-worker.js';
import { billableSet } from '../../src/store/billable-set.js';
import { reconcileOrg } from '../../src/billing/reconcile.js';
import { alternationProblems, ledgerInStreamOrder } from './delivery-support.js';
import { prng, randomOp, setupOrg, type OrgState } from '../jobs/workload.js';

/**
 * The randomised proof of SPEC §6: 1,000 random changes through the admin API and SCIM (every
 * path that can flip billability), the outbox drained now and then and at the end — then the
 * reconciliation finds zero drift, and the ledger's net state is exactly the billable set.
 * DRIFT_SEED=<n> replays a run.
 */
const OPS = 1000;
const seed = Number(process.env.DRIFT_SEED ?? Math.floor(Math.random() * 2 ** 31));

let app: TestApp;
let orgs: OrgState[];

beforeAll(async () => {
  app = await startTestApp();
  orgs = [await setupOrg([app.svc.url], OPERATOR_TOKEN, 'Drift One'), await setupOrg([app.svc.url], OPERATOR_TOKEN, 'Drift Two')];
});
afterAll(async () => app?.close());

/** Accounts whose latest ledger entry (stream order) is `added`. */
async function ledgerNet(orgId: string): Promise<string[]> {
  const rows = await app.svc.db.prisma.$queryRaw<{ accountId: string }[]>`
    SELECT "accountId"::text AS "accountId" FROM (
      SELECT DISTINCT ON ("accountId") "accountId", "kind" FROM "LedgerEntry" WHERE "orgId" = ${orgId}::uuid ORDER BY "accountId", "streamSeq" DESC
    ) t WHERE "kind" = 'added' ORDER BY 1`;
  return rows.map((r) => r.accountId);
}

describe(`1,000 random operations, then zero drift (seed ${seed})`, () => {
  // Usually 10–20 s; the timeout leaves room for a loaded machine running the suite in parallel.
  it('reconciliation finds nothing to correct, mid-stream and at the end; the ledger equals the billable set', { timeout: 150_000 }, async () => {
    const tally = new Map<string, number>();
    const log: string[] = [];
    // One stream per org, running concurrently (each with its own generator, so a seed replays).
    await Promise.all(orgs.map(async (org, k) => {
      const r = prng(seed + k);
      for (let i = 0; i < OPS / orgs.length; i++) {
        const { op, status } = await randomOp(app.svc.url, OPERATOR_TOKEN, org, r, i * orgs.length + k);
        log.push(`${i} ${org.id.slice(0, 8)} ${op} ${status}`);
        tally.set(`${op} ${status}`, (tally.get(`${op} ${status}`) ?? 0) + 1);
        if (i % 100 === 99) {
          // Some deltas applied, some still in the outbox: a healthy system shows no drift either way.
          if (r.chance(0.5)) await drainPending(app.svc.db, { batchSize: 1 + r.int(50), maxBatches: 1 + r.int(3) });
          const mid = await reconcileOrg(app.svc.db, org.id, { trigger: 'test' });
          if (mid.corrections && process.env.DRIFT_DEBUG) await explain(mid.id, log);
          expect(mid.corrections, `mid-stream drift at op ${i} of stream ${k}, seed ${seed}: run ${mid.id}`).toBe(0);
        }
      }
    }));
    // Every kind of change happened, and most were accepted.
    const ops = new Set([...tally.keys()].map((k) => k.split(' ')[0]));
    expect([...ops].sort(), `seed ${seed}`).toEqual(expect.arrayContaining(['access.grant', 'account.create', 'scim.group.members', 'scim.user.create']));

    await drainPending(app.svc.db);
    const db = app.svc.db.prisma;
    expect(await db.billableDelta.count({ where: { appliedAt: null } })).toBe(0);
    expect(await db.ledgerEntry.count()).toBe(await db.billableDelta.count());

    for (const org of orgs) {
      const run = await reconcileOrg(app.svc.db, org.id, { trigger: 'test' });
      const report = await db.reconciliationRun.findUnique({ where: { id: run.id } });
      expect(run.corrections, `drift in ${org.id} (seed ${seed}): ${JSON.stringify(report?.report)}`).toBe(0);
      const truth = await billableSet(db, org.id, new Date());
      const billable = [...truth].filter(([, b]) => b.billable).map(([id]) => id).sort();
      expect(await ledgerNet(org.id), `seed ${seed}`).toEqual(billable);
      expect(run.billableCount).toBe(billable.length);
      const flags = await db.account.findMany({ where: { orgId: org.id }, select: { id: true, billable: true } });
      for (const f of flags) expect(f.billable, `flag of ${f.id}, seed ${seed}`).toBe(truth.get(f.id)?.billable ?? false);
    }
    expect(alternationProblems(await ledgerInStreamOrder(app.svc.db)), `seed ${seed}`).toEqual([]);
  });
});

async function explain(runId: string, log: string[]) {
  const db = app.svc.db.prisma;
  const run = await db.reconciliationRun.findUniqueOrThrow({ where: { id: runId } });
  const rep = run.report as { added: string[]; removed: string[]; flagIds: string[] };
  console.log('REPORT', JSON.stringify(rep));
  for (const id of [...rep.added, ...rep.removed, ...rep.flagIds]) {
    const deltas = await db.billableDelta.findMany({ where: { accountId: id }, orderBy: { seq: 'asc' } });
    console.log('ACCOUNT', id, JSON.stringify(await db.account.findUnique({ where: { id }, include: { access: true, policy: true } })));
    console.log('DELTAS', deltas.map((d) => `${d.seq} ${d.kind} ${d.cause} ${d.reasons.join(',')} ${d.appliedAt ? 'applied' : 'pending'}`).join(' | '));
    const audit = await db.auditEvent.findMany({ where: { OR: [{ targetId: id }] }, orderBy: { createdAt: 'asc' } });
    console.log('AUDIT', audit.map((a) => a.action).join(', '));
  }
  console.log('SUB', JSON.stringify(await db.subscription.findMany()));
  console.log('LOG', log.slice(-40).join('\n'));
}
