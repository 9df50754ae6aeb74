/**
 * src/store/migrator.ts applies prisma/migrations/<stamp>_<name>/migration.sql the way
 * `prisma migrate deploy` would: once each, in order, recorded in `_prisma_migrations` with
 * Prisma's checksum (sha256 hex of the file), refusing edited migrations, never leaving a
 * half-applied one behind, and serialising concurrent replicas on an advisory lock.
 */
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/store/database.js';
import { defaultMigrationsDir, migrate, MigrationError, PRISMA_MIGRATE_LOCK_KEY } from '../../src/store/migrator.js';
import { adminQuery } from '../support/database.js';

const DATABASE_URL = process.env.DATABASE_URL;

type HistoryRow = {
  id: string;
  checksum: string;
  finished_at: Date | null;
  migration_name: string;
  logs: string | null;
  rolled_back_at: Date | null;
  started_at: Date;
  applied_steps_count: number;
};

/** The migrations on disk, read independently of the migrator: name and sha256 of the file's bytes. */
function migrationsOnDisk(dir = defaultMigrationsDir()): { name: string; checksum: string }[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'migration.sql')))
    .map((d) => d.name)
    .sort()
    .map((name) => ({ name, checksum: createHash('sha256').update(readFileSync(join(dir, name, 'migration.sql'))).digest('hex') }));
}

type Cleanups = (() => Promise<void> | void)[];
const runCleanups = async (list: Cleanups) => {
  while (list.length) await list.pop()?.();
};
/** What each test created; dropped after it, last created first. */
const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));

/**
 * An empty database of the test's own: in-memory PGlite, or a fresh schema on DATABASE_URL.
 * poolSize 1 on PostgreSQL makes every withSession use the same connection, so the test can
 * see whether that session still holds the migrator's advisory lock.
 */
async function emptyDatabase(cleanup = cleanups): Promise<Database> {
  if (!DATABASE_URL) {
    const db = await openDatabase({ kind: 'pglite', dataDir: 'memory' });
    cleanup.push(() => db.close());
    return db;
  }
  const schema = await emptySchema(DATABASE_URL, cleanup);
  const db = await openDatabase({ kind: 'postgres', url: DATABASE_URL, poolSize: 1, schema });
  cleanup.push(() => db.close());
  return db;
}

