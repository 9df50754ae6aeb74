import { deferWrite, type SqlTx, type Tx } from '../store/transaction.js';
import { directoryStore } from '../store/directory-store.js';
import { groupMappingStore, type GroupAccessScope } from '../store/group-mapping-store.js';
import type { NewDelta } from '../store/delta-store.js';
import { syncBillability } from './billability-sync.js';
import type { RequestContext } from './context.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The key a SCIM group is matched on: RFC 7643 §4.2 displayName, compared ignoring case.
 * GroupMapping.groupName and ScimGroup.displayNameNormalized must both be computed with this
 * function so that mappings and groups agree (SQL lower() differs from JS outside ASCII).
 */
export function normalizeGroupName(displayName: string): string {
  return displayName.toLowerCase();
}

/**
 * The directory-level locks of a group write, taken before its group row (lock order: org →
 * directory → SCIM group/user rows → policies → accounts; docs/decisions.md): the mapping lock
 * shared and, when the directory has a mapping, the group-access lock. applyGroupAccess later in
 * the same transaction takes them again (advisory locks are re-entrant), so it waits for nothing
 * while holding the group row. Without a mapping there is no access to grant and nothing to wait for.
 */
export async function lockDirectoryForGroupWrite(tx: SqlTx, directoryId: string): Promise<void> {
  if (!UUID.test(directoryId)) return;
  const dir = directoryId.toLowerCase();
  await deferWrite(tx, directoryStore.lockMappingsShared(tx, dir));
  await deferWrite(tx, directoryStore.lockGroupAccessIfMapped(tx, dir));
}

export type GroupAccessChange = { granted: number; revoked: number; accountIds: string[]; deltas: NewDelta[] };

/**
 * Brings the group-granted product access (ProductAccess rows with grantedBy `group:<mappingId>`)
 * of some SCIM users of a directory in line with their current group memberships and the
 * directory's mappings, inside the caller's transaction, then recomputes billability of the
 * accounts that changed (billable deltas with `cause`).
 *
 * - A user counts only while live: not tombstoned (deletedAt null) and active. Tombstoned or
 *   inactive users lose their group-granted access; direct grants are never touched.
 * - The work is per account: an account linked to several SCIM users of the directory keeps the
 *   union of what they justify. Access through other directories' mappings is left alone.
 * - Set-based: a constant number of statements whatever the number of users.
 * - `previousAccountIds`: accounts the users were linked to before this change (a user relinked
 *   to another account by an email change); they are recomputed too, so they lose what only these
 *   users justified, with their billable deltas.
 * - Two transaction-scoped advisory locks per directory. The mapping lock is taken shared here and
 *   exclusive by mapping writes: holding it, a sync sees every committed mapping and no mapping
 *   is being written. If the directory has no mapping and no account in scope holds group access,
 *   nothing can change and the sync stops there, without waiting for other syncs. Otherwise it
 *   takes the group-access lock (exclusive), so that two syncs, or a sync and a mapping write,
 *   cannot both miss each other's change.
 *
 * Does not write an audit row: the caller audits the change that caused the sync.
 */
export async function syncGroupAccess(
  tx: SqlTx, ctx: RequestContext, directoryId: string, scimUserIds: string[] | 'all', cause: string, previousAccountIds: string[] = [],
): Promise<void> {
  await applyGroupAccess(tx, ctx, directoryId, scimUserIds, cause, previousAccountIds);
}

/** syncGroupAccess, telling what changed (for the caller's audit row). */
export async function applyGroupAccess(
  tx: SqlTx, ctx: RequestContext, directoryId: string, scimUserIds: string[] | 'all', cause: string, previousAccountIds: string[] = [],
): Promise<GroupAccessChange> {
  let scope: GroupAccessScope = 'all';
  if (scimUserIds !== 'all') {
    const userIds = [...new Set(scimUserIds.filter((id) => UUID.test(id)).map((id) => id.toLowerCase()))];
    const accountIds = [...new Set(previousAccountIds.filter((id) => UUID.test(id)).map((id) => id.toLowerCase()))];
    if (!userIds.length || !UUID.test(directoryId)) return { granted: 0, revoked: 0, accountIds: [], deltas: [] };
    scope = accountIds.length ? { userIds, accountIds } : { userIds };
  } else if (!UUID.test(directoryId)) {
    return { granted: 0, revoked: 0, accountIds: [], deltas: [] };
  }
  const dir = directoryId.toLowerCase();
  await deferWrite(tx, directoryStore.lockMappingsShared(tx, dir));
  // Under the mapping lock, so it sees every mapping there is: in a directory without mappings
  // whose accounts in scope hold no group access, the two statements below would change nothing.
  const work = await groupMappingStore.mayChange(tx, ctx.orgId, directoryId, scope);
  if (!work) return { granted: 0, revoked: 0, accountIds: [], deltas: [] };
  await deferWrite(tx, directoryStore.lockGroupAccess(tx, dir));
  // Revoke first: a row whose role changed is deleted here and inserted again below.
  const revoked = await groupMappingStore.revokeUndesired(tx, ctx.orgId, directoryId, scope);
  const granted = await groupMappingStore.grantDesired(tx, ctx.orgId, directoryId, scope);
  const accountIds = [...new Set([...revoked, ...granted])];
  const deltas = await syncBillability(tx, ctx, accountIds, cause);
  return { granted: granted.length, revoked: revoked.length, accountIds, deltas };
}
