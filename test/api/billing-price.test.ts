import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, startTestApp, verifyDomain, type TestApp } from '../support/app.js';

/**
 * Issue 11 §5 "The price is right", over HTTP: one person counts once across an email change,
 * plan segments (Standard → Premium → Standard) never price a user at a plan under which that user
 * was not billable, unpaid periods are not charged, and the monthly refund window is not reopened
 * by a resubscribe. The delivery worker is off (JOBS_ENABLED=false): `deliver` applies the outbox
 * to the ledger as the worker would.
 *
 * Prices: Standard 1–2 users at 1000, then 500 (cents); Premium is derived at 1.5 × (1500, 750).
 */
const TIERS = [{ upTo: 2, unitPrice: 1000 }, { upTo: null, unitPrice: 500 }];
const DAY = 86_400_000;

let app: TestApp;
type Org = { id: string; key: string; defaultPolicyId: string };
const u = (o: Org, p: string) => `/api/v1/orgs/${o.id}/${p}`;

beforeAll(async () => {
  app = await startTestApp({ JOBS_ENABLED: 'false', BILLING_TIERS: JSON.stringify(TIERS) });
});
afterAll(async () => app?.close());

let streamSeq = 8_000_000_000_000n;
async function deliver(orgId: string) {
  const deltas = await app.svc.db.prisma.billableDelta.findMany({ where: { orgId, appliedAt: null }, orderBy: { seq: 'asc' } });
  for (const d of deltas) {
    await app.svc.db.prisma.ledgerEntry.create({
      data: { deltaId: d.id, orgId, accountId: d.accountId, kind: d.kind, reasons: d.reasons, cause: d.cause, occurredAt: d.occurredAt, streamSeq: streamSeq++ },
    });
    await app.svc.db.prisma.billableDelta.update({ where: { id: d.id }, data: { appliedAt: new Date() } });
  }
}
async function account(org: Org, email: string): Promise<string> {
  return (await app.http.post(u(org, 'accounts')).set(bearer(org.key)).send({ email }).expect(201)).body.id;
}
async function site(org: Org, name: string, products: string[]): Promise<string> {
  return (await app.http.post(u(org, 'sites')).set(bearer(org.key)).send({ name, products }).expect(201)).body.id;
}
async function grant(org: Org, siteId: string, accountId: string, product: string, role?: string) {
  await app.http.post(u(org, `sites/${siteId}/access`)).set(bearer(org.key)).send({ accountId, product, ...(role ? { role } : {}) }).expect(201);
}
const estimate = async (org: Org) => (await app.http.get(u(org, 'billing/estimate')).set(bearer(org.key)).expect(200)).body;
const monthStart = (d: Date) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
const nextMonthStart = (d: Date) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1));

async function trialOrg(name: string, domain: string): Promise<Org> {
  const org = await createOrg(app, name);
  await verifyDomain(app, org, domain);
  await app.http.post(u(org, 'subscription/trial')).set(bearer(org.key)).send({}).expect(200);
  return org;
}
/** The org paid (monthly) from a trial that ended at `trialEndsAt`; the plan chosen at the trial's start moves with it. */
async function paidSince(org: Org, trialEndsAt: Date) {
  const trialStartedAt = new Date(trialEndsAt.getTime() - 30 * DAY);
  await app.svc.db.prisma.subscription.update({
    where: { orgId: org.id },
    data: { trialStartedAt, trialEndsAt, paymentMethodAddedAt: new Date(trialEndsAt.getTime() - DAY) },
  });
  await app.svc.db.prisma.subscriptionPlanChange.updateMany({ where: { orgId: org.id, fromPlan: null }, data: { changedAt: trialStartedAt } });
}
/** Moves the org's ledger entries of `cause` (and its plan changes at that instant) to `at`. */
async function moveChange(orgId: string, cause: string, from: Date, at: Date) {
  const db = app.svc.db.prisma;
  await db.ledgerEntry.updateMany({ where: { orgId, cause, occurredAt: from }, data: { occurredAt: at } });
  await db.subscriptionPlanChange.updateMany({ where: { orgId, changedAt: from }, data: { changedAt: at } });
}

