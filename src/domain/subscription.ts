import type { BillingCycle, Edition, Plan } from './types.js';

/**
 * SPEC §4 as pure functions of stored facts and `now`. Nothing here is scheduled: a trial
 * that ended yesterday reads as ended today without any job having run.
 */
export const TRIAL_DAYS = 30;
export const RETENTION_DAYS = 14;
export const ANNUAL_REFUND_DAYS = 30;
const DAY_MS = 86_400_000;

export type SubscriptionState = 'none' | 'trial' | 'active' | 'unsubscribed';

export type SubscriptionFacts = {
  edition: Edition;
  plan: Plan | null;
  cycle: BillingCycle;
  trialStartedAt: Date | null;
  trialEndsAt: Date | null;
  paymentMethodAddedAt: Date | null;
  activatedAt: Date | null;
  cancelledAt: Date | null;
  /**
   * Start of the org's first paid service ever, once a resubscribe replaced `activatedAt`
   * (see firstPaidStart). Absent or null: the current paid service is the first.
   */
  firstPaidAt?: Date | null;
};

export type SubscriptionStatus = {
  state: SubscriptionState;
  plan: Plan | null;
  cycle: BillingCycle;
  edition: Edition;
  trialEndsAt: Date | null;
  paymentMethod: boolean;
  /** When paid service started (trial end with payment, or a resubscribe). */
  activeSince: Date | null;
  unsubscribedAt: Date | null;
  /** SAML/SCIM configuration is kept until then; null unless unsubscribed. */
  retentionEndsAt: Date | null;
  refundEligible: boolean;
};

export const NO_SUBSCRIPTION: SubscriptionFacts = {
  edition: 'commercial',
  plan: null,
  cycle: 'monthly',
  trialStartedAt: null,
  trialEndsAt: null,
  paymentMethodAddedAt: null,
  activatedAt: null,
  cancelledAt: null,
};

export function addDays(d: Date, days: number): Date {
  return new Date(d.getTime() + days * DAY_MS);
}

/** Same day of the next month in UTC, clamped to the month's last day (31 Jan → 28/29 Feb). */
export function addMonthsUtc(d: Date, months: number): Date {
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth() + months;
  const lastDay = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  return new Date(Date.UTC(y, m, Math.min(d.getUTCDate(), lastDay), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds()));
}

export function trialEnd(start: Date): Date {
  return addDays(start, TRIAL_DAYS);
}

export function subscriptionStatus(f: SubscriptionFacts, now: Date): SubscriptionStatus {
  // A payment method added before the trial ended turns the trial into a monthly (or the
  // chosen cycle's) subscription at the trial's end; without one the org is unsubscribed then.
  const paidFromTrial =
    f.trialEndsAt && f.paymentMethodAddedAt && f.paymentMethodAddedAt < f.trialEndsAt ? f.trialEndsAt : null;
  const activeSince = f.activatedAt ?? paidFromTrial;
  const unsubscribedAt = f.cancelledAt ?? (f.trialEndsAt && !activeSince ? f.trialEndsAt : null);

  let state: SubscriptionState = 'none';
  if (unsubscribedAt && unsubscribedAt <= now) state = 'unsubscribed';
  else if (activeSince && activeSince <= now) state = 'active';
  else if (f.trialStartedAt && f.trialStartedAt <= now && f.trialEndsAt && now < f.trialEndsAt) state = 'trial';

  // Monthly: only the first paid month after the org's first trial — the window counts from the
  // first paid service ever, so a resubscribe does not reopen it. Annual: 30 days from payment.
  const firstPaid = f.firstPaidAt ?? activeSince;
  const refundEligible =
    state === 'active' && activeSince !== null && firstPaid !== null &&
    now < (f.cycle === 'annual' ? addDays(activeSince, ANNUAL_REFUND_DAYS) : addMonthsUtc(firstPaid, 1));

  return {
    state,
    plan: f.plan,
    cycle: f.cycle,
    edition: f.edition,
    trialEndsAt: f.trialEndsAt,
    paymentMethod: f.paymentMethodAddedAt !== null,
    activeSince: state === 'active' ? activeSince : null,
    unsubscribedAt: state === 'unsubscribed' ? unsubscribedAt : null,
    retentionEndsAt: state === 'unsubscribed' && unsubscribedAt ? addDays(unsubscribedAt, RETENTION_DAYS) : null,
    refundEligible,
  };
}

/**
 * When the org's paid service first started, as far as the facts tell: `firstPaidAt` once set,
 * else the current paid service's start if that service really began (an org that cancels a
 * paid-for trial before it ends never paid). null: the org has not paid yet. A resubscribe
 * stores `firstPaidStart(before) ?? now` as `firstPaidAt`.
 */
export function firstPaidStart(f: SubscriptionFacts): Date | null {
  if (f.firstPaidAt) return f.firstPaidAt;
  const paidFromTrial =
    f.trialEndsAt && f.paymentMethodAddedAt && f.paymentMethodAddedAt < f.trialEndsAt ? f.trialEndsAt : null;
  const activeSince = f.activatedAt ?? paidFromTrial;
  if (!activeSince) return null;
  return f.cancelledAt && f.cancelledAt <= activeSince ? null : activeSince;
}

/** True while SAML/SCIM configuration must still be kept (subscribed, or within 14 days of unsubscribing). */
export function configurationRetained(status: SubscriptionStatus, now: Date): boolean {
  return status.state !== 'unsubscribed' || (status.retentionEndsAt !== null && now < status.retentionEndsAt);
}

/** SSO and 2FA enforcement stop at once when an org unsubscribes (SPEC §4). */
export function enforcementActive(state: SubscriptionState): boolean {
  return state === 'trial' || state === 'active';
}
