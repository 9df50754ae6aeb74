import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { Prisma, PrismaClient } from '../generated/prisma/client.js';
import { trackDeferredWrites, type SqlTx } from './transaction.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { lockDataDir, restrictToOwner } from './data-dir-lock.js';

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
  /**
   * PostgreSQL only: one named statement as a transaction of its own, bounded like
   * sqlTransaction's, its BEGIN and COMMIT written with it: one round trip. For a write whose
   * every step fits in one statement (data-modifying CTEs). Absent on PGlite.
   */
  sqlAlone?: <T>(name: string, text: string, values: readonly unknown[]) => Promise<T[]>;
  /** Runs fn on one dedicated session (session-level advisory locks need one connection). */
  withSession<T>(fn: (s: SqlSession) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  close(): Promise<void>;
};

export type DatabaseOptions = Config['database'] & {
  /** PostgreSQL only: use this schema instead of public (tests isolate themselves this way). */
  schema?: string;
};

/**
 * On PGlite on disk, the data directory is locked for this process until close() (or exit):
 * a directory another live process holds throws DataDirLocked (store/data-dir-lock.ts).
 */
export async function openDatabase(options: DatabaseOptions, opts: { logger?: Logger } = {}): Promise<Database> {
  return options.kind === 'pglite' ? openPglite(options.dataDir, opts.logger) : openPostgres(options);
}

async function openPglite(dataDir: string, logger?: Logger): Promise<Database> {
  const inMemory = dataDir === 'memory';
  const release = inMemory ? () => {} : await claimDataDir(dataDir, logger);
  // PostgreSQL's default 128 MB of shared buffers lives inside PGlite's wasm heap; an embedded,
  // single-connection database does well with a quarter of it (≈100 MB less RSS, see docs/operations.md).
  const options = { postgresqlconf: 'shared_buffers=32MB' };
  // Imported here, not at the top: PGlite's module costs ≈ 35 MB of RSS, which a service on
  // PostgreSQL has no use for (docs/operations.md, Memory).
  let client: import('@electric-sql/pglite').PGlite;
  let PrismaPGlite: typeof import('pglite-prisma-adapter').PrismaPGlite;
  try {
    const [pglite, adapter] = await Promise.all([import('@electric-sql/pglite'), import('pglite-prisma-adapter')]);
    PrismaPGlite = adapter.PrismaPGlite;
    client = inMemory ? new pglite.PGlite('memory://', options) : new pglite.PGlite(dataDir, options);
    await client.waitReady;
  } catch (err) {
    release();
    throw err;
  }
  // PGlite unpacks a fresh directory's files 0666 and rewrites its relcache init files 0644 at
  // every start, whatever the umask: taken back to the service user's only, quietly. Files
  // PostgreSQL creates later (tables, WAL) follow the umask.
  if (!inMemory) reportPermissions(dataDir, restrictToOwner(dataDir), logger, 'debug');
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
      try {
        await prisma.$disconnect();
        if (!client.closed) await client.close();
      } finally {
        release();
      }
    }),
  };
}

/**
 * Before PGlite opens DATA_DIR: creates it (0700), sets the process umask so that what PGlite
 * and this process create there is the service user's only, and takes the directory's lock.
 * Returns the lock's release.
 */
async function claimDataDir(dataDir: string, logger?: Logger): Promise<() => void> {
  process.umask(process.umask(0o077) | 0o077);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const mode = statSync(dataDir).mode;
  if ((mode & 0o077) !== 0) {
    try {
      chmodSync(dataDir, mode & 0o7700);
    } catch {
      /* the walk below reports it */
    }
  }
  const lock = await lockDataDir(dataDir);
  if (lock.tookOver) {
    const h = lock.tookOver;
    logger?.warn({ dataDir, lockFile: lock.file, stalePid: h.pid, staleHostname: h.hostname, staleStartedAt: h.startedAt }, 'took over a stale DATA_DIR lock (its process is gone)');
  }
  // An installation from before this rule has group/other permissions on its files: repaired.
  reportPermissions(dataDir, restrictToOwner(dataDir), logger, 'info');
  return () => lock.release();
}

