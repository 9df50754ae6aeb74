import { parseArgs } from 'node:util';
import type { Database } from '../store/database.js';
import { Conflict, NotFound } from '../domain/errors.js';
import { orgsToReconcile, reconcileOrg, type ReconcileResult } from '../billing/reconcile.js';

export const RECONCILE_HELP = `orgsync reconcile [--org <orgId>]

Recomputes the billable set of one org (--org) or of every org with a subscription or
billing history, compares it with the ledger, and writes correction deltas for any drift.
Prints one line per org and a summary.

Exit codes: 0 nothing to correct; 1 something was corrected; 2 usage error (bad option,
unknown org); 3 a run failed or another reconciliation of the org was running.
`;

type Out = { write(s: string): unknown };

/**
 * The `orgsync reconcile` command. Options are checked before the database is opened (a usage
 * error costs nothing); `openDb` gives an open, migrated database and `closeDb` releases it.
 * Returns the exit code.
 */
export async function runReconcileCommand(
  args: string[],
  deps: { openDb: () => Promise<Database>; closeDb?: (db: Database) => Promise<void>; stdout: Out; stderr: Out; now?: Date },
): Promise<number> {
  let org: string | undefined;
  try {
    const parsed = parseArgs({ args, allowPositionals: false, strict: true, options: { org: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
    if (parsed.values.help) {
      deps.stdout.write(RECONCILE_HELP);
      return 0;
    }
    org = parsed.values.org;
  } catch (err) {
    deps.stderr.write(`${err instanceof Error ? err.message : String(err)}\n\n${RECONCILE_HELP}`);
    return 2;
  }
  if (org !== undefined && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(org)) {
    deps.stderr.write(`--org must be an org id (a UUID), got "${org}"\n`);
    return 2;
  }

  const db = await deps.openDb();
  try {
    return await reconcileAll(db, org, deps);
  } finally {
    await deps.closeDb?.(db);
  }
}

async function reconcileAll(db: Database, org: string | undefined, deps: { stdout: Out; stderr: Out; now?: Date }): Promise<number> {
  const orgs = org ? [org.toLowerCase()] : await orgsToReconcile(db);
  const rows: Array<{ orgId: string; r?: ReconcileResult; error?: string }> = [];
  for (const orgId of orgs) {
    try {
      rows.push({ orgId, r: await reconcileOrg(db, orgId, { trigger: 'cli', ...(deps.now ? { now: deps.now } : {}) }) });
    } catch (err) {
      if (err instanceof NotFound && org) {
        deps.stderr.write(`no org ${orgId}\n`);
        return 2;
      }
      rows.push({ orgId, error: err instanceof Conflict ? 'busy: another reconciliation is running' : `failed: ${err instanceof Error ? err.message : String(err)}` });
    }
  }

  const lines = ['org\trun\tbillable\tledger\tcorrections'];
  for (const row of rows) {
    lines.push(row.r
      ? `${row.orgId}\t${row.r.id}\t${row.r.billableCount}\t${row.r.ledgerCount}\t${row.r.corrections}`
      : `${row.orgId}\t-\t-\t-\t${row.error}`);
  }
  const corrections = rows.reduce((n, row) => n + (row.r?.corrections ?? 0), 0);
  const corrected = rows.filter((row) => (row.r?.corrections ?? 0) > 0).length;
  const failed = rows.filter((row) => row.error).length;
  deps.stdout.write(`${lines.join('\n')}\n`);
  deps.stdout.write(`reconciled ${rows.length - failed} of ${rows.length} orgs: ${corrections} corrections in ${corrected} orgs${failed ? `, ${failed} not reconciled` : ''}\n`);
  const violations = rows.reduce((n, row) => n + (row.r?.invariantViolations ?? 0), 0);
  if (violations) {
    deps.stderr.write(`INVARIANT BROKEN: ${violations} synced account(s) were in a non-billable policy (SPEC §3; moved to the default policy, see each run's report)\n`);
  }
  if (failed) return 3;
  return corrections > 0 ? 1 : 0;
}