describe('one person counts once per period', () => {
  it('a billable account whose email changes mid-period counts once (by account, not by address)', async () => {
    const org = await trialOrg('Renamed Co', 'renamed.example');
    await paidSince(org, new Date(monthStart(new Date()).getTime() - 40 * DAY));
    const s = await site(org, 'prod', ['jira']);
    const id = await account(org, 'old.name@renamed.example');
    await grant(org, s, id, 'jira');
    await deliver(org.id);
    // The IdP renames the person (issue 11 §4: the same account follows); then the account leaves
    // and rejoins the bill under its new address — two more ledger entries for the same person.
    await app.svc.db.prisma.account.update({
      where: { id }, data: { email: 'new.name@renamed.example', emailNormalized: 'new.name@renamed.example' },
    });
    await app.http.post(u(org, `accounts/${id}/disable`)).set(bearer(org.key)).send({}).expect(200);
    await app.http.post(u(org, `accounts/${id}/enable`)).set(bearer(org.key)).send({}).expect(200);
    await deliver(org.id);
    expect((await app.svc.db.prisma.ledgerEntry.findMany({ where: { orgId: org.id }, orderBy: { streamSeq: 'asc' } })).map((e) => e.kind))
      .toEqual(['added', 'removed', 'added']);

    const e = await estimate(org);
    expect(e).toMatchObject({ state: 'active', billableUsers: 1, periodBillableUsers: 1, charged: true, amount: 1000, wouldBeAmount: 1000 });
    expect(e.segments).toMatchObject([{ plan: 'standard', charged: true, users: 1, share: 1, amount: 1000 }]);
    const listed = (await app.http.get(u(org, 'billing/billable-users')).set(bearer(org.key)).expect(200)).body.items;
    expect(listed.map((x: { accountId: string; email: string }) => [x.accountId, x.email])).toEqual([[id, 'new.name@renamed.example']]);
  });
});

describe('plan segments: a mid-period plan change never prices a user at a plan under which the user was not billable', () => {
  it('Standard → Premium → Standard: JSM-only and Trello-only users are never counted at Premium; each segment is prorated', async () => {
    const org = await trialOrg('Switching Co', 'switching.example');
    const now = new Date();
    const start = monthStart(now);
    const end = nextMonthStart(now);
    await paidSince(org, new Date(start.getTime() - 40 * DAY));
    const s = await site(org, 'prod', ['jira', 'jsm', 'trello']);
    const ann = await account(org, 'ann@switching.example');
    const jay = await account(org, 'jay@switching.example');
    const tom = await account(org, 'tom@switching.example');
    await grant(org, s, ann, 'jira');
    await grant(org, s, jay, 'jsm', 'agent');
    await grant(org, s, tom, 'trello');
    await deliver(org.id);
    // Billable since before this period.
    await app.svc.db.prisma.ledgerEntry.updateMany({ where: { orgId: org.id }, data: { occurredAt: new Date(start.getTime() - DAY) } });

    // The two switches happen at a third and at two thirds of the time elapsed in the month.
    const t1 = new Date(start.getTime() + Math.floor((now.getTime() - start.getTime()) / 3));
    const t2 = new Date(start.getTime() + Math.floor((2 * (now.getTime() - start.getTime())) / 3));
    const switchTo = async (plan: 'premium' | 'standard', at: Date) => {
      await app.http.post(u(org, 'subscription/payment-method')).set(bearer(org.key)).send({ plan }).expect(200);
      const change = await app.svc.db.prisma.subscriptionPlanChange.findFirstOrThrow({ where: { orgId: org.id, toPlan: plan }, orderBy: { id: 'desc' } });
      await deliver(org.id);
      // The deltas of the change carry its time to the millisecond (both are the transaction's now()).
      const deltas = await app.svc.db.prisma.ledgerEntry.findMany({ where: { orgId: org.id, cause: 'plan-changed', occurredAt: change.changedAt } });
      expect(deltas.map((d) => [d.accountId, d.kind]).sort()).toEqual(
        [jay, tom].map((id) => [id, plan === 'premium' ? 'removed' : 'added']).sort(),
      );
      await moveChange(org.id, 'plan-changed', change.changedAt, at);
    };

    await switchTo('premium', t1);
    const length = end.getTime() - start.getTime();
    const share1 = (t1.getTime() - start.getTime()) / length;
    const share2 = (end.getTime() - t1.getTime()) / length;
    let e = await estimate(org);
    // Regression: the whole period used to be priced at Premium for all three period users
    // (3 at 1500/1500/750 = 3750), Jay and Tom included.
    expect(e.segments).toEqual([
      {
        plan: 'standard', from: start.toISOString(), to: t1.toISOString(), share: share1, charged: true, users: 3, priceDifferenceUsers: 0,
        amount: Math.round(2000 * share1) + Math.round(500 * share1),
        tiers: [
          { from: 1, to: 2, users: 2, unitPrice: 1000, amount: Math.round(2000 * share1), basis: 'standard' },
          { from: 3, to: 3, users: 1, unitPrice: 500, amount: Math.round(500 * share1), basis: 'standard' },
        ],
      },
      {
        plan: 'premium', from: t1.toISOString(), to: end.toISOString(), share: share2, charged: true, users: 1, priceDifferenceUsers: 0,
        amount: Math.round(1500 * share2),
        tiers: [{ from: 1, to: 1, users: 1, unitPrice: 1500, amount: Math.round(1500 * share2), basis: 'premium' }],
      },
    ]);
    expect(e).toMatchObject({ plan: 'premium', periodBillableUsers: 3, billableUsers: 1, charged: true });
    expect(e.amount).toBe(e.segments[0].amount + e.segments[1].amount);

    await switchTo('standard', t2);
    e = await estimate(org);
    const s3 = (end.getTime() - t2.getTime()) / length;
    const p2 = (t2.getTime() - t1.getTime()) / length;
    expect(e.segments.map((g: { plan: string; from: string; to: string; users: number; share: number }) => [g.plan, g.from, g.to, g.users, g.share])).toEqual([
      ['standard', start.toISOString(), t1.toISOString(), 3, share1],
      ['premium', t1.toISOString(), t2.toISOString(), 1, p2],
      ['standard', t2.toISOString(), end.toISOString(), 3, s3],
    ]);
    // Nobody but Ann is ever on a Premium line.
    expect(e.segments[1].tiers).toEqual([{ from: 1, to: 1, users: 1, unitPrice: 1500, amount: Math.round(1500 * p2), basis: 'premium' }]);
    const segmentSum = e.segments.reduce((sum: number, g: { amount: number }) => sum + g.amount, 0);
    expect(e).toMatchObject({ plan: 'standard', periodBillableUsers: 3, billableUsers: 3, amount: segmentSum, wouldBeAmount: segmentSum, charged: true });
    expect(e.tiers).toEqual(e.segments.flatMap((g: { tiers: unknown[] }) => g.tiers));
    // Each segment's lines add up to its amount, and prorated it is at most the full month's price.
    for (const g of e.segments) expect(g.amount).toBe(g.tiers.reduce((sum: number, l: { amount: number }) => sum + l.amount, 0));
    expect(e.amount).toBeLessThanOrEqual(Math.round(1500 * 1) + 2500);
  });
});

