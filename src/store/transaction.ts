import { Prisma } from '../generated/prisma/client.js';
import type { Database } from './database.js';
import { Conflict, PolicyViolation } from '../domain/errors.js';

export type Tx = Prisma.TransactionClient;

/**
 * The part of a transaction the SCIM write path uses: tagged raw SQL only. Prisma's transaction
 * client is one (admin paths pass theirs); so is the raw `pg` transaction of inSqlTransaction.
 * Store functions typed with it cannot reach for Prisma's model API by accident.
 */
export type SqlTx = Pick<Tx, '$queryRaw' | '$executeRaw'>;

/** The writes sent without waiting for their answers, per raw transaction (see deferWrite). */
const deferredWrites = new WeakMap<SqlTx, Promise<unknown>[]>();

/** Database.sqlTransaction registers its transaction's list of deferred writes here. */
export function trackDeferredWrites(tx: SqlTx, list: Promise<unknown>[]): SqlTx {
  deferredWrites.set(tx, list);
  return tx;
}

/**
 * A write whose answer the caller does not need (an audit row, a status UPDATE, a lock taken for
 * the statements that follow). In a raw pipelined transaction (PostgreSQL) it is on the wire
 * already and is not waited for: the next statement, or the COMMIT, goes out right behind it, and
 * the transaction fails with its error if it fails (PostgreSQL runs the statements in order, and
 * nothing after a failed one commits). Anywhere else (Prisma's transaction, PGlite) it is awaited.
 * `write` must be the already started statement, e.g. `deferWrite(tx, tx.$executeRaw\`…\`)`.
 */
export async function deferWrite(tx: SqlTx, write: PromiseLike<unknown>): Promise<void> {
  const list = deferredWrites.get(tx);
  if (!list) {
    await write;
    return;
  }
  const p = Promise.resolve(write);
  p.catch(() => {}); // reported by the transaction, not as an unhandled rejection
  list.push(p);
}

/**
 * A statement whose answer the caller needs later in the transaction, not before its next
 * statements (the SCIM user's UPDATE … RETURNING, sent with the reads that follow it). In a raw
 * pipelined transaction it is on the wire already and `answer` settles when PostgreSQL answers;
 * its failure is the transaction's, as with deferWrite. Anywhere else it is awaited here, so the
 * statements keep their order on Prisma's lazily sent queries (PGlite).
 */
export async function sendAhead<T>(tx: SqlTx, statement: PromiseLike<T>): Promise<{ answer: Promise<T> }> {
  const list = deferredWrites.get(tx);
  if (!list) return { answer: Promise.resolve(await statement) };
  const p = Promise.resolve(statement);
  p.catch(() => {}); // reported by the transaction if the caller never waits for it
  list.push(p);
  return { answer: p };
}

/**
 * inTransaction for a function that needs only SqlTx. On PostgreSQL it runs on a connection of
 * the raw `pg` pool (BEGIN … COMMIT), without Prisma: a SCIM write is 6–15 statements, and
 * Prisma's client costs ≈ 0.15–0.3 ms of CPU per statement over the driver's (docs/scim.md).
 * On PGlite it is inTransaction (one connection, shared with Prisma). Same retries.
 */
export async function inSqlTransaction<T>(db: Database, fn: (tx: SqlTx) => Promise<T>): Promise<T> {
  if (!db.sqlTransaction) return inTransaction(db, fn);
  const run = db.sqlTransaction.bind(db);
  return retrying(() => run(fn));
}

/**
 * A guarded write found its row changed since the transaction read it: another transaction
 * committed a write of the same row in between (READ COMMITTED; e.g. `UPDATE … WHERE version = $read`
 * matched nothing). Not the client's failed precondition — that is PreconditionFailed, for an
 * If-Match that does not match — so the transaction is run again from the start, reading the row
 * anew. Only a conflict that outlasts every retry reaches the client, as a 409 to retry.
 */
export class WriteConflict extends Error {
  constructor(readonly what: string) {
    super(`${what} changed while this request was applied`);
    this.name = 'WriteConflict';
  }
}

/** Database collisions (deadlock, serialization): 6 attempts. Write conflicts: more, with shorter waits. */
const DB_ATTEMPTS = 6;
const CONFLICT_ATTEMPTS = 25;

async function retrying<T>(attemptOnce: () => Promise<T>): Promise<T> {
  let collisions = 0;
  let conflicts = 0;
  for (;;) {
    try {
      return await attemptOnce();
    } catch (err) {
      if (err instanceof WriteConflict) {
        if (++conflicts >= CONFLICT_ATTEMPTS) {
          throw new Conflict('concurrent-writes', `${err.what} is being changed by many requests at once; retry`);
        }
        // The winner has committed already: a short, jittered wait spreads the losers out.
        await new Promise((r) => setTimeout(r, Math.random() * 4 * Math.min(conflicts, 10)));
        continue;
      }
      if (++collisions >= DB_ATTEMPTS || !isRetryable(err)) throw mapBackstop(err);
      await new Promise((r) => setTimeout(r, Math.random() * 25 * 2 ** collisions));
    }
  }
}

