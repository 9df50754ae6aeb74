import type { Database } from '../store/database.js';
import { scimIgnoredAttributeStore } from '../store/scim-ignored-attribute-store.js';
import type { DirectoryContext } from './scim-user-service.js';

/** Entries remembered per process before the memory starts over (each costs one INSERT again). */
const REMEMBERED = 10_000;

/**
 * Attributes a directory sent that the schema does not know (issue 13, defect 6): ignored by POST,
 * PUT and PATCH alike, recorded once per directory and resource type and listed with the
 * directory's sync issues. The process remembers what it has recorded, so an IdP sending the
 * same custom mapping with every push costs one INSERT, not one per request.
 */
export function createIgnoredAttributes(db: Database) {
  const recorded = new Set<string>();
  return {
    async note(ctx: DirectoryContext, resourceType: 'User' | 'Group', attributes: readonly string[]): Promise<void> {
      const fresh = [...new Set(attributes)].filter((a) => !recorded.has(`${ctx.directoryId}|${resourceType}|${a}`));
      if (!fresh.length) return;
      await scimIgnoredAttributeStore.record(db, ctx.orgId, ctx.directoryId, resourceType, fresh);
      if (recorded.size > REMEMBERED) recorded.clear();
      for (const a of fresh) recorded.add(`${ctx.directoryId}|${resourceType}|${a}`);
    },
  };
}

export type IgnoredAttributes = ReturnType<typeof createIgnoredAttributes>;
