import { Prisma } from '../generated/prisma/client.js';
import type { Database } from './database.js';

export type Tx = Prisma.TransactionClient;

/**
 * Runs fn in one database transaction. Services hold the transaction; everything fn writes
 * (the change, its audit row, its billable deltas) commits or rolls back together.
 */
export async function inTransaction<T>(db: Database, fn: (tx: Tx) => Promise<T>): Promise<T> {
  // PostgreSQL may abort one of two transactions that lock rows in opposite orders (deadlock,
  // 40P01) or conflict on serialization (40001); the transaction is retried from the start,
  // so the client sees the outcome, not the collision.
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.prisma.$transaction(fn, { maxWait: 10_000, timeout: 30_000 });
    } catch (err) {
      if (attempt >= 6 || !isRetryable(err)) throw err;
      await new Promise((r) => setTimeout(r, Math.random() * 25 * 2 ** attempt));
    }
  }
}

function isRetryable(err: unknown): boolean {
  if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2034') return true;
  const text = err instanceof Error ? `${err.message} ${JSON.stringify((err as { meta?: unknown }).meta ?? {})}` : '';
  return /40P01|40001|deadlock detected|could not serialize access/.test(text);
}

/** True when err is a unique-constraint violation (optionally on an index whose name contains `index`). */
export function isUniqueViolation(err: unknown, index?: string): boolean {
  if (!(err instanceof Prisma.PrismaClientKnownRequestError) || err.code !== 'P2002') return false;
  if (!index) return true;
  return JSON.stringify(err.meta ?? {}).includes(index) || err.message.includes(index);
}

/** True when err is a CHECK constraint violation named `constraint` (PostgreSQL 23514). */
export function isCheckViolation(err: unknown, constraint: string): boolean {
  const text = err instanceof Error ? `${err.message} ${JSON.stringify((err as { meta?: unknown }).meta ?? {})}` : '';
  return text.includes(constraint);
}

/**
 * Serialises every rule-checking write of one org (policy changes, memberships, domain
 * verification) on the org's row: check-then-write under this lock cannot race.
 */
export async function lockOrg(tx: Tx, orgId: string): Promise<boolean> {
  const rows = await tx.$queryRaw<{ id: string }[]>`SELECT "id"::text AS id FROM "Org" WHERE "id" = ${orgId}::uuid FOR UPDATE`;
  return rows.length === 1;
}
