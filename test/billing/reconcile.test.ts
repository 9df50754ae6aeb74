import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, startTestApp, verifyDomain, type TestApp } from '../support/app.js';
import { onPostgres } from '../support/database.js';
import { drainPending } from '../../src/billing/delivery-worker.js';
import { billableSet } from '../../src/store/billable-set.js';
import { reconcileOrg } from '../../src/billing/reconcile.js';
import { Conflict } from '../../src/domain/errors.js';
import { openDatabase } from '../../src/store/database.js';

let app: TestApp;
type Org = { id: string; key: string; defaultPolicyId: string };
const u = (o: Org, p: string) => `/api/v1/orgs/${o.id}/${p}`;

beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => app?.close());

/** An org in its trial with a Jira site and `n` managed accounts with Jira access (all billable). */
async function billableOrg(name: string, n: number): Promise<{ org: Org; siteId: string; accounts: string[] }> {
  const org = await createOrg(app, name);
  const domain = `${name.toLowerCase().replace(/\W+/g, '-')}.example`;
  await verifyDomain(app, org, domain);
  await app.http.post(u(org, 'subscription/trial')).set(bearer(org.key)).send({}).expect(200);
  const site = (await app.http.post(u(org, 'sites')).set(bearer(org.key)).send({ name: 'main', products: ['jira', 'confluence'] }).expect(201)).body;
  const accounts: string[] = [];
  for (let i = 0; i < n; i++) {
    const a = (await app.http.post(u(org, 'accounts')).set(bearer(org.key)).send({ email: `user${i}@${domain}` }).expect(201)).body;
    await app.http.post(u(org, `sites/${site.id}/access`)).set(bearer(org.key)).send({ accountId: a.id, product: 'jira' }).expect(201);
    accounts.push(a.id);
  }
  return { org, siteId: site.id, accounts };
}

const reconcile = async (org: Org) => (await app.http.post(u(org, 'billing/reconciliations')).set(bearer(org.key)).send({}).expect(201)).body;

/** The ledger's net state: accounts whose latest ledger entry (in stream order) is `added`. */
async function ledgerBillable(orgId: string): Promise<Set<string>> {
  const rows = await app.svc.db.prisma.$queryRaw<{ accountId: string }[]>`
    SELECT "accountId"::text AS "accountId" FROM (
      SELECT DISTINCT ON ("accountId") "accountId", "kind" FROM "LedgerEntry" WHERE "orgId" = ${orgId}::uuid
      ORDER BY "accountId", "streamSeq" DESC) t
    WHERE "kind" = 'added'`;
  return new Set(rows.map((r) => r.accountId));
}

async function truthBillable(orgId: string): Promise<Set<string>> {
  const set = await billableSet(app.svc.db.prisma, orgId, new Date());
  return new Set([...set].filter(([, b]) => b.billable).map(([id]) => id));
}

describe('reconciliation of a healthy org', () => {
  it('finds nothing to correct, before and after delivery (pending outbox rows count as the ledger-to-be)', async () => {
    const { org } = await billableOrg('Healthy Co', 5);
    const before = await reconcile(org);
    expect(before).toMatchObject({ status: 'done', corrections: 0, billableCount: 5, ledgerCount: 5 });
    expect(before.id).toMatch(/^[0-9a-f-]{36}$/);

    await drainPending(app.svc.db);
    const after = await reconcile(org);
    expect(after).toMatchObject({ status: 'done', corrections: 0, billableCount: 5, ledgerCount: 5 });
    expect(await ledgerBillable(org.id)).toEqual(await truthBillable(org.id));
  });
});

