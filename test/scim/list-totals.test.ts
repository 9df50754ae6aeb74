// totalResults of unfiltered lists from services/scim-totals.ts: exact for writes through this
// process, at most SCIM_TOTAL_TTL_MS behind writes through another replica.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { TestApp } from '../support/app.js';
import { orgWithDirectory, scim, startTestApp, user, type Directory } from '../support/scim.js';
import { SCIM_TOTAL_TTL_MS, scimTotals } from '../../src/services/scim-totals.js';
import { scimUserStore } from '../../src/store/scim-user-store.js';

let app: TestApp;
let dir: Directory;
beforeAll(async () => {
  // The TTL test moves the clock (performance.now) forward and back; the rate limiter must not mind.
  app = await startTestApp({ SCIM_RATE_LIMIT_BURST: '100000' });
  dir = await orgWithDirectory(app, { name: 'List Totals', domain: 'list-totals.example' });
  for (let i = 0; i < 5; i++) await scim(app, dir).post('/Users', user(`t${i}@list-totals.example`)).expect(201);
});
afterAll(async () => app?.close());
afterEach(() => vi.restoreAllMocks());

// A page that does not prove the total (full, not the first): the total comes from a count or the cache.
const total = async () => (await scim(app, dir).get('/Users?startIndex=2&count=2').expect(200)).body.totalResults as number;

describe('totalResults of unfiltered lists', () => {
  it('follows creates, deletes and revivals through this process at once', async () => {
    expect(await total()).toBe(5);
    expect(await total()).toBe(5); // cached now
    const s = scim(app, dir);
    const created = await s.post('/Users', user('t5@list-totals.example')).expect(201);
    expect(await total()).toBe(6);
    await s.delete(`/Users/${created.body.id}`).expect(204);
    expect(await total()).toBe(5);
    await s.post('/Users', user('t5@list-totals.example')).expect(201); // revival
    expect(await total()).toBe(6);
    await s.post('/Users', user('t5@list-totals.example')).expect(409); // a refused create changes nothing
    expect(await total()).toBe(6);
  });

  it('a filtered list always counts', async () => {
    const res = await scim(app, dir).get('/Users?filter=' + encodeURIComponent('userName sw "t"') + '&startIndex=2&count=1').expect(200);
    expect(res.body.totalResults).toBe(await app.svc.db.prisma.scimUser.count({ where: { directoryId: dir.id, deletedAt: null, userNameNormalized: { startsWith: 't' } } }));
  });
  it('a write through another replica shows within SCIM_TOTAL_TTL_MS', async () => {
    const before = await total();
    await total(); // cached
    await app.svc.db.prisma.scimUser.updateMany({ where: { directoryId: dir.id, userNameNormalized: 't0@list-totals.example' }, data: { deletedAt: new Date() } });
    expect(await total(), 'the cached total, for at most the TTL').toBe(before);
    const now = performance.now();
    vi.spyOn(performance, 'now').mockReturnValue(now + SCIM_TOTAL_TTL_MS + 1);
    expect(await total()).toBe(before - 1);
  });
});

describe('scimTotals', () => {
  const db = {} as never;
  it('does not keep a count that a write raced (invalidated between its start and its end)', () => {
    const token = scimTotals.token(db, 'd1');
    scimTotals.invalidate(db, 'd1');
    scimTotals.set(db, 'd1', 42, token);
    expect(scimTotals.get(db, 'd1')).toBeNull();
  });
  it('keeps an unraced count, and drops it at the next write', () => {
    scimTotals.set(db, 'd2', 7, scimTotals.token(db, 'd2'));
    expect(scimTotals.get(db, 'd2')).toBe(7);
    scimTotals.invalidate(db, 'd2');
    expect(scimTotals.get(db, 'd2')).toBeNull();
  });
  it('an index holds the total and every anchor; past the last anchor there is none; a write drops it and marks the directory hot', () => {
    const at = new Date('2026-01-01T00:00:00.000Z');
    scimTotals.setIndex(db, 'd4', 1500, [{ position: 0, key: { createdAt: at, id: 'a' } }, { position: 1000, key: { createdAt: at, id: 'b' } }], scimTotals.token(db, 'd4'));
    expect(scimTotals.get(db, 'd4')).toBe(1500);
    expect(scimTotals.anchor(db, 'd4', 1000)).toEqual({ createdAt: at, id: 'b' });
    expect(scimTotals.anchor(db, 'd4', 2000)).toBeNull();
    expect(scimTotals.writtenRecently(db, 'd4')).toBe(false);
    scimTotals.invalidate(db, 'd4');
    expect(scimTotals.anchor(db, 'd4', 1000)).toBeUndefined();
    expect(scimTotals.writtenRecently(db, 'd4')).toBe(true);
  });
  it('never reuses an epoch after dropping its bookkeeping (10,000 directories)', () => {
    const token = scimTotals.token(db, 'd3');
    for (let i = 0; i <= 10_001; i++) scimTotals.invalidate(db, `x${i}`);
    scimTotals.invalidate(db, 'd3');
    for (let i = 0; i <= 10_001; i++) scimTotals.invalidate(db, `y${i}`);
    scimTotals.set(db, 'd3', 1, token);
    expect(scimTotals.get(db, 'd3')).toBeNull();
  });
});

describe('deep pages of unfiltered lists seek to a cached anchor', () => {
  let big: Directory;
  const compare = async (skip: number, take = 100) => {
    const db = app.svc.db;
    const order = [{ createdAt: 'asc' }, { id: 'asc' }] as never;
    const general = await scimUserStore.listGeneral(db.prisma, big.id, {}, order, skip, take);
    const res = await scim(app, big).get(`/Users?startIndex=${skip + 1}&count=${take}`).expect(200);
    expect(res.body.Resources.map((r: { id: string }) => r.id), `skip ${skip}`).toEqual(general.rows.map((r) => r.id));
    expect(res.body.totalResults).toBe(general.total);
  };

  beforeAll(async () => {
    big = await orgWithDirectory(app, { name: 'Anchors', domain: 'anchors.example' });
    // 2,300 users in one statement; createdAt in whole seconds so that ties are broken by id.
    await app.svc.db.prisma.$executeRawUnsafe(`
      INSERT INTO "ScimUser" ("id", "orgId", "directoryId", "userName", "userNameNormalized", "resource", "createdAt", "updatedAt")
      SELECT gen_random_uuid(), $1::uuid, $2::uuid, 'a' || g, 'a' || g, jsonb_build_object('userName', 'a' || g, 'schemas', jsonb_build_array('urn:ietf:params:scim:schemas:core:2.0:User')),
             timestamptz '2026-01-01' + (g / 3) * interval '1 second', now()
      FROM generate_series(1, 2300) g`, big.orgId, big.id);
  });

  it('pages at, inside and past the anchors answer what OFFSET answers', async () => {
    for (const skip of [999, 1000, 1001, 1950, 2000, 2250, 2299, 2300, 5000]) await compare(skip);
  });

  it('a delete and a create through the service move the anchors with them', async () => {
    await compare(1500); // anchors at 1000 cached
    const victim = (await scim(app, big).get('/Users?startIndex=10&count=1').expect(200)).body.Resources[0].id;
    await scim(app, big).delete(`/Users/${victim}`).expect(204);
    await compare(1500);
    await scim(app, big).post('/Users', user('late@anchors.example')).expect(201);
    await compare(2250);
  });
});
