import type { Tx } from '../store/transaction.js';
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
 * - Serialised per directory with a transaction-scoped advisory lock, so that a concurrent mapping
 *   change and membership change cannot both miss each other.
 *
 * Does not write an audit row: the caller audits the change that caused the sync.
 */
export async function syncGroupAccess(tx: Tx, ctx: RequestContext, directoryId: string, scimUserIds: string[] | 'all', cause: string): Promise<void> {
  await applyGroupAccess(tx, ctx, directoryId, scimUserIds, cause);
}

/** syncGroupAccess, telling what changed (for the caller's audit row). */
export async function applyGroupAccess(
  tx: Tx, ctx: RequestContext, directoryId: string, scimUserIds: string[] | 'all', cause: string,
): Promise<GroupAccessChange> {
  let scope: GroupAccessScope = 'all';
  if (scimUserIds !== 'all') {
    const userIds = [...new Set(scimUserIds.filter((id) => UUID.test(id)).map((id) => id.toLowerCase()))];
    if (!userIds.length || !UUID.test(directoryId)) return { granted: 0, revoked: 0, accountIds: [], deltas: [] };
    scope = { userIds };
  } else if (!UUID.test(directoryId)) {
    return { granted: 0, revoked: 0, accountIds: [], deltas: [] };
  }
  await directoryStore.lockGroupAccess(tx, directoryId.toLowerCase());
  // Checked under the lock, so it sees what the two statements below would see: in a directory
  // without mappings whose accounts hold no group access, they would change nothing.
  const work = await groupMappingStore.mayChange(tx, ctx.orgId, directoryId, scope);
  // Revoke first: a row whose role changed is deleted here and inserted again below.
  const revoked = work ? await groupMappingStore.revokeUndesired(tx, ctx.orgId, directoryId, scope) : [];
  const granted = work ? await groupMappingStore.grantDesired(tx, ctx.orgId, directoryId, scope) : [];
  const accountIds = [...new Set([...revoked, ...granted])];
  const deltas = await syncBillability(tx, ctx, accountIds, cause);
  return { granted: granted.length, revoked: revoked.length, accountIds, deltas };
}