async function emptySchema(url: string, cleanup = cleanups): Promise<string> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  await adminQuery(url, `CREATE SCHEMA "${schema}"`);
  // Registered first, so it runs after the databases opened on it are closed.
  cleanup.push(() => adminQuery(url, `DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
  return schema;
}

/** A scratch copy of prisma/migrations the test may edit. */
function migrationsCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'orgsync-migrations-'));
  cpSync(defaultMigrationsDir(), dir, { recursive: true });
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const history = (db: Database) =>
  db.withSession((s) => s.query<HistoryRow>(`SELECT * FROM "_prisma_migrations" ORDER BY migration_name, started_at`));

const relationExists = async (db: Database, name: string) =>
  (await db.withSession((s) => s.query<{ oid: string | null }>(`SELECT to_regclass($1)::text AS oid`, [`"${name}"`])))[0]?.oid != null;

/** Whether the session migrate() used still holds the advisory lock (see emptyDatabase). */
const holdsMigrateLock = async (db: Database) =>
  Number(
    (await db.withSession((s) => s.query<{ n: number | string }>(
      `SELECT count(*)::int AS n FROM pg_locks
        WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND classid = 0 AND objid = $1 AND objsubid = 1`,
      [PRISMA_MIGRATE_LOCK_KEY],
    )))[0]?.n,
  ) > 0;

async function migrateError(db: Database, dir: string): Promise<MigrationError> {
  const err = await migrate(db, dir).then(
    (result) => new Error(`migrate() should have failed but returned ${JSON.stringify(result)}`),
    (e: unknown) => e,
  );
  expect(err, String(err)).toBeInstanceOf(MigrationError);
  return err as MigrationError;
}

describe('migrate() on an empty database', () => {
  const onDisk = migrationsOnDisk();
  const names = onDisk.map((m) => m.name);
  let db: Database;
  let firstRun: Awaited<ReturnType<typeof migrate>>;
  let rowsAfterFirstRun: HistoryRow[];
  const suiteCleanups: Cleanups = [];

  beforeAll(async () => {
    expect(names.length, 'prisma/migrations holds at least one migration').toBeGreaterThan(0);
    db = await emptyDatabase(suiteCleanups);
    firstRun = await migrate(db);
    rowsAfterFirstRun = await history(db);
  });
  afterAll(() => runCleanups(suiteCleanups));

  it('applies every migration once, in order', () => {
    expect(firstRun, 'result of the first migrate()').toEqual({ applied: names, alreadyApplied: [] });
    expect(rowsAfterFirstRun.map((r) => r.migration_name), 'one history row per migration').toEqual(names);
  });

  it("records each in _prisma_migrations the way Prisma does (checksum = sha256 hex of migration.sql)", () => {
    for (const [i, row] of rowsAfterFirstRun.entries()) {
      const file = onDisk[i];
      const what = `history row of ${row.migration_name}`;
      expect(row.checksum, `${what}: checksum`).toBe(file?.checksum);
      expect(row.checksum, `${what}: checksum format`).toMatch(/^[0-9a-f]{64}$/);
      expect(row.finished_at, `${what}: finished_at`).toBeInstanceOf(Date);
      expect(row.started_at, `${what}: started_at`).toBeInstanceOf(Date);
      expect(row.finished_at!.getTime(), `${what}: finished_at >= started_at`).toBeGreaterThanOrEqual(row.started_at.getTime());
      expect(row.applied_steps_count, `${what}: applied_steps_count`).toBe(1);
      expect(row.rolled_back_at, `${what}: rolled_back_at`).toBeNull();
      expect(row.logs, `${what}: logs`).toBeNull();
      expect(row.id, `${what}: id`).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    }
  });

  it("creates _prisma_migrations with Prisma Migrate's own column layout", async () => {
    const columns = await db.withSession((s) => s.query<{ name: string; type: string; not_null: boolean }>(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null
         FROM pg_attribute a WHERE a.attrelid = to_regclass('"_prisma_migrations"') AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum`,
    ));
    expect(columns, '_prisma_migrations columns').toEqual([
      { name: 'id', type: 'character varying(36)', not_null: true },
      { name: 'checksum', type: 'character varying(64)', not_null: true },
      { name: 'finished_at', type: 'timestamp with time zone', not_null: false },
      { name: 'migration_name', type: 'character varying(255)', not_null: true },
      { name: 'logs', type: 'text', not_null: false },
      { name: 'rolled_back_at', type: 'timestamp with time zone', not_null: false },
      { name: 'started_at', type: 'timestamp with time zone', not_null: true },
      { name: 'applied_steps_count', type: 'integer', not_null: true },
    ]);
  });

  it('releases its advisory lock', async () => {
    expect(await holdsMigrateLock(db), 'advisory lock still held after migrate()').toBe(false);
  });

  it('applies nothing when run again', async () => {
    const second = await migrate(db);
    expect(second, 'result of the second migrate()').toEqual({ applied: [], alreadyApplied: names });
    expect(await history(db), 'history after the second migrate()').toEqual(rowsAfterFirstRun);
    expect(await holdsMigrateLock(db), 'advisory lock still held after the second migrate()').toBe(false);
  });
});

