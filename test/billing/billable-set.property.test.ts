import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { billableSet } from '../../src/store/billable-set.js';
import { billability, type Billability } from '../../src/domain/billability.js';
import { subscriptionStatus, type SubscriptionFacts, type SubscriptionState } from '../../src/domain/subscription.js';
import { PRODUCTS, type AccessRole, type Edition, type Plan, type Product } from '../../src/domain/types.js';
import { migrate } from '../../src/store/migrator.js';
import { inTransaction } from '../../src/store/transaction.js';
import { syncBillability } from '../../src/services/billability-sync.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * The set-based SQL (billableSet) and the pure rule (billability) must agree account by account,
 * billable and reasons, on random orgs written to a real database (PGlite, or PostgreSQL when
 * DATABASE_URL is set). Bounded: 30 orgs of at most 30 accounts.
 */

// An hour ahead of the clock: syncBillability never judges earlier than the clock
// (currentBillingFacts), so a future NOW is the instant both paths are judged at.
const NOW = new Date(Math.ceil(Date.now() / 1000) * 1000 + 3_600_000);
const DAY = 86_400_000;

type SiteModel = { products: Product[]; enterprise: boolean };
type GrantModel = { site: number; product: number; role: AccessRole; viaGroup: boolean };
type AccountModel = { managed: boolean; disabled: boolean; policy: number; grants: GrantModel[] };
type OrgModel = {
  plan: Plan | null; edition: Edition; state: SubscriptionState;
  /** policies[0] is the default; a true entry is the org's (at most one) non-billable policy. */
  policies: boolean[];
  sites: SiteModel[];
  accounts: AccountModel[];
};

const site: fc.Arbitrary<SiteModel> = fc.record({
  products: fc.uniqueArray(fc.constantFrom(...PRODUCTS), { minLength: 1, maxLength: PRODUCTS.length }),
  enterprise: fc.boolean(),
});
const grant: fc.Arbitrary<GrantModel> = fc.record({
  site: fc.nat(), product: fc.nat(), role: fc.constantFrom<AccessRole>('user', 'agent', 'customer'), viaGroup: fc.boolean(),
});
const account: fc.Arbitrary<AccountModel> = fc.record({
  managed: fc.boolean(), disabled: fc.boolean(), policy: fc.nat(), grants: fc.array(grant, { maxLength: 6 }),
});
const org: fc.Arbitrary<OrgModel> = fc.record({
  plan: fc.constantFrom<Plan | null>('standard', 'premium', null),
  edition: fc.constantFrom<Edition>('commercial', 'community', 'academic'),
  state: fc.constantFrom<SubscriptionState>('none', 'trial', 'active', 'unsubscribed'),
  policies: fc.constantFrom([false], [false, false], [false, true], [false, false, true]),
  sites: fc.array(site, { minLength: 1, maxLength: 4 }),
  accounts: fc.array(account, { maxLength: 30 }),
});

function subscriptionFacts(m: OrgModel): SubscriptionFacts {
  const base = { edition: m.edition, plan: m.plan, cycle: 'monthly' as const, trialStartedAt: null, trialEndsAt: null, paymentMethodAddedAt: null, activatedAt: null, cancelledAt: null };
  switch (m.state) {
    case 'none': return base;
    case 'trial': return { ...base, trialStartedAt: new Date(NOW.getTime() - 5 * DAY), trialEndsAt: new Date(NOW.getTime() + 25 * DAY) };
    case 'active': return { ...base, activatedAt: new Date(NOW.getTime() - 40 * DAY), paymentMethodAddedAt: new Date(NOW.getTime() - 41 * DAY) };
    case 'unsubscribed': return { ...base, activatedAt: new Date(NOW.getTime() - 40 * DAY), cancelledAt: new Date(NOW.getTime() - DAY) };
  }
}

