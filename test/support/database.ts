import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase, type Database } from '../../src/store/database.js';

/**
 * A database of the test's own: in-memory PGlite by default, or — when DATABASE_URL is set —
 * a fresh schema on that PostgreSQL server, dropped afterwards. Test files run in parallel
 * and never see each other's rows.
 */
export type TestDatabase = { db: Database; schema: string | null; drop(): Promise<void> };

export const onPostgres = Boolean(process.env.DATABASE_URL);

export async function createTestDatabase(): Promise<TestDatabase> {
  const url = process.env.DATABASE_URL;
  if (!url) {
    const db = await openDatabase({ kind: 'pglite', dataDir: 'memory' });
    return { db, schema: null, drop: () => db.close() };
  }
  const schema = `t_${randomBytes(6).toString('hex')}`;
  await adminQuery(url, `CREATE SCHEMA "${schema}"`);
  const db = await openDatabase({ kind: 'postgres', url, poolSize: 10, schema });
  return {
    db,
    schema,
    drop: async () => {
      await db.close();
      await adminQuery(url, `DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    },
  };
}

export async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
