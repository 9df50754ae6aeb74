import { randomUUID } from 'node:crypto';
import { deferWrite, sendAhead, type SqlTx, type Tx } from './transaction.js';
import type { Database } from './database.js';
import { Prisma } from '../generated/prisma/client.js';
import { afterCursor, orderBy, toPage, type PageRequest } from './paging.js';
import { identifierKey } from '../domain/identity.js';

/** The filterable columns of a SCIM user, extracted by the SCIM surface from the resource. */
export type ScimUserColumns = {
  userName: string; userNameNormalized: string; externalId: string | null; active: boolean; displayName: string | null;
  givenName: string | null; familyName: string | null; title: string | null; userType: string | null;
  employeeNumber: string | null; department: string | null;
};
export type ScimEmail = { value: string; type: string | null; primary: boolean };
export type ScimUserRow = ScimUserColumns & {
  id: string; orgId: string; directoryId: string; accountId: string | null; resource: unknown; version: number;
  deletedAt: Date | null; createdAt: Date; updatedAt: Date;
};

/** Ids are UUIDs; anything else names nothing (and must not reach PostgreSQL's uuid cast as a 500). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;


/**
 * The ScimUser columns as ScimUserRow, for raw statements: uuids as text (what Prisma's model
 * API returns; pg and Prisma's raw path agree on it), everything else as stored.
 */
const userColumnsOf = (t: string) => Prisma.raw(
  `${t}."id"::text AS "id", ${t}."orgId"::text AS "orgId", ${t}."directoryId"::text AS "directoryId", ${t}."accountId"::text AS "accountId", ` +
  `${t}."userName", ${t}."userNameNormalized", ${t}."externalId", ${t}."active", ${t}."displayName", ${t}."givenName", ${t}."familyName", ` +
  `${t}."title", ${t}."userType", ${t}."employeeNumber", ${t}."department", ${t}."resource", ${t}."version", ${t}."deletedAt", ${t}."createdAt", ${t}."updatedAt"`);
const userColumns = userColumnsOf('u');
/** A user's ScimUserEmail rows as one JSON parameter. */
const emailRowsJson = (emails: ScimEmail[]) => JSON.stringify(emails.map((e) => ({ value: e.value, valueNormalized: identifierKey(e.value), type: e.type, primary: e.primary })));
/** The INSERT of a user's ScimUserEmail rows (the rows travel as one JSON parameter; none: inserts nothing). */
const emailRowsInsert = (row: Pick<ScimUserRow, 'id' | 'orgId' | 'directoryId'>, emails: ScimEmail[]) => Prisma.sql`
  INSERT INTO "ScimUserEmail" ("id", "orgId", "directoryId", "userId", "value", "valueNormalized", "type", "primary")
  SELECT gen_random_uuid(), ${row.orgId}::uuid, ${row.directoryId}::uuid, ${row.id}::uuid, e."value", e."valueNormalized", e."type", e."primary"
  FROM json_to_recordset(${emailRowsJson(emails)}::json)
    AS e("value" text, "valueNormalized" text, "type" text, "primary" boolean)`;

/**
 * createWithNewAccount's statement. Every part reads the snapshot the statement started with
 * (data-modifying CTEs), so each later part takes what it needs from the RETURNING of the
 * earlier: no account row (ON CONFLICT: the address has one), no user, no emails, no audit.
 * $1 org, $2 directory, $3–$5 email / normalised / domain, $6–$8 display, given and family
 * name, $9 externalId, $10 user id, $11–$12 userName / normalised, $13 active, $14–$17 title,
 * userType, employeeNumber, department, $18 resource, $19 time, $20 email rows, $21 actor,
 * $22 request id.
 */
