import { createHash, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Database, SqlSession } from './database.js';

/**
 * Applies prisma/migrations/<stamp>_<name>/migration.sql in order and records each in
 * Prisma's own `_prisma_migrations` table with Prisma's checksum (sha256 of the file), so
 * `prisma migrate deploy` on a machine with Prisma's engines sees the same history.
 *
 * Replicas starting together on an empty database serialise on a session advisory lock;
 * the key is the one Prisma Migrate itself uses, so our migrator and `prisma migrate` also
 * exclude each other.
 */
export const PRISMA_MIGRATE_LOCK_KEY = 72707369;

export type MigrationFile = { name: string; sql: string; checksum: string };
export type MigrateResult = { applied: string[]; alreadyApplied: string[] };

export class MigrationError extends Error {
  readonly code = 'ERR_MIGRATION';
}

const CREATE_HISTORY = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum" VARCHAR(64) NOT NULL,
    "finished_at" TIMESTAMPTZ,
    "migration_name" VARCHAR(255) NOT NULL,
    "logs" TEXT,
    "rolled_back_at" TIMESTAMPTZ,
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

export function defaultMigrationsDir(): string {
  return join(import.meta.dirname, '..', '..', 'prisma', 'migrations');
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Prisma accepts a recorded checksum of the file with LF or CRLF line endings (a Windows checkout). */
function checksumMatches(file: MigrationFile, recorded: string): boolean {
  return [file.sql, file.sql.replace(/\r\n/g, '\n'), file.sql.replace(/\r?\n/g, '\r\n')].some((t) => sha256(t) === recorded);
}

export function readMigrations(dir: string): MigrationFile[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'migration.sql')))
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: sha256(sql) };
    });
}

export async function migrate(db: Database, dir = defaultMigrationsDir()): Promise<MigrateResult> {
  const files = readMigrations(dir);
  return db.withSession(async (s) => {
    await s.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_LOCK_KEY]);
    try {
      return await applyPending(s, files);
    } finally {
      await s.query('SELECT pg_advisory_unlock($1)', [PRISMA_MIGRATE_LOCK_KEY]);
    }
  });
}

async function applyPending(s: SqlSession, files: MigrationFile[]): Promise<MigrateResult> {
  await s.exec(CREATE_HISTORY);
  const rows = await s.query<{ migration_name: string; checksum: string; finished_at: Date | null }>(
    `SELECT migration_name, checksum, finished_at FROM "_prisma_migrations" WHERE rolled_back_at IS NULL`,
  );
  const done = new Map(rows.map((r) => [r.migration_name, r]));
  const result: MigrateResult = { applied: [], alreadyApplied: [] };
  for (const file of files) {
    const row = done.get(file.name);
    if (row?.finished_at) {
      if (!checksumMatches(file, row.checksum)) {
        throw new MigrationError(`migration ${file.name} was edited after it was applied (checksum differs); add a new migration instead`);
      }
      result.alreadyApplied.push(file.name);
      continue;
    }
    if (row) {
      throw new MigrationError(`migration ${file.name} started earlier and did not finish; repair the database, then mark it rolled back`);
    }
    const id = randomUUID();
    // The migration and its history row commit together: a failure leaves no half-applied state.
    await s.exec('BEGIN');
    try {
      await s.query(
        `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) VALUES ($1, $2, $3, now(), 0)`,
        [id, file.checksum, file.name],
      );
      await s.exec(file.sql);
      await s.query(`UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1`, [id]);
      await s.exec('COMMIT');
    } catch (err) {
      await s.exec('ROLLBACK');
      throw new MigrationError(`migration ${file.name} failed: ${(err as Error).message}`, { cause: err });
    }
    result.applied.push(file.name);
  }
  return result;
}
