// The directory credentials cache (AUTH_CACHE_TTL_MS) and the buffered SCIM request events.
import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { AUTH_CACHE_TTL_MS, EVENT_BATCH_ROWS } from '../../src/services/directory-service.js';
import type { TestApp } from '../support/app.js';
import { scimEventStore } from '../../src/store/scim-event-store.js';
import { bearer, orgWithDirectory, scim, startTestApp, user, type Directory } from '../support/scim.js';

let app: TestApp;
beforeAll(async () => {
  // A burst above the 250 concurrent requests below: this file is about events, not the rate limit.
  app = await startTestApp({ SCIM_RATE_LIMIT_BURST: '2000' });
});
afterAll(async () => app?.close());
afterEach(() => vi.restoreAllMocks());

const db = () => app.svc.db.prisma;
const sha256hex = (s: string) => createHash('sha256').update(s).digest('hex');
const get = (dir: Directory, token: string) => app.http.get(`${dir.base}/Users?count=1`).set('Authorization', `Bearer ${token}`);

describe('directory credentials cache', () => {
  it('a rotation through this process revokes a cached token at once', async () => {
    const dir = await orgWithDirectory(app, { name: 'Cache A' });
    await get(dir, dir.token).expect(200); // cached now
    const res = await app.http.post(`/api/v1/orgs/${dir.orgId}/directories/${dir.id}/token`).set(bearer(dir.orgKey)).send({ graceSeconds: 0 }).expect(200);
    await get(dir, dir.token).expect(401);
    await get(dir, res.body.token).expect(200);
  });

  it('a rotation through another replica: the new token works at once, the old one stops within the TTL', async () => {
    const dir = await orgWithDirectory(app, { name: 'Cache B' });
    await get(dir, dir.token).expect(200);
    // What another replica's rotation with grace 0 leaves in the database.
    const next = `osd_${'N'.repeat(43)}`;
    await db().directory.update({ where: { id: dir.id }, data: { tokenHash: sha256hex(next), previousTokenHash: null, previousTokenExpiresAt: new Date() } });
    await get(dir, next).expect(200); // not in the cache: read again from the database
    // That read refreshed the cache: the old token is refused at once here too.
    await get(dir, dir.token).expect(401);
  });

  it('without a refresh, a token revoked elsewhere is trusted for at most AUTH_CACHE_TTL_MS', async () => {
    const dir = await orgWithDirectory(app, { name: 'Cache C' });
    await get(dir, dir.token).expect(200);
    await db().directory.update({ where: { id: dir.id }, data: { tokenHash: sha256hex(`osd_${'R'.repeat(43)}`), previousTokenHash: null } });
    await get(dir, dir.token).expect(200); // still cached (documented: docs/scim.md, authentication cache)
    const now = performance.now();
    vi.spyOn(performance, 'now').mockReturnValue(now + AUTH_CACHE_TTL_MS + 1);
    await get(dir, dir.token).expect(401);
  });

  it('an unknown token is never cached as valid, and a wrong token does not evict a valid one', async () => {
    const dir = await orgWithDirectory(app, { name: 'Cache D' });
    await get(dir, `osd_${'W'.repeat(43)}`).expect(401);
    await get(dir, dir.token).expect(200);
    await get(dir, `osd_${'W'.repeat(43)}`).expect(401);
    await get(dir, dir.token).expect(200);
  });
});

describe('buffered SCIM request events', () => {
  let dir: Directory;
  beforeAll(async () => {
    dir = await orgWithDirectory(app, { name: 'Events buffer', domain: 'events-buffer.example', trial: true });
  });
  const events = (limit = 200) => app.http.get(`/api/v1/orgs/${dir.orgId}/directories/${dir.id}/events?limit=${limit}`).set(bearer(dir.orgKey)).expect(200);

  it('an admin reads every event at once (reads flush the buffer), newest first', async () => {
    const s = scim(app, dir);
    for (let i = 0; i < 5; i++) await s.post('/Users', user(`ev${i}@events-buffer.example`)).expect(201);
    await s.get('/Users/00000000-0000-4000-8000-000000000000').expect(404);
    const res = await events();
    expect(res.body.items.map((e: { method: string; status: number }) => `${e.method} ${e.status}`)).toEqual(['GET 404', ...Array(5).fill('POST 201')]);
    const times = res.body.items.map((e: { at: string }) => new Date(e.at).getTime());
    expect(times, 'each event keeps the time of its request').toEqual([...times].sort((a, b) => b - a));
  });

  it('the batched INSERT (rows as one JSON parameter) keeps every field exactly: quotes, newlines, unicode, nulls, ms times', async () => {
    const at = new Date('2026-11-26T10:11:12.345Z');
    const odd = 'a "quoted" \\ back\nslash — ünïcödé 🙂 \\u0000 literal';
    const nul = 'NUL \u0000 byte';
    await scimEventStore.appendMany(app.svc.db, [
      { orgId: dir.orgId, entry: { directoryId: dir.id, method: 'PATCH', path: `/Users/x?filter=${odd}`, status: 400, scimType: 'invalidValue', detail: odd, resourceId: null, durationMs: 2.6, requestId: null, createdAt: at } },
      { orgId: dir.orgId, entry: { directoryId: dir.id, method: 'GET', path: '/Users', status: 200, durationMs: 1, createdAt: at } },
      { orgId: dir.orgId, entry: { directoryId: dir.id, method: 'GET', path: '/Users', status: 100, detail: nul, durationMs: 1, createdAt: at } },
    ]);
    const rows = await db().scimEvent.findMany({ where: { directoryId: dir.id, createdAt: at }, orderBy: { status: 'desc' } });
    expect(rows.map(({ id: _id, ...r }) => r)).toEqual([
      { orgId: dir.orgId, directoryId: dir.id, method: 'PATCH', path: `/Users/x?filter=${odd}`, status: 400, scimType: 'invalidValue', detail: odd, resourceId: null, durationMs: 3, requestId: null, createdAt: at },
      { orgId: dir.orgId, directoryId: dir.id, method: 'GET', path: '/Users', status: 200, scimType: null, detail: null, resourceId: null, durationMs: 1, requestId: null, createdAt: at },
      { orgId: dir.orgId, directoryId: dir.id, method: 'GET', path: '/Users', status: 100, scimType: null, detail: 'NUL \ufffd byte', resourceId: null, durationMs: 1, requestId: null, createdAt: at },
    ]);
  });

  it(`more than ${EVENT_BATCH_ROWS} concurrent requests: none lost`, async () => {
    const before = await db().scimEvent.count({ where: { directoryId: dir.id } });
    const n = EVENT_BATCH_ROWS + 50;
    await Promise.all(Array.from({ length: n }, () => get(dir, dir.token).expect(200)));
    await events(1); // flushes
    expect(await db().scimEvent.count({ where: { directoryId: dir.id } })).toBe(before + n);
  });
});
