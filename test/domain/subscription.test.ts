import { describe, expect, it } from 'vitest';
import {
  NO_SUBSCRIPTION,
  RETENTION_DAYS,
  TRIAL_DAYS,
  addDays,
  addMonthsUtc,
  configurationRetained,
  enforcementActive,
  firstPaidStart,
  subscriptionStatus,
  trialEnd,
  type SubscriptionFacts,
  type SubscriptionState,
  type SubscriptionStatus,
} from '../../src/domain/subscription.js';
import type { BillingCycle } from '../../src/domain/types.js';

const at = (iso: string) => new Date(iso);
const ms = (d: Date, delta: number) => new Date(d.getTime() + delta);

// One trial used by most rows: started 1 March 2025 09:00 UTC, 30 days → 31 March 09:00 UTC.
const START = at('2025-03-01T09:00:00.000Z');
const END = at('2025-03-31T09:00:00.000Z');
const MID = at('2025-03-11T09:00:00.000Z');

const facts = (over: Partial<SubscriptionFacts> = {}): SubscriptionFacts => ({ ...NO_SUBSCRIPTION, ...over });
const trial = (over: Partial<SubscriptionFacts> = {}) =>
  facts({ plan: 'standard', trialStartedAt: START, trialEndsAt: END, ...over });
const paidTrial = (over: Partial<SubscriptionFacts> = {}) => trial({ paymentMethodAddedAt: MID, ...over });

describe('trial length', () => {
  it('is 30 days; retention is 14 days', () => {
    expect([TRIAL_DAYS, RETENTION_DAYS]).toEqual([30, 14]);
  });

  it.each([
    { name: 'a March trial', start: '2025-03-01T09:00:00.000Z', end: '2025-03-31T09:00:00.000Z' },
    { name: 'a February trial in a leap year', start: '2024-02-01T00:00:00.000Z', end: '2024-03-02T00:00:00.000Z' },
    { name: 'a February trial in a common year', start: '2025-02-01T00:00:00.000Z', end: '2025-03-03T00:00:00.000Z' },
    { name: 'a trial over the European DST change keeps the UTC time of day', start: '2025-03-20T23:30:00.000Z', end: '2025-04-19T23:30:00.000Z' },
    { name: 'a trial over the new year', start: '2025-12-15T12:00:00.500Z', end: '2026-01-14T12:00:00.500Z' },
  ])('$name: $start → $end', ({ start, end }) => {
    expect(trialEnd(at(start))).toEqual(at(end));
    expect(trialEnd(at(start)).getTime() - at(start).getTime()).toBe(30 * 86_400_000);
  });
});

type StatusRow = { name: string; facts: SubscriptionFacts; now: Date; expected: Partial<SubscriptionStatus> };

