import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, startTestApp, verifyDomain, type TestApp } from '../support/app.js';
import { drainPending } from '../../src/billing/delivery-worker.js';
import { noticeDue } from '../../src/billing/notices.js';
import { createJobs } from '../../src/jobs/jobs.js';
import { loadConfig } from '../../src/config.js';
import { NO_SUBSCRIPTION, type SubscriptionFacts } from '../../src/domain/subscription.js';

type Received = { from: string; to: string[]; raw: string };

/** A real SMTP server on 127.0.0.1 that records every message it accepts. */
async function startSmtp() {
  const messages: Received[] = [];
  const server = new SMTPServer({
    authOptional: true, disabledCommands: ['STARTTLS', 'AUTH'], logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address).sort(),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  server.listen(0, '127.0.0.1');
  await once(server.server, 'listening');
  const port = (server.server.address() as AddressInfo).port;
  return { messages, url: `smtp://127.0.0.1:${port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

let app: TestApp;
let smtp: Awaited<ReturnType<typeof startSmtp>>;
type Org = { id: string; key: string };
const u = (o: Org, p: string) => `/api/v1/orgs/${o.id}/${p}`;
const DAY = 86_400_000;

// The current billing period is the UTC calendar month; its bill is due on the first of the next.
const realNow = new Date();
const billingDate = new Date(Date.UTC(realNow.getUTCFullYear(), realNow.getUTCMonth() + 1, 1));
const previousStart = new Date(Date.UTC(realNow.getUTCFullYear(), realNow.getUTCMonth() - 1, 1));
const inWindow = new Date(billingDate.getTime() - 2 * DAY);

beforeAll(async () => {
  smtp = await startSmtp();
  app = await startTestApp({ SMTP_URL: smtp.url, MAIL_FROM: 'Billing <billing@orgsync.test>' });
});
afterAll(async () => {
  await app?.close();
  await smtp?.close();
});

/**
 * A paying org (monthly, active for three months) with `n` billable accounts whose ledger entries
 * are moved into the previous period; `removeInPrevious` of them also left the bill back then.
 */
async function payingOrg(name: string, n: number, removeInPrevious = 0) {
  const org = await createOrg(app, name);
  const domain = `${name.toLowerCase().replace(/\W+/g, '-')}.example`;
  await verifyDomain(app, org, domain);
  await app.http.post(u(org, 'subscription/trial')).set(bearer(org.key)).send({}).expect(200);
  const site = (await app.http.post(u(org, 'sites')).set(bearer(org.key)).send({ name: 'main', products: ['jira'] }).expect(201)).body;
  const addAccount = async (i: number) => {
    const a = (await app.http.post(u(org, 'accounts')).set(bearer(org.key)).send({ email: `user${i}@${domain}` }).expect(201)).body;
    await app.http.post(u(org, `sites/${site.id}/access`)).set(bearer(org.key)).send({ accountId: a.id, product: 'jira' }).expect(201);
    return { id: a.id as string, email: `user${i}@${domain}` };
  };
  const accounts = [];
  for (let i = 0; i < n; i++) accounts.push(await addAccount(i));
  for (const a of accounts.slice(0, removeInPrevious)) await app.http.post(u(org, `accounts/${a.id}/disable`)).set(bearer(org.key)).send({}).expect(200);
  await drainPending(app.svc.db);
  const db = app.svc.db.prisma;
  await db.ledgerEntry.updateMany({ where: { orgId: org.id, kind: 'added' }, data: { occurredAt: new Date(previousStart.getTime() + DAY) } });
  await db.ledgerEntry.updateMany({ where: { orgId: org.id, kind: 'removed' }, data: { occurredAt: new Date(previousStart.getTime() + 2 * DAY) } });
  const activeSince = new Date(previousStart.getTime() - 60 * DAY);
  await db.subscription.update({
    where: { orgId: org.id },
    data: { trialStartedAt: new Date(activeSince.getTime() - 30 * DAY), trialEndsAt: activeSince, paymentMethodAddedAt: new Date(activeSince.getTime() - DAY) },
  });
  return { org, accounts, addAccount };
}

const grant = (org: Org, accountId: string, role: string) =>
  app.http.post(u(org, `accounts/${accountId}/roles`)).set(bearer(org.key)).send({ role }).expect(201);
const runNotices = (now: Date) => app.svc.scheduler.runJobOnce('bill-notices', { now });
const noticesOf = (orgId: string) => app.svc.db.prisma.billNotice.findMany({ where: { orgId } });

describe('3-day bill notices over SMTP', () => {
  it('mails every billing and technical contact once when the expected amount is higher than the previous bill', async () => {
    const { org, accounts, addAccount } = await payingOrg('Growing Co', 3);
    await grant(org, accounts[0]!.id, 'billing_contact');
    await grant(org, accounts[1]!.id, 'technical_contact');
    await grant(org, accounts[1]!.id, 'billing_contact');
    await grant(org, accounts[2]!.id, 'org_admin');
    await addAccount(3);
    await addAccount(4);
    await drainPending(app.svc.db);

    // Four days before: outside the window.
    await runNotices(new Date(billingDate.getTime() - 4 * DAY));
    expect(await noticesOf(org.id)).toEqual([]);

    const out = await runNotices(inWindow);
    expect(out.status).toBe('done');
    const mine = smtp.messages.filter((m) => m.raw.includes('Growing Co'));
    expect(mine).toHaveLength(1);
    expect(mine[0]!.to).toEqual([accounts[0]!.email, accounts[1]!.email].sort());
    expect(mine[0]!.from).toBe('billing@orgsync.test');
    const day = billingDate.toISOString().slice(0, 10);
    expect(mine[0]!.raw).toContain(`Subject: Growing Co: your bill on ${day} is expected to be USD 20.00`);
    expect(mine[0]!.raw).toMatch(/previous bill USD\s+12\.00/);

    const rows = await noticesOf(org.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ billingDate, amount: 2000, previousAmount: 1200, recipients: [accounts[0]!.email, accounts[1]!.email].sort() });

    // Not twice: the next tick (or another replica) finds the notice.
    const again = await runNotices(new Date(inWindow.getTime() + 3600_000));
    expect(again).toMatchObject({ status: 'done', result: expect.objectContaining({ sent: 0 }) });
    expect(smtp.messages.filter((m) => m.raw.includes('Growing Co'))).toHaveLength(1);
    expect(await noticesOf(org.id)).toHaveLength(1);
  });

  it('says nothing when the expected amount equals the previous bill, or is lower', async () => {
    const equal = await payingOrg('Steady Co', 3);
    await grant(equal.org, equal.accounts[0]!.id, 'billing_contact');
    const lower = await payingOrg('Shrinking Co', 4, 2);
    await grant(lower.org, lower.accounts[3]!.id, 'billing_contact');
    const out = await runNotices(inWindow);
    // Both were looked at and found not higher (Growing Co of the test above was already noticed).
    expect(out).toMatchObject({ status: 'done', result: expect.objectContaining({ notHigher: 2, alreadySent: 1, sent: 0 }) });
    expect(smtp.messages.filter((m) => m.raw.includes('Steady Co') || m.raw.includes('Shrinking Co'))).toEqual([]);
    expect(await noticesOf(equal.org.id)).toEqual([]);
    expect(await noticesOf(lower.org.id)).toEqual([]);
  });

  it('without SMTP configured the job says so and sends nothing', async () => {
    const config = loadConfig({ JOBS_ENABLED: 'false' });
    const job = createJobs({ config, box: app.svc.services.box }).find((j) => j.name === 'bill-notices')!;
    const result = await job.run({ db: app.svc.db, logger: pino({ level: 'silent' }), now: inWindow, tickAt: inWindow, trigger: 'manual' });
    expect(result).toEqual({ skipped: 'no-smtp' });
  });
});

describe('noticeDue (pure)', () => {
  const now = new Date('2026-03-29T10:00:00Z'); // 3 days before 1 April
  const facts = (f: Partial<SubscriptionFacts>): SubscriptionFacts => ({ ...NO_SUBSCRIPTION, plan: 'standard', ...f });
  const active = { trialStartedAt: new Date('2025-12-01T00:00:00Z'), trialEndsAt: new Date('2025-12-31T00:00:00Z'), paymentMethodAddedAt: new Date('2025-12-20T00:00:00Z') };
  it.each([
    ['monthly, active, within 3 days', facts(active), now, true],
    ['monthly, active, 4 days before', facts(active), new Date('2026-03-28T00:00:00Z'), false],
    ['monthly, exactly 3 days before', facts(active), new Date('2026-03-29T00:00:00Z'), true],
    ['monthly, on the billing date (next period)', facts(active), new Date('2026-04-01T00:00:00Z'), false],
    ['trial without payment method', facts({ trialStartedAt: new Date('2026-03-10T00:00:00Z'), trialEndsAt: new Date('2026-04-09T00:00:00Z') }), now, false],
    ['trial with payment method, still a trial at the billing date', facts({ trialStartedAt: new Date('2026-03-10T00:00:00Z'), trialEndsAt: new Date('2026-04-09T00:00:00Z'), paymentMethodAddedAt: new Date('2026-03-11T00:00:00Z') }), now, false],
    ['trial with payment method, turned active before the billing date', facts({ trialStartedAt: new Date('2026-02-28T00:00:00Z'), trialEndsAt: new Date('2026-03-30T00:00:00Z'), paymentMethodAddedAt: new Date('2026-03-01T00:00:00Z') }), now, true],
    ['cancelled', facts({ ...active, cancelledAt: new Date('2026-03-15T00:00:00Z') }), now, false],
    ['community edition', facts({ ...active, edition: 'community' }), now, false],
    ['annual, three days before the anniversary', facts({ ...active, cycle: 'annual' }), new Date('2026-12-29T00:00:00Z'), true],
    ['annual, at the end of a month', facts({ ...active, cycle: 'annual' }), now, false],
  ])('%s', (_name, f, at, due) => {
    expect(noticeDue(f, at).due).toBe(due);
  });
});
