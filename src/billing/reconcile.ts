import { Prisma } from '../generated/prisma/client.js';
import type { Database } from '../store/database.js';
import type { Tx } from '../store/transaction.js';
import { Conflict, NotFound } from '../domain/errors.js';
import { billableSet } from '../store/billable-set.js';

/**
 * Reconciliation (SPEC §6): the billable set recomputed from scratch with one set-based query,
 * compared account by account with the ledger's net state; every difference becomes a
 * correction delta (cause `reconciliation`) and a fixed Account.billable flag, in one
 * transaction, and the run is recorded with its report.
 *
 * The ledger's net state of an account is the kind of its latest entry: its last LedgerEntry in
 * stream order (the delivery worker numbers one account's deltas in outbox order), or — when it
 * has deltas still in the outbox (appliedAt null, not in the ledger yet) — the last of those, which
 * the worker will apply after everything the ledger holds for it. So a healthy system reports zero
 * corrections whether or not the worker has caught up. `added` means billable in the ledger.
 * The comparison itself runs in SQL (the billable ids go in as one parameter) and only the accounts
 * that disagree come back: the cost is two set-based queries, whatever the size of the org.
 *
 * Concurrency: one run per org at a time — an in-process guard and a transaction-scoped advisory
 * lock per org (both answer Conflict, 409 at the API). The transaction is REPEATABLE READ, so the
 * billable set, the ledger, the outbox and the flags are read from one snapshot; a write to an
 * account it corrects that commits meanwhile aborts the run with a serialization failure, and it
 * is retried from a fresh snapshot.
 */
export type ReconcileResult = {
  id: string;
  status: 'done' | 'failed';
  corrections: number;
  billableCount: number;
  ledgerCount: number;
  /** Synced accounts found in a non-billable policy (SPEC §3), moved out by this run: should always be 0. */
  invariantViolations: number;
};

/**
 * What the run found against SPEC §3's rule "a synced account is never in a non-billable
 * policy" — which the schema guarantees (migration 20261207000000_synced_never_non_billable), so
 * this is the check that the guarantee itself held (a dropped constraint, a restore with
 * triggers off). Each such account is moved to the default policy (audited, actor
 * system:reconciliation) before the billable set is computed, so its correction delta follows.
 */
export type InvariantReport = {
  rule: 'non-billable-no-synced-accounts';
  violations: number;
  accountIds: string[];
  /** Accounts whose copy of their policy's nonBillable flag disagreed with the policy (fixed). */
  flagDrift: number;
};

export type ReconcileReport = {
  accounts: number;
  billableCount: number;
  ledgerCount: number;
  /** Correction deltas written: accounts the ledger had wrong. */
  deltasWritten: number;
  added: string[];
  removed: string[];
  /** Accounts whose stored Account.billable flag disagreed with the recomputed answer. */
  flagsFixed: number;
  flagIds: string[];
  /** True when an id list above was cut at the cap. */
  truncated: boolean;
  /** Deltas still in the outbox, counted into the ledger's net state. */
  pendingDeltas: number;
  durationMs: number;
  /** Where the time went: the billable-set query, the ledger query, the diff and the writes. */
  timingsMs: { billableSet: number; ledger: number; diffAndWrite: number };
  invariant: InvariantReport;
};

const REPORT_CAP = 100;
const RECONCILE_LOCK_CLASS = 0x6f72726e; // "orrn"
const running = new WeakMap<Database, Set<string>>();

export async function reconcileOrg(
  db: Database, orgId: string, opts: { trigger: string; now?: Date; reportCap?: number },
): Promise<ReconcileResult> {
  const now = opts.now ?? new Date();
  const cap = opts.reportCap ?? REPORT_CAP;
  const here = running.get(db) ?? new Set<string>();
  running.set(db, here);
  if (here.has(orgId)) throw busy(orgId);
  here.add(orgId);
  try {
    const org = await db.prisma.org.findUnique({ where: { id: orgId }, select: { id: true } });
    if (!org) throw new NotFound('org', orgId);
    for (let attempt = 1; ; attempt++) {
      try {
        return await db.prisma.$transaction((tx) => runInTx(tx, orgId, opts.trigger, now, cap), {
          isolationLevel: Prisma.TransactionIsolationLevel.RepeatableRead, maxWait: 10_000, timeout: 120_000,
        });
      } catch (err) {
        if (err instanceof Conflict || err instanceof NotFound) throw err;
        if (isSerializationFailure(err) && attempt < 5) continue;
        const run = await db.prisma.reconciliationRun.create({
          data: { orgId, trigger: opts.trigger, status: 'failed', finishedAt: new Date(), report: { error: err instanceof Error ? err.message : String(err) } },
        });
        throw Object.assign(err instanceof Error ? err : new Error(String(err)), { reconciliationRunId: run.id });
      }
    }
  } finally {
    here.delete(orgId);
  }
}

