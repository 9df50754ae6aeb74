import type { Database } from '../../src/store/database.js';

/**
 * What a failed "no drift" assertion prints: the reconciliation run's report, every earlier run
 * that corrected something (the service's own nightly runs), and for each account it corrected,
 * the deltas, ledger entries and audit rows in order — enough to tell a lost delta from a race.
 */
export async function driftReport(db: Database, orgId: string, runId: string, seed: number): Promise<string> {
  const run = await db.prisma.reconciliationRun.findUnique({ where: { id: runId } });
  const report = (run?.report ?? {}) as { added?: string[]; removed?: string[]; flagIds?: string[] };
  const ids = [...new Set([...(report.added ?? []), ...(report.removed ?? []), ...(report.flagIds ?? [])])];
  const earlier = await db.prisma.reconciliationRun.findMany({ where: { orgId, corrections: { gt: 0 }, NOT: { id: runId } }, orderBy: { startedAt: 'asc' } });
  const lines = [`seed ${seed}, run ${runId}`, `report ${JSON.stringify(run?.report)}`, `earlier correcting runs ${JSON.stringify(earlier.map((r) => ({ trigger: r.trigger, at: r.startedAt, report: r.report })))}`];
  for (const id of ids) {
    const account = await db.prisma.account.findUnique({ where: { id } });
    const deltas = await db.prisma.billableDelta.findMany({ where: { accountId: id }, orderBy: { seq: 'asc' } });
    const ledger = await db.prisma.ledgerEntry.findMany({ where: { accountId: id }, orderBy: { streamSeq: 'asc' } });
    const audits = await db.prisma.auditEvent.findMany({ where: { orgId, targetId: id }, orderBy: { createdAt: 'asc' } });
    lines.push(`account ${JSON.stringify(account)}`);
    for (const d of deltas) lines.push(`  delta seq=${d.seq} ${d.kind} ${d.cause} [${d.reasons.join(',')}] at ${d.occurredAt.toISOString()} applied ${d.appliedAt?.toISOString()}`);
    for (const l of ledger) lines.push(`  ledger stream=${l.streamSeq} ${l.kind} ${l.cause} delta ${l.deltaId}`);
    for (const a of audits) lines.push(`  audit ${a.createdAt.toISOString()} ${a.actor} ${a.action} ${JSON.stringify(a.before)} -> ${JSON.stringify(a.after)}`);
  }
  return lines.join('\n');
}
