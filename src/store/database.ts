import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { Prisma, PrismaClient } from '../generated/prisma/client.js';
import type { SqlTx } from './transaction.js';
import type { Config } from '../config.js';

export type { PrismaClient };

/** A raw SQL session for the migrator and the schema check: multi-statement exec and parameterised queries. */
export type SqlSession = {
  exec(sql: string): Promise<void>;
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
};

export type Database = {
  kind: 'pglite' | 'postgres';
  prisma: PrismaClient;
  /**
   * One statement outside any transaction (autocommit), for hot paths: SCIM lookups, the
   * batched SCIM event INSERT.
   * PostgreSQL: a named prepared statement on the raw pool — parsed and planned once per
   * connection, no Prisma on the path (≈ 0.03 ms of CPU against ≈ 0.3 ms for a Prisma findMany,
   * docs/scim.md). PGlite: through Prisma, because its one connection is shared with Prisma's
   * transactions and a query sent beside them could run inside one.
   * Rows come back with the same JS types either way: Date, parsed JSON, number for int4.
   */
  sql<T>(name: string, text: string, values: readonly unknown[]): Promise<T[]>;
  /**
   * PostgreSQL only: fn in a transaction on a connection of the raw pool, given tagged raw SQL
   * only (store/transaction.ts inSqlTransaction). Absent on PGlite.
   */
  sqlTransaction?: <T>(fn: (tx: SqlTx) => Promise<T>) => Promise<T>;
  /** Runs fn on one dedicated session (session-level advisory locks need one connection). */
  withSession<T>(fn: (s: SqlSession) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  close(): Promise<void>;
};

export type DatabaseOptions = Config['database'] & {
  /** PostgreSQL only: use this schema instead of public (tests isolate themselves this way). */
  schema?: string;
};

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.kind === 'pglite' ? openPglite(options.dataDir) : openPostgres(options);
}

async function openPglite(dataDir: string): Promise<Database> {
  const inMemory = dataDir === 'memory';
  if (!inMemory) mkdirSync(dataDir, { recursive: true });
  // PostgreSQL's default 128 MB of shared buffers lives inside PGlite's wasm heap; an embedded,
  // single-connection database does well with a quarter of it (≈100 MB less RSS, see docs/operations.md).
  const options = { postgresqlconf: 'shared_buffers=32MB' };
  const client = inMemory ? new PGlite('memory://', options) : new PGlite(dataDir, options);
  await client.waitReady;
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(client) });
  const session: SqlSession = {
    exec: async (sql) => void (await client.exec(sql)),
    query: async <T>(sql: string, params?: unknown[]) => (await client.query<T>(sql, params as unknown[])).rows,
  };
  return {
    kind: 'pglite',
    prisma,
    sql: <T>(_name: string, text: string, values: readonly unknown[]) => prisma.$queryRawUnsafe<T[]>(text, ...values),
    withSession: (fn) => fn(session),
    ping: async () => void (await client.query('select 1')),
    close: once(async () => {
      await prisma.$disconnect();
      if (!client.closed) await client.close();
    }),
  };
}

async function openPostgres(options: { url: string; poolSize: number; schema?: string }): Promise<Database> {
  const schema = options.schema;
  if (schema && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`invalid schema name ${schema}`);
  const poolConfig: pg.PoolConfig = {
    connectionString: options.url,
    max: options.poolSize,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  };
  const pool = new pg.Pool(poolConfig);
  // An idle client losing its server connection must not crash the process.
  pool.on('error', () => {});
  const prisma = new PrismaClient({ adapter: new PrismaPg(poolConfig, schema ? { schema } : undefined) });
  return {
    kind: 'postgres',
    prisma,
    sql: async <T>(name: string, text: string, values: readonly unknown[]) =>
      (await pool.query({ name, text, values: values as unknown[] })).rows as T[],
    sqlTransaction: async <T>(fn: (tx: SqlTx) => Promise<T>) => {
      const client = await pool.connect();
      try {
        // One round trip (simple query protocol): the bounds Prisma's interactive transactions had
        // (30 s), so a stuck statement or a stalled caller cannot hold row locks indefinitely.
        await client.query(`BEGIN; SET LOCAL statement_timeout = '${TX_TIMEOUT_MS}ms'; SET LOCAL idle_in_transaction_session_timeout = '${TX_TIMEOUT_MS}ms'`);
        const result = await fn(sqlTx(client));
        await client.query('COMMIT');
        client.release();
        return result;
      } catch (err) {
        // Roll back; a connection that cannot is destroyed rather than reused.
        try {
          await client.query('ROLLBACK');
          client.release();
        } catch (rollbackErr) {
          client.release(rollbackErr as Error);
        }
        throw err;
      }
    },
    withSession: async (fn) => {
      const client = await pool.connect();
      try {
        const result = await fn({
          exec: async (sql) => void (await client.query(sql)),
          query: async <T>(sql: string, params?: unknown[]) => (await client.query(sql, params)).rows as T[],
        });
        client.release();
        return result;
      } catch (err) {
        // Destroy rather than reuse: the session may still hold an advisory lock or an open transaction.
        client.release(err as Error);
        throw err;
      }
    },
    ping: async () => void (await pool.query('select 1')),
    close: once(async () => {
      await prisma.$disconnect();
      await pool.end();
    }),
  };
}

/**
 * Prisma's tagged raw SQL on a pg connection: the template (with its nested Prisma.sql, join and
 * raw fragments) becomes Prisma.Sql, whose `text` numbers the parameters $1, $2… as pg expects.
 * Rows come back as pg parses them — the same JS types as Prisma's for what the SCIM write path
 * reads (uuid and enums as strings, Date, parsed JSON, int4 as number; it casts counts to int).
 */
function sqlTx(client: pg.PoolClient): SqlTx {
  const build = (first: TemplateStringsArray | Prisma.Sql, values: unknown[]): Prisma.Sql =>
    first instanceof Prisma.Sql ? first : Prisma.sql(first, ...(values as Prisma.Sql[]));
  return {
    $queryRaw: (async (first: TemplateStringsArray | Prisma.Sql, ...values: unknown[]) => {
      const q = build(first, values);
      return (await client.query(q.text, q.values as unknown[])).rows;
    }) as unknown as SqlTx['$queryRaw'],
    $executeRaw: (async (first: TemplateStringsArray | Prisma.Sql, ...values: unknown[]) => {
      const q = build(first, values);
      return (await client.query(q.text, q.values as unknown[])).rowCount ?? 0;
    }) as unknown as SqlTx['$executeRaw'],
  };
}

/** Per statement, and idle within a transaction, in inSqlTransaction's transactions. */
const TX_TIMEOUT_MS = 30_000;

/** close() may be called by shutdown and by an owner alike; the second call waits for the first. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | null = null;
  return () => (done ??= fn());
}