describe('drift is found, corrected with deltas of cause reconciliation, and reported', () => {
  let org: Org;
  let siteId: string;
  let accounts: string[];
  let report: { id: string; corrections: number };
  const ghost = randomUUID();

  beforeAll(async () => {
    ({ org, siteId, accounts } = await billableOrg('Drift Co', 6));
    await drainPending(app.svc.db);
    const db = app.svc.db.prisma;
    const [a0, a1, a2, a3] = accounts as [string, string, string, string];
    // 1. A delta lost on its way to the ledger (marked applied, never written).
    await db.ledgerEntry.deleteMany({ where: { accountId: a0 } });
    // 2. A stored flag that disagrees with the rule (its ledger is right).
    await db.account.update({ where: { id: a1 }, data: { billable: false } });
    // 3. A change without its delta: access removed behind the service's back.
    await db.productAccess.deleteMany({ where: { accountId: a2 } });
    // 4. A change without its delta the other way: a disabled account's ledger says removed, but
    //    the account was re-enabled by hand (flag and ledger both stale).
    await app.http.post(u(org, `accounts/${a3}/disable`)).set(bearer(org.key)).send({}).expect(200);
    await drainPending(app.svc.db);
    await db.account.update({ where: { id: a3 }, data: { status: 'active' } });
    // 5. The ledger bills an account that no longer exists.
    const streamSeq = (await db.ledgerEntry.aggregate({ _max: { streamSeq: true } }))._max.streamSeq! + 1n;
    await db.ledgerEntry.create({
      data: { deltaId: randomUUID(), orgId: org.id, accountId: ghost, kind: 'added', reasons: ['test'], cause: 'test', occurredAt: new Date(), streamSeq },
    });
    report = await reconcile(org);
  });

  it('answers with the number of accounts corrected', () => {
    expect(report).toMatchObject({ status: 'done', corrections: 5, billableCount: 5 });
  });

  it('writes one correction delta per account the ledger had wrong, with the recomputed reasons', async () => {
    const rows = await app.svc.db.prisma.billableDelta.findMany({ where: { orgId: org.id, cause: 'reconciliation' }, orderBy: { seq: 'asc' } });
    const byAccount = Object.fromEntries(rows.map((r) => [r.accountId, r]));
    expect(Object.keys(byAccount).sort()).toEqual([accounts[0], accounts[2], accounts[3], ghost].sort());
    expect(byAccount[accounts[0]!]).toMatchObject({ kind: 'added', reasons: ['managed', 'active', 'access:jira'] });
    expect(byAccount[accounts[2]!]).toMatchObject({ kind: 'removed', reasons: ['no-product-access'] });
    expect(byAccount[accounts[3]!]).toMatchObject({ kind: 'added' });
    expect(byAccount[ghost]).toMatchObject({ kind: 'removed', reasons: ['account-deleted'] });
  });

  it('fixes the stored flags', async () => {
    const flags = await app.svc.db.prisma.account.findMany({ where: { orgId: org.id }, select: { id: true, billable: true } });
    const truth = await truthBillable(org.id);
    for (const f of flags) expect(f.billable, f.id).toBe(truth.has(f.id));
  });

  it('records the run with its report; GET lists runs newest first and shows one', async () => {
    const one = await app.http.get(u(org, `billing/reconciliations/${report.id}`)).set(bearer(org.key)).expect(200);
    expect(one.body).toMatchObject({ id: report.id, status: 'done', trigger: 'api', corrections: 5, billableCount: 5, ledgerCount: 5 });
    expect(one.body.report).toMatchObject({ deltasWritten: 4, flagsFixed: 3, truncated: false, accounts: 6 });
    expect(new Set(one.body.report.added)).toEqual(new Set([accounts[0], accounts[3]]));
    expect(new Set(one.body.report.removed)).toEqual(new Set([accounts[2], ghost]));
    expect(new Set(one.body.report.flagIds)).toEqual(new Set([accounts[1], accounts[2], accounts[3]]));

    const second = await reconcile(org);
    const list = await app.http.get(u(org, 'billing/reconciliations?limit=1')).set(bearer(org.key)).expect(200);
    expect(list.body.items.map((r: { id: string }) => r.id)).toEqual([second.id]);
    const page2 = await app.http.get(u(org, `billing/reconciliations?limit=1&cursor=${list.body.next}`)).set(bearer(org.key)).expect(200);
    expect(page2.body.items.map((r: { id: string }) => r.id)).toEqual([report.id]);
  });

  it('a second run finds nothing (pending corrections count), and neither does one after delivery', async () => {
    expect((await reconcile(org)).corrections).toBe(0);
    await drainPending(app.svc.db);
    expect((await reconcile(org)).corrections).toBe(0);
    const ledger = await ledgerBillable(org.id);
    expect(ledger).toEqual(await truthBillable(org.id));
    // The site is still there; re-granting through the API flows through the normal path.
    await app.http.post(u(org, `sites/${siteId}/access`)).set(bearer(org.key)).send({ accountId: accounts[2], product: 'jira' }).expect(201);
    expect((await reconcile(org)).corrections).toBe(0);
  });

  it("another org's run is a 404, a malformed id a 400", async () => {
    const other = await createOrg(app, 'Other Co');
    await app.http.get(u(other, `billing/reconciliations/${report.id}`)).set(bearer(other.key)).expect(404);
    await app.http.get(u(org, 'billing/reconciliations/nope')).set(bearer(org.key)).expect(400);
  });
});

describe('one run per org at a time', () => {
  it('a second concurrent run in the process is a Conflict', async () => {
    const { org } = await billableOrg('Busy Co', 2);
    const first = reconcileOrg(app.svc.db, org.id, { trigger: 'test' });
    await expect(reconcileOrg(app.svc.db, org.id, { trigger: 'test' })).rejects.toBeInstanceOf(Conflict);
    expect((await first).status).toBe('done');
  });

  it.runIf(onPostgres)('a run while another replica holds the org lock answers 409 (PostgreSQL)', async () => {
    const { org } = await billableOrg('Locked Co', 2);
    // A second Database object on the same schema: its own pool, like another replica.
    const schema = app.tdb.schema!;
    const other = await openDatabase({ kind: 'postgres', url: process.env.DATABASE_URL!, poolSize: 2, schema });
    try {
      await other.withSession(async (s) => {
        await s.query(`SELECT pg_advisory_lock(${0x6f72726e}, hashtext($1))`, [org.id]);
        const res = await app.http.post(u(org, 'billing/reconciliations')).set(bearer(org.key)).send({});
        expect(res.status).toBe(409);
        expect(res.body.type).toMatch(/reconciliation-running$/);
        await s.query(`SELECT pg_advisory_unlock(${0x6f72726e}, hashtext($1))`, [org.id]);
      });
    } finally {
      await other.close();
    }
    await reconcile(org);
  });
});
