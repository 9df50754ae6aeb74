import { describe, expect, it } from 'vitest';
import { DomainError, PolicyViolation, type RuleName } from '../../src/domain/errors.js';
import {
  assertDeletable,
  assertMembership,
  assertPolicyChange,
  membershipViolations,
  policyChangeViolations,
  type MemberCandidate,
  type PolicyChange,
  type PolicySettings,
} from '../../src/domain/policy-rules.js';

/** A plain billable, non-default policy that breaks no rule. */
const plain: PolicySettings = {
  isDefault: false,
  nonBillable: false,
  enforceSso: false,
  ssoConnectionId: null,
  requireTwoFactor: false,
  blockApiTokens: false,
};
const policy = (over: Partial<PolicySettings> = {}): PolicySettings => ({ ...plain, ...over });
const nonBillable = (over: Partial<PolicySettings> = {}): PolicySettings => policy({ nonBillable: true, ...over });

/** A change that is fine unless a row overrides something. */
const change = (over: Partial<PolicyChange> = {}): PolicyChange => ({
  before: policy(),
  after: policy(),
  otherNonBillablePolicyId: null,
  subscriptionState: 'active',
  syncedMemberCount: 0,
  ...over,
});

/** Runs `fn`, expecting a PolicyViolation; returns it for further checks. */
function violationOf(fn: () => void): PolicyViolation {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyViolation);
    expect(err).toBeInstanceOf(DomainError);
    return err as PolicyViolation;
  }
  throw new Error('expected a PolicyViolation, nothing was thrown');
}

describe('policy changes that break one rule are refused with that rule', () => {
  const rows: Array<{ name: string; change: PolicyChange; rule: RuleName }> = [
    {
      name: 'the default policy stops being the default',
      change: change({ before: policy({ isDefault: true }), after: policy({ isDefault: false }) }),
      rule: 'one-default-policy',
    },
    {
      name: 'the default policy is made non-billable',
      change: change({ before: policy({ isDefault: true }), after: nonBillable({ isDefault: true }) }),
      rule: 'default-policy-billable',
    },
    {
      name: 'a new policy is created as default and non-billable',
      change: change({ before: null, after: nonBillable({ isDefault: true }) }),
      rule: 'default-policy-billable',
    },
    {
      name: 'a second non-billable policy is created',
      change: change({ before: null, after: nonBillable(), otherNonBillablePolicyId: 'pol-nb-1' }),
      rule: 'one-non-billable-policy',
    },
    {
      name: 'a billable policy is turned non-billable while another one already is',
      change: change({ before: policy(), after: nonBillable(), otherNonBillablePolicyId: 'pol-nb-1' }),
      rule: 'one-non-billable-policy',
    },
    {
      name: 'a policy is turned non-billable with no subscription',
      change: change({ before: policy(), after: nonBillable(), subscriptionState: 'none' }),
      rule: 'non-billable-needs-subscription',
    },
    {
      name: 'a policy is turned non-billable after unsubscribing',
      change: change({ before: policy(), after: nonBillable(), subscriptionState: 'unsubscribed' }),
      rule: 'non-billable-needs-subscription',
    },
    {
      name: 'a non-billable policy is created with no subscription',
      change: change({ before: null, after: nonBillable(), subscriptionState: 'none' }),
      rule: 'non-billable-needs-subscription',
    },
    {
      name: 'a non-billable policy is created after unsubscribing',
      change: change({ before: null, after: nonBillable(), subscriptionState: 'unsubscribed' }),
      rule: 'non-billable-needs-subscription',
    },
    {
      name: 'a policy is turned non-billable while enforcing SSO',
      change: change({ before: policy({ enforceSso: true, ssoConnectionId: 'sso-1' }), after: nonBillable({ enforceSso: true, ssoConnectionId: 'sso-1' }) }),
      rule: 'non-billable-no-sso',
    },
    {
      name: 'a non-billable policy is edited to enforce SSO',
      change: change({ before: nonBillable(), after: nonBillable({ enforceSso: true, ssoConnectionId: 'sso-1' }) }),
      rule: 'non-billable-no-sso',
    },
    {
      name: 'a non-billable policy is edited to require two-step verification',
      change: change({ before: nonBillable(), after: nonBillable({ requireTwoFactor: true }) }),
      rule: 'non-billable-no-2fa',
    },
    {
      name: 'a policy requiring two-step verification is turned non-billable',
      change: change({ before: policy({ requireTwoFactor: true }), after: nonBillable({ requireTwoFactor: true }) }),
      rule: 'non-billable-no-2fa',
    },
    {
      name: 'a non-billable policy is edited to block API tokens',
      change: change({ before: nonBillable(), after: nonBillable({ blockApiTokens: true }) }),
      rule: 'non-billable-no-token-block',
    },
    {
      name: 'a policy holding synced accounts is turned non-billable',
      change: change({ before: policy(), after: nonBillable(), syncedMemberCount: 1 }),
      rule: 'non-billable-no-synced-accounts',
    },
    {
      name: 'a non-billable policy that somehow holds synced accounts is edited',
      change: change({ before: nonBillable(), after: nonBillable(), syncedMemberCount: 3 }),
      rule: 'non-billable-no-synced-accounts',
    },
    {
      name: 'a billable policy enforces SSO without naming a connection',
      change: change({ after: policy({ enforceSso: true, ssoConnectionId: null }) }),
      rule: 'sso-needs-connection',
    },
    {
      name: 'a billable policy enforces SSO with an empty connection id',
      change: change({ after: policy({ enforceSso: true, ssoConnectionId: '' }) }),
      rule: 'sso-needs-connection',
    },
    {
      name: 'the default policy is created enforcing SSO without a connection',
      change: change({ before: null, after: policy({ isDefault: true, enforceSso: true }) }),
      rule: 'sso-needs-connection',
    },
  ];

  it.each(rows)('$name → $rule', ({ change: c, rule }) => {
    expect(policyChangeViolations(c).map((v) => v.rule)).toEqual([rule]);
    const err = violationOf(() => assertPolicyChange(c));
    expect(err.rule).toBe(rule);
    expect(err.code).toBe('ERR_POLICY_VIOLATION');
    expect(err.message).not.toBe('');
  });
});