const statusRows: StatusRow[] = [
  {
    name: 'no subscription',
    facts: NO_SUBSCRIPTION,
    now: MID,
    expected: { state: 'none', trialEndsAt: null, paymentMethod: false, activeSince: null, unsubscribedAt: null, retentionEndsAt: null, refundEligible: false },
  },
  {
    name: 'trial, at the moment it starts',
    facts: trial(),
    now: START,
    expected: { state: 'trial', trialEndsAt: END, paymentMethod: false, activeSince: null, unsubscribedAt: null, retentionEndsAt: null, refundEligible: false },
  },
  {
    name: 'trial, half way',
    facts: trial(),
    now: MID,
    expected: { state: 'trial', trialEndsAt: END, activeSince: null, unsubscribedAt: null },
  },
  {
    name: 'trial without payment, 1 ms before it ends',
    facts: trial(),
    now: ms(END, -1),
    expected: { state: 'trial', unsubscribedAt: null, retentionEndsAt: null },
  },
  {
    name: 'trial without payment, at trialEndsAt → unsubscribed',
    facts: trial(),
    now: END,
    expected: { state: 'unsubscribed', unsubscribedAt: END, retentionEndsAt: at('2025-04-14T09:00:00.000Z'), activeSince: null, refundEligible: false },
  },
  {
    name: 'trial without payment, a week after it ended → still unsubscribed (nothing scheduled)',
    facts: trial(),
    now: addDays(END, 7),
    expected: { state: 'unsubscribed', unsubscribedAt: END, retentionEndsAt: addDays(END, 14) },
  },
  {
    name: 'trial with a payment method, half way → still trial',
    facts: paidTrial(),
    now: MID,
    expected: { state: 'trial', paymentMethod: true, activeSince: null, unsubscribedAt: null, refundEligible: false },
  },
  {
    name: 'trial with a payment method, 1 ms before it ends → still trial',
    facts: paidTrial(),
    now: ms(END, -1),
    expected: { state: 'trial', activeSince: null },
  },
  {
    name: 'trial with a payment method, at trialEndsAt → active since trialEndsAt',
    facts: paidTrial(),
    now: END,
    expected: { state: 'active', activeSince: END, paymentMethod: true, unsubscribedAt: null, retentionEndsAt: null, refundEligible: true },
  },
  {
    name: 'payment method added in the last millisecond of the trial → active at trial end',
    facts: trial({ paymentMethodAddedAt: ms(END, -1) }),
    now: END,
    expected: { state: 'active', activeSince: END },
  },
  {
    name: 'payment method added a day after the trial ended → stays unsubscribed',
    facts: trial({ paymentMethodAddedAt: addDays(END, 1) }),
    now: addDays(END, 2),
    expected: { state: 'unsubscribed', unsubscribedAt: END, paymentMethod: true, activeSince: null },
  },
  {
    name: 'annual cycle chosen during the trial → active at trial end, cycle reported',
    facts: paidTrial({ cycle: 'annual', plan: 'premium', edition: 'community' }),
    now: addDays(END, 1),
    expected: { state: 'active', activeSince: END, cycle: 'annual', plan: 'premium', edition: 'community' },
  },
  {
    name: 'cancelled during the trial, 1 ms before the cancellation → trial',
    facts: trial({ cancelledAt: MID }),
    now: ms(MID, -1),
    expected: { state: 'trial', unsubscribedAt: null },
  },
  {
    name: 'cancelled during the trial → unsubscribed at once, retention 14 days from the cancellation',
    facts: trial({ cancelledAt: MID }),
    now: MID,
    expected: { state: 'unsubscribed', unsubscribedAt: MID, retentionEndsAt: at('2025-03-25T09:00:00.000Z'), activeSince: null },
  },
  {
    name: 'cancelled during a trial with a payment method → unsubscribed, and not active at trial end',
    facts: paidTrial({ cancelledAt: addDays(MID, 1) }),
    now: END,
    expected: { state: 'unsubscribed', unsubscribedAt: addDays(MID, 1), activeSince: null, refundEligible: false },
  },
  {
    name: 'active, the day before a cancellation',
    facts: paidTrial({ cancelledAt: addDays(END, 40) }),
    now: addDays(END, 39),
    expected: { state: 'active', activeSince: END, unsubscribedAt: null },
  },
  {
    name: 'cancelled while active → unsubscribed at once',
    facts: paidTrial({ cancelledAt: addDays(END, 40) }),
    now: addDays(END, 40),
    expected: { state: 'unsubscribed', unsubscribedAt: addDays(END, 40), retentionEndsAt: addDays(END, 54), activeSince: null, refundEligible: false },
  },
  {
    name: 'resubscribed after a cancellation (activatedAt later, cancelledAt cleared) → active since the resubscription',
    facts: paidTrial({ activatedAt: addDays(END, 45), cancelledAt: null }),
    now: addDays(END, 46),
    expected: { state: 'active', activeSince: addDays(END, 45), unsubscribedAt: null, retentionEndsAt: null },
  },
  {
    name: 'resubscribed after a trial that ended without payment → active since the resubscription',
    facts: trial({ paymentMethodAddedAt: addDays(END, 3), activatedAt: addDays(END, 5) }),
    now: addDays(END, 5),
    expected: { state: 'active', activeSince: addDays(END, 5), unsubscribedAt: null, paymentMethod: true },
  },
  {
    name: 'cancelled again after resubscribing → unsubscribed from the second cancellation',
    facts: paidTrial({ activatedAt: addDays(END, 45), cancelledAt: addDays(END, 60) }),
    now: addDays(END, 61),
    expected: { state: 'unsubscribed', unsubscribedAt: addDays(END, 60), retentionEndsAt: addDays(END, 74) },
  },
];

describe('subscriptionStatus', () => {
  it.each(statusRows)('$name', ({ facts: f, now, expected }) => {
    expect(subscriptionStatus(f, now)).toMatchObject(expected);
  });

  // SPEC §4: payment details may be added *during* the trial. The trial is [start, end): at
  // trialEndsAt the org already reads as unsubscribed, so a payment method added at that
  // instant is after the trial and must not turn it into a subscription retroactively.
  it('payment method added exactly at trialEndsAt (trial already over) → stays unsubscribed', () => {
    expect(subscriptionStatus(trial(), END).state).toBe('unsubscribed');
    expect(subscriptionStatus(trial({ paymentMethodAddedAt: END }), END)).toMatchObject({ state: 'unsubscribed', activeSince: null });
  });
});

