import type { Database } from '../store/database.js';
import { inTransaction } from '../store/transaction.js';
import { ledgerStore, type BatchResult } from './ledger-store.js';

export const DEFAULT_DELIVERY_BATCH = 1000;

export type DeliverOptions = { batchSize?: number; now?: () => Date };

/**
 * Moves one batch of billable deltas from the outbox (BillableDelta, written in the same
 * transaction as each change) into the billing ledger, and queues a webhook delivery for each
 * delta of an org that has a billing webhook. One transaction, two statements:
 *
 *   1. take the ledger lock (pg_advisory_xact_lock, held until this transaction ends);
 *   2. claim unapplied outbox rows in seq order (FOR UPDATE SKIP LOCKED), append them to the
 *      ledger with streamSeq = max(streamSeq) + row_number() in seq order (ON CONFLICT
 *      ("deltaId") DO NOTHING: a delta is in the ledger at most once, however often it is
 *      delivered), set appliedAt, and insert the WebhookDelivery rows (ON CONFLICT DO NOTHING).
 *
 * Why the stream (LedgerEntry by streamSeq) is in commit order, so that a reader following
 * `GET billing/deltas?after=` never misses a delta:
 *
 *   - An outbox row becomes visible to the worker only once the transaction that wrote it has
 *     committed. A change that commits late (after rows with a higher seq were already applied)
 *     is simply claimed by a later batch and gets a later stream position; its low seq never
 *     lands behind a position a reader has already passed.
 *   - streamSeq is assigned while this transaction holds the ledger lock, and the lock is
 *     released only after the transaction's commit has become visible (PostgreSQL releases
 *     locks after marking the transaction committed). The next worker acquires the lock after
 *     that, and its statement's snapshot (READ COMMITTED: taken after the lock was granted)
 *     sees this batch's max(streamSeq) and numbers after it (this needs READ COMMITTED, the
 *     default: under REPEATABLE READ the snapshot would be taken by the lock statement itself). So positions are published in
 *     increasing order: any snapshot that sees position p also sees every position below p,
 *     and a reader never sees a lower position appear later.
 *   - The lock is taken BEFORE the claim, so two workers never claim overlapping seq ranges
 *     concurrently: batches are numbered in the order they were claimed, and within one batch
 *     in seq order. For one account (whose changes serialise on its row, so their outbox rows
 *     commit in seq order) the stream therefore keeps the outbox order and its deltas keep
 *     alternating added/removed. (Claiming first and locking second would let a worker that
 *     claimed seq 11–15 number them before one that claimed 5–10.)
 *
 * SKIP LOCKED still matters: a row locked by anything else (a crashed-but-not-yet-aborted
 * session, an operator's manual fix) is left for a later batch instead of blocking the worker.
 * Every worker of every replica may call this concurrently; they take turns on the lock.
 */
export async function deliverPending(db: Database, opts: DeliverOptions = {}): Promise<{ applied: number; webhooksQueued: number }> {
  const r = await deliverBatch(db, opts);
  return { applied: r.applied, webhooksQueued: r.webhooksQueued };
}

/** deliverPending, also telling how many outbox rows the batch claimed (0: nothing was visible to claim). */
export async function deliverBatch(db: Database, opts: DeliverOptions = {}): Promise<BatchResult> {
  const batchSize = opts.batchSize ?? DEFAULT_DELIVERY_BATCH;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  const now = (opts.now ?? (() => new Date()))();
  return inTransaction(db, async (tx) => {
    await ledgerStore.lock(tx);
    return ledgerStore.applyBatch(tx, batchSize, now);
  });
}

/**
 * Runs batches until one claims nothing (or `maxBatches` ran). For start-up, tests, benchmarks
 * and the CLI; a scheduled job may call deliverPending once per tick instead.
 */
export async function drainPending(
  db: Database, opts: DeliverOptions & { maxBatches?: number } = {},
): Promise<{ applied: number; webhooksQueued: number; batches: number }> {
  const total = { applied: 0, webhooksQueued: 0, batches: 0 };
  const max = opts.maxBatches ?? Number.POSITIVE_INFINITY;
  while (total.batches < max) {
    const r = await deliverBatch(db, opts);
    if (r.claimed === 0) break;
    total.batches++;
    total.applied += r.applied;
    total.webhooksQueued += r.webhooksQueued;
  }
  return total;
}
