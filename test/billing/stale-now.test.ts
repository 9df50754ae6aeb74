import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, startTestApp, verifyDomain, type TestApp } from '../support/app.js';
import { reconcileOrg } from '../../src/billing/reconcile.js';
import { syncBillability } from '../../src/services/billability-sync.js';
import { inTransaction } from '../../src/store/transaction.js';

/**
 * Regression: billability judged "as of" an instant earlier than a change it can already see.
 * A cancel stamps `cancelledAt` with its request's time T1. A reconciliation (the nightly job
 * passes its tick time) or a change whose request started at T0 < T1 and reads the subscription
 * after the cancel committed saw an org "still in its trial at T0" — a state the database never
 * held once the cancel was visible — and wrote deltas that undid the cancel's (crash test,
 * seed 1291853321: 2 corrections). The evaluation instant is now never earlier than the read.
 */
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => app?.close());

async function cancelledOrg(name: string) {
  const org = await createOrg(app, name);
  const u = (p: string) => `/api/v1/orgs/${org.id}/${p}`;
  const domain = `${name.toLowerCase().replace(/\W+/g, '-')}.example`;
  await verifyDomain(app, org, domain);
  await app.http.post(u('subscription/trial')).set(bearer(org.key)).send({}).expect(200);
  const site = (await app.http.post(u('sites')).set(bearer(org.key)).send({ name: 'main', products: ['jira'] }).expect(201)).body;
  const ids: string[] = [];
  for (const who of ['ann', 'bob']) {
    const a = (await app.http.post(u('accounts')).set(bearer(org.key)).send({ email: `${who}@${domain}` }).expect(201)).body;
    await app.http.post(u(`sites/${site.id}/access`)).set(bearer(org.key)).send({ accountId: a.id, product: 'jira' }).expect(201);
    ids.push(a.id);
  }
  const beforeCancel = new Date(); // after the trial started, before the cancel request
  await app.http.post(u('subscription/cancel')).set(bearer(org.key)).send({}).expect(200);
  const flags = await app.svc.db.prisma.account.findMany({ where: { id: { in: ids } }, select: { billable: true } });
  expect(flags.map((f) => f.billable), 'the cancel made everyone non-billable').toEqual([false, false]);
  return { org, ids, beforeCancel };
}

describe('billability is never judged as of an instant before a change it can see', () => {
  it('reconcile_with_stale_now_undid_a_committed_cancel', async () => {
    const { org, beforeCancel } = await cancelledOrg('Stale Reconcile');
    const run = await reconcileOrg(app.svc.db, org.id, { trigger: 'nightly', now: beforeCancel });
    expect(run.corrections).toBe(0);
    expect(await app.svc.db.prisma.billableDelta.count({ where: { orgId: org.id, cause: 'reconciliation' } })).toBe(0);
  });

  it('change_started_before_a_cancel_wrote_added_deltas_after_it', async () => {
    const { org, ids, beforeCancel } = await cancelledOrg('Stale Change');
    const deltas = await inTransaction(app.svc.db, (tx) =>
      syncBillability(tx, { orgId: org.id, actor: { kind: 'system', name: 'test' }, requestId: null, now: beforeCancel }, ids, 'test'));
    expect(deltas).toEqual([]);
    expect(await app.svc.db.prisma.billableDelta.count({ where: { orgId: org.id, cause: 'test' } })).toBe(0);
  });

  it('a requested instant in the future is kept (what-if and tests of time-based rules)', async () => {
    const { org } = await cancelledOrg('Future Instant');
    const run = await reconcileOrg(app.svc.db, org.id, { trigger: 'test', now: new Date(Date.now() + 86_400_000) });
    expect(run.corrections).toBe(0);
  });
});
