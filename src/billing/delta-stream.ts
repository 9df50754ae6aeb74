import { InvalidInput } from '../domain/errors.js';
import type { Tx } from '../store/transaction.js';
import { ledgerStore, type LedgerDelta } from './ledger-store.js';

/**
 * The pull side of the ledger: `GET billing/deltas?after=<cursor>`.
 *
 * The cursor is a stream position (LedgerEntry.streamSeq) as a decimal string. Positions are
 * assigned in commit order under the ledger lock (see delivery-worker.ts), so "strictly after
 * the cursor" never skips a delta that committed late: whatever a reader sees later has a
 * higher position than anything it has already seen, and a reader that follows `next` while
 * writes happen ends up with exactly what a later full read returns, in the same order.
 * Positions are global (shared by all orgs), so an org's stream has gaps; clients must treat
 * the cursor as opaque.
 */
export type DeltaView = { id: string; accountId: string; kind: 'added' | 'removed'; reasons: string[]; cause: string; occurredAt: Date };
export type DeltaPage = { items: DeltaView[]; next: string | null };

export const DEFAULT_STREAM_LIMIT = 100;
export const MAX_STREAM_LIMIT = 1000;

export function encodeStreamCursor(streamSeq: bigint): string {
  return streamSeq.toString();
}

export function decodeStreamCursor(cursor: string | undefined): bigint {
  if (cursor === undefined || cursor === '') return 0n;
  if (!/^(0|[1-9]\d{0,18})$/.test(cursor) || BigInt(cursor) > 9223372036854775807n) {
    throw new InvalidInput('invalid cursor', [{ path: 'after', message: 'not a cursor this API returned; start again without it' }]);
  }
  return BigInt(cursor);
}

export const toDeltaView = (d: LedgerDelta): DeltaView => ({
  id: d.id, accountId: d.accountId, kind: d.kind, reasons: d.reasons, cause: d.cause, occurredAt: d.occurredAt,
});

/**
 * One page of an org's deltas strictly after `after`. `next` is the position of the last
 * delta returned — pass it as `after` to continue, now or later — and null when the page is
 * empty (the reader is at the end for now: keep the cursor it has and ask again later).
 */
export async function readDeltaStream(tx: Tx, orgId: string, page: { after?: string | undefined; limit?: number | undefined }): Promise<DeltaPage> {
  const after = decodeStreamCursor(page.after);
  const limit = Math.min(Math.max(1, page.limit ?? DEFAULT_STREAM_LIMIT), MAX_STREAM_LIMIT);
  const rows = await ledgerStore.streamAfter(tx, orgId, after, limit);
  const last = rows.at(-1);
  return { items: rows.map(toDeltaView), next: last ? encodeStreamCursor(last.streamSeq) : null };
}