describe('a period that is not paid for is not charged', () => {
  it('a trial: charged false, amount 0, the would-be amount beside it', async () => {
    const org = await trialOrg('Trialling Co', 'trialling.example');
    const s = await site(org, 'prod', ['jira']);
    for (const n of ['a', 'b', 'c']) await grant(org, s, await account(org, `${n}@trialling.example`), 'jira');
    await deliver(org.id);
    const e = await estimate(org);
    expect(e).toMatchObject({ state: 'trial', charged: false, amount: 0, wouldBeAmount: 2500, periodBillableUsers: 3 });
    expect(e.segments).toMatchObject([{ plan: 'standard', charged: false, users: 3, share: 1, amount: 2500 }]);
  });

  it('no subscription: charged false, amount 0, would-be 0', async () => {
    const org = await createOrg(app, 'Nothing Co');
    const e = await estimate(org);
    expect(e).toMatchObject({ state: 'none', charged: false, amount: 0, wouldBeAmount: 0 });
    expect(e.segments).toMatchObject([{ charged: false, users: 0, amount: 0 }]);
  });

  it('unsubscribed all period (trial ended last month without payment): charged false, amount 0', async () => {
    const org = await trialOrg('Lapsed Price Co', 'lapsed-price.example');
    const s = await site(org, 'prod', ['jira']);
    await grant(org, s, await account(org, 'a@lapsed-price.example'), 'jira');
    await deliver(org.id);
    const start = monthStart(new Date());
    const trialEndsAt = new Date(start.getTime() - 2 * DAY);
    await app.svc.db.prisma.subscription.update({ where: { orgId: org.id }, data: { trialStartedAt: new Date(trialEndsAt.getTime() - 30 * DAY), trialEndsAt } });
    await app.svc.db.prisma.ledgerEntry.updateMany({ where: { orgId: org.id }, data: { occurredAt: new Date(trialEndsAt.getTime() - 10 * DAY) } });
    const e = await estimate(org);
    expect(e).toMatchObject({ state: 'unsubscribed', charged: false, amount: 0, wouldBeAmount: 0 });
  });

  it('a paid trial that turned active mid-month: only the paid part is charged, the trial part is would-be only', async () => {
    const org = await trialOrg('Converted Co', 'converted.example');
    const now = new Date();
    const start = monthStart(now);
    const end = nextMonthStart(now);
    const s = await site(org, 'prod', ['jira']);
    for (const n of ['a', 'b']) await grant(org, s, await account(org, `${n}@converted.example`), 'jira');
    await deliver(org.id);
    await app.svc.db.prisma.ledgerEntry.updateMany({ where: { orgId: org.id }, data: { occurredAt: new Date(start.getTime() - DAY) } });
    const trialEndsAt = new Date(start.getTime() + Math.floor((now.getTime() - start.getTime()) / 2));
    await paidSince(org, trialEndsAt);
    const e = await estimate(org);
    const length = end.getTime() - start.getTime();
    const unpaid = (trialEndsAt.getTime() - start.getTime()) / length;
    const paid = (end.getTime() - trialEndsAt.getTime()) / length;
    expect(e.segments).toMatchObject([
      { plan: 'standard', from: start.toISOString(), to: trialEndsAt.toISOString(), charged: false, users: 2, share: unpaid, amount: Math.round(2000 * unpaid) },
      { plan: 'standard', from: trialEndsAt.toISOString(), to: end.toISOString(), charged: true, users: 2, share: paid, amount: Math.round(2000 * paid) },
    ]);
    expect(e).toMatchObject({ state: 'active', charged: true, amount: Math.round(2000 * paid), wouldBeAmount: Math.round(2000 * unpaid) + Math.round(2000 * paid) });
  });
});

