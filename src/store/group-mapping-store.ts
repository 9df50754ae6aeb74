import { Prisma } from '../generated/prisma/client.js';
import type { SqlTx, Tx } from './transaction.js';
import { afterCursor, orderBy, toPage, type PageRequest } from './paging.js';
import type { AccessRole, Product } from '../domain/types.js';

export type GroupMappingRow = {
  id: string; orgId: string; directoryId: string; groupName: string; siteId: string; product: Product; role: AccessRole; createdAt: Date;
};

/**
 * Which accounts' group access to recompute: those of some users of the directory (and, when a
 * user moved to another account, the accounts it left), or all of it.
 */
export type GroupAccessScope = { userIds: string[]; accountIds?: string[] } | 'all';

export const grantedByMapping = (mappingId: string) => `group:${mappingId}`;

/**
 * The accounts whose group-granted access is recomputed. For 'all' this includes accounts that
 * still hold access through one of the directory's mappings but no longer have a SCIM user in it.
 */
function scopeSql(orgId: string, directoryId: string, scope: GroupAccessScope): Prisma.Sql {
  if (scope === 'all') {
    return Prisma.sql`
      SELECT u."accountId" FROM "ScimUser" u WHERE u."orgId" = ${orgId}::uuid AND u."directoryId" = ${directoryId}::uuid
      UNION
      SELECT pa."accountId" FROM "ProductAccess" pa JOIN "GroupMapping" m ON pa."grantedBy" = 'group:' || m."id"::text
      WHERE pa."orgId" = ${orgId}::uuid AND m."directoryId" = ${directoryId}::uuid`;
  }
  // One text parameter however many ids: no bind-parameter limit, the same SQL on PGlite and PostgreSQL.
  const users = Prisma.sql`
    SELECT u."accountId" FROM "ScimUser" u
    WHERE u."orgId" = ${orgId}::uuid AND u."directoryId" = ${directoryId}::uuid
      AND u."id" = ANY(string_to_array(${scope.userIds.join(',')}, ',')::uuid[])`;
  if (!scope.accountIds?.length) return users;
  return Prisma.sql`${users}
    UNION
    SELECT a."id" FROM "Account" a WHERE a."orgId" = ${orgId}::uuid AND a."id" = ANY(string_to_array(${scope.accountIds.join(',')}, ',')::uuid[])`;
}

/**
 * The group access the accounts in scope should hold through this directory: one row per
 * (account, site, product, mapping) for every live, active SCIM user of the directory linked to
 * the account, through every group it is a member of whose normalised displayName a mapping names,
 * where the site still hosts the product.
 */
function desiredSql(orgId: string, directoryId: string): Prisma.Sql {
  return Prisma.sql`
    SELECT DISTINCT u."accountId", m."siteId", m."product", m."role", 'group:' || m."id"::text AS "grantedBy"
    FROM "ScimUser" u
    JOIN "ScimGroupMember" gm ON gm."userId" = u."id"
    JOIN "ScimGroup" g ON g."id" = gm."groupId" AND g."directoryId" = u."directoryId"
    JOIN "GroupMapping" m ON m."directoryId" = u."directoryId" AND m."groupName" = g."displayNameNormalized"
    JOIN "Site" s ON s."id" = m."siteId" AND s."orgId" = m."orgId" AND m."product" = ANY(s."products")
    WHERE u."orgId" = ${orgId}::uuid AND u."directoryId" = ${directoryId}::uuid
      AND u."deletedAt" IS NULL AND u."active"
      AND u."accountId" IN (SELECT "accountId" FROM scope)`;
}