describe('refundEligible', () => {
  /** Paid from the end of a 30-day trial that ended at `activeSince`. */
  const fromTrial = (activeSince: string, cycle: BillingCycle) => {
    const since = at(activeSince);
    return facts({ plan: 'standard', cycle, trialStartedAt: addDays(since, -30), trialEndsAt: since, paymentMethodAddedAt: addDays(since, -1) });
  };

  const rows: Array<{ name: string; facts: SubscriptionFacts; now: Date; eligible: boolean }> = [
    // Monthly: only within the first paid month, i.e. before addMonthsUtc(activeSince, 1).
    { name: 'monthly, on the first paid day', facts: fromTrial('2025-03-31T09:00:00.000Z', 'monthly'), now: at('2025-03-31T09:00:00.000Z'), eligible: true },
    { name: 'monthly, 1 ms before the first month ends', facts: fromTrial('2025-03-15T09:00:00.000Z', 'monthly'), now: ms(addMonthsUtc(at('2025-03-15T09:00:00.000Z'), 1), -1), eligible: true },
    { name: 'monthly, when the first month ends', facts: fromTrial('2025-03-15T09:00:00.000Z', 'monthly'), now: addMonthsUtc(at('2025-03-15T09:00:00.000Z'), 1), eligible: false },
    { name: 'monthly, day 30 of a 31-day first month (March 1 → April 1)', facts: fromTrial('2025-03-01T00:00:00.000Z', 'monthly'), now: at('2025-03-31T12:00:00.000Z'), eligible: true },
    { name: 'monthly, paid from 31 January: 27 February is still the first month', facts: fromTrial('2025-01-31T10:00:00.000Z', 'monthly'), now: at('2025-02-27T23:59:59.999Z'), eligible: true },
    { name: 'monthly, paid from 31 January: 1 ms before 28 February 10:00', facts: fromTrial('2025-01-31T10:00:00.000Z', 'monthly'), now: at('2025-02-28T09:59:59.999Z'), eligible: true },
    { name: 'monthly, paid from 31 January: 28 February 10:00 ends the month', facts: fromTrial('2025-01-31T10:00:00.000Z', 'monthly'), now: at('2025-02-28T10:00:00.000Z'), eligible: false },
    { name: 'monthly, paid from 31 January: 2 March (naive date overflow) is too late', facts: fromTrial('2025-01-31T10:00:00.000Z', 'monthly'), now: at('2025-03-02T10:00:00.000Z'), eligible: false },
    { name: 'monthly, paid from 31 January 2024 (leap): 29 February still refundable', facts: fromTrial('2024-01-31T10:00:00.000Z', 'monthly'), now: at('2024-02-29T09:59:59.999Z'), eligible: true },
    { name: 'monthly, paid from 31 January 2024 (leap): 29 February 10:00 is too late', facts: fromTrial('2024-01-31T10:00:00.000Z', 'monthly'), now: at('2024-02-29T10:00:00.000Z'), eligible: false },
    { name: 'monthly, in the third paid month', facts: fromTrial('2025-03-15T09:00:00.000Z', 'monthly'), now: at('2025-05-20T09:00:00.000Z'), eligible: false },
    // Annual: within 30 days of payment (activeSince).
    { name: 'annual, on the payment day', facts: fromTrial('2025-03-31T09:00:00.000Z', 'annual'), now: at('2025-03-31T09:00:00.000Z'), eligible: true },
    { name: 'annual, 29 days after payment', facts: fromTrial('2025-03-31T09:00:00.000Z', 'annual'), now: at('2025-04-29T09:00:00.000Z'), eligible: true },
    { name: 'annual, 1 ms before 30 days', facts: fromTrial('2025-03-31T09:00:00.000Z', 'annual'), now: at('2025-04-30T08:59:59.999Z'), eligible: true },
    { name: 'annual, at 30 days', facts: fromTrial('2025-03-31T09:00:00.000Z', 'annual'), now: at('2025-04-30T09:00:00.000Z'), eligible: false },
    { name: 'annual, paid 1 February: 2 March is past a calendar month but within 30 days', facts: fromTrial('2025-02-01T00:00:00.000Z', 'annual'), now: at('2025-03-02T23:59:59.999Z'), eligible: true },
    { name: 'annual, paid 1 February: 3 March is day 30 → too late', facts: fromTrial('2025-02-01T00:00:00.000Z', 'annual'), now: at('2025-03-03T00:00:00.000Z'), eligible: false },
    { name: 'monthly, paid 1 February: 2 March is within 30 days but past the first month', facts: fromTrial('2025-02-01T00:00:00.000Z', 'monthly'), now: at('2025-03-02T00:00:00.000Z'), eligible: false },
    { name: 'annual, 6 months in', facts: fromTrial('2025-03-31T09:00:00.000Z', 'annual'), now: at('2025-09-30T09:00:00.000Z'), eligible: false },
    { name: 'annual, resubscribed: 30 days from the resubscription', facts: facts({ plan: 'standard', cycle: 'annual', paymentMethodAddedAt: at('2025-06-01T00:00:00.000Z'), activatedAt: at('2025-06-01T00:00:00.000Z') }), now: at('2025-06-30T23:59:59.999Z'), eligible: true },
    // Monthly after a resubscribe: the window is the first paid month ever (firstPaidAt), never reopened.
    { name: 'monthly, resubscribed in its third month after a paid trial: not refundable (the window does not reopen)', facts: facts({ plan: 'standard', trialStartedAt: START, trialEndsAt: END, paymentMethodAddedAt: MID, firstPaidAt: END, activatedAt: at('2025-06-10T00:00:00.000Z') }), now: at('2025-06-11T00:00:00.000Z'), eligible: false },
    { name: 'monthly, resubscribed within the first paid month: still the first month, refundable until it ends', facts: facts({ plan: 'standard', trialStartedAt: START, trialEndsAt: END, paymentMethodAddedAt: MID, firstPaidAt: END, activatedAt: addDays(END, 10) }), now: ms(addMonthsUtc(END, 1), -1), eligible: true },
    { name: 'monthly, resubscribed after a trial that was never paid: its first paid month is refundable', facts: facts({ plan: 'standard', trialStartedAt: START, trialEndsAt: END, paymentMethodAddedAt: at('2025-06-01T00:00:00.000Z'), firstPaidAt: at('2025-06-01T00:00:00.000Z'), activatedAt: at('2025-06-01T00:00:00.000Z') }), now: at('2025-06-20T00:00:00.000Z'), eligible: true },
    // Never when not active.
    { name: 'no subscription', facts: NO_SUBSCRIPTION, now: MID, eligible: false },
    { name: 'in a trial with a payment method', facts: paidTrial(), now: ms(END, -1), eligible: false },
    { name: 'unsubscribed when the trial ended without payment', facts: trial(), now: END, eligible: false },
    { name: 'monthly, cancelled two days into the first paid month', facts: paidTrial({ cancelledAt: addDays(END, 2) }), now: addDays(END, 3), eligible: false },
    { name: 'annual, cancelled two days after payment', facts: paidTrial({ cycle: 'annual', cancelledAt: addDays(END, 2) }), now: addDays(END, 3), eligible: false },
  ];

  it.each(rows)('$name → $eligible', ({ facts: f, now, eligible }) => {
    expect(subscriptionStatus(f, now).refundEligible).toBe(eligible);
  });
});

