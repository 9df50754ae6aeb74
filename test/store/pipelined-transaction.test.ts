// inSqlTransaction on PostgreSQL pipelines: BEGIN leaves with the first statement, deferred writes
// (deferWrite) with the COMMIT. What must still hold: a deferred write that fails rolls back
// everything before and after it, and the caller sees that write's own error — not the
// "current transaction is aborted" of the statements behind it, nor a silent COMMIT.
// On PGlite (Prisma's transaction) the same calls run one by one; the outcomes are the same.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, onPostgres, type TestDatabase } from '../support/database.js';
import { migrate } from '../../src/store/migrator.js';
import { deferWrite, inSqlTransaction, isUniqueViolation, type SqlTx } from '../../src/store/transaction.js';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
  await migrate(t.db);
  await t.db.prisma.$executeRawUnsafe('CREATE TABLE "PipelineProbe" ("k" text PRIMARY KEY, "v" int NOT NULL)');
});
afterAll(async () => t?.drop());

const put = (tx: SqlTx, k: string, v: number) => tx.$executeRaw`INSERT INTO "PipelineProbe" ("k", "v") VALUES (${k}, ${v})`;
const keys = async () => (await t.db.prisma.$queryRawUnsafe<{ k: string }[]>('SELECT "k" FROM "PipelineProbe" ORDER BY "k"')).map((r) => r.k);

describe('pipelined raw transactions', () => {
  it('deferred writes commit with the transaction; statements after them see them', async () => {
    const seen = await inSqlTransaction(t.db, async (tx) => {
      await deferWrite(tx, put(tx, 'a1', 1));
      await deferWrite(tx, put(tx, 'a2', 2));
      const [row] = await tx.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM "PipelineProbe" WHERE "k" LIKE 'a%'`;
      await deferWrite(tx, put(tx, 'a3', 3));
      return row!.n;
    });
    expect(seen).toBe(2);
    expect(await keys()).toEqual(['a1', 'a2', 'a3']);
  });

  it('a deferred write that fails last (with the COMMIT): nothing commits, its unique violation is thrown', async () => {
    await t.db.prisma.$executeRawUnsafe(`INSERT INTO "PipelineProbe" ("k", "v") VALUES ('dup', 0)`);
    const err = await inSqlTransaction(t.db, async (tx) => {
      await put(tx, 'b1', 1);
      await deferWrite(tx, put(tx, 'dup', 1));
    }).catch((e: unknown) => e);
    expect(isUniqueViolation(err)).toBe(true);
    expect(await keys()).not.toContain('b1');
  });

  it('a deferred write that fails before an awaited statement: its error, not "current transaction is aborted"', async () => {
    const err = await inSqlTransaction(t.db, async (tx) => {
      await deferWrite(tx, put(tx, 'c1', 1));
      await deferWrite(tx, put(tx, 'dup', 1));
      await tx.$queryRaw`SELECT 1`;
      await put(tx, 'c2', 2);
    }).catch((e: unknown) => e);
    expect(isUniqueViolation(err)).toBe(true);
    expect(String((err as Error).message)).not.toMatch(/current transaction is aborted/);
    expect((await keys()).filter((k) => k.startsWith('c'))).toEqual([]);
  });

  it('a throw in the function after deferred writes rolls them back and is what the caller sees', async () => {
    const err = await inSqlTransaction(t.db, async (tx) => {
      await deferWrite(tx, put(tx, 'd1', 1));
      throw new Error('changed my mind');
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('changed my mind');
    expect(await keys()).not.toContain('d1');
  });

  it.runIf(onPostgres)('the connection is clean for the next transaction (no transaction left open, no statement left queued)', async () => {
    for (let i = 0; i < 12; i++) {
      await inSqlTransaction(t.db, async (tx) => {
        await deferWrite(tx, put(tx, 'dup', 1));
      }).catch(() => undefined);
    }
    const states = await inSqlTransaction(t.db, async (tx) => tx.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction (aborted)'`);
    expect(states[0]!.n).toBe(0);
    expect(await inSqlTransaction(t.db, async (tx) => {
      await deferWrite(tx, put(tx, 'e1', 1));
      return 'ok';
    })).toBe('ok');
    expect(await keys()).toContain('e1');
  });

  it.runIf(onPostgres)('a statement sent after the transaction function returned is refused, not run outside the transaction or in the next one', async () => {
    let late: Promise<unknown> | undefined;
    await inSqlTransaction(t.db, async (tx) => {
      late = (async () => {
        await new Promise((r) => setTimeout(r, 30));
        return put(tx, 'late', 1);
      })();
      late.catch(() => {});
    });
    await expect(late).rejects.toThrow(/after its transaction ended/);
    expect(await keys()).not.toContain('late');
  });

  it.runIf(onPostgres)('BEGIN with the first statement, the deferred writes with COMMIT: five statements in two socket writes', async () => {
    const sent: string[] = [];
    let flushes = 0;
    const probed = new WeakSet<object>();
    const orig = pg.Client.prototype.query;
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const q = args[0] as string | { text?: string };
      sent.push((typeof q === 'string' ? q : (q?.text ?? '')).trim().split(/[\s;]+/)[0]!.toUpperCase());
      // Every system call of the socket goes through _write (one chunk) or _writev (a corked batch).
      const socket = (this as unknown as { connection: { stream: Record<'_write' | '_writev', (...a: unknown[]) => unknown> } }).connection.stream;
      if (!probed.has(socket)) {
        probed.add(socket);
        for (const m of ['_write', '_writev'] as const) {
          const f = socket[m];
          socket[m] = function (this: unknown, ...a: unknown[]) { flushes++; return f.apply(this, a); };
        }
      }
      return (orig as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof orig;
    try {
      await inSqlTransaction(t.db, async (tx) => {
        await tx.$queryRaw`SELECT 1`;
        await deferWrite(tx, put(tx, 'f1', 1));
        await deferWrite(tx, put(tx, 'f2', 2));
      });
    } finally {
      pg.Client.prototype.query = orig;
    }
    expect(sent).toEqual(['BEGIN', 'SELECT', 'INSERT', 'INSERT', 'COMMIT']);
    expect(flushes).toBe(2);
    expect(await keys()).toEqual(expect.arrayContaining(['f1', 'f2']));
  });

  it.runIf(onPostgres)('sqlAlone: one statement in a transaction of its own — committed with its rows, or its own error and nothing written', async () => {
    const insert = 'INSERT INTO "PipelineProbe" ("k", "v") SELECT k, 1 FROM unnest($1::text[]) AS k RETURNING "k"';
    const rows = await t.db.sqlAlone!<{ k: string }>('probe-insert', insert, [['g1', 'g2']]);
    expect(rows.map((r) => r.k)).toEqual(['g1', 'g2']);
    const err = await t.db.sqlAlone!('probe-insert', insert, [['g3', 'dup']]).catch((e: unknown) => e);
    expect(isUniqueViolation(err)).toBe(true);
    expect((await keys()).filter((k) => k.startsWith('g'))).toEqual(['g1', 'g2']);
    // The connections are clean: the pool's next transactions see no aborted or open transaction.
    for (let i = 0; i < 12; i++) await t.db.sqlAlone!('probe-insert', insert, [['dup']]).catch(() => undefined);
    expect(await t.db.sqlAlone!<{ k: string }>('probe-insert', insert, [['g4']])).toEqual([{ k: 'g4' }]);
  });
});
