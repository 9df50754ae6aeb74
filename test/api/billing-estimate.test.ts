import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addMonthsUtc } from '../../src/domain/subscription.js';
import { bearer, createOrg, startTestApp, verifyDomain, type TestApp } from '../support/app.js';

/**
 * GET billing/estimate and GET billing/billable-users over HTTP. The delivery worker is off
 * (JOBS_ENABLED=false): the tests fill the ledger themselves — copying the org's outbox deltas
 * as the worker would, and adding entries dated in earlier periods.
 *
 * Prices: Standard 1–2 users at 1000, then 500 (cents); Premium is derived at 1.5 × (1500, 750).
 */
const TIERS = [{ upTo: 2, unitPrice: 1000 }, { upTo: null, unitPrice: 500 }];

let app: TestApp;
type Org = { id: string; key: string; defaultPolicyId: string };
const u = (o: Org, p: string) => `/api/v1/orgs/${o.id}/${p}`;

beforeAll(async () => {
  app = await startTestApp({ JOBS_ENABLED: 'false', BILLING_TIERS: JSON.stringify(TIERS), BILLING_CURRENCY: 'EUR' });
});
afterAll(async () => app?.close());

let streamSeq = 9_000_000_000_000n;
/** A ledger entry as the delivery worker writes it (streamSeq unique, increasing). */
async function ledger(orgId: string, accountId: string, kind: 'added' | 'removed', occurredAt: Date, reasons: string[] = ['test']) {
  await app.svc.db.prisma.ledgerEntry.create({
    data: { deltaId: randomUUID(), orgId, accountId, kind, reasons, cause: 'test', occurredAt, streamSeq: streamSeq++ },
  });
}
/** What the delivery worker does: every outbox delta of the org into the ledger, in seq order. */
async function deliver(orgId: string) {
  const deltas = await app.svc.db.prisma.billableDelta.findMany({ where: { orgId, appliedAt: null }, orderBy: { seq: 'asc' } });
  for (const d of deltas) {
    await app.svc.db.prisma.ledgerEntry.create({
      data: { deltaId: d.id, orgId, accountId: d.accountId, kind: d.kind, reasons: d.reasons, cause: d.cause, occurredAt: d.occurredAt, streamSeq: streamSeq++ },
    });
    await app.svc.db.prisma.billableDelta.update({ where: { id: d.id }, data: { appliedAt: new Date() } });
  }
}

async function account(org: Org, email: string, displayName?: string): Promise<string> {
  return (await app.http.post(u(org, 'accounts')).set(bearer(org.key)).send({ email, ...(displayName ? { displayName } : {}) }).expect(201)).body.id;
}
async function site(org: Org, name: string, products: string[], enterprise = false): Promise<string> {
  return (await app.http.post(u(org, 'sites')).set(bearer(org.key)).send({ name, products, enterprise }).expect(201)).body.id;
}
async function grant(org: Org, siteId: string, accountId: string, product: string, role?: string) {
  await app.http.post(u(org, `sites/${siteId}/access`)).set(bearer(org.key)).send({ accountId, product, ...(role ? { role } : {}) }).expect((r) => {
    if (r.status !== 201 && r.status !== 200) throw new Error(`grant answered ${r.status}: ${JSON.stringify(r.body)}`);
  });
}
const monthStart = (d: Date) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
const nextMonthStart = (d: Date) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1));
const DAY = 86_400_000;

type CsvRecord = string[];
/** A strict RFC 4180 reader (CRLF records, quoted fields with doubled quotes), to check the export round-trips. */
function parseCsv(text: string): CsvRecord[] {
  const out: CsvRecord[] = [];
  let i = 0;
  while (i < text.length) {
    const rec: string[] = [];
    for (;;) {
      let field = '';
      if (text[i] === '"') {
        i++;
        for (;;) {
          if (text[i] === '"' && text[i + 1] === '"') { field += '"'; i += 2; } else if (text[i] === '"') { i++; break; } else { field += text[i++]; }
        }
      } else {
        while (i < text.length && text[i] !== ',' && text[i] !== '\r') field += text[i++];
      }
      rec.push(field);
      if (text[i] === ',') { i++; continue; }
      expect(text.slice(i, i + 2), 'records end with CRLF').toBe('\r\n');
      i += 2;
      break;
    }
    out.push(rec);
  }
  return out;
}

