import type { SqlTx, Tx } from './transaction.js';
import { afterCursor, orderBy, toPage, type PageRequest } from './paging.js';

export type IdpKind = 'okta' | 'entra' | 'google' | 'generic';

/** A directory as admins see it: no token hashes, with live user and group counts. */
export type DirectoryRow = {
  id: string; orgId: string; name: string; idp: IdpKind; tokenIssuedAt: Date; previousTokenExpiresAt: Date | null;
  tokenLastUsedAt: Date | null; createdAt: Date; userCount: number; groupCount: number;
};

/** What authenticating a SCIM request needs; only the directory service's token check reads it. */
export type DirectoryCredentials = {
  id: string; orgId: string; name: string; idp: IdpKind; tokenHash: string; previousTokenHash: string | null;
  previousTokenExpiresAt: Date | null; tokenLastUsedAt: Date | null;
};

const publicSelect = {
  id: true, orgId: true, name: true, idp: true, tokenIssuedAt: true, previousTokenExpiresAt: true, tokenLastUsedAt: true, createdAt: true,
  // Counted in SQL (a correlated count per row), never by loading the users. Tombstoned users are gone for admins too.
  _count: { select: { users: { where: { deletedAt: null } }, groups: true } },
} as const;

type Selected = Omit<DirectoryRow, 'userCount' | 'groupCount'> & { _count: { users: number; groups: number } };
const flatten = ({ _count, ...d }: Selected): DirectoryRow => ({ ...d, userCount: _count.users, groupCount: _count.groups });

export const directoryStore = {
  async create(tx: Tx, orgId: string, d: { id: string; name: string; idp: IdpKind; tokenHash: string; tokenIssuedAt: Date }): Promise<DirectoryRow> {
    return flatten(await tx.directory.create({ data: { ...d, orgId }, select: publicSelect }));
  },
  async get(tx: Tx, orgId: string, id: string): Promise<DirectoryRow | null> {
    const d = await tx.directory.findFirst({ where: { id, orgId }, select: publicSelect });
    return d ? flatten(d) : null;
  },
  async list(tx: Tx, orgId: string, page: PageRequest) {
    const rows = await tx.directory.findMany({ where: { orgId, ...afterCursor(page.cursor) }, orderBy: [...orderBy()], take: page.limit + 1, select: publicSelect });
    return toPage(rows, page.limit, flatten);
  },
  /** By id alone: a SCIM request names its directory, not its org. */
  async credentials(tx: Tx, id: string): Promise<DirectoryCredentials | null> {
    return tx.directory.findUnique({
      where: { id },
      select: { id: true, orgId: true, name: true, idp: true, tokenHash: true, previousTokenHash: true, previousTokenExpiresAt: true, tokenLastUsedAt: true },
    });
  },
  /** Locks the directory row for a token rotation, so two concurrent rotations cannot lose a token. */
  async lockCredentials(tx: Tx, orgId: string, id: string): Promise<DirectoryCredentials | null> {
    const rows = await tx.$queryRaw<{ id: string }[]>`SELECT "id"::text AS id FROM "Directory" WHERE "id" = ${id}::uuid AND "orgId" = ${orgId}::uuid FOR UPDATE`;
    if (rows.length !== 1) return null;
    return directoryStore.credentials(tx, id);
  },
  async setTokens(
    tx: Tx, orgId: string, id: string,
    t: { tokenHash: string; tokenIssuedAt: Date; previousTokenHash: string | null; previousTokenExpiresAt: Date | null },
  ): Promise<void> {
    await tx.directory.updateMany({ where: { id, orgId }, data: t });
  },
  /** Advisory last-used time; the condition keeps concurrent requests from writing it more than once a minute. */
  async touch(tx: Tx, id: string, now: Date): Promise<void> {
    const before = new Date(now.getTime() - 60_000);
    await tx.directory.updateMany({
      where: { id, OR: [{ tokenLastUsedAt: null }, { tokenLastUsedAt: { lt: before } }] },
      data: { tokenLastUsedAt: now },
    });
  },
  /**
   * Serialises group-access changes of one directory (mapping writes, membership syncs that have
   * work to do) so that two of them cannot both miss each other: each side reads after the other commits.
   */
  async lockGroupAccess(tx: SqlTx, directoryId: string): Promise<void> {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${'group-access:' + directoryId}))`;
  },
  /**
   * The group-access lock, only if the directory has a mapping: one statement (no answer to wait
   * for, so it travels with the next one), read under the mapping lock taken before it.
   */
  async lockGroupAccessIfMapped(tx: SqlTx, directoryId: string): Promise<void> {
    await tx.$executeRaw`
      SELECT pg_advisory_xact_lock(hashtext(${'group-access:' + directoryId}))
      WHERE EXISTS (SELECT 1 FROM "GroupMapping" WHERE "directoryId" = ${directoryId}::uuid)`;
  },
  /**
   * The directory's mapping set, held still: shared by membership syncs (which never wait for each
   * other on it), exclusive for mapping writes. A sync that holds it and sees no mapping knows that
   * none is being created, so it can skip the group-access lock and the work (group-access.ts).
   */
  async lockMappingsShared(tx: SqlTx, directoryId: string): Promise<void> {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock_shared(hashtext(${'group-mappings:' + directoryId}))`;
  },
  async lockMappingsExclusive(tx: SqlTx, directoryId: string): Promise<void> {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${'group-mappings:' + directoryId}))`;
  },
};