/** The concrete rows a model stands for (grants resolved to the sites' products; duplicate keys dropped as the unique index would). */
function materialise(m: OrgModel) {
  const accounts = m.accounts.map((a, i) => {
    const grants = new Map<string, { siteIdx: number; product: Product; role: AccessRole; grantedBy: string }>();
    for (const g of a.grants) {
      const siteIdx = g.site % m.sites.length;
      const s = m.sites[siteIdx]!;
      const product = s.products[g.product % s.products.length]!;
      const grantedBy = g.viaGroup ? 'group:00000000-0000-4000-8000-000000000001' : 'direct';
      grants.set(`${siteIdx}|${product}|${grantedBy}`, { siteIdx, product, role: g.role, grantedBy });
    }
    return { ...a, id: randomUUID() as string, email: `u${i}@p.example`, policyIdx: a.managed ? a.policy % m.policies.length : null, grants: [...grants.values()] };
  });
  return { accounts };
}

/** What the pure rule says for one materialised account. */
function expected(m: OrgModel, a: ReturnType<typeof materialise>['accounts'][number], state: SubscriptionState): Billability {
  return billability({
    managed: a.managed,
    status: a.disabled ? 'disabled' : 'active',
    inNonBillablePolicy: a.policyIdx !== null && m.policies[a.policyIdx] === true,
    access: a.grants.map((g) => ({ product: g.product, role: g.role, siteEnterprise: m.sites[g.siteIdx]!.enterprise })),
    subscriptionState: state,
    plan: m.plan,
  });
}

let tdb: TestDatabase;

beforeAll(async () => {
  tdb = await createTestDatabase();
  await migrate(tdb.db);
});
afterAll(async () => tdb?.drop());

async function writeOrg(m: OrgModel) {
  const prisma = tdb.db.prisma;
  const orgId = randomUUID();
  const rows = materialise(m);
  await prisma.org.create({ data: { id: orgId, orgId, name: `prop ${orgId}` } });
  const policyIds = m.policies.map(() => randomUUID());
  await prisma.policy.createMany({
    data: m.policies.map((nonBillable, i) => ({ id: policyIds[i]!, orgId, name: `p${i}`, isDefault: i === 0, nonBillable })),
  });
  const siteIds = m.sites.map(() => randomUUID());
  await prisma.site.createMany({ data: m.sites.map((s, i) => ({ id: siteIds[i]!, orgId, name: `s${i}`, products: s.products, enterprise: s.enterprise })) });
  const facts = subscriptionFacts(m);
  if (m.state !== 'none' || m.plan !== null || m.edition !== 'commercial') await prisma.subscription.create({ data: { orgId, ...facts } });
  await prisma.account.createMany({
    data: rows.accounts.map((a, i) => ({
      id: a.id, orgId, email: a.email, emailNormalized: a.email, emailDomain: 'p.example', managed: a.managed,
      status: a.disabled ? 'disabled' : 'active', policyId: a.policyIdx === null ? null : policyIds[a.policyIdx]!,
      // Distinct creation times: the SQL answers in creation order.
      createdAt: new Date(NOW.getTime() - (rows.accounts.length - i) * 1000),
    })),
  });
  await prisma.productAccess.createMany({
    data: rows.accounts.flatMap((a) => a.grants.map((g) => ({
      orgId, accountId: a.id, siteId: siteIds[g.siteIdx]!, product: g.product, role: g.role, grantedBy: g.grantedBy,
    }))),
  });
  const state = subscriptionStatus(facts, NOW).state;
  expect(state, 'the subscription facts stand for the intended state').toBe(m.state);
  return { orgId, rows, state };
}