async function runInTx(tx: Tx, orgId: string, trigger: string, now: Date, cap: number): Promise<ReconcileResult> {
  const t0 = performance.now();
  const [lock] = await tx.$queryRaw<{ locked: boolean }[]>`
    SELECT pg_try_advisory_xact_lock(${RECONCILE_LOCK_CLASS}::int, hashtext(${orgId})) AS locked`;
  if (!lock?.locked) throw busy(orgId);

  const invariant = await repairSyncedInNonBillable(tx, orgId, cap);
  const t1 = performance.now();
  // current: a run whose `now` is its tick time must not undo a change committed since.
  const truth = await billableSet(tx, orgId, now, { current: true });
  const t2 = performance.now();
  const billableIds: string[] = [];
  for (const [id, t] of truth) if (t.billable) billableIds.push(id);
  const { ledgerCount, pendingDeltas, diff } = await diffWithLedger(tx, orgId, billableIds);
  const t3 = performance.now();

  const added: string[] = [];
  const removed: string[] = [];
  const flagOn: string[] = [];
  const flagOff: string[] = [];
  const deltas: Correction[] = [];
  for (const r of diff) {
    const billable = r.exists && (truth.get(r.accountId)?.billable ?? false);
    if (billable !== r.ledger) {
      (billable ? added : removed).push(r.accountId);
      deltas.push({
        orgId, accountId: r.accountId, kind: billable ? 'added' : 'removed', cause: 'reconciliation',
        reasons: r.exists ? (truth.get(r.accountId)?.reasons ?? []) : ['account-deleted'],
      });
    }
    if (r.exists && r.flag !== billable) (billable ? flagOn : flagOff).push(r.accountId);
  }
  const billableCount = billableIds.length;

  // Lock what is corrected. Under REPEATABLE READ this fails with a serialization error (and the
  // run is retried from a fresh snapshot) if a change to one of these accounts committed after
  // our snapshot, so a correction is never computed from an answer that is already stale.
  const touched = [...new Set([...deltas.map((d) => d.accountId), ...flagOn, ...flagOff])];
  if (touched.length) {
    await tx.$queryRaw`
      SELECT 1 FROM "Account" WHERE "orgId" = ${orgId}::uuid AND "id" = ANY(string_to_array(${touched.join(',')}, ',')::uuid[]) FOR UPDATE`;
  }
  await insertCorrections(tx, orgId, deltas);
  await setFlags(tx, orgId, flagOn, true);
  await setFlags(tx, orgId, flagOff, false);

  const flagIds = [...flagOn, ...flagOff];
  const corrected = new Set([...added, ...removed, ...flagIds, ...invariant.accountIds]);
  const report: ReconcileReport = {
    accounts: truth.size, billableCount, ledgerCount,
    deltasWritten: deltas.length, added: added.slice(0, cap), removed: removed.slice(0, cap),
    flagsFixed: flagIds.length, flagIds: flagIds.slice(0, cap),
    truncated: added.length > cap || removed.length > cap || flagIds.length > cap,
    pendingDeltas, durationMs: Math.round(performance.now() - t0),
    timingsMs: { billableSet: Math.round(t2 - t1), ledger: Math.round(t3 - t2), diffAndWrite: Math.round(performance.now() - t3) },
    invariant,
  };
  const run = await tx.reconciliationRun.create({
    data: {
      orgId, trigger, status: 'done', billableCount, ledgerCount, corrections: corrected.size,
      report: report as unknown as Prisma.InputJsonValue, finishedAt: new Date(),
    },
    select: { id: true },
  });
  return { id: run.id, status: 'done', corrections: Math.max(corrected.size, invariant.violations), billableCount, ledgerCount, invariantViolations: invariant.violations };
}

/**
 * SPEC §3 checked from the policy rows themselves (not the accounts' copy of the flag), then
 * repaired: the copy is realigned, and synced accounts in a non-billable policy move to the
 * default policy with an audit row. Both should find nothing.
 */