describe('refunds: a monthly subscription is refundable only in its first paid month after the first trial', () => {
  it('resubscribing months later does not reopen the window', async () => {
    const org = await trialOrg('Refund Co', 'refund.example');
    const firstPaid = new Date(Date.now() - 70 * DAY);
    await paidSince(org, firstPaid);
    expect((await app.http.get(u(org, 'subscription')).set(bearer(org.key)).expect(200)).body).toMatchObject({ state: 'active', refundEligible: false });
    await app.http.post(u(org, 'subscription/cancel')).set(bearer(org.key)).send({}).expect(200);
    const res = await app.http.post(u(org, 'subscription/resubscribe')).set(bearer(org.key)).send({}).expect(200);
    // Regression: the resubscribe set activatedAt = now and the window opened again (true).
    expect(res.body).toMatchObject({ state: 'active', refundEligible: false });
    const row = await app.svc.db.prisma.subscription.findUniqueOrThrow({ where: { orgId: org.id } });
    expect(row.firstPaidAt).toEqual(firstPaid);
    // A second cancel and resubscribe keeps the first paid start.
    await app.http.post(u(org, 'subscription/cancel')).set(bearer(org.key)).send({}).expect(200);
    expect((await app.http.post(u(org, 'subscription/resubscribe')).set(bearer(org.key)).send({}).expect(200)).body.refundEligible).toBe(false);
    expect((await app.svc.db.prisma.subscription.findUniqueOrThrow({ where: { orgId: org.id } })).firstPaidAt).toEqual(firstPaid);
  });

  it('an org whose trial ended unpaid: its first paid month (from the resubscribe) is refundable', async () => {
    const org = await trialOrg('Late Payer Co', 'late-payer.example');
    const trialEndsAt = new Date(Date.now() - 20 * DAY);
    await app.svc.db.prisma.subscription.update({ where: { orgId: org.id }, data: { trialStartedAt: new Date(trialEndsAt.getTime() - 30 * DAY), trialEndsAt } });
    expect((await app.http.get(u(org, 'subscription')).set(bearer(org.key)).expect(200)).body.state).toBe('unsubscribed');
    await app.http.post(u(org, 'subscription/payment-method')).set(bearer(org.key)).send({}).expect(200);
    const res = await app.http.post(u(org, 'subscription/resubscribe')).set(bearer(org.key)).send({}).expect(200);
    expect(res.body).toMatchObject({ state: 'active', refundEligible: true });
    const row = await app.svc.db.prisma.subscription.findUniqueOrThrow({ where: { orgId: org.id } });
    expect(row.firstPaidAt).toEqual(row.activatedAt);
  });
});
