import type { Database } from './database.js';
import type { Tx } from './transaction.js';

/** How many distinct ignored attributes a directory keeps: an IdP cannot grow the table without bound. */
export const IGNORED_ATTRIBUTES_PER_DIRECTORY = 100;

const RECORD_SQL = `
INSERT INTO "ScimIgnoredAttribute" ("directoryId", "orgId", "resourceType", "attribute")
SELECT $1::uuid, $2::uuid, $3, a FROM unnest($4::text[]) AS a
WHERE (SELECT count(*) FROM "ScimIgnoredAttribute" WHERE "directoryId" = $1::uuid) < ${IGNORED_ATTRIBUTES_PER_DIRECTORY}
ON CONFLICT DO NOTHING`;

export type IgnoredAttribute = { resourceType: string; attribute: string; firstSeenAt: Date };

export const scimIgnoredAttributeStore = {
  async record(db: Database, orgId: string, directoryId: string, resourceType: string, attributes: string[]): Promise<void> {
    await db.sql('scim-ignored-attributes-record', RECORD_SQL, [directoryId, orgId, resourceType, attributes]);
  },
  async list(tx: Tx, orgId: string, directoryId: string): Promise<IgnoredAttribute[]> {
    return tx.scimIgnoredAttribute.findMany({
      where: { orgId, directoryId }, orderBy: [{ firstSeenAt: 'asc' }, { attribute: 'asc' }],
      select: { resourceType: true, attribute: true, firstSeenAt: true },
    });
  },
};
