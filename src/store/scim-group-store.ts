import type { Tx } from './transaction.js';
import { Prisma } from '../generated/prisma/client.js';

export type ScimGroupRow = {
  id: string; orgId: string; directoryId: string; displayName: string; displayNameNormalized: string; externalId: string | null;
  resource: unknown; version: number; createdAt: Date; updatedAt: Date;
};

/** Ids are UUIDs; anything else names nothing (and must not reach PostgreSQL's uuid cast as a 500). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const json = (v: unknown) => JSON.parse(JSON.stringify(v)) as Prisma.InputJsonValue;

export const scimGroupStore = {
  async get(tx: Tx, directoryId: string, id: string): Promise<ScimGroupRow | null> {
    return UUID.test(id) ? tx.scimGroup.findFirst({ where: { id, directoryId } }) : null;
  },
  async create(tx: Tx, orgId: string, directoryId: string, g: { displayName: string; externalId: string | null; resource: unknown }, at: Date): Promise<ScimGroupRow> {
    return tx.scimGroup.create({
      data: { orgId, directoryId, displayName: g.displayName, displayNameNormalized: g.displayName.toLowerCase(), externalId: g.externalId, resource: json(g.resource), createdAt: at, updatedAt: at },
    });
  },
  async update(tx: Tx, row: Pick<ScimGroupRow, 'id' | 'directoryId'>, expectedVersion: number, g: { displayName: string; externalId: string | null; resource: unknown }, at: Date): Promise<ScimGroupRow | null> {
    const res = await tx.scimGroup.updateMany({
      where: { id: row.id, directoryId: row.directoryId, version: expectedVersion },
      data: { displayName: g.displayName, displayNameNormalized: g.displayName.toLowerCase(), externalId: g.externalId, resource: json(g.resource), version: { increment: 1 }, updatedAt: at },
    });
    return res.count === 1 ? tx.scimGroup.findUnique({ where: { id: row.id } }) : null;
  },
  async delete(tx: Tx, directoryId: string, id: string): Promise<boolean> {
    return (await tx.scimGroup.deleteMany({ where: { id, directoryId } })).count > 0;
  },
  async memberIds(tx: Tx, groupId: string): Promise<string[]> {
    return (await tx.scimGroupMember.findMany({ where: { groupId }, orderBy: { createdAt: 'asc' }, select: { userId: true } })).map((m) => m.userId);
  },
  /** Replaces the member set (with the display names the IdP sent); returns the users whose membership changed. */
  async setMembers(tx: Tx, group: Pick<ScimGroupRow, 'id' | 'orgId' | 'directoryId'>, members: { id: string; display: string | null }[]): Promise<string[]> {
    const current = new Map((await tx.scimGroupMember.findMany({ where: { groupId: group.id }, select: { userId: true, display: true } })).map((m) => [m.userId, m.display]));
    const wanted = new Map(members.map((m) => [m.id, m.display]));
    const added = [...wanted.keys()].filter((u) => !current.has(u));
    const removed = [...current.keys()].filter((u) => !wanted.has(u));
    const renamed = [...wanted].filter(([u, d]) => current.has(u) && d !== null && current.get(u) !== d);
    if (removed.length) await tx.scimGroupMember.deleteMany({ where: { groupId: group.id, userId: { in: removed } } });
    if (added.length) {
      await tx.scimGroupMember.createMany({
        data: added.map((userId) => ({ orgId: group.orgId, directoryId: group.directoryId, groupId: group.id, userId, display: wanted.get(userId) ?? null })),
        skipDuplicates: true,
      });
    }
    for (const [userId, display] of renamed) await tx.scimGroupMember.updateMany({ where: { groupId: group.id, userId }, data: { display } });
    return [...added, ...removed];
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
