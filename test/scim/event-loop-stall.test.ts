/**
 * Issue 12 §2: no single SCIM request within the body limits keeps the event loop busy for more
 * than 50 ms. A 770-byte PATCH whose path filter was 16 ANDed OR-groups blocked it for 3.8 s
 * (scimmy rewrites path filters into an OR of ANDs). Each hostile request below is sent to the
 * real app, in this process, with perf_hooks.monitorEventLoopDelay sampling every 10 ms; the
 * histogram's max over the request is the longest time the loop could not run anything else.
 *
 * Each request is sent once unmeasured first, so the figure is the request's own work and not the
 * first compilation of the code it runs (that happens once per process, for benign requests too).
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../support/app.js';
import { orgWithDirectory, PATCH_OP, scim, SCIM_GROUP, startTestApp, user, type Directory } from '../support/scim.js';

/**
 * 50 ms on PostgreSQL, the production database. PGlite runs every query on this same thread (WASM),
 * so there the loop is busy for the database's own work as well, and by more when other test files
 * load the machine: its budget only catches what this test is for — an exponential expansion
 * (3.8 s before the guard) — not the 50 ms figure.
 */
const BUDGET_MS = process.env.DATABASE_URL ? 50 : 500;
let app: TestApp;
let dir: Directory;
let s: ReturnType<typeof scim>;
let histogram: IntervalHistogram;
const figures: string[] = [];

beforeAll(async () => {
  // The rate limit would answer 429 to the test's own setup (1000 users) on a fast database.
  app = await startTestApp({ SCIM_RATE_LIMIT_PER_SECOND: '100000', SCIM_RATE_LIMIT_BURST: '100000' });
  dir = await orgWithDirectory(app, { name: 'Stall', domain: 'stall.example', trial: true });
  s = scim(app, dir);
  histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
});
afterAll(async () => {
  histogram?.disable();
  console.log(`event-loop delay per request (max, ms; budget ${BUDGET_MS}):\n  ${figures.join('\n  ')}`);
  await app?.close();
});

type Res = { status: number; body: Record<string, unknown> };
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Sends the request four times: a warm-up, then three measured runs, and returns the last answer
 * and the smallest of the runs' max delay. A stall the request causes shows in every run; a
 * delay from other processes on the machine (CI runs test files in parallel) rarely in all three.
 */
async function measured(label: string, send: () => PromiseLike<Res>): Promise<{ res: Res; maxMs: number }> {
  await send();
  const runs: number[] = [];
  let res!: Res;
  for (let i = 0; i < 3; i++) {
    await pause(30);
    histogram.reset();
    res = await send();
    await pause(30); // a stall at the very end of the request shows in the next sample
    runs.push(histogram.max / 1e6);
  }
  const maxMs = Math.min(...runs);
  figures.push(`${maxMs.toFixed(1).padStart(7)}  ${res.status}  ${label}  (runs: ${runs.map((r) => r.toFixed(1)).join(', ')})`);
  return { res, maxMs };
}

const groups = (n: number, attr = 'value', suffix = '@stall.example') =>
  Array.from({ length: n }, (_, i) => `(${attr} eq "a${i}${suffix}" or ${attr} eq "b${i}${suffix}")`).join(' and ');