async function repairSyncedInNonBillable(tx: Tx, orgId: string, cap: number): Promise<InvariantReport> {
  const bad = await tx.$queryRaw<{ id: string; policyId: string }[]>`
    SELECT a."id"::text AS id, a."policyId"::text AS "policyId" FROM "Account" a JOIN "Policy" p ON p."id" = a."policyId"
    WHERE a."orgId" = ${orgId}::uuid AND a."source" = 'scim' AND (p."nonBillable" OR a."policyNonBillable")
    ORDER BY a."id" FOR UPDATE OF a`;
  if (bad.length) {
    const ids = bad.map((b) => b.id).join(',');
    await tx.$executeRaw`
      WITH moved AS (
        UPDATE "Account" a SET "policyId" = (SELECT d."id" FROM "Policy" d WHERE d."orgId" = ${orgId}::uuid AND d."isDefault"), "updatedAt" = now()
        WHERE a."orgId" = ${orgId}::uuid AND a."id" = ANY(string_to_array(${ids}, ',')::uuid[])
        RETURNING a."id", a."policyId"
      )
      INSERT INTO "AuditEvent" ("id", "orgId", "actor", "action", "targetType", "targetId", "before", "after")
      SELECT gen_random_uuid(), ${orgId}::uuid, 'system:reconciliation', 'policy.members.move', 'account', m."id"::text,
             jsonb_build_object('nonBillable', true),
             jsonb_build_object('policyId', m."policyId", 'reason', 'reconciliation found a synced account in a non-billable policy')
      FROM moved m`;
  }
  const drift = await tx.$executeRaw`
    UPDATE "Account" a SET "policyNonBillable" = p."nonBillable"
    FROM "Policy" p WHERE p."id" = a."policyId" AND a."orgId" = ${orgId}::uuid AND a."policyNonBillable" <> p."nonBillable"`;
  return { rule: 'non-billable-no-synced-accounts', violations: bad.length, accountIds: bad.slice(0, cap).map((b) => b.id), flagDrift: drift };
}

type DiffRow = { accountId: string; flag: boolean | null; ledger: boolean; exists: boolean };

/**
 * The ledger side of the comparison, in one statement: per account, the ledger's net state (its
 * latest entry in stream order, or its latest delta still in the outbox — which the worker will
 * apply after every entry the ledger already holds for it) and the stored flag, compared in SQL
 * with the billable set (its billable ids travel as one parameter). Only accounts where something
 * disagrees come back, with the ledger's count of billable accounts and the pending deltas seen.
 * Account ids the ledger knows that no longer exist come back as `exists: false`.
 */
async function diffWithLedger(tx: Tx, orgId: string, billableIds: string[]): Promise<{ ledgerCount: number; pendingDeltas: number; diff: DiffRow[] }> {
  const [row] = await tx.$queryRaw<{ ledger_count: number; pending: number; diff: DiffRow[] }[]>`
    WITH truth AS MATERIALIZED (
      SELECT DISTINCT unnest(string_to_array(${billableIds.join(',')}, ','))::uuid AS id
    ), events AS (
      SELECT l."accountId", l."kind", false AS pending, NULL::bigint AS "seq", l."streamSeq"
      FROM "LedgerEntry" l
      WHERE l."orgId" = ${orgId}::uuid
      UNION ALL
      SELECT d."accountId", d."kind", true, d."seq", NULL::bigint
      FROM "BillableDelta" d
      WHERE d."appliedAt" IS NULL AND d."orgId" = ${orgId}::uuid
        AND NOT EXISTS (SELECT 1 FROM "LedgerEntry" l WHERE l."deltaId" = d."id")
    ), net AS MATERIALIZED (
      SELECT DISTINCT ON ("accountId") "accountId", ("kind" = 'added') AS billable
      FROM events
      ORDER BY "accountId", pending DESC, "seq" DESC NULLS LAST, "streamSeq" DESC NULLS LAST
    ), joined AS (
      SELECT COALESCE(a."id", n."accountId") AS "accountId", a."billable" AS flag,
             COALESCE(n.billable, false) AS ledger, (a."id" IS NOT NULL) AS "exists",
             (a."id" IS NOT NULL AND t.id IS NOT NULL) AS truth
      FROM (SELECT "id", "billable" FROM "Account" WHERE "orgId" = ${orgId}::uuid) a
      FULL OUTER JOIN net n ON n."accountId" = a."id"
      LEFT JOIN truth t ON t.id = COALESCE(a."id", n."accountId")
    )
    SELECT (SELECT count(*) FROM net WHERE billable)::int AS ledger_count,
           (SELECT count(*) FROM events WHERE pending)::int AS pending,
           COALESCE((
             SELECT json_agg(json_build_object('accountId', j."accountId", 'flag', j.flag, 'ledger', j.ledger, 'exists', j."exists"))
             FROM joined j
             WHERE j.ledger <> j.truth OR (j."exists" AND j.flag <> j.truth)
           ), '[]'::json) AS diff`;
  return { ledgerCount: Number(row!.ledger_count), pendingDeltas: Number(row!.pending), diff: row!.diff };
}

type Correction = { orgId: string; accountId: string; kind: 'added' | 'removed'; cause: string; reasons: string[] };