const CREATE_WITH_ACCOUNT = `
  WITH facts AS (
    SELECT EXISTS (SELECT 1 FROM "Domain" d WHERE d."orgId" = $1::uuid AND d."domain" = $5::text AND d."verified") AS managed
  ), acc AS (
    INSERT INTO "Account" ("id", "orgId", "email", "emailNormalized", "emailDomain", "displayName", "givenName", "familyName",
                           "managed", "policyId", "source", "directoryId", "externalId", "createdAt", "updatedAt")
    SELECT gen_random_uuid(), $1::uuid, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, f.managed,
           CASE WHEN f.managed THEN (SELECT p."id" FROM "Policy" p WHERE p."orgId" = $1::uuid AND p."isDefault" LIMIT 1) END,
           'scim', $2::uuid, $9::text, now(), now()
    FROM facts f
    ON CONFLICT ("orgId", "emailNormalized") DO NOTHING
    RETURNING "id", "managed"
  ), u AS (
    INSERT INTO "ScimUser" ("id", "orgId", "directoryId", "accountId", "userName", "userNameNormalized", "externalId", "active", "displayName",
                            "givenName", "familyName", "title", "userType", "employeeNumber", "department", "resource", "createdAt", "updatedAt")
    SELECT $10::uuid, $1::uuid, $2::uuid, acc."id", $11::text, $12::text, $9::text, $13::boolean, $6::text, $7::text, $8::text,
           $14::text, $15::text, $16::text, $17::text, $18::jsonb, $19::timestamptz, $19::timestamptz
    FROM acc
    RETURNING *
  ), e AS (
    INSERT INTO "ScimUserEmail" ("id", "orgId", "directoryId", "userId", "value", "valueNormalized", "type", "primary")
    SELECT gen_random_uuid(), $1::uuid, $2::uuid, u."id", x."value", x."valueNormalized", x."type", x."primary"
    FROM u, json_to_recordset($20::json) AS x("value" text, "valueNormalized" text, "type" text, "primary" boolean)
  ), audit AS (
    INSERT INTO "AuditEvent" ("id", "orgId", "actor", "action", "targetType", "targetId", "before", "after", "requestId")
    SELECT gen_random_uuid(), $1::uuid, $21::text, r."action", r."targetType", r."targetId", NULL, r."after", $22::text
    FROM u, acc, LATERAL (VALUES
      ('account.create', 'account', acc."id"::text,
       jsonb_build_object('email', $3::text, 'managed', acc."managed", 'source', 'scim', 'directoryId', $2::text)),
      ('scim.user.create', 'scim-user', u."id"::text,
       jsonb_build_object('userName', u."userName", 'accountId', acc."id"::text, 'active', u."active"))
    ) AS r("action", "targetType", "targetId", "after")
  )
  SELECT ${userColumnsOf('u').text} FROM u`;
/** Columns update() may set, with the cast of their parameter. */
const UPDATABLE: Record<string, string> = {
  userName: '', userNameNormalized: '', externalId: '', active: '::boolean', displayName: '', givenName: '', familyName: '', title: '',
  userType: '', employeeNumber: '', department: '', accountId: '::uuid', resource: '::jsonb', deletedAt: '::timestamptz', createdAt: '::timestamptz',
  pendingEmail: '',
};

/** From this offset on, list() reads a page as ids first, then rows (see list). */
const DEEP_PAGE = 1000;

async function deepPage(tx: Tx, where: Prisma.ScimUserWhereInput, orderBy: Prisma.ScimUserOrderByWithRelationInput[], skip: number, take: number): Promise<ScimUserRow[]> {
  const ids = (await tx.scimUser.findMany({ where, orderBy, skip, take, select: { id: true } })).map((r) => r.id);
  if (!ids.length) return [];
  const byId = new Map((await tx.scimUser.findMany({ where: { id: { in: ids } } })).map((r) => [r.id, r]));
  return ids.flatMap((id) => byId.get(id) ?? []);
}

/**
 * A page with its total: proven by the page itself when it starts at the first row or is a
 * partial page with rows (a `userName eq` lookup needs no COUNT), else the caller's known total,
 * else counted. Rows past the total are not returned.
 */