describe('Standard, monthly: who is billable now, the period from the ledger, the tiers used', () => {
  let org: Org;
  const ids: Record<string, string> = {};
  const gone = randomUUID();
  const earlier = randomUUID();

  beforeAll(async () => {
    org = await createOrg(app, 'Estimate Co');
    await verifyDomain(app, org, 'est.example');
    await app.http.post(u(org, 'subscription/trial')).set(bearer(org.key)).send({}).expect(200);
    const prod = await site(org, 'prod', ['jira', 'jsm', 'confluence']);
    const wiki = await site(org, 'wiki', ['confluence', 'jira']);
    ids.ann = await account(org, 'ann@est.example', 'Doe, Ann');
    ids.bob = await account(org, 'bob@est.example', 'Bob "The Boss" Smith');
    ids.cat = await account(org, 'cat@est.example', '=HYPERLINK("http://evil")');
    ids.dan = await account(org, 'dan@est.example', 'Dan');
    ids.eve = await account(org, 'eve@elsewhere.example', 'Eve');
    await grant(org, prod, ids.ann, 'jira');
    // Bob on two sites, three products: one person, one count.
    await grant(org, prod, ids.bob, 'jira');
    await grant(org, prod, ids.bob, 'confluence');
    await grant(org, wiki, ids.bob, 'jira');
    await grant(org, wiki, ids.bob, 'confluence');
    await grant(org, prod, ids.cat, 'jsm', 'agent');
    await grant(org, prod, ids.dan, 'jsm', 'customer'); // portal-only: not billable
    await grant(org, prod, ids.eve, 'jira'); // external: not billable on Standard
    await deliver(org.id);
    // An account billable since last month and removed this month still counts this month;
    // one added and removed last month does not.
    const start = monthStart(new Date());
    await ledger(org.id, gone, 'added', new Date(start.getTime() - 10 * DAY));
    await ledger(org.id, gone, 'removed', new Date(start.getTime() + 1));
    await ledger(org.id, earlier, 'added', new Date(start.getTime() - 20 * DAY));
    await ledger(org.id, earlier, 'removed', new Date(start.getTime() - 5 * DAY));
  });

  it('estimate: count now, unique users of the period, progressive tiers, amount', async () => {
    const now = new Date();
    const res = await app.http.get(u(org, 'billing/estimate')).set(bearer(org.key)).expect(200);
    expect(res.body).toEqual({
      billableUsers: 3,
      periodBillableUsers: 4,
      priceDifferenceUsers: 0,
      // A trial is not charged: amount 0, and what it would cost beside it.
      amount: 0,
      charged: false,
      wouldBeAmount: 2 * 1000 + 2 * 500,
      currency: 'EUR',
      cycle: 'monthly',
      plan: 'standard',
      edition: 'commercial',
      state: 'trial',
      periodStart: monthStart(now).toISOString(),
      periodEnd: nextMonthStart(now).toISOString(),
      monthsCharged: 1,
      free: null,
      tiers: [
        { from: 1, to: 2, users: 2, unitPrice: 1000, amount: 2000, basis: 'standard' },
        { from: 3, to: 4, users: 2, unitPrice: 500, amount: 1000, basis: 'standard' },
      ],
      // One segment: the trial (plan chosen when it started) covers the period, unpaid.
      segments: [{
        plan: 'standard', from: monthStart(now).toISOString(), to: nextMonthStart(now).toISOString(), share: 1, charged: false,
        users: 4, priceDifferenceUsers: 0, amount: 3000,
        tiers: [
          { from: 1, to: 2, users: 2, unitPrice: 1000, amount: 2000, basis: 'standard' },
          { from: 3, to: 4, users: 2, unitPrice: 500, amount: 1000, basis: 'standard' },
        ],
      }],
    });
  });

  it('billable-users JSON: only billable accounts, each once, with reasons, in creation order', async () => {
    const res = await app.http.get(u(org, 'billing/billable-users')).set(bearer(org.key)).expect(200);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(res.body).toEqual({
      items: [
        { accountId: ids.ann, email: 'ann@est.example', displayName: 'Doe, Ann', managed: true, status: 'active', billable: true, reasons: ['managed', 'active', 'access:jira'] },
        { accountId: ids.bob, email: 'bob@est.example', displayName: 'Bob "The Boss" Smith', managed: true, status: 'active', billable: true, reasons: ['managed', 'active', 'access:confluence', 'access:jira'] },
        { accountId: ids.cat, email: 'cat@est.example', displayName: '=HYPERLINK("http://evil")', managed: true, status: 'active', billable: true, reasons: ['managed', 'active', 'access:jsm'] },
      ],
      next: null,
    });
  });

  it('GET accounts/{id} shows the same answer and reasons as the billing views', async () => {
    const list = (await app.http.get(u(org, 'billing/billable-users')).set(bearer(org.key)).expect(200)).body.items as Array<{ accountId: string; reasons: string[] }>;
    for (const item of list) {
      const acc = await app.http.get(u(org, `accounts/${item.accountId}`)).set(bearer(org.key)).expect(200);
      expect(acc.body).toMatchObject({ billable: true, billableReasons: item.reasons });
    }
    for (const [id, reasons] of [[ids.dan, ['jsm-portal-only']], [ids.eve, ['external']]] as const) {
      expect((await app.http.get(u(org, `accounts/${id}`)).set(bearer(org.key)).expect(200)).body).toMatchObject({ billable: false, billableReasons: reasons });
    }
  });

  it('pages with a cursor: no repeats, no gaps; a bad cursor is a 400', async () => {
    const seen: string[] = [];
    let next: string | null = null;
    let pages = 0;
    do {
      const res: { body: { items: { accountId: string }[]; next: string | null } } = await app.http
        .get(u(org, `billing/billable-users?limit=2${next ? `&cursor=${next}` : ''}`)).set(bearer(org.key)).expect(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.items.map((i) => i.accountId));
      next = res.body.next;
      pages++;
    } while (next);
    expect(seen).toEqual([ids.ann, ids.bob, ids.cat]);
    expect(pages).toBe(2);
    const bad = await app.http.get(u(org, 'billing/billable-users?cursor=nonsense')).set(bearer(org.key));
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].path).toBe('cursor');
    expect((await app.http.get(u(org, 'billing/billable-users?format=xml')).set(bearer(org.key))).status).toBe(400);
  });

  it('CSV (Accept: text/csv or ?format=csv): header row, RFC 4180 quoting, formulas neutralised', async () => {
    const viaAccept = await app.http.get(u(org, 'billing/billable-users')).set(bearer(org.key)).set('Accept', 'text/csv').expect(200);
    expect(viaAccept.headers['content-type']).toMatch(/^text\/csv; charset=utf-8/);
    expect(viaAccept.headers['content-disposition']).toBe('attachment; filename="billable-users.csv"');
    expect(viaAccept.text).toBe(
      'email,displayName,managed,reasons\r\n' +
      'ann@est.example,"Doe, Ann",true,managed;active;access:jira\r\n' +
      'bob@est.example,"Bob ""The Boss"" Smith",true,managed;active;access:confluence;access:jira\r\n' +
      'cat@est.example,"\'=HYPERLINK(""http://evil"")",true,managed;active;access:jsm\r\n',
    );
    expect(parseCsv(viaAccept.text)).toEqual([
      ['email', 'displayName', 'managed', 'reasons'],
      ['ann@est.example', 'Doe, Ann', 'true', 'managed;active;access:jira'],
      ['bob@est.example', 'Bob "The Boss" Smith', 'true', 'managed;active;access:confluence;access:jira'],
      ['cat@est.example', '\'=HYPERLINK("http://evil")', 'true', 'managed;active;access:jsm'],
    ]);
    const viaQuery = await app.http.get(u(org, 'billing/billable-users?format=csv')).set(bearer(org.key)).expect(200);
    expect(viaQuery.text).toBe(viaAccept.text);
    const jsonWins = await app.http.get(u(org, 'billing/billable-users?format=json')).set(bearer(org.key)).set('Accept', 'text/csv').expect(200);
    expect(jsonWins.body.items).toHaveLength(3);
  });

  it('another org\'s key gets 404 on both, and its own org shows none of these users', async () => {
    const other = await createOrg(app, 'Other Est Co');
    for (const p of ['billing/estimate', 'billing/billable-users', 'billing/billable-users?format=csv']) {
      const res = await app.http.get(u(org, p)).set(bearer(other.key));
      expect(res.status, p).toBe(404);
      expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    }
    expect((await app.http.get(u(other, 'billing/billable-users')).set(bearer(other.key)).expect(200)).body).toEqual({ items: [], next: null });
    expect((await app.http.get(u(other, 'billing/billable-users?format=csv')).set(bearer(other.key)).expect(200)).text).toBe('email,displayName,managed,reasons\r\n');
    expect((await app.http.get(u(other, 'billing/estimate')).set(bearer(other.key)).expect(200)).body).toMatchObject({
      billableUsers: 0, periodBillableUsers: 0, amount: 0, state: 'none', plan: null, tiers: [],
    });
  });
});