/** The correction deltas in one statement (the rows travel as one JSON parameter), in the given order. */
async function insertCorrections(tx: Tx, orgId: string, deltas: Correction[]): Promise<void> {
  if (!deltas.length) return;
  const json = JSON.stringify(deltas.map((d) => ({ a: d.accountId, k: d.kind, r: d.reasons })));
  await tx.$executeRaw`
    INSERT INTO "BillableDelta" ("id", "orgId", "accountId", "kind", "reasons", "cause")
    SELECT gen_random_uuid(), ${orgId}::uuid, x.a, x.k::"DeltaKind", ARRAY(SELECT jsonb_array_elements_text(x.r)), 'reconciliation'
    FROM ROWS FROM (jsonb_to_recordset(${json}::jsonb) AS (a uuid, k text, r jsonb)) WITH ORDINALITY AS x(a, k, r, n)
    ORDER BY x.n`;
}

async function setFlags(tx: Tx, orgId: string, ids: string[], billable: boolean): Promise<void> {
  if (!ids.length) return;
  // One text parameter however many ids (no bind-parameter limit; the same SQL on PGlite).
  await tx.$executeRaw`
    UPDATE "Account" SET "billable" = ${billable}, "updatedAt" = now()
    WHERE "orgId" = ${orgId}::uuid AND "id" = ANY(string_to_array(${ids.join(',')}, ',')::uuid[])`;
}

function busy(orgId: string): Conflict {
  return new Conflict('reconciliation-running', `a reconciliation of org ${orgId} is already running; try again when it has finished`);
}

function isSerializationFailure(err: unknown): boolean {
  const text = err instanceof Error ? `${err.message} ${JSON.stringify((err as { meta?: unknown }).meta ?? {})}` : '';
  return /40001|could not serialize|serialization failure|TransactionWriteConflict/i.test(text)
    || (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2034');
}

/** The runs of an org, newest first, keyset-paged. */
export async function listReconciliationRuns(db: Database, orgId: string, page: { limit: number; cursor?: string | undefined }) {
  let after: { startedAt: Date; id: string } | null = null;
  if (page.cursor) {
    const [ts, id] = Buffer.from(page.cursor, 'base64url').toString('utf8').split('|');
    const startedAt = new Date(ts ?? '');
    if (!id || Number.isNaN(startedAt.getTime()) || !/^[0-9a-f-]{36}$/i.test(id)) return { items: [], next: null };
    after = { startedAt, id };
  }
  const rows = await db.prisma.reconciliationRun.findMany({
    where: {
      orgId,
      ...(after ? { OR: [{ startedAt: { lt: after.startedAt } }, { startedAt: after.startedAt, id: { lt: after.id } }] } : {}),
    },
    orderBy: [{ startedAt: 'desc' }, { id: 'desc' }],
    take: page.limit + 1,
  });
  const more = rows.length > page.limit;
  const items = rows.slice(0, page.limit);
  const last = items.at(-1);
  return {
    items: items.map(runView),
    next: more && last ? Buffer.from(`${last.startedAt.toISOString()}|${last.id}`).toString('base64url') : null,
  };
}

export async function getReconciliationRun(db: Database, orgId: string, id: string) {
  const run = await db.prisma.reconciliationRun.findFirst({ where: { id, orgId } });
  if (!run) throw new NotFound('reconciliation run', id);
  return runView(run);
}

type RunRow = {
  id: string; status: string; trigger: string; billableCount: number | null; ledgerCount: number | null;
  corrections: number; report: unknown; startedAt: Date; finishedAt: Date | null;
};

export const runView = (r: RunRow) => ({
  id: r.id, status: r.status, trigger: r.trigger, corrections: r.corrections, billableCount: r.billableCount,
  ledgerCount: r.ledgerCount, startedAt: r.startedAt, finishedAt: r.finishedAt, report: r.report ?? null,
});

/** Orgs the nightly run looks at: with a subscription, or with anything in the ledger or the outbox. */
export async function orgsToReconcile(db: Database): Promise<string[]> {
  const rows = await db.prisma.$queryRaw<{ id: string }[]>`
    SELECT o."id"::text AS id FROM "Org" o
    WHERE EXISTS (SELECT 1 FROM "Subscription" s WHERE s."orgId" = o."id")
       OR EXISTS (SELECT 1 FROM "LedgerEntry" l WHERE l."orgId" = o."id")
       OR EXISTS (SELECT 1 FROM "BillableDelta" d WHERE d."orgId" = o."id")
    ORDER BY o."createdAt", o."id"`;
  return rows.map((r) => r.id);
}

/** The admin API's view of reconciliation: one service on one database (src/services/index.ts builds it). */
export function createReconciliationService(db: Database) {
  return {
    run: (ctx: { orgId: string; now: Date }, trigger = 'api') => reconcileOrg(db, ctx.orgId, { trigger, now: ctx.now }),
    list: (ctx: { orgId: string }, page: { limit: number; cursor?: string | undefined }) => listReconciliationRuns(db, ctx.orgId, page),
    get: (ctx: { orgId: string }, id: string) => getReconciliationRun(db, ctx.orgId, id),
  };
}

export type ReconciliationService = ReturnType<typeof createReconciliationService>;