async function withTotal(rows: ScimUserRow[], skip: number, take: number, knownTotal: number | null, count: () => Promise<number>) {
  if (rows.length < take && (rows.length > 0 || skip === 0)) return { total: skip + rows.length, rows, counted: false };
  const counted = knownTotal === null;
  const total = knownTotal ?? (await count());
  return { total, rows: skip < total ? rows : [], counted };
}

/** A position in the default order of a directory's users (createdAt, then id). */
export type ListKey = { createdAt: Date; id: string };

/** Columns a simple list may compare with `=`: what `userName eq`, `externalId eq` and `id eq` compile to. */
const EQ_COLUMNS = { userNameNormalized: 'userNameNormalized', externalId: 'externalId', id: 'id' } as const;
type EqColumn = keyof typeof EQ_COLUMNS;

/**
 * The lists an IdP sends on every push — `userName eq "…"` (Okta and Entra look the user up
 * before creating it), `externalId eq`, `id eq`, or no filter — in the default order, as a
 * shallow page: recognised from the compiled filter, and answered with one prepared statement
 * outside Prisma (Database.sql). Anything else returns null and takes the general path.
 */
function simpleList(where: Prisma.ScimUserWhereInput, orderBy: Prisma.ScimUserOrderByWithRelationInput[], skip: number, take: number):
  { column: EqColumn | null; value: string | null } | null {
  if (take <= 0) return null;
  if (orderBy.length !== 2 || (orderBy[0] as Record<string, unknown>).createdAt !== 'asc' || (orderBy[1] as Record<string, unknown>).id !== 'asc') return null;
  const keys = Object.keys(where);
  if (keys.length === 0) return { column: null, value: null };
  if (keys.length !== 1 || !Object.hasOwn(EQ_COLUMNS, keys[0]!)) return null;
  const value = (where as Record<string, unknown>)[keys[0]!];
  if (typeof value !== 'string') return null;
  // An id that is not a uuid matches nothing; the uuid cast must not turn it into a 500.
  if (keys[0] === 'id' && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)) return null;
  return { column: keys[0] as EqColumn, value };
}

const LIVE = `FROM "ScimUser" WHERE "directoryId" = $1::uuid AND "deletedAt" IS NULL`;
const eqSql = (column: EqColumn | null, param: string) => column === null ? '' : ` AND "${EQ_COLUMNS[column]}" = ${param}${column === 'id' ? '::uuid' : ''}`;
// The page's ids first — the (directoryId, createdAt, id, deletedAt) index answers the OFFSET
// alone, without visiting the skipped rows — then those rows by primary key: one statement.
// `= ANY(ARRAY(…))`, not `IN (…)`: a prepared statement may run with PostgreSQL's generic plan,
// which cannot see LIMIT $3 and planned IN as a hash join over a sequential scan of the table
// (42 ms at 100k users); ANY(ARRAY) is always primary-key probes.
const pageSql = (column: EqColumn | null) => `
  SELECT u.* FROM "ScimUser" u
  WHERE u."id" = ANY(ARRAY(SELECT "id" ${LIVE}${eqSql(column, '$4')} ORDER BY "createdAt", "id" OFFSET $2 LIMIT $3))
  ORDER BY u."createdAt", u."id"`;
// The same page, from a known key on: (createdAt, id) >= the key is a range of the index, so the
// OFFSET skips fewer than one anchor step of entries, not every user before the page. A plain
// index scan: rows come in index order from neighbouring heap pages (≈ 70 buffers for a page at
// 100k users, against ≈ 400 for the ids-then-rows form, whose 100 primary-key probes are random).
const pageFromKeySql = `SELECT * ${LIVE} AND ("createdAt", "id") >= ($4::timestamptz, $5::uuid) ORDER BY "createdAt", "id" OFFSET $2 LIMIT $3`;
const countSql = (column: EqColumn | null) => `SELECT count(*)::int AS n ${LIVE}${eqSql(column, '$2')}`;

/**
 * The ScimUserEmail rows of a stored resource: `emails[].value` trimmed (empty ones dropped), its
 * type, primary only when true. The SCIM surface derives the rows it writes with this function,
 * so comparing it on the stored and the new resource tells whether the rows would change.
 */
