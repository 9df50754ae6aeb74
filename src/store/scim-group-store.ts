import type { SqlTx, Tx } from './transaction.js';
import { Prisma } from '../generated/prisma/client.js';
import { jsonParam } from './json-param.js';

export type ScimGroupRow = {
  id: string; orgId: string; directoryId: string; displayName: string; displayNameNormalized: string; externalId: string | null;
  resource: unknown; version: number; createdAt: Date; updatedAt: Date;
};

/** Ids are UUIDs; anything else names nothing (and must not reach PostgreSQL's uuid cast as a 500). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const json = (v: unknown) => JSON.parse(JSON.stringify(v)) as Prisma.InputJsonValue;

const groupColumns = Prisma.raw(
  'g."id"::text AS "id", g."orgId"::text AS "orgId", g."directoryId"::text AS "directoryId", g."displayName", g."displayNameNormalized", ' +
  'g."externalId", g."resource", g."version", g."createdAt", g."updatedAt"');
/** Ids as one text parameter (no bind-parameter limit; the same SQL on PGlite and PostgreSQL). */
const idArray = (ids: string[]) => Prisma.sql`string_to_array(${ids.join(',')}, ',')::uuid[]`;

/** What adding members did, id by id (ids lower-cased). */
export type MemberAddResult = {
  /** Users of another directory (the caller refuses the request: nothing may be kept). */
  foreign: string[];
  /** Live users of the directory among the ids (members now). */
  live: string[];
  /** Ids naming no live user of the directory: not added. */
  skipped: string[];
  /** New members. */
  added: string[];
  /** Members already there whose display name changed. */
  redisplayed: string[];
};