describe('migrate() refuses and rolls back', () => {
  it('refuses a migration edited after it was applied (checksum differs)', async () => {
    const dir = migrationsCopy();
    const db = await emptyDatabase();
    await migrate(db, dir);
    const before = await history(db);

    const edited = migrationsOnDisk(dir)[0]!.name;
    appendFileSync(join(dir, edited, 'migration.sql'), '\n-- an edit after the fact\n');
    const err = await migrateError(db, dir);
    expect(err.message, 'error names the edited migration and the reason').toMatch(new RegExp(`${edited}.*edited.*checksum`));
    expect(err.code, 'error code').toBe('ERR_MIGRATION');
    expect(await history(db), 'history untouched by the refused run').toEqual(before);
    expect(await holdsMigrateLock(db), 'advisory lock still held after a refused migrate()').toBe(false);
  });

  it('regression: a checkout with CRLF line endings is not refused as "edited" (Prisma accepts either ending)', async () => {
    const dir = migrationsCopy();
    const db = await emptyDatabase();
    await migrate(db, dir);
    const before = await history(db);
    const name = migrationsOnDisk(dir)[0]!.name;
    const file = join(dir, name, 'migration.sql');
    writeFileSync(file, readFileSync(file, 'utf8').replace(/\n/g, '\r\n'));
    const again = await migrate(db, dir);
    expect(again.applied, 'nothing re-applied').toEqual([]);
    expect(again.alreadyApplied).toContain(name);
    expect(await history(db), 'history untouched').toEqual(before);
  });

  it('rolls a failing migration back completely: no history row, no partial tables, types or columns', async () => {
    const dir = migrationsCopy();
    const names = migrationsOnDisk(dir).map((m) => m.name);
    const broken = '99999999999999_broken';
    mkdirSync(join(dir, broken));
    const goodPart = `
      CREATE TABLE "PartialTable" ("id" INTEGER PRIMARY KEY);
      CREATE TYPE "PartialKind" AS ENUM ('a');
      ALTER TABLE "Org" ADD COLUMN "partialColumn" TEXT;
    `;
    writeFileSync(join(dir, broken, 'migration.sql'), `${goodPart}\nINSERT INTO "NoSuchTable" VALUES (1);\n`);
    const db = await emptyDatabase();

    const err = await migrateError(db, dir);
    expect(err.message, 'error names the failing migration').toContain(broken);
    expect(String((err.cause as Error | undefined)?.message), 'the database error is kept as the cause').toMatch(/NoSuchTable/);

    // The migrations before it are committed; the failing one left nothing behind.
    expect((await history(db)).map((r) => r.migration_name), 'history after the failure').toEqual(names);
    expect(await relationExists(db, 'PartialTable'), 'table created by the failed migration').toBe(false);
    const leftovers = await db.withSession((s) => s.query(
      `SELECT 'type' AS what, typname::text AS name FROM pg_type WHERE typname = 'PartialKind' AND typnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
       UNION ALL
       SELECT 'column', attname::text FROM pg_attribute WHERE attrelid = to_regclass('"Org"') AND attname = 'partialColumn'`,
    ));
    expect(leftovers, 'types/columns created by the failed migration').toEqual([]);
    expect(await holdsMigrateLock(db), 'advisory lock still held after a failed migrate()').toBe(false);

    // Nothing records it as started: once fixed, it simply applies.
    writeFileSync(join(dir, broken, 'migration.sql'), goodPart);
    expect(await migrate(db, dir), 'migrate() after fixing the migration').toEqual({ applied: [broken], alreadyApplied: names });
    expect(await relationExists(db, 'PartialTable'), 'table created by the fixed migration').toBe(true);
    expect((await history(db)).map((r) => [r.migration_name, r.applied_steps_count, r.finished_at != null]), 'history after the fix')
      .toEqual([...names, broken].map((n) => [n, 1, true]));
  });
});

describe.skipIf(!DATABASE_URL)('migrate() from concurrent replicas (PostgreSQL)', () => {
  it('applies each migration exactly once when two database handles migrate the same empty schema at once', async () => {
    const url = DATABASE_URL!;
    const names = migrationsOnDisk().map((m) => m.name);
    // A few rounds: the race, if there were one, depends on timing.
    for (let round = 1; round <= 3; round++) {
      const schema = await emptySchema(url);
      const a = await openDatabase({ kind: 'postgres', url, poolSize: 2, schema });
      cleanups.push(() => a.close());
      const b = await openDatabase({ kind: 'postgres', url, poolSize: 2, schema });
      cleanups.push(() => b.close());
      // Connect both pools first so the two migrate() calls really start together.
      await Promise.all([a.ping(), b.ping()]);

      const results = await Promise.allSettled([migrate(a), migrate(b)]);
      const failures = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
      expect(failures, `round ${round}: concurrent migrate() failures`).toEqual([]);
      const [ra, rb] = results.map((r) => (r.status === 'fulfilled' ? r.value : { applied: [], alreadyApplied: [] }));
      expect([...ra!.applied, ...rb!.applied].sort(), `round ${round}: migrations applied across both replicas`).toEqual(names);
      for (const [i, r] of [ra!, rb!].entries()) {
        expect([...r.applied, ...r.alreadyApplied].sort(), `round ${round}: replica ${i + 1} either applied or skipped each migration`).toEqual(names);
      }

      const rows = await a.withSession((s) => s.query<{ migration_name: string; n: number; finished: number }>(
        `SELECT migration_name, count(*)::int AS n, count(finished_at)::int AS finished FROM "_prisma_migrations" GROUP BY migration_name ORDER BY migration_name`,
      ));
      expect(rows, `round ${round}: history rows per migration`).toEqual(names.map((n) => ({ migration_name: n, n: 1, finished: 1 })));
      // And the schema is usable: the second handle sees the tables the first created.
      expect(await relationExists(b, 'Org'), `round ${round}: "Org" visible from the other handle`).toBe(true);
    }
  });
});