describe('policy changes that break no rule are allowed', () => {
  const rows: Array<{ name: string; change: PolicyChange }> = [
    { name: 'a plain billable policy is created', change: change({ before: null, after: policy() }) },
    { name: 'a billable policy is created with no subscription', change: change({ before: null, after: policy(), subscriptionState: 'none' }) },
    { name: 'the default policy stays the default and is edited', change: change({ before: policy({ isDefault: true }), after: policy({ isDefault: true, requireTwoFactor: true }) }) },
    { name: 'another policy is made the default', change: change({ before: policy(), after: policy({ isDefault: true }) }) },
    { name: 'a policy is turned non-billable during a trial', change: change({ before: policy(), after: nonBillable(), subscriptionState: 'trial' }) },
    { name: 'a policy is turned non-billable on an active subscription', change: change({ before: policy(), after: nonBillable(), subscriptionState: 'active' }) },
    { name: 'a non-billable policy is created during a trial', change: change({ before: null, after: nonBillable(), subscriptionState: 'trial' }) },
    {
      name: 'the existing non-billable policy is edited after unsubscribing (not a new non-billable policy)',
      change: change({ before: nonBillable(), after: nonBillable({ ssoConnectionId: 'sso-2' }), subscriptionState: 'unsubscribed' }),
    },
    {
      name: 'the existing non-billable policy is edited with no subscription',
      change: change({ before: nonBillable(), after: nonBillable(), subscriptionState: 'none' }),
    },
    { name: 'a non-billable policy is turned billable again', change: change({ before: nonBillable(), after: policy(), subscriptionState: 'unsubscribed' }) },
    {
      name: 'a non-billable policy is turned billable and enforces SSO with a connection in one edit',
      change: change({ before: nonBillable(), after: policy({ enforceSso: true, ssoConnectionId: 'sso-1', requireTwoFactor: true, blockApiTokens: true }) }),
    },
    {
      name: 'a billable policy with synced accounts enforces SSO with a connection, 2FA and a token block',
      change: change({ after: policy({ enforceSso: true, ssoConnectionId: 'sso-1', requireTwoFactor: true, blockApiTokens: true }), syncedMemberCount: 12 }),
    },
    {
      name: 'a billable policy is edited while another policy is non-billable',
      change: change({ after: policy({ requireTwoFactor: true }), otherNonBillablePolicyId: 'pol-nb-1' }),
    },
    {
      name: 'a billable policy names a connection without enforcing SSO (testing a connection)',
      change: change({ after: policy({ enforceSso: false, ssoConnectionId: 'sso-1' }) }),
    },
  ];

  it.each(rows)('$name', ({ change: c }) => {
    expect(policyChangeViolations(c)).toEqual([]);
    expect(() => assertPolicyChange(c)).not.toThrow();
  });
});