describe('firstPaidStart (what a resubscribe keeps as firstPaidAt)', () => {
  it.each([
    { name: 'no subscription: never paid', f: NO_SUBSCRIPTION, expected: null },
    { name: 'a trial without payment that ended: never paid', f: trial(), expected: null },
    { name: 'a paid trial: paid from its end', f: paidTrial(), expected: END },
    { name: 'a paid trial cancelled before it ended: never paid', f: paidTrial({ cancelledAt: addDays(START, 20) }), expected: null },
    { name: 'a paid trial cancelled after it ended: paid from its end', f: paidTrial({ cancelledAt: addDays(END, 40) }), expected: END },
    { name: 'firstPaidAt wins over a later resubscribe', f: paidTrial({ firstPaidAt: END, activatedAt: addDays(END, 90), cancelledAt: addDays(END, 100) }), expected: END },
  ])('$name', ({ f, expected }) => {
    expect(firstPaidStart(f)).toEqual(expected);
  });
});

describe('configurationRetained (SAML/SCIM kept 14 days after unsubscribing)', () => {
  const CANCEL = at('2025-03-11T09:00:00.000Z');
  const DEADLINE = at('2025-03-25T09:00:00.000Z'); // CANCEL + 14 days
  const rows: Array<{ name: string; facts: SubscriptionFacts; now: Date; retained: boolean }> = [
    { name: 'no subscription', facts: NO_SUBSCRIPTION, now: MID, retained: true },
    { name: 'in a trial', facts: trial(), now: MID, retained: true },
    { name: 'active', facts: paidTrial(), now: addDays(END, 100), retained: true },
    { name: 'unsubscribed, at the moment of cancelling', facts: trial({ cancelledAt: CANCEL }), now: CANCEL, retained: true },
    { name: 'unsubscribed, 13 days later', facts: trial({ cancelledAt: CANCEL }), now: addDays(CANCEL, 13), retained: true },
    { name: 'unsubscribed, 1 ms before the 14-day deadline', facts: trial({ cancelledAt: CANCEL }), now: ms(DEADLINE, -1), retained: true },
    { name: 'unsubscribed, at the 14-day deadline', facts: trial({ cancelledAt: CANCEL }), now: DEADLINE, retained: false },
    { name: 'unsubscribed, a month later', facts: trial({ cancelledAt: CANCEL }), now: addDays(CANCEL, 30), retained: false },
    { name: 'trial ended without payment, 1 ms before trial end + 14 days', facts: trial(), now: ms(addDays(END, 14), -1), retained: true },
    { name: 'trial ended without payment, at trial end + 14 days', facts: trial(), now: addDays(END, 14), retained: false },
    { name: 'resubscribed within 14 days', facts: paidTrial({ activatedAt: addDays(END, 10), cancelledAt: null }), now: addDays(END, 10), retained: true },
  ];

  it.each(rows)('$name → $retained', ({ facts: f, now, retained }) => {
    expect(configurationRetained(subscriptionStatus(f, now), now)).toBe(retained);
  });

  it('retentionEndsAt is the 14-day deadline', () => {
    expect(subscriptionStatus(trial({ cancelledAt: CANCEL }), CANCEL).retentionEndsAt).toEqual(DEADLINE);
  });
});

