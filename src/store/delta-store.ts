import type { Tx } from './transaction.js';

export type NewDelta = { accountId: string; kind: 'added' | 'removed'; reasons: string[]; cause: string };

export const deltaStore = {
  async append(tx: Tx, orgId: string, deltas: NewDelta[]): Promise<void> {
    if (deltas.length) await tx.billableDelta.createMany({ data: deltas.map((d) => ({ ...d, orgId })) });
  },
  async listForAccount(tx: Tx, orgId: string, accountId: string) {
    return tx.billableDelta.findMany({ where: { orgId, accountId }, orderBy: { seq: 'asc' } });
  },
};
