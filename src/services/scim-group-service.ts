import type { Database } from '../store/database.js';
import { deferWrite, inSqlTransaction, inTransaction, isUniqueViolation, type SqlTx, type Tx } from '../store/transaction.js';
import { auditStore } from '../store/audit-store.js';
import { scimGroupStore, type ScimGroupRow } from '../store/scim-group-store.js';
import { scimUserStore } from '../store/scim-user-store.js';
import type { Prisma } from '../generated/prisma/client.js';
import { Conflict, InvalidInput, NotFound, PreconditionFailed } from '../domain/errors.js';
import { audit } from './audit.js';
import { lockDirectoryForGroupWrite, syncGroupAccess } from './group-access.js';
import { actorLabel } from './context.js';
import type { DirectoryContext } from './scim-user-service.js';

export type ScimGroupInput = { displayName: string; externalId: string | null; members: { id: string; display: string | null }[]; resource: Record<string, unknown> };

/** A membership change as identity providers push it; `replace` sets the member list (empty: removes every member). */
export type MemberChange =
  | { op: 'add'; members: { id: string; display: string | null }[] }
  | { op: 'remove'; ids: string[] }
  | { op: 'replace'; members: { id: string; display: string | null }[] };

/** What a group write changes: its attributes (null: kept as they are) and its members, in order. */
export type GroupPlan = { attributes: Omit<ScimGroupInput, 'members'> | null; members: MemberChange[] };

/**
 * Computes a group write from the locked current group; `members()` reads its member rows (only a
 * change that needs the whole list, such as an unusual PATCH applied to the full resource, asks).
 */
export type GroupChange = (current: ScimGroupRow, members: () => Promise<{ userId: string; display: string | null }[]>) => Promise<GroupPlan | null>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function createScimGroupService(db: Database) {


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
          const g = await scimGroupStore.create(tx, ctx.orgId, ctx.directoryId, input, ctx.now);
          // One raw statement for the whole member list, as PUT and PATCH do (issue 12 §2): Prisma's
          // query compiler runs on the event loop, and a createMany of 1000 rows with 1000-id IN lists
          // kept it busy for 200–350 ms. addMembers also refuses users of another directory (nothing is
          // inserted then; the transaction rolls back with the group) and skips ids of no live user.
          const byId = new Map(input.members.map((m) => [m.id.toLowerCase(), m.display]));
          const ids = [...byId.keys()];
          const r = await scimGroupStore.addMembers(tx, g, ids.filter((i) => UUID.test(i)).map((id) => ({ id, display: byId.get(id) ?? null })));
          if (r.foreign.length) {
            throw new InvalidInput('members of another directory', r.foreign.slice(0, 20).map((v) => ({ path: 'members', message: `user ${v} belongs to another directory` })));
          }
          const skipped = ids.filter((i) => !UUID.test(i)).concat(r.skipped);
          const changed = r.added;
          await audit(tx, ctx, { action: 'scim.group.create', targetType: 'scim-group', targetId: g.id, after: { displayName: g.displayName, members: r.live.length, skippedUnknownMembers: skipped } });
          await syncGroupAccess(tx, ctx, ctx.directoryId, changed, 'scim-group-membership');
          return { group: g, skipped };
        });
      } catch (err) {
        mapUnique(err, input.displayName);
      }
    },

    /**
     * PUT, PATCH: one transaction that takes the directory's group locks, then the group row
     * (lockDirectoryForGroupWrite: org → directory → group → accounts), compares If-Match with the
     * version it locked (`expectedVersion`; null when none was sent: then nothing is refused for
     * being concurrent, the writes queue on the row), asks `change` for the new attributes and the
     * membership changes, and applies them as rows. Concurrent changes of different members all
     * take effect. Null from `change`: nothing to do, nothing written, the version stays.
     */
    async write(ctx: DirectoryContext, id: string, expectedVersion: number | null, change: GroupChange): Promise<{ group: ScimGroupRow; skipped: string[] }> {
      let displayName: string | null = null;
      try {
        return await inSqlTransaction(db, async (tx) => {
          await lockDirectoryForGroupWrite(tx, ctx.directoryId);
          const before = await scimGroupStore.lockForWrite(tx, ctx.directoryId, id);
          if (!before) throw new NotFound('Group', id);
          if (expectedVersion !== null && before.version !== expectedVersion) {
            throw new PreconditionFailed(`If-Match W/"${expectedVersion}" does not match the current version W/"${before.version}"`);
          }
          const plan = await change(before, () => scimGroupStore.membersForPatch(tx, id));
          if (!plan) return { group: before, skipped: [] };
          displayName = plan.attributes?.displayName ?? null;
          const applied = await applyMemberChanges(tx, before, plan.members);
          if (!plan.attributes && !applied.changed.length && !applied.redisplayed) return { group: before, skipped: applied.skipped };
          const g = await scimGroupStore.write(tx, id, plan.attributes, ctx.now);
          const renamed = before.displayNameNormalized !== g.displayNameNormalized;
          if (renamed || applied.changed.length || before.externalId !== g.externalId) {
            const members = await scimGroupStore.memberCount(tx, id);
            await deferWrite(tx, auditStore.appendMany(tx, ctx.orgId, [{
              actor: actorLabel(ctx.actor), requestId: ctx.requestId, action: 'scim.group.update', targetType: 'scim-group', targetId: id,
              before: { displayName: before.displayName, members: members - applied.netAdded },
              after: { displayName: g.displayName, members, changedMembers: applied.changed.length, skippedUnknownMembers: applied.skipped },
            }]));
          }
          // A rename re-evaluates everyone who is or was in the group (mappings match group names).
          const affected = renamed ? [...new Set([...(await scimGroupStore.memberIdsSql(tx, id)), ...applied.changed])] : applied.changed;
          await syncGroupAccess(tx, ctx, ctx.directoryId, affected, renamed ? 'scim-group-renamed' : 'scim-group-membership');
          return { group: g, skipped: applied.skipped };
        });
      } catch (err) {
        if (displayName === null) throw err;
        mapUnique(err, displayName);
      }
    },

    async delete(ctx: DirectoryContext, id: string): Promise<void> {
      await inSqlTransaction(db, async (tx) => {
        await lockDirectoryForGroupWrite(tx, ctx.directoryId);
        const before = await scimGroupStore.lockForWrite(tx, ctx.directoryId, id);
        if (!before) throw new NotFound('Group', id);
        const members = await scimGroupStore.memberIdsSql(tx, id);
        await scimGroupStore.deleteSql(tx, id);
        await deferWrite(tx, auditStore.appendMany(tx, ctx.orgId, [{
          actor: actorLabel(ctx.actor), requestId: ctx.requestId, action: 'scim.group.delete', targetType: 'scim-group', targetId: id,
          before: { displayName: before.displayName, members: members.length },
        }]));
        await syncGroupAccess(tx, ctx, ctx.directoryId, members, 'scim-group-deleted');
      });
    },
  };
}

