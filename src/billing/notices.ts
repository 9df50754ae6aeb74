import { Prisma } from '../generated/prisma/client.js';
import type { Database } from '../store/database.js';
import type { Tx } from '../store/transaction.js';
import type { Logger } from '../log.js';
import { addDays, subscriptionStatus, type SubscriptionFacts } from '../domain/subscription.js';
import { billingPeriod } from '../domain/pricing.js';
import type { PriceTier } from '../domain/pricing.js';
import { estimateBill, type Estimate } from './estimate.js';
import type { Mailer } from './mailer.js';

/** Notices go out this many days before a billing date (SPEC §4). */
export const NOTICE_DAYS = 3;

export type NoticeDecision =
  | { due: false; why: 'not-billed' | 'outside-window' }
  | { due: true; billingDate: Date; periodStart: Date };

/**
 * Whether an org's next bill is within the notice window at `now` (pure). The billing date is the
 * end of the current billing period (src/domain/pricing.ts: the UTC calendar month for monthly, the
 * subscription year for annual); it is billed only if the org is paying then — active at the
 * period's last instant (a trial with a payment method counts once it has turned active).
 */
export function noticeDue(facts: SubscriptionFacts, now: Date): NoticeDecision {
  const status = subscriptionStatus(facts, now);
  if (status.edition !== 'commercial') return { due: false, why: 'not-billed' };
  const anchor = status.activeSince ?? (status.state === 'trial' ? status.trialEndsAt : null);
  const period = billingPeriod(status.cycle, anchor, now);
  if (subscriptionStatus(facts, new Date(period.end.getTime() - 1)).state !== 'active') return { due: false, why: 'not-billed' };
  if (now < addDays(period.end, -NOTICE_DAYS) || now >= period.end) return { due: false, why: 'outside-window' };
  return { due: true, billingDate: period.end, periodStart: period.start };
}

export type NoticeRun = { orgs: number; due: number; sent: number; notHigher: number; alreadySent: number; noRecipients: number; failed: number };

/**
 * The bill-notices job: for every org whose billing date is at most three days away, compare the
 * expected amount (the estimate, src/billing/estimate.ts) with the previous bill — the amount of
 * the previous billing period, or 0 when the org was not paying then (its first bill) — and, when
 * it is higher, mail every billing and technical contact.
 *
 * Once per (org, billing date): the BillNotice row is inserted first, in a transaction that also
 * sends the mail, so a second tick or replica finds it (unique key) and a failed send rolls it back
 * to be retried on the next tick. A crash after the SMTP server accepted and before the commit may
 * send the notice twice: at-least-once, never silently lost.
 */
export async function sendBillNotices(
  db: Database,
  opts: { mailer: Mailer; tiers: readonly PriceTier[]; currency: string; now: Date; logger?: Logger; premiumTiers?: readonly PriceTier[] },
): Promise<NoticeRun> {
  const { now } = opts;
  const billing = { tiers: opts.tiers, currency: opts.currency, premiumTiers: opts.premiumTiers };
  const subs = await db.prisma.subscription.findMany({
    where: { edition: 'commercial', OR: [{ activatedAt: { not: null } }, { paymentMethodAddedAt: { not: null } }] },
  });
  const run: NoticeRun = { orgs: subs.length, due: 0, sent: 0, notHigher: 0, alreadySent: 0, noRecipients: 0, failed: 0 };
  for (const s of subs) {
    const { orgId, updatedAt: _u, ...facts } = s;
    const decision = noticeDue(facts, now);
    if (!decision.due) continue;
    run.due++;
    try {
      const outcome = await noticeForOrg(db, orgId, facts, decision, now, billing, opts.mailer);
      run[outcome]++;
      if (outcome === 'sent') opts.logger?.info({ orgId, billingDate: decision.billingDate }, 'bill notice sent');
    } catch (err) {
      run.failed++;
      opts.logger?.error({ err, orgId }, 'bill notice failed; retried on the next tick');
    }
  }
  if (run.failed) throw Object.assign(new Error(`${run.failed} bill notices failed`), { run });
  return run;
}