export function scimEmailsOf(resource: unknown): ScimEmail[] {
  const emails = (resource as { emails?: unknown } | null)?.emails;
  const str = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v : null);
  return (Array.isArray(emails) ? (emails as Record<string, unknown>[]) : [])
    .map((e) => ({ value: String(e?.value ?? '').trim(), type: str(e?.type), primary: e?.primary === true }))
    .filter((e) => e.value);
}
export const sameEmails = (a: ScimEmail[], b: ScimEmail[]) =>
  a.length === b.length && a.every((e, i) => e.value === b[i]!.value && e.type === b[i]!.type && e.primary === b[i]!.primary);

/** What a PUT/PATCH needs to know of the user's account: to keep its status, email and names in step with the IdP. */
export type AccountForWrite = {
  id: string; emailNormalized: string; source: string; status: string; displayName: string | null; givenName: string | null; familyName: string | null;
};
/** A user about to be rewritten, with what its write needs to know of its account (one statement). */
export type ScimUserForWrite = ScimUserRow & { account: AccountForWrite | null };

type UserUpdate = Partial<ScimUserColumns> & { accountId?: string | null; resource?: unknown; deletedAt?: Date | null; createdAt?: Date; pendingEmail?: string | null };

/** The version-guarded UPDATE of a SCIM user, RETURNING the row (scimUserStore.update, sendUpdate). */
function updateStatement(row: Pick<ScimUserRow, 'id' | 'directoryId'>, expectedVersion: number, data: UserUpdate, at: Date): Prisma.Sql {
  const sets: Prisma.Sql[] = [];
  for (const [key, value] of Object.entries(data)) {
    if (value === undefined) continue;
    if (!Object.hasOwn(UPDATABLE, key)) throw new Error(`ScimUser.${key} is not updatable`); // a programming error, not client input
    const cast = UPDATABLE[key]!;
    sets.push(Prisma.sql`${Prisma.raw(`"${key}"`)} = ${key === 'resource' ? JSON.stringify(value) : value}${Prisma.raw(cast)}`);
  }
  return Prisma.sql`
      UPDATE "ScimUser" SET ${Prisma.join([...sets, Prisma.sql`"version" = "version" + 1`, Prisma.sql`"updatedAt" = ${at}::timestamptz`], ', ')}
      WHERE "id" = ${row.id}::uuid AND "directoryId" = ${row.directoryId}::uuid AND "version" = ${expectedVersion}
      RETURNING ${userColumnsOf('"ScimUser"')}`;
}