/**
 * Applies membership changes in order, each as one or two statements whatever its size. Adjacent
 * changes of one kind are merged (Entra sends one operation per member). Returns the users whose
 * membership differs at the end from the start, the ids skipped (no live user of the directory)
 * and how many members were renamed (display) without a membership change.
 */
async function applyMemberChanges(tx: SqlTx, group: ScimGroupRow, changes: MemberChange[]) {
  const initial = new Map<string, boolean>();
  const final = new Map<string, boolean>();
  const touch = (userId: string, was: boolean, is: boolean) => {
    if (!initial.has(userId)) initial.set(userId, was);
    final.set(userId, is);
  };
  const skipped = new Set<string>();
  let redisplayed = 0;
  for (const c of mergeAdjacent(changes)) {
    if (c.op === 'remove') {
      const ids = [...new Set(c.ids.filter((i) => UUID.test(i)).map((i) => i.toLowerCase()))];
      for (const u of await scimGroupStore.removeMembers(tx, group.id, ids)) touch(u, true, false);
      continue;
    }
    // The last display sent for an id wins; ids that cannot name a user are skipped as they are.
    const wanted = new Map<string, string | null>();
    for (const m of c.members) {
      if (!UUID.test(m.id)) skipped.add(m.id);
      else wanted.set(m.id.toLowerCase(), m.display ?? wanted.get(m.id.toLowerCase()) ?? null);
    }
    const r = await scimGroupStore.addMembers(tx, group, [...wanted].map(([id, display]) => ({ id, display })));
    if (r.foreign.length) {
      throw new InvalidInput('members of another directory', r.foreign.slice(0, 20).map((v) => ({ path: 'members', message: `user ${v} belongs to another directory` })));
    }
    for (const u of r.skipped) skipped.add(u);
    for (const u of r.added) touch(u, false, true);
    redisplayed += r.redisplayed.length;
    if (c.op === 'replace') for (const u of await scimGroupStore.removeMembersExcept(tx, group.id, r.live)) touch(u, true, false);
  }
  const changed = [...final].filter(([u, is]) => initial.get(u) !== is).map(([u]) => u);
  const netAdded = changed.reduce((n, u) => n + (final.get(u) ? 1 : -1), 0);
  return { changed, netAdded, skipped: [...skipped], redisplayed };
}

function mergeAdjacent(changes: MemberChange[]): MemberChange[] {
  const out: MemberChange[] = [];
  for (const c of changes) {
    const last = out.at(-1);
    if (last?.op === 'remove' && c.op === 'remove') out[out.length - 1] = { op: 'remove', ids: [...last.ids, ...c.ids] };
    else if (last?.op === 'add' && c.op === 'add') out[out.length - 1] = { op: 'add', members: [...last.members, ...c.members] };
    else out.push(c);
  }
  return out;
}

export type ScimGroupService = ReturnType<typeof createScimGroupService>;