export const scimGroupStore = {
  async get(tx: Tx, directoryId: string, id: string): Promise<ScimGroupRow | null> {
    return UUID.test(id) ? tx.scimGroup.findFirst({ where: { id, directoryId } }) : null;
  },
  async create(tx: Tx, orgId: string, directoryId: string, g: { displayName: string; externalId: string | null; resource: unknown }, at: Date): Promise<ScimGroupRow> {
    return tx.scimGroup.create({
      data: { orgId, directoryId, displayName: g.displayName, displayNameNormalized: g.displayName.toLowerCase(), externalId: g.externalId, resource: json(g.resource), createdAt: at, updatedAt: at },
    });
  },
  async memberIds(tx: Tx, groupId: string): Promise<string[]> {
    return (await tx.scimGroupMember.findMany({ where: { groupId }, orderBy: { createdAt: 'asc' }, select: { userId: true } })).map((m) => m.userId);
  },
  /**
   * The group, locked for a write (FOR NO KEY UPDATE: concurrent writers of the group wait, member
   * rows referencing it can still be inserted). Reads the row's latest version after any wait.
   */
  async lockForWrite(tx: SqlTx, directoryId: string, id: string): Promise<ScimGroupRow | null> {
    if (!UUID.test(id)) return null;
    const rows = await tx.$queryRaw<ScimGroupRow[]>`
      SELECT ${groupColumns} FROM "ScimGroup" g WHERE g."id" = ${id}::uuid AND g."directoryId" = ${directoryId}::uuid FOR NO KEY UPDATE OF g`;
    return rows[0] ?? null;
  },
  async memberCount(tx: SqlTx, groupId: string): Promise<number> {
    const rows = await tx.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS "n" FROM "ScimGroupMember" WHERE "groupId" = ${groupId}::uuid`;
    return rows[0]?.n ?? 0;
  },
  /** The member rows with the display names the IdP sent, in the order groups render them. */
  async membersForPatch(tx: SqlTx, groupId: string): Promise<{ userId: string; display: string | null }[]> {
    return tx.$queryRaw<{ userId: string; display: string | null }[]>`
      SELECT "userId"::text AS "userId", "display" FROM "ScimGroupMember" WHERE "groupId" = ${groupId}::uuid ORDER BY "createdAt", "userId"`;
  },
  async memberIdsSql(tx: SqlTx, groupId: string): Promise<string[]> {
    const rows = await tx.$queryRaw<{ id: string }[]>`SELECT "userId"::text AS "id" FROM "ScimGroupMember" WHERE "groupId" = ${groupId}::uuid`;
    return rows.map((r) => r.id);
  },
  /**
   * Adds members as rows, in one statement whatever their number: INSERT … ON CONFLICT, so a member
   * already there stays (its display name updated when one is sent and differs) and concurrent adds
   * of other members do not conflict. Only live users of the group's directory are inserted, and
   * nothing is when any id names a user of another directory. Ids must be distinct lower-case UUIDs.
   * Each user row is share-locked: a concurrent delete of the user either commits first (the user
   * is then skipped) or waits for this transaction and removes the new membership with the others.
   */
  async addMembers(tx: SqlTx, group: Pick<ScimGroupRow, 'id' | 'orgId' | 'directoryId'>, members: { id: string; display: string | null }[]): Promise<MemberAddResult> {
    const out: MemberAddResult = { foreign: [], live: [], skipped: [], added: [], redisplayed: [] };
    if (!members.length) return out;
    const rows = await tx.$queryRaw<{ id: string; foreign: boolean; live: boolean; inserted: boolean | null }[]>`
      WITH wanted AS (
        SELECT w."id"::uuid AS "id", w."display" FROM json_to_recordset(${jsonParam(members)}::json) AS w("id" text, "display" text)
      ), "foreign" AS (
        SELECT u."id" FROM "ScimUser" u JOIN wanted w ON w."id" = u."id" WHERE u."directoryId" <> ${group.directoryId}::uuid
      ), live AS (
        SELECT u."id", w."display" FROM "ScimUser" u JOIN wanted w ON w."id" = u."id"
        WHERE u."directoryId" = ${group.directoryId}::uuid AND u."deletedAt" IS NULL AND NOT EXISTS (SELECT 1 FROM "foreign")
        FOR KEY SHARE OF u
      ), ins AS (
        INSERT INTO "ScimGroupMember" ("orgId", "directoryId", "groupId", "userId", "display")
        SELECT ${group.orgId}::uuid, ${group.directoryId}::uuid, ${group.id}::uuid, l."id", l."display" FROM live l
        ON CONFLICT ("groupId", "userId") DO UPDATE SET "display" = EXCLUDED."display"
          WHERE EXCLUDED."display" IS NOT NULL AND "ScimGroupMember"."display" IS DISTINCT FROM EXCLUDED."display"
        RETURNING "userId", (xmax = 0) AS "inserted"
      )
      SELECT w."id"::text AS "id", f."id" IS NOT NULL AS "foreign", l."id" IS NOT NULL AS "live", i."inserted"
      FROM wanted w LEFT JOIN "foreign" f ON f."id" = w."id" LEFT JOIN live l ON l."id" = w."id" LEFT JOIN ins i ON i."userId" = w."id"`;
    for (const r of rows) {
      if (r.foreign) out.foreign.push(r.id);
      else if (!r.live) out.skipped.push(r.id);
      else out.live.push(r.id);
      if (r.inserted === true) out.added.push(r.id);
      else if (r.inserted === false) out.redisplayed.push(r.id);
    }
    return out;
  },
  /** Removes these members (one DELETE); returns the users that were members. */
  async removeMembers(tx: SqlTx, groupId: string, userIds: string[]): Promise<string[]> {
    if (!userIds.length) return [];
    const rows = await tx.$queryRaw<{ id: string }[]>`
      DELETE FROM "ScimGroupMember" WHERE "groupId" = ${groupId}::uuid AND "userId" = ANY(${idArray(userIds)})
      RETURNING "userId"::text AS "id"`;
    return rows.map((r) => r.id);
  },
  /** Removes every member but these (none: all of them); returns the users removed. */
  async removeMembersExcept(tx: SqlTx, groupId: string, keep: string[]): Promise<string[]> {
    const rows = keep.length
      ? await tx.$queryRaw<{ id: string }[]>`
          DELETE FROM "ScimGroupMember" WHERE "groupId" = ${groupId}::uuid AND NOT ("userId" = ANY(${idArray(keep)}))
          RETURNING "userId"::text AS "id"`
      : await tx.$queryRaw<{ id: string }[]>`DELETE FROM "ScimGroupMember" WHERE "groupId" = ${groupId}::uuid RETURNING "userId"::text AS "id"`;
    return rows.map((r) => r.id);
  },
  /** Writes the group's attributes (or only a new version, when null) under the lock lockForWrite took. */
  async write(tx: SqlTx, id: string, g: { displayName: string; externalId: string | null; resource: unknown } | null, at: Date): Promise<ScimGroupRow> {
    const rows = g
      ? await tx.$queryRaw<ScimGroupRow[]>`
          UPDATE "ScimGroup" g SET "displayName" = ${g.displayName}, "displayNameNormalized" = ${g.displayName.toLowerCase()}, "externalId" = ${g.externalId},
                 "resource" = ${jsonParam(g.resource)}::jsonb, "version" = g."version" + 1, "updatedAt" = ${at}::timestamptz
          WHERE g."id" = ${id}::uuid RETURNING ${groupColumns}`
      : await tx.$queryRaw<ScimGroupRow[]>`
          UPDATE "ScimGroup" g SET "version" = g."version" + 1, "updatedAt" = ${at}::timestamptz WHERE g."id" = ${id}::uuid RETURNING ${groupColumns}`;
    return rows[0]!;
  },
  async deleteSql(tx: SqlTx, id: string): Promise<void> {
    await tx.$executeRaw`DELETE FROM "ScimGroup" WHERE "id" = ${id}::uuid`;
  },
  async list(tx: Tx, directoryId: string, where: Prisma.ScimGroupWhereInput, orderBy: Prisma.ScimGroupOrderByWithRelationInput[], skip: number, take: number) {
    const scoped = { AND: [{ directoryId }, where] };
    const total = await tx.scimGroup.count({ where: scoped });
    const rows = take > 0 && skip < total ? await tx.scimGroup.findMany({ where: scoped, orderBy, skip, take }) : [];
    return { total, rows };
  },
  async membersOf(tx: Tx, groupIds: string[]): Promise<Map<string, { userId: string; display: string | null }[]>> {
    const rows = await tx.scimGroupMember.findMany({ where: { groupId: { in: groupIds } }, orderBy: [{ createdAt: 'asc' }, { userId: 'asc' }], select: { groupId: true, userId: true, display: true } });
    const out = new Map<string, { userId: string; display: string | null }[]>(groupIds.map((g) => [g, []]));
    for (const r of rows) out.get(r.groupId)!.push({ userId: r.userId, display: r.display });
    return out;
  },
  /** Which of these ids are live users of some other directory (a cross-tenant reference, refused). */
  async foreignUserIds(tx: Tx, directoryId: string, ids: string[]): Promise<string[]> {
    const valid = ids.filter((i) => UUID.test(i));
    if (!valid.length) return [];
    return (await tx.scimUser.findMany({ where: { id: { in: valid }, directoryId: { not: directoryId } }, select: { id: true } })).map((r) => r.id);
  },
};
