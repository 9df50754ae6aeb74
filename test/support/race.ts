/**
 * Helpers of the race tests (test/api/synced-non-billable-race.test.ts): an org set up for
 * billing, the offsets that vary the interleaving from round to round, and the checks that must
 * hold after every round whatever the interleaving was.
 */
import { expect } from 'vitest';
import { bearer, verifyDomain, type TestApp } from './app.js';
import { orgWithDirectory, scim, user, type Directory } from './scim.js';

export const onPostgres = Boolean(process.env.DATABASE_URL);

/** Rounds per race: many on PostgreSQL (where races happen), a few on PGlite (one transaction at a time). */
export const ROUNDS = onPostgres ? 20 : 3;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The delay before each of the two racing requests in round `i`: alternately one or the other
 * goes first, by 0–9 ms, so the rounds cover "A well before B" through "B well before A".
 */
export function offsets(i: number): [number, number] {
  const d = (i * 3) % 10;
  return i % 2 === 0 ? [0, d] : [d, 0];
}

/** Sends a supertest request after `ms` (a supertest request is sent when it is awaited). */
export async function after<T>(ms: number, send: () => PromiseLike<T>): Promise<T> {
  if (ms > 0) await sleep(ms);
  return send();
}

export type BillingOrg = Directory & { domain: string; siteId: string; api: string; auth: Record<string, string>; scim: ReturnType<typeof scim> };

/** An org with a verified domain, a trial, a Jira site and an Okta directory. */
export async function billingOrg(app: TestApp, name: string): Promise<BillingOrg> {
  const domain = `${name.toLowerCase().replace(/[^a-z0-9]+/g, '')}.example`;
  const dir = await orgWithDirectory(app, { name, domain, trial: true });
  const api = `/api/v1/orgs/${dir.orgId}`;
  const auth = bearer(dir.orgKey);
  const site = await app.http.post(`${api}/sites`).set(auth).send({ name: 'main', products: ['jira', 'confluence'] }).expect(201);
  return { ...dir, domain, siteId: site.body.id, api, auth, scim: scim(app, dir) };
}

/** A manual account on the org's domain with Jira access (billable in a billable policy). */
export async function billableAccount(app: TestApp, org: BillingOrg, local: string): Promise<{ id: string; email: string }> {
  const email = `${local}@${org.domain}`;
  const res = await app.http.post(`${org.api}/accounts`).set(org.auth).send({ email, displayName: local });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  await app.http.post(`${org.api}/sites/${org.siteId}/access`).set(org.auth).send({ accountId: res.body.id, product: 'jira' }).expect(201);
  return { id: res.body.id, email };
}

export async function createPolicy(app: TestApp, org: BillingOrg, name: string, fields: Record<string, unknown> = {}): Promise<string> {
  const res = await app.http.post(`${org.api}/policies`).set(org.auth).send({ name, ...fields });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

export async function moveInto(app: TestApp, org: BillingOrg, policyId: string, accountIds: string[]): Promise<void> {
  const res = await app.http.post(`${org.api}/policies/${policyId}/members`).set(org.auth).send({ accountIds });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

/** The IdP's push of a person (Okta's POST /Users): the claim of the account with that email. */
export const pushUser = (org: BillingOrg, email: string) => () => org.scim.post('/Users', user(email));

type Row = Record<string, unknown>;
const query = async (app: TestApp, sql: string, ...params: unknown[]) => app.svc.db.prisma.$queryRawUnsafe<Row[]>(sql, ...params);

/** Synced accounts sitting in a non-billable policy (read through the policy, not any stored copy of its flag). */
export async function invariantViolations(app: TestApp, orgId: string): Promise<number> {
  const rows = await query(app, `
    SELECT count(*)::int AS n FROM "Account" a JOIN "Policy" p ON p."id" = a."policyId"
    WHERE a."orgId" = $1::uuid AND a."source" = 'scim' AND p."nonBillable"`, orgId);
  return Number(rows[0]!.n);
}

export type RoundReport = { violations: number; estimate: number; flagged: number; deltaDrift: number; corrections: number };

/**
 * What must hold after a round: no synced account in a non-billable policy; the estimate's
 * billable count equals the accounts flagged billable; each account's last delta says what its
 * flag says (the stream nets to the billable set); and reconciliation, recomputing from
 * scratch, finds nothing to correct.
 */
const seenViolations = new Set<string>();

export async function roundReport(app: TestApp, org: BillingOrg): Promise<RoundReport> {
  const violating = await query(app, `
    SELECT a."id" FROM "Account" a JOIN "Policy" p ON p."id" = a."policyId"
    WHERE a."orgId" = $1::uuid AND a."source" = 'scim' AND p."nonBillable"`, org.orgId);
  const violations = violating.length;
  newViolations = violating.filter((r) => !seenViolations.has(String(r.id))).length;
  for (const r of violating) seenViolations.add(String(r.id));
  const estimate = (await app.http.get(`${org.api}/billing/estimate`).set(org.auth).expect(200)).body.billableUsers as number;
  const flagged = Number((await query(app, `SELECT count(*)::int AS n FROM "Account" WHERE "orgId" = $1::uuid AND "billable"`, org.orgId))[0]!.n);
  const deltaDrift = Number((await query(app, `
    SELECT count(*)::int AS n FROM "Account" a
    LEFT JOIN LATERAL (SELECT d."kind" FROM "BillableDelta" d WHERE d."accountId" = a."id" ORDER BY d."seq" DESC LIMIT 1) last ON true
    WHERE a."orgId" = $1::uuid AND (COALESCE(last."kind" = 'added', false) <> a."billable")`, org.orgId))[0]!.n);
  const run = await app.http.post(`${org.api}/billing/reconciliations`).set(org.auth).send({});
  expect(run.status, JSON.stringify(run.body)).toBe(201);
  return { violations, estimate, flagged, deltaDrift, corrections: run.body.corrections as number };
}

/**
 * RACE_TALLY=1 measures instead of asserting: each round's report is counted (rounds, rounds that
 * broke the rule, violations) and printed at the end — the figures for an issue's closing note.
 */
const tallying = process.env.RACE_TALLY === '1';
/** Accounts that broke the rule in the round last reported and not in an earlier one. */
let newViolations = 0;
/** False while tallying: assertions about one round's outcome are skipped so every round runs. */
export const strict = !tallying;
export const tally: Record<string, { rounds: number; brokenRounds: number; violations: number; unsound: number }> = {};

export function expectSound(report: RoundReport, where: string, scenario = where.replace(/ ?round \d+/, '') || 'rounds'): void {
  if (tallying) {
    const t = (tally[scenario] ??= { rounds: 0, brokenRounds: 0, violations: 0, unsound: 0 });
    t.rounds++;
    if (newViolations > 0) t.brokenRounds++;
    t.violations += Math.max(0, newViolations);
    if (report.deltaDrift || report.corrections || report.estimate !== report.flagged) t.unsound++;
    console.log(`[race] ${where}: ${JSON.stringify(report)}`);
    return;
  }
  expect(report, where).toEqual({ violations: 0, estimate: report.flagged, flagged: report.flagged, deltaDrift: 0, corrections: 0 });
}