function reportPermissions(dataDir: string, r: { changed: number; failed: string[] }, logger: Logger | undefined, level: 'info' | 'debug'): void {
  if (r.changed > 0) logger?.[level]({ dataDir, changed: r.changed }, 'DATA_DIR permissions restricted to the service user');
  if (r.failed.length > 0) logger?.warn({ dataDir, failed: r.failed.slice(0, 10), count: r.failed.length }, 'could not restrict the permissions of some DATA_DIR entries');
}

async function openPostgres(options: { url: string; poolSize: number; schema?: string }): Promise<Database> {
  const schema = options.schema;
  if (schema && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`invalid schema name ${schema}`);
  const poolConfig: pg.PoolConfig = {
    connectionString: options.url,
    max: options.poolSize,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  };
  // Pipeline mode for the raw pool only (Prisma's adapter keeps its own pool, unpipelined):
  // sqlTransaction writes BEGIN and COMMIT together with the statements around them.
  const pool = new pg.Pool({ ...poolConfig, pipeline: true } as pg.PoolConfig);
  // An idle client losing its server connection must not crash the process.
  pool.on('error', () => {});
  const prisma = new PrismaClient({ adapter: new PrismaPg(poolConfig, schema ? { schema } : undefined) });
  return {
    kind: 'postgres',
    prisma,
    sql: async <T>(name: string, text: string, values: readonly unknown[]) =>
      (await pool.query({ name, text, values: values as unknown[] })).rows as T[],
    sqlAlone: async <T>(name: string, text: string, values: readonly unknown[]) => {
      const client = await pool.connect();
      const c = corked(client);
      const sent = [c.query(BEGIN), c.query({ name, text, values: values as unknown[] }), c.query('COMMIT')] as const;
      const [begun, statement, commit] = await Promise.allSettled(sent);
      if (begun.status === 'fulfilled' && statement.status === 'fulfilled' && commit.status === 'fulfilled' && commit.value.command === 'COMMIT') {
        client.release();
        return statement.value.rows as T[];
      }
      // The statement failed (its transaction answered the COMMIT with ROLLBACK), or the connection did.
      const err = [begun, statement, commit].find((r): r is PromiseRejectedResult => r.status === 'rejected')?.reason
        ?? new Error('the statement\'s transaction was not committed');
      await endTransaction(client, commit.status === 'fulfilled');
      throw err;
    },
    sqlTransaction: async <T>(fn: (tx: SqlTx) => Promise<T>) => {
      const client = await pool.connect();
      const deferred: Promise<unknown>[] = [];
      // Once fn has settled, its tx refuses statements: one sent by a chain fn did not wait for
      // would otherwise run after the COMMIT or ROLLBACK, outside the transaction or in the next
      // user's of this connection.
      const open = { value: true };
      // The pool's connections pipeline (pg's `pipeline` mode: a query is written at once, not
      // after the previous answer). BEGIN — with the bounds Prisma's interactive transactions had
      // (30 s), so a stuck statement or a stalled caller cannot hold row locks indefinitely —
      // travels in one write with the transaction's first statement, and COMMIT with its
      // deferred writes (deferWrite): on this machine a round trip to PostgreSQL costs more CPU,
      // on both sides, than most statements of a SCIM write (docs/scim.md, Performance).
      const begun = corked(client).query(BEGIN);
      begun.catch(() => {});
      let ended = false;
      try {
        const result = await fn(trackDeferredWrites(sqlTx(client, open), deferred)).finally(() => {
          open.value = false;
        });
        await begun;
        const commit = corked(client).query('COMMIT');
        commit.catch(() => {});
        // A deferred write that failed aborted the transaction: PostgreSQL answers the COMMIT
        // behind it with ROLLBACK, and the write's own error is the one to report.
        const failed = await firstFailure(deferred);
        const done = await commit;
        ended = true; // answered COMMIT, or ROLLBACK if something failed: nothing to roll back
        if (failed) throw failed.reason;
        if (done.command !== 'COMMIT') throw new Error(`the transaction was not committed (${done.command})`);
        client.release();
        return result;
      } catch (err) {
        // A deferred write's failure explains the "current transaction is aborted" of what followed it.
        const failed = await firstFailure(deferred);
        await endTransaction(client, ended);
        throw failed ? failed.reason : err;
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
function sqlTx(client: pg.PoolClient, open: { value: boolean } = { value: true }): SqlTx {
  const build = (first: TemplateStringsArray | Prisma.Sql, values: unknown[]): pg.QueryConfig => {
    if (!open.value) throw new Error('a statement was sent after its transaction ended (a programming error: the transaction function returned without waiting for it)');
    const q = first instanceof Prisma.Sql ? first : Prisma.sql(first, ...(values as Prisma.Sql[]));
    const name = statementName(q.text);
    return name ? { name, text: q.text, values: q.values as unknown[] } : { text: q.text, values: q.values as unknown[] };
  };
  return {
    $queryRaw: (async (first: TemplateStringsArray | Prisma.Sql, ...values: unknown[]) => (await corked(client).query(build(first, values))).rows) as unknown as SqlTx['$queryRaw'],
    $executeRaw: (async (first: TemplateStringsArray | Prisma.Sql, ...values: unknown[]) => (await corked(client).query(build(first, values))).rowCount ?? 0) as unknown as SqlTx['$executeRaw'],
  };
}

/**
 * The texts of the raw transactions' statements get names, so that each connection parses and
 * plans them once (a prepared statement per connection) instead of at every execution: the SCIM
 * write path's statements are CTEs whose parse and plan cost PostgreSQL more than running them.
 * The texts come from the store's templates, a small set; past MAX_NAMED_STATEMENTS distinct
 * texts (an unforeseen source of varying text), further ones run unnamed, so a connection never
 * accumulates prepared statements without bound.
 * Each execution is still planned for its own values (plan_cache_mode = force_custom_plan, set
 * with BEGIN): a generic plan made while a directory was small stays a sequential scan when it
 * has grown (measured: the userName check at 1 ms instead of 0.01 ms at 10k users).
 */
const MAX_NAMED_STATEMENTS = 500;
const statementNames = new Map<string, string>();
function statementName(text: string): string | undefined {
  let name = statementNames.get(text);
  if (name === undefined && statementNames.size < MAX_NAMED_STATEMENTS) {
    name = `tx-${statementNames.size + 1}`;
    statementNames.set(text, name);
  }
  return name;
}

/**
 * The client, with its socket corked until the current tick's promise jobs have run. pg writes
 * each protocol message of a query separately (Bind, Execute, Sync: two system calls per query);
 * corked, every message of every query issued in this tick — a pipelined BEGIN with the first
 * statement, deferred writes with the COMMIT — leaves in one writev. On this machine a loopback
 * write costs ≈ 50 µs of CPU (it runs PostgreSQL's side of TCP and wakes its process): a third of
 * a SCIM create's CPU went to them (docs/scim.md, Performance).
 */
function corked(client: pg.PoolClient): pg.PoolClient {
  const stream = (client as unknown as { connection?: { stream?: { cork?: () => void; uncork?: () => void; writableCorked?: number } } }).connection?.stream;
  if (stream?.cork && stream.uncork && !stream.writableCorked) {
    stream.cork();
    // process.nextTick: after the promise jobs queued now (the next statements of the transaction) have run.
    process.nextTick(() => stream.uncork!());
  }
  return client;
}

/**
 * Returns a connection to the pool after a failed transaction: rolled back first unless its
 * COMMIT was answered already (with ROLLBACK); a connection that cannot roll back is destroyed.
 */
async function endTransaction(client: pg.PoolClient, ended: boolean): Promise<void> {
  if (ended) {
    client.release();
    return;
  }
  try {
    await client.query('ROLLBACK');
    client.release();
  } catch (rollbackErr) {
    client.release(rollbackErr as Error);
  }
}

/** The first of some writes that failed, once all have settled. */
async function firstFailure(writes: Promise<unknown>[]): Promise<PromiseRejectedResult | undefined> {
  if (!writes.length) return undefined;
  return (await Promise.allSettled(writes)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
}

/** Per statement, and idle within a transaction, in inSqlTransaction's transactions. */
const TX_TIMEOUT_MS = 30_000;
/** How the raw transactions begin (simple query protocol: one message); plan_cache_mode: see statementName. */
const BEGIN = `BEGIN; SET LOCAL statement_timeout = '${TX_TIMEOUT_MS}ms'; SET LOCAL idle_in_transaction_session_timeout = '${TX_TIMEOUT_MS}ms'; SET LOCAL plan_cache_mode = force_custom_plan`;

/** close() may be called by shutdown and by an owner alike; the second call waits for the first. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | null = null;
  return () => (done ??= fn());
}