export const groupMappingStore = {
  async create(tx: Tx, orgId: string, m: { directoryId: string; groupName: string; siteId: string; product: Product; role: AccessRole }): Promise<GroupMappingRow> {
    return tx.groupMapping.create({ data: { ...m, orgId } });
  },
  async get(tx: Tx, orgId: string, directoryId: string, id: string): Promise<GroupMappingRow | null> {
    return tx.groupMapping.findFirst({ where: { id, orgId, directoryId } });
  },
  async list(tx: Tx, orgId: string, directoryId: string, page: PageRequest) {
    const rows = await tx.groupMapping.findMany({ where: { orgId, directoryId, ...afterCursor(page.cursor) }, orderBy: [...orderBy()], take: page.limit + 1 });
    return toPage(rows, page.limit, (r) => r);
  },
  async delete(tx: Tx, orgId: string, id: string): Promise<void> {
    await tx.groupMapping.deleteMany({ where: { id, orgId } });
  },

  /** Whether the directory has any mapping (read under the mapping lock, it stays true or false until commit). */
  /** Live SCIM users of the directory in a group whose normalised displayName is groupName. */
  async memberIdsOfGroupName(tx: Tx, orgId: string, directoryId: string, groupName: string): Promise<string[]> {
    const rows = await tx.$queryRaw<{ id: string }[]>`
      SELECT DISTINCT gm."userId"::text AS id
      FROM "ScimGroupMember" gm JOIN "ScimGroup" g ON g."id" = gm."groupId"
      WHERE g."orgId" = ${orgId}::uuid AND g."directoryId" = ${directoryId}::uuid AND g."displayNameNormalized" = ${groupName}`;
    return rows.map((r) => r.id);
  },

  /** Drops every access row a mapping granted; returns the accounts that lost one. */
  async revokeAllOf(tx: Tx, orgId: string, mappingId: string): Promise<{ accountIds: string[]; rows: number }> {
    const rows = await tx.$queryRaw<{ accountId: string }[]>`
      DELETE FROM "ProductAccess" WHERE "orgId" = ${orgId}::uuid AND "grantedBy" = ${grantedByMapping(mappingId)}
      RETURNING "accountId"::text AS "accountId"`;
    return { accountIds: [...new Set(rows.map((r) => r.accountId))], rows: rows.length };
  },

  /**
   * False when revokeUndesired and grantDesired cannot change anything for the scope: the
   * directory has no mapping (nothing is desired) and no account in scope holds group-granted
   * access (nothing to revoke). One cheap statement; the two it can spare take milliseconds to
   * plan (tens on PGlite), and run under the directory's group-access lock.
   */
  async mayChange(tx: SqlTx, orgId: string, directoryId: string, scope: GroupAccessScope): Promise<boolean> {
    const rows = await tx.$queryRaw<{ work: boolean }[]>`
      WITH scope AS (${scopeSql(orgId, directoryId, scope)})
      SELECT EXISTS (SELECT 1 FROM "GroupMapping" m WHERE m."directoryId" = ${directoryId}::uuid)
          OR EXISTS (
            SELECT 1 FROM "ProductAccess" pa
            WHERE pa."orgId" = ${orgId}::uuid AND pa."grantedBy" LIKE 'group:%' AND pa."accountId" IN (SELECT "accountId" FROM scope)
          ) AS "work"`;
    return rows[0]?.work !== false;
  },

  /**
   * Removes group-granted access rows of the accounts in scope that the directory's mappings no
   * longer justify (also rows of mappings that no longer exist). One statement for the whole scope.
   */
  async revokeUndesired(tx: SqlTx, orgId: string, directoryId: string, scope: GroupAccessScope): Promise<string[]> {
    const rows = await tx.$queryRaw<{ accountId: string }[]>`
      WITH scope AS (${scopeSql(orgId, directoryId, scope)}), desired AS (${desiredSql(orgId, directoryId)})
      DELETE FROM "ProductAccess" pa
      WHERE pa."orgId" = ${orgId}::uuid
        AND pa."accountId" IN (SELECT "accountId" FROM scope)
        AND (
          pa."grantedBy" IN (SELECT 'group:' || m."id"::text FROM "GroupMapping" m WHERE m."orgId" = ${orgId}::uuid AND m."directoryId" = ${directoryId}::uuid)
          OR (pa."grantedBy" LIKE 'group:%' AND NOT EXISTS (SELECT 1 FROM "GroupMapping" m2 WHERE 'group:' || m2."id"::text = pa."grantedBy"))
        )
        AND NOT EXISTS (
          SELECT 1 FROM desired d
          WHERE d."accountId" = pa."accountId" AND d."siteId" = pa."siteId" AND d."product" = pa."product"
            AND d."role" = pa."role" AND d."grantedBy" = pa."grantedBy"
        )
      RETURNING pa."accountId"::text AS "accountId"`;
    return rows.map((r) => r.accountId);
  },

  /** Inserts the group access the accounts in scope should hold and do not; one statement. */
  async grantDesired(tx: SqlTx, orgId: string, directoryId: string, scope: GroupAccessScope): Promise<string[]> {
    const rows = await tx.$queryRaw<{ accountId: string }[]>`
      WITH scope AS (${scopeSql(orgId, directoryId, scope)}), desired AS (${desiredSql(orgId, directoryId)})
      INSERT INTO "ProductAccess" ("id", "orgId", "siteId", "accountId", "product", "role", "grantedBy")
      SELECT gen_random_uuid(), ${orgId}::uuid, d."siteId", d."accountId", d."product", d."role", d."grantedBy" FROM desired d
      ON CONFLICT ("accountId", "siteId", "product", "grantedBy") DO NOTHING
      RETURNING "accountId"::text AS "accountId"`;
    return rows.map((r) => r.accountId);
  },
};