/**
 * Runs fn in one database transaction. Services hold the transaction; everything fn writes
 * (the change, its audit row, its billable deltas) commits or rolls back together.
 */
export async function inTransaction<T>(db: Database, fn: (tx: Tx) => Promise<T>): Promise<T> {
  // PostgreSQL may abort one of two transactions that lock rows in opposite orders (deadlock,
  // 40P01) or conflict on serialization (40001); the transaction is retried from the start,
  // so the client sees the outcome, not the collision. So is a WriteConflict.
  return retrying(() => db.prisma.$transaction(fn, { maxWait: 10_000, timeout: 30_000 }));
}

/**
 * The schema's guarantee of SPEC §3 "a synced account is never in a non-billable policy"
 * (migration 20261207000000_synced_never_non_billable): the CHECK on the account's copy of its
 * policy's flag, and the composite foreign key that keeps the copy true. A transaction that trips
 * one lost a race the services' checks could not see (they read before the other committed): it is
 * retried like a deadlock, and the retry reads the committed state — a SCIM claim then moves the
 * account out of the non-billable policy (the IdP wins), an admin change meets the service's own
 * check and its 409. Should the retries run out, the answer is still that rule's 409, never a 500.
 */
const SYNCED_RULE_BACKSTOPS = ['Account_synced_never_non_billable_check', 'Account_policyId_policyNonBillable_fkey'];

export function isSyncedRuleBackstop(err: unknown): boolean {
  const e = err as { code?: unknown; constraint?: unknown; message?: unknown; meta?: unknown } | null;
  const text = `${String(e?.message ?? '')} ${JSON.stringify(e?.meta ?? {})} ${String(e?.constraint ?? '')}`;
  return SYNCED_RULE_BACKSTOPS.some((c) => text.includes(c));
}

function mapBackstop(err: unknown): unknown {
  if (!isSyncedRuleBackstop(err)) return err;
  return new PolicyViolation('non-billable-no-synced-accounts', 'A non-billable policy cannot contain accounts synced from an identity provider; a concurrent change made this one break that rule, retry it.');
}

function isRetryable(err: unknown): boolean {
  if (isSyncedRuleBackstop(err)) return true;
  if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2034') return true;
  const code = (err as { code?: unknown } | null)?.code;
  if (code === '40P01' || code === '40001') return true; // from pg directly (inSqlTransaction)
  const text = err instanceof Error ? `${err.message} ${JSON.stringify((err as { meta?: unknown }).meta ?? {})}` : '';
  return /40P01|40001|deadlock detected|could not serialize access/.test(text);
}

/** True when err is a unique-constraint violation (optionally on an index whose name contains `index`). */
export function isUniqueViolation(err: unknown, index?: string): boolean {
  if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002') {
    return !index || JSON.stringify(err.meta ?? {}).includes(index) || err.message.includes(index);
  }
  // 23505 from a raw statement: through Prisma (P2010, the code in meta) or from pg itself.
  const pgError = err as { code?: unknown; constraint?: unknown; message?: unknown; meta?: unknown } | null;
  const text = `${String(pgError?.message ?? '')} ${JSON.stringify(pgError?.meta ?? {})} ${String(pgError?.constraint ?? '')}`;
  const unique = pgError?.code === '23505' || (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2010' && text.includes('23505'));
  return unique && (!index || text.includes(index));
}

/** True when err is a CHECK constraint violation named `constraint` (PostgreSQL 23514). */
export function isCheckViolation(err: unknown, constraint: string): boolean {
  const text = err instanceof Error ? `${err.message} ${JSON.stringify((err as { meta?: unknown }).meta ?? {})}` : '';
  return text.includes(constraint);
}

/**
 * Step 2 of the lock order (docs/decisions.md): the policy row, after the org's. `update` for a
 * write of the policy itself (flag, deletion), `key share` for placing accounts in it — the lock
 * its foreign key check takes anyway, taken explicitly before the accounts' so the order holds.
 */
export async function lockPolicy(tx: Tx, orgId: string, policyId: string, mode: 'update' | 'key share'): Promise<boolean> {
  const rows = mode === 'update'
    ? await tx.$queryRaw<{ id: string }[]>`SELECT "id"::text AS id FROM "Policy" WHERE "id" = ${policyId}::uuid AND "orgId" = ${orgId}::uuid FOR UPDATE`
    : await tx.$queryRaw<{ id: string }[]>`SELECT "id"::text AS id FROM "Policy" WHERE "id" = ${policyId}::uuid AND "orgId" = ${orgId}::uuid FOR KEY SHARE`;
  return rows.length === 1;
}

/**
 * Serialises every rule-checking write of one org (policy changes, memberships, domain
 * verification) on the org's row: check-then-write under this lock cannot race.
 */
export async function lockOrg(tx: SqlTx, orgId: string): Promise<boolean> {
  const rows = await tx.$queryRaw<{ id: string }[]>`SELECT "id"::text AS id FROM "Org" WHERE "id" = ${orgId}::uuid FOR UPDATE`;
  return rows.length === 1;
}