describe('no request stalls the event loop for more than 50 ms (issue 12 §2)', () => {
  let userId: string;
  beforeAll(async () => {
    // Several emails whose values match the hostile filter's terms: scimmy would really expand and match.
    const emails = ['a0', 'b1', 'a2', 'b3', 'a4', 'b5', 'a6', 'b7'].map((v, i) => ({ value: `${v}@stall.example`, display: v, type: i % 2 ? 'home' : 'work', primary: i === 0 }));
    userId = (await s.post('/Users', user('victim@stall.example', { emails })).expect(201)).body.id;
  });

  it.each([
    // The shape: 16 groups of two short comparisons (display, like its `type eq "a0"`): 63 operators.
    [16, /operation 1 path: the filter has more than 50 operators/],
    // Within the operator limit (47), 4096 alternatives for scimmy (~0.3 s unguarded): the DNF bound refuses it.
    [12, /operation 1 path: the value filter expands to 4096 alternatives \(OR branches multiplied across AND\); the limit is 32/],
  ] as const)('a PATCH path with %i OR-groups on a user with emails → 400 invalidFilter, fast, nothing written', async (n, detail) => {
    const path = `emails[${groups(n, 'display', '')}].value`;
    const body = { schemas: [PATCH_OP], Operations: [{ op: 'replace', path, value: 'x@stall.example' }] };
    expect(JSON.stringify(body).length).toBeLessThan(1024);
    const before = await app.svc.db.prisma.scimUser.findUniqueOrThrow({ where: { id: userId } });
    const { res, maxMs } = await measured(`PATCH path with ${n} OR-groups (user with 8 emails)`, () => s.patch(`/Users/${userId}`, body));
    expect(res.status).toBe(400);
    expect(res.body.scimType).toBe('invalidFilter');
    expect(res.body.detail).toMatch(detail);
    expect(maxMs).toBeLessThan(BUDGET_MS);
    const after = await app.svc.db.prisma.scimUser.findUniqueOrThrow({ where: { id: userId } });
    expect(after.version).toBe(before.version);
  });

  it('a path filter at the limit (5 groups = 32 alternatives) is applied by scimmy, within the budget', async () => {
    const path = `emails[${groups(5)}].value`;
    const { res, maxMs } = await measured('PATCH path with 5 OR-groups (32 alternatives)', () =>
      s.patch(`/Users/${userId}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path, value: 'x@stall.example' }] }));
    // No email has all of a0..a4/b0..b4 at once: scimmy answers noTarget, after really matching.
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body.scimType).toBe('noTarget');
    expect(maxMs).toBeLessThan(BUDGET_MS);
  });

  it('many operations in one PATCH: 2000 refused (400 naming the limit), 32 applied, 2 paths of 32 alternatives refused', async () => {
    const ops = (n: number) => Array.from({ length: n }, (_, i) => ({ op: 'replace', path: 'emails[type eq "work"].display', value: `w${i}` }));
    const many = await measured('PATCH with 2000 filtered operations', () => s.patch(`/Users/${userId}`, { schemas: [PATCH_OP], Operations: ops(2000) }));
    expect(many.res.status).toBe(400);
    expect(many.res.body.scimType).toBe('invalidValue');
    expect(many.res.body.detail).toMatch(/Operations: 2000 operations .* the limit is 32/);
    expect(many.maxMs).toBeLessThan(BUDGET_MS);
    const limit = await measured('PATCH with 32 filtered operations (the limit)', () => s.patch(`/Users/${userId}`, { schemas: [PATCH_OP], Operations: ops(32) }));
    expect(limit.res.status, JSON.stringify(limit.res.body).slice(0, 300)).toBe(200);
    expect(limit.maxMs).toBeLessThan(BUDGET_MS);
    const wide = { op: 'replace', path: `emails[${groups(5)}].display`, value: 'x' };
    const heavy = await measured('PATCH with 2 paths of 32 alternatives', () => s.patch(`/Users/${userId}`, { schemas: [PATCH_OP], Operations: [wide, wide] }));
    expect(heavy.res.status).toBe(400);
    expect(heavy.res.body.detail).toMatch(/2 operations \(64 counting/);
    expect(heavy.maxMs).toBeLessThan(BUDGET_MS);
  });

  it('hostile list filters: deep nesting, long OR chains, 18 OR-groups', async () => {
    const filters: [string, string, number][] = [
      ['30 nested parentheses', '('.repeat(30) + 'userName eq "a"' + ')'.repeat(30), 400],
      ['8 nested parentheses (the limit)', '('.repeat(8) + 'userName eq "a"' + ')'.repeat(8), 200],
      ['OR chain of 25 comparisons', Array.from({ length: 25 }, (_, i) => `userName eq "u${i}"`).join(' or '), 200],
      ['OR chain of 200 comparisons', Array.from({ length: 200 }, (_, i) => `userName eq "u${i}"`).join(' or '), 400],
      ['18 OR-groups ANDed', groups(18, 'userName', ''), 400],
      ['8 OR-groups ANDed (within the operator limit)', groups(8, 'userName', ''), 200],
      ['value filter with OR-groups', `emails[${groups(8)}]`, 200],
    ];
    for (const [label, filter, status] of filters) {
      const { res, maxMs } = await measured(`GET /Users?filter= ${label}`, () => s.get('/Users?filter=' + encodeURIComponent(filter)));
      expect(res.status, `${label}: ${JSON.stringify(res.body).slice(0, 300)}`).toBe(status);
      if (status === 400) expect(res.body.scimType, label).toBe('invalidFilter');
      expect(maxMs, label).toBeLessThan(BUDGET_MS);
      const search = await measured(`POST /Users/.search ${label}`, () => s.post('/Users/.search', { schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'], filter }));
      expect(search.res.status, label).toBe(status);
      expect(search.maxMs, label).toBeLessThan(BUDGET_MS);
    }
  });

  it('deeply nested JSON bodies', async () => {
    const deepArray = '['.repeat(100_000) + ']'.repeat(100_000);
    const deepObject = '{"a":'.repeat(50_000) + '1' + '}'.repeat(50_000);
    const bodies: [string, string, string][] = [
      ['POST /Users with a 100 000-deep array', '/Users', `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"deep1","title":${deepArray}}`],
      ['POST /Users with a 50 000-deep object', '/Users', `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"deep2","name":${deepObject}}`],
      ['PATCH /Users with a 50 000-deep value', `/Users/${userId}`, `{"schemas":["${PATCH_OP}"],"Operations":[{"op":"add","path":"title","value":${deepObject}}]}`],
      ['PATCH /Users without path, 50 000-deep value', `/Users/${userId}`, `{"schemas":["${PATCH_OP}"],"Operations":[{"op":"add","value":{"name":${deepObject}}}]}`],
    ];
    for (const [label, path, raw] of bodies) {
      expect(raw.length).toBeLessThan(1024 * 1024);
      const send = () => (path === '/Users' ? app.http.post(`${dir.base}${path}`) : app.http.patch(`${dir.base}${path}`))
        .set({ Authorization: `Bearer ${dir.token}`, 'Content-Type': 'application/scim+json' }).send(raw);
      const { res, maxMs } = await measured(label, send);
      expect(res.status, `${label}: ${JSON.stringify(res.body).slice(0, 300)}`).toBe(400);
      expect(maxMs, label).toBeLessThan(BUDGET_MS);
    }
  });

  it('groups with 1000 members: POST, PATCH add, PUT, GET', async () => {
    const ids: string[] = [];
    for (let batch = 0; batch < 50; batch++) {
      const created = await Promise.all(Array.from({ length: 20 }, (_, i) => s.post('/Users', user(`m${batch * 20 + i}@stall.example`)).expect(201)));
      ids.push(...created.map((r) => r.body.id as string));
    }
    const members = ids.map((value) => ({ value }));
    let n = 0;
    const { res: created, maxMs: createMs } = await measured('POST /Groups with 1000 members', () => s.post('/Groups', { schemas: [SCIM_GROUP], displayName: `big${n++}`, members }));
    expect(created.status).toBe(201);
    // Was 191–358 ms on PostgreSQL: Prisma's query compiler (on the event loop) compiling a createMany
    // of 1000 member rows and 1000-id IN lists. The create now inserts members with the one raw
    // statement PUT and PATCH use.
    expect(createMs, 'POST /Groups with 1000 members').toBeLessThan(50);
    const empty = (await s.post('/Groups', { schemas: [SCIM_GROUP], displayName: 'grows' }).expect(201)).body.id as string;
    const add = await measured('PATCH /Groups add 1000 members', () => s.patch(`/Groups/${empty}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: members }] }));
    expect(add.res.status).toBe(200);
    expect(add.maxMs).toBeLessThan(BUDGET_MS);
    const remove = await measured('PATCH /Groups remove 1000 members one op each', () =>
      s.patch(`/Groups/${empty}`, { schemas: [PATCH_OP], Operations: ids.map((id) => ({ op: 'remove', path: `members[value eq "${id}"]` })) }));
    expect(remove.res.status).toBe(200);
    expect(remove.maxMs).toBeLessThan(BUDGET_MS);
    const put = await measured('PUT /Groups with 1000 members', () => s.put(`/Groups/${empty}`, { schemas: [SCIM_GROUP], displayName: 'grows', members }));
    expect(put.res.status).toBe(200);
    expect(put.maxMs).toBeLessThan(BUDGET_MS);
    const get = await measured('GET /Groups/{id} with 1000 members', () => s.get(`/Groups/${empty}`));
    expect(get.res.status).toBe(200);
    expect((get.res.body.members as unknown[]).length).toBe(1000);
    expect(get.maxMs).toBeLessThan(BUDGET_MS);
    // A members filter of another shape sends the whole group through scimmy.
    const odd = await measured('PATCH /Groups members[display co …] on 1000 members (whole group through scimmy)', () =>
      s.patch(`/Groups/${empty}`, { schemas: [PATCH_OP], Operations: [{ op: 'remove', path: 'members[display co "nobody"]' }] }));
    expect(odd.res.status).toBe(400);
    expect(odd.res.body.scimType).toBe('invalidValue');
    expect(odd.res.body.detail).toMatch(/at most 100 members; this group has 1000/);
    expect(odd.maxMs).toBeLessThan(BUDGET_MS);
    // The same on a group of 100 members (the limit) is applied.
    const hundred = (await s.post('/Groups', { schemas: [SCIM_GROUP], displayName: 'hundred', members: members.slice(0, 100) }).expect(201)).body.id as string;
    const small = await measured('PATCH /Groups members[display co …] on 100 members (whole group through scimmy)', () =>
      s.patch(`/Groups/${hundred}`, { schemas: [PATCH_OP], Operations: [{ op: 'remove', path: 'members[display co "nobody"]' }] }));
    expect(small.res.status, JSON.stringify(small.res.body).slice(0, 300)).toBe(200);
    expect(small.maxMs).toBeLessThan(BUDGET_MS);
  });
});