describe('billableSet (one SQL query) agrees with the pure rule, account by account', () => {
  it('on random orgs: whole org, a subset of accounts, and syncBillability("all")', async () => {
    let checked = 0;
    await fc.assert(
      fc.asyncProperty(org, fc.array(fc.boolean(), { maxLength: 30 }), async (m, pick) => {
        const { orgId, rows, state } = await writeOrg(m);
        const want = new Map(rows.accounts.map((a) => [a.id, expected(m, a, state)]));

        const got = await billableSet(tdb.db.prisma, orgId, NOW);
        expect([...got.keys()].sort(), 'one answer per account of the org, and only those').toEqual([...want.keys()].sort());
        for (const [id, w] of want) expect(got.get(id), `account ${id}`).toEqual(w);

        const subset = rows.accounts.filter((_, i) => pick[i]).map((a) => a.id);
        const some = await billableSet(tdb.db.prisma, orgId, NOW, { accountIds: subset });
        expect([...some.keys()].sort()).toEqual([...subset].sort());
        for (const id of subset) expect(some.get(id)).toEqual(want.get(id));

        // The sync path uses the same query: it flips every billable account's stored flag (all start false).
        const ctx = { orgId, actor: { kind: 'system' as const, name: 'property-test' }, requestId: null, now: NOW };
        const deltas = await inTransaction(tdb.db, (tx) => syncBillability(tx, ctx, 'all', 'property-test'));
        const billableIds = [...want].filter(([, w]) => w.billable).map(([id]) => id);
        expect(deltas.map((d) => d.accountId).sort()).toEqual([...billableIds].sort());
        for (const d of deltas) expect(d).toMatchObject({ kind: 'added', reasons: want.get(d.accountId)!.reasons, cause: 'property-test' });
        const stored = await tdb.db.prisma.account.findMany({ where: { orgId, billable: true }, select: { id: true } });
        expect(stored.map((s) => s.id).sort()).toEqual([...billableIds].sort());
        expect(await inTransaction(tdb.db, (tx) => syncBillability(tx, ctx, 'all', 'again')), 'nothing flipped: no delta').toEqual([]);
        checked += rows.accounts.length;
      }),
      { numRuns: 30 },
    );
    expect(checked, 'accounts compared').toBeGreaterThan(0);
  }, 120_000);

  it('a person on many sites and products is one answer (one row), not one per grant', async () => {
    const m: OrgModel = {
      plan: 'standard', edition: 'commercial', state: 'active', policies: [false],
      sites: [{ products: ['jira', 'confluence'], enterprise: false }, { products: ['jira', 'trello'], enterprise: false }],
      accounts: [{
        managed: true, disabled: false, policy: 0,
        grants: [
          { site: 0, product: 0, role: 'user', viaGroup: false }, { site: 0, product: 1, role: 'user', viaGroup: true },
          { site: 1, product: 0, role: 'user', viaGroup: false }, { site: 1, product: 1, role: 'user', viaGroup: false },
          { site: 1, product: 0, role: 'user', viaGroup: true },
        ],
      }],
    };
    const { orgId, rows } = await writeOrg(m);
    const got = await billableSet(tdb.db.prisma, orgId, NOW);
    expect(got.size).toBe(1);
    expect(got.get(rows.accounts[0]!.id)).toEqual({ billable: true, reasons: ['managed', 'active', 'access:confluence', 'access:jira', 'access:trello'] });
  });

  it('answers for no account when given no ids, and never for another org\'s accounts', async () => {
    const a = await writeOrg({ plan: 'premium', edition: 'commercial', state: 'active', policies: [false], sites: [{ products: ['jira'], enterprise: false }], accounts: [{ managed: false, disabled: false, policy: 0, grants: [{ site: 0, product: 0, role: 'user', viaGroup: false }] }] });
    const b = await writeOrg({ plan: 'premium', edition: 'commercial', state: 'active', policies: [false], sites: [{ products: ['jira'], enterprise: false }], accounts: [] });
    expect((await billableSet(tdb.db.prisma, a.orgId, NOW, { accountIds: [] })).size).toBe(0);
    expect((await billableSet(tdb.db.prisma, b.orgId, NOW)).size).toBe(0);
    expect((await billableSet(tdb.db.prisma, b.orgId, NOW, { accountIds: [a.rows.accounts[0]!.id] })).size, 'ids of another org answer nothing').toBe(0);
    expect(await billableSet(tdb.db.prisma, a.orgId, NOW)).toEqual(new Map([[a.rows.accounts[0]!.id, { billable: true, reasons: ['external', 'active', 'access:jira'] }]]));
  });
});
