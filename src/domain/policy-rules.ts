import { PolicyViolation, type RuleName } from './errors.js';
import type { SubscriptionState } from './subscription.js';

/** The settings of an authentication policy that the rules of SPEC §3 look at. */
export type PolicySettings = {
  isDefault: boolean;
  nonBillable: boolean;
  enforceSso: boolean;
  ssoConnectionId: string | null;
  requireTwoFactor: boolean;
  blockApiTokens: boolean;
};

export type PolicyChange = {
  /** null when the policy is being created. */
  before: PolicySettings | null;
  after: PolicySettings;
  /** Id of the org's non-billable policy if it is another one than this. */
  otherNonBillablePolicyId: string | null;
  subscriptionState: SubscriptionState;
  /** How many accounts synced from an identity provider sit in this policy now. */
  syncedMemberCount: number;
};

type Violation = { rule: RuleName; message: string };

/**
 * Every rule a policy's own settings must satisfy, in a fixed order so the same bad
 * request always names the same rule. Returns all violations; callers refuse on the first.
 */
export function policyChangeViolations(change: PolicyChange): Violation[] {
  const { before, after } = change;
  const out: Violation[] = [];
  if (before?.isDefault && !after.isDefault) {
    out.push({ rule: 'one-default-policy', message: 'The default policy stays the default until another policy is made the default.' });
  }
  if (after.isDefault && after.nonBillable) {
    out.push({ rule: 'default-policy-billable', message: 'The default policy cannot be non-billable.' });
  }
  if (after.nonBillable) {
    if (change.otherNonBillablePolicyId) {
      out.push({
        rule: 'one-non-billable-policy',
        message: `The org already has a non-billable policy (${change.otherNonBillablePolicyId}).`,
      });
    }
    const becomingNonBillable = !before?.nonBillable;
    if (becomingNonBillable && change.subscriptionState !== 'trial' && change.subscriptionState !== 'active') {
      out.push({
        rule: 'non-billable-needs-subscription',
        message: `A non-billable policy needs an active subscription or trial; the subscription is ${change.subscriptionState}.`,
      });
    }
    if (after.enforceSso) out.push({ rule: 'non-billable-no-sso', message: 'A non-billable policy cannot enforce single sign-on.' });
    if (after.requireTwoFactor) out.push({ rule: 'non-billable-no-2fa', message: 'A non-billable policy cannot require two-step verification.' });
    if (after.blockApiTokens) out.push({ rule: 'non-billable-no-token-block', message: 'A non-billable policy cannot block API tokens.' });
    if (change.syncedMemberCount > 0) {
      out.push({
        rule: 'non-billable-no-synced-accounts',
        message: `The policy holds ${change.syncedMemberCount} account(s) synced from an identity provider; a non-billable policy cannot.`,
      });
    }
  }
  if (after.enforceSso && !after.ssoConnectionId) {
    out.push({ rule: 'sso-needs-connection', message: 'enforceSso needs ssoConnectionId: the identity provider members must use.' });
  }
  return out;
}

export function assertPolicyChange(change: PolicyChange): void {
  throwFirst(policyChangeViolations(change));
}

export type MemberCandidate = { id: string; managed: boolean; synced: boolean };

/** Rules for moving accounts into a policy (POST policies/{id}/members, SCIM pushes, group mappings). */
export function membershipViolations(policy: Pick<PolicySettings, 'nonBillable'>, accounts: MemberCandidate[]): Violation[] {
  const out: Violation[] = [];
  const external = accounts.filter((a) => !a.managed).map((a) => a.id);
  if (external.length) {
    out.push({ rule: 'policy-members-managed', message: `Not managed by this org (external): ${external.join(', ')}.` });
  }
  if (policy.nonBillable) {
    const synced = accounts.filter((a) => a.synced).map((a) => a.id);
    if (synced.length) {
      out.push({
        rule: 'non-billable-no-synced-accounts',
        message: `Synced from an identity provider, so they cannot join the non-billable policy: ${synced.join(', ')}.`,
      });
    }
  }
  return out;
}

export function assertMembership(policy: Pick<PolicySettings, 'nonBillable'>, accounts: MemberCandidate[]): void {
  throwFirst(membershipViolations(policy, accounts));
}

export function assertDeletable(policy: Pick<PolicySettings, 'isDefault'>): void {
  if (policy.isDefault) {
    throw new PolicyViolation('default-policy-not-deletable', 'The default policy cannot be deleted; make another policy the default first.');
  }
}

function throwFirst(violations: Violation[]): void {
  const [first] = violations;
  if (first) throw new PolicyViolation(first.rule, first.message);
}