type Billing = { tiers: readonly PriceTier[]; currency: string; premiumTiers?: readonly PriceTier[] | undefined };

async function noticeForOrg(
  db: Database, orgId: string, facts: SubscriptionFacts, d: Extract<NoticeDecision, { due: true }>, now: Date, billing: Billing, mailer: Mailer,
): Promise<'sent' | 'notHigher' | 'alreadySent' | 'noRecipients'> {
  if (await db.prisma.billNotice.findUnique({ where: { orgId_billingDate: { orgId, billingDate: d.billingDate } }, select: { id: true } })) return 'alreadySent';
  const { expected, previous } = await db.prisma.$transaction(async (tx) => ({
    expected: await estimateBill(tx, orgId, now, billing),
    previous: await previousBill(tx, orgId, facts, d.periodStart, billing),
  }), { isolationLevel: Prisma.TransactionIsolationLevel.RepeatableRead, maxWait: 10_000, timeout: 60_000 });
  if (expected.amount <= previous) return 'notHigher';

  const recipients = await contacts(db, orgId);
  if (!recipients.length) return 'noRecipients';
  const org = await db.prisma.org.findUnique({ where: { id: orgId }, select: { name: true } });

  return db.prisma.$transaction(async (tx) => {
    const inserted = await tx.$queryRaw<{ id: string }[]>`
      INSERT INTO "BillNotice" ("id", "orgId", "billingDate", "amount", "previousAmount", "recipients")
      VALUES (gen_random_uuid(), ${orgId}::uuid, ${d.billingDate}::timestamptz, ${expected.amount}::int, ${previous}::int,
              string_to_array(${recipients.join(',')}, ','))
      ON CONFLICT ("orgId", "billingDate") DO NOTHING
      RETURNING "id"::text AS id`;
    if (!inserted.length) return 'alreadySent' as const;
    await mailer.send({ to: recipients, ...noticeMail(org?.name ?? orgId, d.billingDate, expected, previous) });
    return 'sent' as const;
  }, { maxWait: 10_000, timeout: 60_000 });
}

/** The amount of the previous billing period, or 0 when the org was not paying at its end. */
async function previousBill(tx: Tx, orgId: string, facts: SubscriptionFacts, periodStart: Date, billing: Billing): Promise<number> {
  const lastInstant = new Date(periodStart.getTime() - 1);
  if (subscriptionStatus(facts, lastInstant).state !== 'active') return 0;
  return (await estimateBill(tx, orgId, lastInstant, billing)).amount;
}

/** Emails of the org's billing and technical contacts (active accounts), each once. */
async function contacts(db: Database, orgId: string): Promise<string[]> {
  const rows = await db.prisma.roleAssignment.findMany({
    where: { orgId, role: { in: ['billing_contact', 'technical_contact'] }, account: { status: 'active' } },
    select: { account: { select: { email: true } } },
  });
  return [...new Set(rows.map((r) => r.account.email))].sort();
}

const money = (minor: number, currency: string) => `${currency} ${(minor / 100).toFixed(2)}`;

export function noticeMail(orgName: string, billingDate: Date, e: Estimate, previous: number): { subject: string; text: string } {
  const day = billingDate.toISOString().slice(0, 10);
  return {
    subject: `${orgName}: your bill on ${day} is expected to be ${money(e.amount, e.currency)} (previous bill ${money(previous, e.currency)})`,
    text: [
      `Your organization ${orgName} will be billed on ${day} (UTC).`,
      '',
      `Expected amount: ${money(e.amount, e.currency)} for ${e.periodBillableUsers} billable users (${e.cycle}, ${e.plan ?? 'standard'}).`,
      `Previous bill:   ${money(previous, e.currency)}`,
      `Billable now:    ${e.billableUsers}`,
      '',
      ...e.tiers.map((t) => `  users ${t.from}–${t.to}: ${t.users} × ${money(t.unitPrice, e.currency)} = ${money(t.amount, e.currency)}`),
      '',
      'You receive this as a billing or technical contact of the organization.',
    ].join('\n'),
  };
}
