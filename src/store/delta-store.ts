import type { SqlTx, Tx } from './transaction.js';

export type NewDelta = { accountId: string; kind: 'added' | 'removed'; reasons: string[]; cause: string };

export const deltaStore = {
  /**
   * One INSERT whatever the number of deltas (an unsubscribe of a 100k-account org writes 100k):
   * the rows travel as one JSON parameter, and seq follows their order in `deltas`.
   */
  async append(tx: SqlTx, orgId: string, deltas: NewDelta[]): Promise<void> {
    if (!deltas.length) return;
    const rows = JSON.stringify(deltas.map((d) => ({ a: d.accountId, k: d.kind, r: d.reasons, c: d.cause })));
    await tx.$executeRaw`
      INSERT INTO "BillableDelta" ("id", "orgId", "accountId", "kind", "reasons", "cause")
      SELECT gen_random_uuid(), ${orgId}::uuid, (t.d->>'a')::uuid, (t.d->>'k')::"DeltaKind",
             ARRAY(SELECT jsonb_array_elements_text(t.d->'r')), t.d->>'c'
      FROM jsonb_array_elements(${rows}::jsonb) WITH ORDINALITY AS t(d, n)
      ORDER BY t.n`;
  },
  async listForAccount(tx: Tx, orgId: string, accountId: string) {
    return tx.billableDelta.findMany({ where: { orgId, accountId }, orderBy: { seq: 'asc' } });
  },
};
