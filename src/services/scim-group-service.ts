import type { Database } from '../store/database.js';
import { inTransaction, isUniqueViolation, type Tx } from '../store/transaction.js';
import { scimGroupStore, type ScimGroupRow } from '../store/scim-group-store.js';
import { scimUserStore } from '../store/scim-user-store.js';
import type { Prisma } from '../generated/prisma/client.js';
import { Conflict, InvalidInput, NotFound, PreconditionFailed } from '../domain/errors.js';
import { audit } from './audit.js';
import { syncGroupAccess } from './group-access.js';
import type { DirectoryContext } from './scim-user-service.js';

export type ScimGroupInput = { displayName: string; externalId: string | null; members: { id: string; display: string | null }[]; resource: Record<string, unknown> };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function createScimGroupService(db: Database) {
  /**
   * Members must be live users of this directory. Another directory's user id is refused
   * (400 invalidValue, API.md): a push never links across tenants. An id that names no user at
   * all is skipped and reported in the request's event — Entra sends adds for users whose own
   * provisioning failed, and refusing the whole group change would lose the valid members too.
   */
  async function checkMembers(tx: Tx, ctx: DirectoryContext, members: ScimGroupInput['members']) {
    const byId = new Map(members.map((m) => [m.id.toLowerCase(), m.display]));
    const ids = [...byId.keys()];
    const foreign = await scimGroupStore.foreignUserIds(tx, ctx.directoryId, ids);
    if (foreign.length) {
      throw new InvalidInput('members of another directory', foreign.slice(0, 20).map((v) => ({ path: 'members', message: `user ${v} belongs to another directory` })));
    }
    const known = await scimUserStore.existingIds(tx, ctx.directoryId, ids.filter((i) => UUID.test(i)));
    return {
      members: ids.filter((i) => known.has(i)).map((id) => ({ id, display: byId.get(id) ?? null })),
      skipped: ids.filter((i) => !known.has(i)),
    };
  }

  function mapUnique(err: unknown, displayName: string): never {
    if (isUniqueViolation(err)) throw new Conflict('uniqueness', `a group named "${displayName}" already exists in this directory`);
    throw err;
  }

  return {
    async get(ctx: DirectoryContext, id: string): Promise<ScimGroupRow> {
      const g = await scimGroupStore.get(db.prisma, ctx.directoryId, id);
      if (!g) throw new NotFound('Group', id);
      return g;
    },
    memberIds: (id: string) => scimGroupStore.memberIds(db.prisma, id),
    membersOf: (ids: string[]) => scimGroupStore.membersOf(db.prisma, ids),
    memberNames: (ids: string[]) => scimUserStore.displayNames(db.prisma, ids),

    list(ctx: DirectoryContext, where: Prisma.ScimGroupWhereInput, orderBy: Prisma.ScimGroupOrderByWithRelationInput[], skip: number, take: number) {
      return scimGroupStore.list(db.prisma, ctx.directoryId, where, orderBy, skip, take);
    },

    async create(ctx: DirectoryContext, input: ScimGroupInput): Promise<{ group: ScimGroupRow; skipped: string[] }> {
      try {
        return await inTransaction(db, async (tx) => {
          const { members, skipped } = await checkMembers(tx, ctx, input.members);
          const g = await scimGroupStore.create(tx, ctx.orgId, ctx.directoryId, input, ctx.now);
          const changed = await scimGroupStore.setMembers(tx, g, members);
          await audit(tx, ctx, { action: 'scim.group.create', targetType: 'scim-group', targetId: g.id, after: { displayName: g.displayName, members: members.length, skippedUnknownMembers: skipped } });
          await syncGroupAccess(tx, ctx, ctx.directoryId, changed, 'scim-group-membership');
          return { group: g, skipped };
        });
      } catch (err) {
        mapUnique(err, input.displayName);
      }
    },

    /** PUT, and the write half of PATCH. Renames re-evaluate every member (mappings match group names). */
    async replace(ctx: DirectoryContext, id: string, input: ScimGroupInput, expectedVersion: number | null): Promise<{ group: ScimGroupRow; skipped: string[] }> {
      try {
        return await inTransaction(db, async (tx) => {
          const before = await scimGroupStore.get(tx, ctx.directoryId, id);
          if (!before) throw new NotFound('Group', id);
          if (expectedVersion !== null && before.version !== expectedVersion) {
            throw new PreconditionFailed(`the group changed since version ${expectedVersion} (now ${before.version}); read it again`);
          }
          const { members, skipped } = await checkMembers(tx, ctx, input.members);
          const oldMembers = await scimGroupStore.memberIds(tx, id);
          const g = await scimGroupStore.update(tx, before, before.version, input, ctx.now);
          if (!g) throw new PreconditionFailed('the group changed while this request was applied; retry');
          const changed = await scimGroupStore.setMembers(tx, g, members);
          const renamed = before.displayNameNormalized !== g.displayNameNormalized;
          if (renamed || changed.length || before.externalId !== g.externalId) {
            await audit(tx, ctx, {
              action: 'scim.group.update', targetType: 'scim-group', targetId: id,
              before: { displayName: before.displayName, members: oldMembers.length },
              after: { displayName: g.displayName, members: members.length, changedMembers: changed.length, skippedUnknownMembers: skipped },
            });
          }
          const affected = renamed ? [...new Set([...oldMembers, ...members.map((m) => m.id)])] : changed;
          await syncGroupAccess(tx, ctx, ctx.directoryId, affected, renamed ? 'scim-group-renamed' : 'scim-group-membership');
          return { group: g, skipped };
        });
      } catch (err) {
        mapUnique(err, input.displayName);
      }
    },

    async delete(ctx: DirectoryContext, id: string): Promise<void> {
      await inTransaction(db, async (tx) => {
        const before = await scimGroupStore.get(tx, ctx.directoryId, id);
        if (!before) throw new NotFound('Group', id);
        const members = await scimGroupStore.memberIds(tx, id);
        await scimGroupStore.delete(tx, ctx.directoryId, id);
        await audit(tx, ctx, { action: 'scim.group.delete', targetType: 'scim-group', targetId: id, before: { displayName: before.displayName, members: members.length } });
        await syncGroupAccess(tx, ctx, ctx.directoryId, members, 'scim-group-deleted');
      });
    },
  };
}

export type ScimGroupService = ReturnType<typeof createScimGroupService>;