describe('several broken rules are reported in a fixed order; the first one is thrown', () => {
  const everythingWrong = {
    isDefault: true, nonBillable: true, enforceSso: true, ssoConnectionId: null, requireTwoFactor: true, blockApiTokens: true,
  } satisfies PolicySettings;

  const rows: Array<{ name: string; change: PolicyChange; rules: RuleName[] }> = [
    {
      name: 'the default policy made non-billable with every forbidden setting, no subscription, synced members, another non-billable policy',
      change: change({ before: policy({ isDefault: true }), after: everythingWrong, otherNonBillablePolicyId: 'pol-nb-1', subscriptionState: 'none', syncedMemberCount: 2 }),
      rules: [
        'default-policy-billable',
        'one-non-billable-policy',
        'non-billable-needs-subscription',
        'non-billable-no-sso',
        'non-billable-no-2fa',
        'non-billable-no-token-block',
        'non-billable-no-synced-accounts',
        'sso-needs-connection',
      ],
    },
    {
      name: 'the default policy stops being the default and turns non-billable with 2FA',
      change: change({ before: policy({ isDefault: true }), after: nonBillable({ requireTwoFactor: true }), subscriptionState: 'unsubscribed' }),
      rules: ['one-default-policy', 'non-billable-needs-subscription', 'non-billable-no-2fa'],
    },
    {
      name: 'a non-billable policy edited to block tokens and enforce SSO without connection',
      change: change({ before: nonBillable(), after: nonBillable({ blockApiTokens: true, enforceSso: true }) }),
      rules: ['non-billable-no-sso', 'non-billable-no-token-block', 'sso-needs-connection'],
    },
    {
      name: 'a second non-billable policy with synced members',
      change: change({ before: policy(), after: nonBillable(), otherNonBillablePolicyId: 'pol-nb-1', syncedMemberCount: 1 }),
      rules: ['one-non-billable-policy', 'non-billable-no-synced-accounts'],
    },
  ];

  it.each(rows)('$name', ({ change: c, rules }) => {
    expect(policyChangeViolations(c).map((v) => v.rule)).toEqual(rules);
    // The same input gives the same answer every time.
    expect(policyChangeViolations(c)).toEqual(policyChangeViolations(c));
    expect(violationOf(() => assertPolicyChange(c)).rule).toBe(rules[0]);
  });
});

describe('moving accounts into a policy', () => {
  const managed = (id: string): MemberCandidate => ({ id, managed: true, synced: false });
  const external = (id: string): MemberCandidate => ({ id, managed: false, synced: false });
  const synced = (id: string): MemberCandidate => ({ id, managed: true, synced: true });

  const rows: Array<{ name: string; nonBillable: boolean; accounts: MemberCandidate[]; rules: RuleName[]; mentions: string[] }> = [
    { name: 'managed manual accounts into a billable policy', nonBillable: false, accounts: [managed('a1'), managed('a2')], rules: [], mentions: [] },
    { name: 'synced accounts into a billable policy', nonBillable: false, accounts: [synced('s1')], rules: [], mentions: [] },
    { name: 'managed manual accounts into the non-billable policy', nonBillable: true, accounts: [managed('a1')], rules: [], mentions: [] },
    { name: 'no accounts at all', nonBillable: true, accounts: [], rules: [], mentions: [] },
    { name: 'an external account into a billable policy', nonBillable: false, accounts: [managed('a1'), external('x1')], rules: ['policy-members-managed'], mentions: ['x1'] },
    { name: 'a synced account into the non-billable policy', nonBillable: true, accounts: [managed('a1'), synced('s1')], rules: ['non-billable-no-synced-accounts'], mentions: ['s1'] },
    {
      name: 'external and synced accounts into the non-billable policy (managed rule first)',
      nonBillable: true,
      accounts: [synced('s1'), external('x1'), external('x2')],
      rules: ['policy-members-managed', 'non-billable-no-synced-accounts'],
      mentions: ['x1', 'x2'],
    },
  ];

  it.each(rows)('$name → $rules', ({ nonBillable: nb, accounts, rules, mentions }) => {
    const violations = membershipViolations({ nonBillable: nb }, accounts);
    expect(violations.map((v) => v.rule)).toEqual(rules);
    if (rules.length === 0) {
      expect(() => assertMembership({ nonBillable: nb }, accounts)).not.toThrow();
      return;
    }
    const err = violationOf(() => assertMembership({ nonBillable: nb }, accounts));
    expect(err.rule).toBe(rules[0]);
    for (const id of mentions) expect(err.message).toContain(id);
  });
});

describe('deleting a policy', () => {
  it.each([
    { name: 'a non-default policy', isDefault: false, rule: null },
    { name: 'the default policy', isDefault: true, rule: 'default-policy-not-deletable' },
  ] as const)('$name → $rule', ({ isDefault, rule }) => {
    if (rule === null) {
      expect(() => assertDeletable({ isDefault })).not.toThrow();
    } else {
      expect(violationOf(() => assertDeletable({ isDefault })).rule).toBe(rule);
    }
  });
});
