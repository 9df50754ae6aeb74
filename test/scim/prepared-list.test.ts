// The SCIM list fast path (scim-user-store simpleList + Database.sql): the lists IdPs send on
// every push answered by one prepared statement outside Prisma must answer exactly what the
// general (Prisma) path answers — rows, types and totals.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { TestApp } from '../support/app.js';
import { orgWithDirectory, scim, startTestApp, user, type Directory } from '../support/scim.js';
import { scimUserStore } from '../../src/store/scim-user-store.js';
import { compileFilter, compileSort } from '../../src/scim/filter.js';

let app: TestApp;
let dir: Directory;
const ids: string[] = [];
beforeAll(async () => {
  app = await startTestApp();
  dir = await orgWithDirectory(app, { name: 'Prepared Lists', domain: 'prepared.example' });
  const s = scim(app, dir);
  for (let i = 0; i < 7; i++) {
    const res = await s.post('/Users', user(`User${i}@Prepared.example`, { externalId: `ext-${i % 3}`, displayName: `User ${i}`, title: i % 2 ? 'Engineer' : undefined })).expect(201);
    ids.push(res.body.id);
  }
  await s.delete(`/Users/${ids[6]}`).expect(204);
});
afterAll(async () => app?.close());

const both = async (filter: string | null, skip: number, take: number) => {
  const where = filter ? compileFilter('User', filter) : {};
  const order = compileSort('User');
  const db = app.svc.db;
  return {
    fast: await scimUserStore.list(db, dir.id, where as never, order as never, skip, take),
    general: await scimUserStore.listGeneral(db.prisma, dir.id, where as never, order as never, skip, take),
  };
};

describe('lists answered by one prepared statement agree with the general path', () => {
  it.each([
    ['userName eq, other case', 'userName eq "user3@prepared.EXAMPLE"', 0, 100],
    ['userName eq, no match', 'userName eq "nobody@prepared.example"', 0, 100],
    ['userName eq of a deleted user', 'userName eq "user6@prepared.example"', 0, 100],
    ['externalId eq, several', 'externalId eq "ext-1"', 0, 100],
    ['externalId eq, second page', 'externalId eq "ext-0"', 1, 1],
    ['id eq', null, 0, 100],
    ['id eq, not a uuid', 'id eq "nope"', 0, 100],
    ['no filter, first page', null, 0, 2],
    ['no filter, middle page', null, 2, 3],
    ['no filter, past the end', null, 50, 10],
    ['count=0', 'userName eq "user1@prepared.example"', 0, 0],
  ] as const)('%s', async (name, filter, skip, take) => {
    const f = name === 'id eq' ? `id eq "${ids[2]}"` : filter;
    const { fast, general } = await both(f, skip, take);
    expect(fast).toEqual(general);
  });

  it('the rows carry the stored types (Date, parsed resource, number version); one statement, outside Prisma', async () => {
    const read = vi.spyOn(app.svc.db, 'sql');
    const { fast } = await both('userName eq "user2@prepared.example"', 0, 10);
    // Only the list's statements: the batched SCIM event INSERT of earlier requests uses db.sql too.
    expect(read.mock.calls.filter(([name]) => String(name).startsWith('scim-users')).length).toBe(1);
    read.mockRestore();
    expect(fast.total).toBe(1);
    const row = fast.rows[0]!;
    expect(row.createdAt).toBeInstanceOf(Date);
    expect(row.version).toBe(1);
    expect((row.resource as { userName: string }).userName).toBe('User2@Prepared.example');
  });

  it('a user by id: live, deleted, upper-case id, not a uuid, another directory', async () => {
    const db = app.svc.db;
    const prismaGet = (d: string, id: string) => db.prisma.scimUser.findFirst({ where: { id: id.toLowerCase(), directoryId: d, deletedAt: null } });
    expect(await scimUserStore.getLive(db, dir.id, ids[1]!)).toEqual(await prismaGet(dir.id, ids[1]!));
    expect(await scimUserStore.getLive(db, dir.id, ids[1]!.toUpperCase())).toEqual(await prismaGet(dir.id, ids[1]!));
    expect(await scimUserStore.getLive(db, dir.id, ids[6]!)).toBeNull();
    expect(await scimUserStore.getLive(db, dir.id, 'not-a-uuid')).toBeNull();
    const other = await orgWithDirectory(app, { name: 'Prepared Other' });
    expect(await scimUserStore.getLive(db, other.id, ids[1]!)).toBeNull();
  });

  it('GET /Users?filter=userName eq answers the same through HTTP (case-insensitive, totalResults)', async () => {
    const res = await scim(app, dir).get('/Users?filter=' + encodeURIComponent('userName eq "USER4@prepared.example"')).expect(200);
    expect(res.body.totalResults).toBe(1);
    expect(res.body.Resources[0].id).toBe(ids[4]);
    const none = await scim(app, dir).get('/Users?filter=' + encodeURIComponent('userName eq "user6@prepared.example"')).expect(200);
    expect(none.body).toMatchObject({ totalResults: 0, Resources: [] });
  });
});