describe('annual, Community, Premium, unsubscribed', () => {
  async function subscribedOrg(name: string, domain: string, plan: 'standard' | 'premium' = 'standard'): Promise<Org> {
    const org = await createOrg(app, name);
    await verifyDomain(app, org, domain);
    await app.http.post(u(org, 'subscription/trial')).set(bearer(org.key)).send({ plan }).expect(200);
    return org;
  }

  it('annual: the subscription year from activeSince, ten months for twelve', async () => {
    const org = await subscribedOrg('Annual Co', 'annual.example');
    const s = await site(org, 'prod', ['jira']);
    for (const n of ['a', 'b', 'c']) await grant(org, s, await account(org, `${n}@annual.example`), 'jira');
    const activatedAt = new Date(Date.now() - 40 * DAY);
    await app.svc.db.prisma.subscription.update({
      where: { orgId: org.id },
      data: { cycle: 'annual', paymentMethodAddedAt: new Date(activatedAt.getTime() - DAY), activatedAt },
    });
    await deliver(org.id);
    // Billable before this subscription year began, removed before it: not in this year's count.
    const before = randomUUID();
    await ledger(org.id, before, 'added', new Date(activatedAt.getTime() - 30 * DAY));
    await ledger(org.id, before, 'removed', new Date(activatedAt.getTime() - 20 * DAY));
    const res = await app.http.get(u(org, 'billing/estimate')).set(bearer(org.key)).expect(200);
    expect(res.body).toMatchObject({
      billableUsers: 3, periodBillableUsers: 3, cycle: 'annual', state: 'active', monthsCharged: 10,
      periodStart: activatedAt.toISOString(),
      amount: 10 * (2 * 1000 + 500),
      tiers: [
        { from: 1, to: 2, users: 2, unitPrice: 10_000, amount: 20_000, basis: 'standard' },
        { from: 3, to: 3, users: 1, unitPrice: 5000, amount: 5000, basis: 'standard' },
      ],
    });
    // Twelve months on (clamped at a month's end when the day does not exist).
    expect(res.body.periodEnd).toBe(addMonthsUtc(activatedAt, 12).toISOString());
  });

  it('Community: users count, the bill is free', async () => {
    const org = await subscribedOrg('Community Co', 'community.example');
    const s = await site(org, 'prod', ['jira', 'confluence']);
    await grant(org, s, await account(org, 'x@community.example'), 'jira');
    await grant(org, s, await account(org, 'y@community.example'), 'confluence');
    await app.svc.db.prisma.subscription.update({ where: { orgId: org.id }, data: { edition: 'community' } });
    await deliver(org.id);
    const res = await app.http.get(u(org, 'billing/estimate')).set(bearer(org.key)).expect(200);
    expect(res.body).toMatchObject({ billableUsers: 2, periodBillableUsers: 2, amount: 0, edition: 'community', free: 'edition-community', monthsCharged: 0, tiers: [] });
  });

  it('Premium: external users with Jira/Confluence count; Enterprise-covered users pay the difference', async () => {
    const org = await subscribedOrg('Premium Co', 'premium.example', 'premium');
    const std = await site(org, 'std', ['jira', 'confluence', 'trello']);
    const ent = await site(org, 'ent', ['jira'], true);
    const full = await account(org, 'full@premium.example');
    const covered = await account(org, 'covered@premium.example');
    const external = await account(org, 'guest@partner.example');
    const trelloOnly = await account(org, 'trello@premium.example');
    await grant(org, std, full, 'jira');
    await grant(org, ent, covered, 'jira');
    await grant(org, std, external, 'confluence');
    await grant(org, std, trelloOnly, 'trello');
    await deliver(org.id);
    const users = (await app.http.get(u(org, 'billing/billable-users')).set(bearer(org.key)).expect(200)).body.items;
    expect(users.map((x: { email: string; reasons: string[] }) => [x.email, x.reasons])).toEqual([
      ['full@premium.example', ['managed', 'active', 'access:jira']],
      ['covered@premium.example', ['managed', 'active', 'access:jira', 'price-difference:enterprise']],
      ['guest@partner.example', ['external', 'active', 'access:confluence']],
    ]);
    expect((await app.http.get(u(org, `accounts/${trelloOnly}`)).set(bearer(org.key)).expect(200)).body.billableReasons).toEqual(['no-premium-product-access']);
    const res = await app.http.get(u(org, 'billing/estimate')).set(bearer(org.key)).expect(200);
    // Premium table 1500 / 750: premium(3) − standard(1) = (1500 + 1500 + 750) − 1000.
    expect(res.body).toMatchObject({
      plan: 'premium', billableUsers: 3, periodBillableUsers: 3, priceDifferenceUsers: 1, amount: 0, charged: false, wouldBeAmount: 2750,
      tiers: [
        { from: 1, to: 1, users: 1, unitPrice: 500, amount: 500, basis: 'price-difference' },
        { from: 2, to: 2, users: 1, unitPrice: 1500, amount: 1500, basis: 'premium' },
        { from: 3, to: 3, users: 1, unitPrice: 750, amount: 750, basis: 'premium' },
      ],
    });
  });

  it('unsubscribed: nobody is billable now, but the period keeps who was billable in it', async () => {
    const org = await subscribedOrg('Gone Co', 'gone.example');
    const s = await site(org, 'prod', ['jira']);
    await grant(org, s, await account(org, 'g@gone.example'), 'jira');
    await app.http.post(u(org, 'subscription/cancel')).set(bearer(org.key)).send({}).expect(200);
    await deliver(org.id);
    expect((await app.http.get(u(org, 'billing/billable-users')).set(bearer(org.key)).expect(200)).body).toEqual({ items: [], next: null });
    const res = await app.http.get(u(org, 'billing/estimate')).set(bearer(org.key)).expect(200);
    // Trialled then cancelled: nothing of the period was paid for, so nothing is charged.
    expect(res.body).toMatchObject({ state: 'unsubscribed', billableUsers: 0, periodBillableUsers: 1, amount: 0, charged: false, wouldBeAmount: 1000 });
    expect(res.body.segments).toMatchObject([{ plan: 'standard', charged: false, users: 1, amount: 1000 }]);
  });
});