export const scimUserStore = {
  /** get, outside any transaction, as one prepared statement (GET /Users/{id}, and the read before PUT/PATCH). */
  async getLive(db: Database, directoryId: string, id: string): Promise<ScimUserRow | null> {
    if (!UUID.test(id)) return null;
    const [row] = await db.sql<ScimUserRow>('scim-user-by-id', `SELECT * ${LIVE} AND "id" = $2::uuid`, [directoryId, id]);
    return row ?? null;
  },
  async byUserName(tx: SqlTx, directoryId: string, userNameNormalized: string): Promise<ScimUserRow | null> {
    const rows = await tx.$queryRaw<ScimUserRow[]>`
      SELECT ${userColumns} FROM "ScimUser" u WHERE u."directoryId" = ${directoryId}::uuid AND u."userNameNormalized" = ${userNameNormalized}`;
    return rows[0] ?? null;
  },
  /**
   * The live user with its account's email, source and status, in one statement (PUT/PATCH,
   * inside their transaction). Locked (step 3 of the lock order, docs/decisions.md, before any
   * account row): two writes of one user queue here instead of one failing the version check of
   * the other. NO KEY UPDATE, not UPDATE: a group's member add (KEY SHARE of its users, taken
   * under the directory's group locks) does not wait for it, so a user write that then takes those
   * group locks (its group inputs changed) cannot deadlock with the add; a DELETE upgrades to
   * FOR UPDATE (lockForDelete) after taking the group locks first.
   */
  async getForWrite(tx: SqlTx, directoryId: string, id: string): Promise<ScimUserForWrite | null> {
    if (!UUID.test(id)) return null;
    type Joined = ScimUserRow & {
      aId: string | null; aEmail: string | null; aSource: string | null; aStatus: string | null;
      aDisplayName: string | null; aGivenName: string | null; aFamilyName: string | null;
    };
    const rows = await tx.$queryRaw<Joined[]>`
      SELECT u."id"::text AS "id", u."orgId"::text AS "orgId", u."directoryId"::text AS "directoryId", u."accountId"::text AS "accountId",
             u."userName", u."userNameNormalized", u."externalId", u."active", u."displayName", u."givenName", u."familyName", u."title",
             u."userType", u."employeeNumber", u."department", u."resource", u."version", u."deletedAt", u."createdAt", u."updatedAt",
             a."id"::text AS "aId", a."emailNormalized" AS "aEmail", a."source"::text AS "aSource", a."status"::text AS "aStatus",
             a."displayName" AS "aDisplayName", a."givenName" AS "aGivenName", a."familyName" AS "aFamilyName"
      FROM "ScimUser" u LEFT JOIN "Account" a ON a."id" = u."accountId"
      WHERE u."id" = ${id}::uuid AND u."directoryId" = ${directoryId}::uuid AND u."deletedAt" IS NULL
      FOR NO KEY UPDATE OF u`;
    const r = rows[0];
    if (!r) return null;
    const { aId, aEmail, aSource, aStatus, aDisplayName, aGivenName, aFamilyName, ...user } = r;
    return {
      ...user,
      account: aId ? { id: aId, emailNormalized: aEmail!, source: aSource!, status: aStatus!, displayName: aDisplayName, givenName: aGivenName, familyName: aFamilyName } : null,
    };
  },
  /** A new user and its email rows: one statement (the emails INSERT is a data-modifying CTE). */
  async create(tx: SqlTx, orgId: string, directoryId: string, accountId: string | null, cols: ScimUserColumns, emails: ScimEmail[], resource: unknown, at: Date): Promise<ScimUserRow> {
    const id = randomUUID();
    const rows = await tx.$queryRaw<ScimUserRow[]>`
      WITH u AS (
        INSERT INTO "ScimUser" ("id", "orgId", "directoryId", "accountId", "userName", "userNameNormalized", "externalId", "active", "displayName",
                                "givenName", "familyName", "title", "userType", "employeeNumber", "department", "resource", "createdAt", "updatedAt")
        VALUES (${id}::uuid, ${orgId}::uuid, ${directoryId}::uuid, ${accountId}::uuid, ${cols.userName}, ${cols.userNameNormalized}, ${cols.externalId},
                ${cols.active}, ${cols.displayName}, ${cols.givenName}, ${cols.familyName}, ${cols.title}, ${cols.userType}, ${cols.employeeNumber},
                ${cols.department}, ${JSON.stringify(resource)}::jsonb, ${at}::timestamptz, ${at}::timestamptz)
        RETURNING *
      ), e AS (
        ${emailRowsInsert({ id, orgId, directoryId }, emails)}
      )
      SELECT ${userColumns} FROM u`;
    return rows[0]!;
  },
  /**
   * A new, active user together with a new synced account for its address, its email rows and
   * the two audit rows (account.create, scim.user.create): one statement, sent with its BEGIN and
   * COMMIT in one write (Database.sqlAlone, PostgreSQL only). The account is managed and in the
   * default policy when the org verified the address's domain (as createIfAbsent decides).
   * When the org already has an account of that address, the statement writes nothing and
   * returns null: linking to an existing account can mean claiming it, moving it out of the
   * non-billable policy, enabling it — the general path's work. A userName in use fails it with
   * the unique violation, and nothing is written either.
   */
  async createWithNewAccount(
    db: Database, p: {
      orgId: string; directoryId: string; email: { email: string; normalized: string; domain: string };
      cols: ScimUserColumns; emails: ScimEmail[]; resource: unknown; at: Date; actor: string; requestId: string | null;
    },
  ): Promise<ScimUserRow | null> {
    if (!db.sqlAlone) throw new Error('createWithNewAccount needs PostgreSQL'); // a programming error
    const c = p.cols;
    const rows = await db.sqlAlone<ScimUserRow>('scim-user-create-with-account', CREATE_WITH_ACCOUNT, [
      p.orgId, p.directoryId, p.email.email, p.email.normalized, p.email.domain, c.displayName, c.givenName, c.familyName, c.externalId,
      randomUUID(), c.userName, c.userNameNormalized, c.active, c.title, c.userType, c.employeeNumber, c.department,
      JSON.stringify(p.resource), p.at, emailRowsJson(p.emails), p.actor, p.requestId,
    ]);
    return rows[0] ?? null;
  },
  /**
   * Writes a new state if the stored version is still `expectedVersion` (optimistic concurrency for
   * ETags): one UPDATE … RETURNING; null when the version moved on. `emails` null leaves the email
   * rows as they are.
   */
  async update(
    tx: SqlTx, row: Pick<ScimUserRow, 'id' | 'orgId' | 'directoryId'>, expectedVersion: number,
    data: UserUpdate, emails: ScimEmail[] | null, at: Date): Promise<ScimUserRow | null> {
    const rows = await tx.$queryRaw<ScimUserRow[]>`${updateStatement(row, expectedVersion, data, at)}`;
    if (!rows[0]) return null;
    if (emails) await scimUserStore.setEmails(tx, row, emails);
    return rows[0];
  },
  /**
   * update, sent without waiting for its answer (sendAhead): the email rows' statements go right
   * behind it, and the caller sends its next statements before PostgreSQL has answered. For a
   * write that holds the row's lock (getForWrite), whose UPDATE therefore matches; if it did not,
   * the statement fails, and with it the transaction, with 40001 (run again by inSqlTransaction).
   */
  async sendUpdate(
    tx: SqlTx, row: Pick<ScimUserRow, 'id' | 'orgId' | 'directoryId'>, expectedVersion: number,
    data: UserUpdate, emails: ScimEmail[] | null, at: Date): Promise<{ answer: Promise<ScimUserRow | null> }> {
    // The statement checks its own match (orgsync_expect, migration expect_matched_write): a miss
    // raises 40001, which aborts the transaction, so the COMMIT sent behind it rolls back.
    const sent = await sendAhead(tx, tx.$queryRaw<ScimUserRow[]>`
      WITH u AS (${updateStatement(row, expectedVersion, data, at)}),
           g AS (SELECT orgsync_expect(EXISTS (SELECT 1 FROM u), 'the SCIM user') AS ok)
      SELECT u.* FROM g LEFT JOIN u ON g.ok`);
    if (emails) {
      await deferWrite(tx, tx.$executeRaw`DELETE FROM "ScimUserEmail" WHERE "userId" = ${row.id}::uuid`);
      if (emails.length) await deferWrite(tx, tx.$executeRaw`${emailRowsInsert(row, emails)}`);
    }
    const answer = sent.answer.then((rows) => rows[0] ?? null);
    answer.catch(() => {}); // the transaction reports the failure if the caller does not wait
    return { answer };
  },
  async insertEmails(tx: SqlTx, row: Pick<ScimUserRow, 'id' | 'orgId' | 'directoryId'>, emails: ScimEmail[]): Promise<void> {
    if (emails.length) await tx.$executeRaw`${emailRowsInsert(row, emails)}`;
  },
  async setEmails(tx: SqlTx, row: Pick<ScimUserRow, 'id' | 'orgId' | 'directoryId'>, emails: ScimEmail[]): Promise<void> {
    await tx.$executeRaw`DELETE FROM "ScimUserEmail" WHERE "userId" = ${row.id}::uuid`;
    await scimUserStore.insertEmails(tx, row, emails);
  },
  /**
   * One page and the total. The COUNT is skipped when the page proves the total (it starts at the
   * first row, or it is a partial page with rows): a `userName eq` lookup is one query, not two.
   * It is skipped too when the caller knows the total (`knownTotal`, the unfiltered lists' cache
   * in services/scim-totals.ts); `counted` tells whether this call counted.
   * A deep page reads its ids first, which the (directoryId, createdAt, id, deletedAt) index
   * answers alone, then those rows: a plain OFFSET fetches every skipped row.
   */
  async list(
    db: Database, directoryId: string, where: Prisma.ScimUserWhereInput, orderBy: Prisma.ScimUserOrderByWithRelationInput[], skip: number, take: number,
    knownTotal: number | null = null, from: { key: ListKey; position: number } | null = null,
  ): Promise<{ total: number; rows: ScimUserRow[]; counted: boolean }> {
    const simple = simpleList(where, orderBy, skip, take);
    if (!simple) return scimUserStore.listGeneral(db.prisma, directoryId, where, orderBy, skip, take, knownTotal);
    const c = simple.column;
    const rows = c === null && from && from.position <= skip
      ? await db.sql<ScimUserRow>('scim-users-page-from-key', pageFromKeySql, [directoryId, skip - from.position, take, from.key.createdAt, from.key.id])
      : await db.sql<ScimUserRow>(`scim-users-page-${c ?? 'all'}`, pageSql(c), c ? [directoryId, skip, take, simple.value] : [directoryId, skip, take]);
    return withTotal(rows, skip, take, knownTotal, async () => {
      const [count] = await db.sql<{ n: number }>(`scim-users-count-${c ?? 'all'}`, countSql(c), c ? [directoryId, simple.value] : [directoryId]);
      return Number(count?.n ?? 0);
    });
  },
  /**
   * The number of live users and the key at every `step`-th position of the default order, in
   * one scan of the (directoryId, createdAt, id, deletedAt) index: what deep pages seek to.
   * The window orders by the table's columns (the output's "id" is text).
   */
  async liveIndex(db: Database, directoryId: string, step: number): Promise<{ total: number; anchors: { position: number; key: ListKey }[] }> {
    const rows = await db.sql<{ createdAt: Date; id: string; position: number; total: number }>('scim-users-live-index', `
      SELECT "createdAt", "id"::text AS "id", "position"::int AS "position", "total"::int AS "total" FROM (
        SELECT "createdAt", "id", row_number() OVER w - 1 AS "position", count(*) OVER () AS "total"
        ${LIVE} WINDOW w AS (ORDER BY "ScimUser"."createdAt", "ScimUser"."id")
      ) t WHERE "position" % $2 = 0 ORDER BY "position"`, [directoryId, step]);
    return { total: Number(rows[0]?.total ?? 0), anchors: rows.map((r) => ({ position: Number(r.position), key: { createdAt: r.createdAt, id: r.id } })) };
  },
  /** list, through Prisma: any filter and sort the SCIM surface compiles, deep pages. */
  async listGeneral(
    tx: Tx, directoryId: string, where: Prisma.ScimUserWhereInput, orderBy: Prisma.ScimUserOrderByWithRelationInput[], skip: number, take: number,
    knownTotal: number | null = null,
  ): Promise<{ total: number; rows: ScimUserRow[]; counted: boolean }> {
    const scoped = { AND: [{ directoryId, deletedAt: null }, where] };
    if (take <= 0) return knownTotal !== null ? { total: knownTotal, rows: [], counted: false } : { total: await tx.scimUser.count({ where: scoped }), rows: [], counted: true };
    const rows = skip >= DEEP_PAGE ? await deepPage(tx, scoped, orderBy, skip, take) : await tx.scimUser.findMany({ where: scoped, orderBy, skip, take });
    return withTotal(rows, skip, take, knownTotal, () => tx.scimUser.count({ where: scoped }));
  },
  /** Other live SCIM users of any directory of the org linked to the account, and whether any is active. */
  async activeLinks(tx: SqlTx, orgId: string, accountId: string, exceptId: string): Promise<number> {
    const [row] = await tx.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM "ScimUser"
      WHERE "orgId" = ${orgId}::uuid AND "accountId" = ${accountId}::uuid AND "deletedAt" IS NULL AND "active" AND "id" <> ${exceptId}::uuid`;
    return Number(row?.n ?? 0);
  },
  /** Other live SCIM users of any directory of the org linked to the account, active or not. */
  async otherLiveLinks(tx: SqlTx, orgId: string, accountId: string, exceptId: string): Promise<number> {
    const [row] = await tx.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM "ScimUser"
      WHERE "orgId" = ${orgId}::uuid AND "accountId" = ${accountId}::uuid AND "deletedAt" IS NULL AND "id" <> ${exceptId}::uuid`;
    return Number(row?.n ?? 0);
  },
  /**
   * Sync issues of a directory, in SQL: live users with no usable email (not linked to any
   * account), linked to an external account (email domain not verified by the org), or whose
   * new address the account could not take (pendingEmail: another account holds it, or the
   * account is shared with another SCIM user).
   */
  async syncIssues(tx: Tx, orgId: string, directoryId: string, page: PageRequest) {
    const rows = await tx.scimUser.findMany({
      where: {
        orgId, directoryId, deletedAt: null, OR: [{ accountId: null }, { account: { managed: false } }, { pendingEmail: { not: null } }], ...afterCursor(page.cursor),
      },
      orderBy: [...orderBy()],
      take: page.limit + 1,
      select: {
        id: true, userName: true, externalId: true, active: true, createdAt: true, pendingEmail: true,
        account: { select: { id: true, email: true, emailDomain: true } },
      },
    });
    return toPage(rows, page.limit, (r) => r.account && r.pendingEmail !== null
      ? { scimUserId: r.id, userName: r.userName, externalId: r.externalId, active: r.active, accountId: r.account.id, email: r.account.email,
          issue: 'email-conflict' as const, pendingEmail: r.pendingEmail, detail: '' /* the service says why (directory-service syncIssues) */ }
      : r.account
      ? { scimUserId: r.id, userName: r.userName, externalId: r.externalId, active: r.active, accountId: r.account.id, email: r.account.email,
          issue: 'external-account' as const, detail: `${r.account.emailDomain} is not a verified domain of the org: the account is external, not managed (verify the domain to manage it)` }
      : { scimUserId: r.id, userName: r.userName, externalId: r.externalId, active: r.active, accountId: null, email: null,
          issue: 'no-email' as const, detail: 'the user has no email address (emails[].value, or an email userName): it is linked to no account' });
  },
  /** Deletes SCIM records tombstoned before `before` (their accounts stay, disabled). */
  async purgeTombstones(tx: Tx, before: Date): Promise<number> {
    return (await tx.scimUser.deleteMany({ where: { deletedAt: { lt: before } } })).count;
  },
  /** Locks the user row FOR UPDATE (a DELETE's lock: group member adds, which key-share it, wait). */
  async lockForDelete(tx: SqlTx, id: string): Promise<void> {
    await tx.$executeRaw`SELECT 1 FROM "ScimUser" WHERE "id" = ${id}::uuid FOR UPDATE`;
  },
  async removeMemberships(tx: SqlTx, userId: string): Promise<void> {
    await tx.$executeRaw`DELETE FROM "ScimGroupMember" WHERE "userId" = ${userId}::uuid`;
  },
  /** Live ids among `ids` in this directory (group member validation). */
  async existingIds(tx: Tx, directoryId: string, ids: string[]): Promise<Set<string>> {
    const rows = await tx.scimUser.findMany({ where: { directoryId, deletedAt: null, id: { in: ids } }, select: { id: true } });
    return new Set(rows.map((r) => r.id));
  },
  async displayNames(tx: Tx, ids: string[]): Promise<Map<string, string | null>> {
    const rows = await tx.scimUser.findMany({ where: { id: { in: ids } }, select: { id: true, displayName: true, userName: true } });
    return new Map(rows.map((r) => [r.id, r.displayName ?? r.userName]));
  },
};