describe('enforcementActive (SSO and 2FA enforced only while subscribed)', () => {
  it.each([
    { state: 'none', enforced: false },
    { state: 'trial', enforced: true },
    { state: 'active', enforced: true },
    { state: 'unsubscribed', enforced: false },
  ] satisfies Array<{ state: SubscriptionState; enforced: boolean }>)('$state → $enforced', ({ state, enforced }) => {
    expect(enforcementActive(state)).toBe(enforced);
  });
});

describe('addMonthsUtc', () => {
  it.each([
    { name: 'mid-month, keeps the time to the millisecond', from: '2025-01-15T12:34:56.789Z', months: 1, to: '2025-02-15T12:34:56.789Z' },
    { name: '31 January → 28 February (common year)', from: '2025-01-31T10:00:00.000Z', months: 1, to: '2025-02-28T10:00:00.000Z' },
    { name: '31 January → 29 February (leap year)', from: '2024-01-31T10:00:00.000Z', months: 1, to: '2024-02-29T10:00:00.000Z' },
    { name: '30 January → 28 February (common year)', from: '2025-01-30T00:00:00.000Z', months: 1, to: '2025-02-28T00:00:00.000Z' },
    { name: '29 January 2024 → 29 February (leap year, no clamp)', from: '2024-01-29T00:00:00.000Z', months: 1, to: '2024-02-29T00:00:00.000Z' },
    { name: '31 January 2100 → 28 February (century, not leap)', from: '2100-01-31T00:00:00.000Z', months: 1, to: '2100-02-28T00:00:00.000Z' },
    { name: '31 January 2000 → 29 February (400-year leap)', from: '2000-01-31T00:00:00.000Z', months: 1, to: '2000-02-29T00:00:00.000Z' },
    { name: '31 March → 30 April', from: '2025-03-31T23:59:59.999Z', months: 1, to: '2025-04-30T23:59:59.999Z' },
    { name: '28 February → 28 March (no growing back to the 31st)', from: '2025-02-28T08:00:00.000Z', months: 1, to: '2025-03-28T08:00:00.000Z' },
    { name: '31 December → 31 January over the new year', from: '2025-12-31T22:00:00.000Z', months: 1, to: '2026-01-31T22:00:00.000Z' },
    { name: '30 November + 3 months → 28 February', from: '2025-11-30T00:00:00.000Z', months: 3, to: '2026-02-28T00:00:00.000Z' },
    { name: '29 February 2024 + 12 months → 28 February 2025', from: '2024-02-29T00:00:00.000Z', months: 12, to: '2025-02-28T00:00:00.000Z' },
    { name: '31 March − 1 month → 28 February', from: '2025-03-31T00:00:00.000Z', months: -1, to: '2025-02-28T00:00:00.000Z' },
    { name: '15 January − 1 month → 15 December of the year before', from: '2025-01-15T00:00:00.000Z', months: -1, to: '2024-12-15T00:00:00.000Z' },
    { name: '0 months → the same instant', from: '2025-01-31T10:00:00.000Z', months: 0, to: '2025-01-31T10:00:00.000Z' },
  ])('$name', ({ from, months, to }) => {
    expect(addMonthsUtc(at(from), months).toISOString()).toBe(to);
  });
});