describe('large org: the CSV streams every billable user across many pages', () => {
  it('2,500 billable of 3,000 accounts: CSV rows = JSON pages = estimate count', async () => {
    const org = await createOrg(app, 'Big Co');
    await verifyDomain(app, org, 'big.example');
    await app.http.post(u(org, 'subscription/trial')).set(bearer(org.key)).send({}).expect(200);
    const s = await site(org, 'prod', ['jira', 'jsm']);
    const prisma = app.svc.db.prisma;
    const t0 = Date.now() - 3_000_000;
    const accounts = Array.from({ length: 3000 }, (_, i) => ({
      id: randomUUID(), orgId: org.id, email: `user${String(i).padStart(4, '0')}@big.example`, emailNormalized: `user${String(i).padStart(4, '0')}@big.example`,
      emailDomain: 'big.example', displayName: i % 7 === 0 ? `Last, First ${i}` : `User ${i}`, managed: true, policyId: org.defaultPolicyId,
      createdAt: new Date(t0 + i * 1000),
    }));
    await prisma.account.createMany({ data: accounts });
    // Every sixth account is only a portal customer: 500 not billable.
    await prisma.productAccess.createMany({
      data: accounts.map((a, i) => i % 6 === 5
        ? { orgId: org.id, siteId: s, accountId: a.id, product: 'jsm' as const, role: 'customer' as const }
        : { orgId: org.id, siteId: s, accountId: a.id, product: 'jira' as const, role: 'user' as const }),
    });
    const wanted = accounts.filter((_, i) => i % 6 !== 5).map((a) => a.email);

    const csv = await app.http.get(u(org, 'billing/billable-users')).set(bearer(org.key)).set('Accept', 'text/csv').expect(200);
    const records = parseCsv(csv.text);
    expect(records[0]).toEqual(['email', 'displayName', 'managed', 'reasons']);
    expect(records.slice(1).map((r) => r[0])).toEqual(wanted);
    expect(records[1]).toEqual(['user0000@big.example', 'Last, First 0', 'true', 'managed;active;access:jira']);

    let next: string | null = null;
    const paged: string[] = [];
    do {
      const res: { body: { items: { email: string }[]; next: string | null } } = await app.http
        .get(u(org, `billing/billable-users?limit=200${next ? `&cursor=${next}` : ''}`)).set(bearer(org.key)).expect(200);
      paged.push(...res.body.items.map((i) => i.email));
      next = res.body.next;
    } while (next);
    expect(paged).toEqual(wanted);
    expect((await app.http.get(u(org, 'billing/estimate')).set(bearer(org.key)).expect(200)).body.billableUsers).toBe(2500);
  }, 60_000);
});
