import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServices, type Services } from '../../src/composition.js';
import { normalizeGroupName, syncGroupAccess } from '../../src/services/group-access.js';
import type { RequestContext } from '../../src/services/context.js';
import { scimEventStore } from '../../src/store/scim-event-store.js';
import { inTransaction } from '../../src/store/transaction.js';
import { bearer, createOrg, startTestApp, verifyDomain, type TestApp } from '../support/app.js';

const PUBLIC_URL = 'https://orgsync.example.test';
const GRACE = 3600;
type Org = { id: string; key: string; defaultPolicyId: string };

let app: TestApp;
/** Services on the app's own database: authenticate() is what the SCIM router will call. */
let svc: Services;
const u = (o: Org, p: string) => `/api/v1/orgs/${o.id}/${p}`;
const sha256hex = (s: string) => createHash('sha256').update(s).digest('hex');
const db = () => app.svc.db.prisma;

beforeAll(async () => {
  app = await startTestApp({ PUBLIC_URL, SCIM_TOKEN_GRACE_SECONDS: String(GRACE) });
  svc = createServices({ db: app.svc.db, operatorToken: undefined, scim: { tokenGraceSeconds: GRACE }, publicUrl: PUBLIC_URL });
});
afterAll(async () => app?.close());

async function createDirectory(org: Org, name: string, idp = 'okta'): Promise<{ id: string; token: string; scimBaseUrl: string }> {
  return (await app.http.post(u(org, 'directories')).set(bearer(org.key)).send({ name, idp }).expect(201)).body;
}

describe('directories: create, read, list', () => {
  let org: Org;
  beforeAll(async () => {
    org = await createOrg(app, 'Dir Co');
  });

  it('creates a directory: token shown once, only its sha256 stored, SCIM base URL under PUBLIC_URL', async () => {
    const res = await app.http.post(u(org, 'directories')).set(bearer(org.key)).send({ name: 'Okta prod', idp: 'okta' }).expect(201);
    const d = res.body;
    expect(d).toMatchObject({ id: expect.any(String), name: 'Okta prod', idp: 'okta', scimBaseUrl: `${PUBLIC_URL}/scim/v2/${d.id}` });
    expect(d.token, 'osd_ + 32 random bytes base64url').toMatch(/^osd_[A-Za-z0-9_-]{43}$/);

    const row = await db().directory.findUnique({ where: { id: d.id } });
    expect(row?.tokenHash, 'sha256 hex of the token').toBe(sha256hex(d.token));
    expect(row?.orgId).toBe(org.id);
    expect(JSON.stringify(row)).not.toContain(d.token);

    const got = await app.http.get(u(org, `directories/${d.id}`)).set(bearer(org.key)).expect(200);
    expect(got.body).toMatchObject({
      id: d.id, name: 'Okta prod', idp: 'okta', scimBaseUrl: d.scimBaseUrl, previousTokenExpiresAt: null, tokenLastUsedAt: null,
      userCount: 0, groupCount: 0, tokenIssuedAt: expect.any(String), createdAt: expect.any(String),
    });
    const listed = await app.http.get(u(org, 'directories')).set(bearer(org.key)).expect(200);
    expect(listed.body.items.map((x: { id: string }) => x.id)).toEqual([d.id]);
    expect(listed.body.next).toBeNull();
    for (const body of [got.body, listed.body]) {
      const text = JSON.stringify(body);
      expect(text, 'never the token').not.toContain(d.token);
      expect(text, 'never the hash').not.toContain(row!.tokenHash);
      expect(text).not.toMatch(/tokenHash/i);
    }
    const audit = await app.http.get(u(org, 'audit?action=directory.create')).set(bearer(org.key)).expect(200);
    expect(audit.body.items).toHaveLength(1);
    expect(audit.body.items[0]).toMatchObject({ targetId: d.id, after: { name: 'Okta prod', idp: 'okta' } });
    expect(JSON.stringify(audit.body)).not.toContain(d.token);
    expect(JSON.stringify(audit.body)).not.toContain(row!.tokenHash);
  });

  it('counts users and groups in SQL; tombstoned users are not counted', async () => {
    const d = await createDirectory(org, 'Counted', 'entra');
    await verifyDomain(app, org, 'dir.example');
    const acc = (await app.http.post(u(org, 'accounts')).set(bearer(org.key)).send({ email: 'c@dir.example' }).expect(201)).body;
    const base = { orgId: org.id, directoryId: d.id, accountId: acc.id, resource: {} };
    await db().scimUser.create({ data: { ...base, userName: 'c1', userNameNormalized: 'c1' } });
    await db().scimUser.create({ data: { ...base, userName: 'c2', userNameNormalized: 'c2', deletedAt: new Date() } });
    await db().scimGroup.create({ data: { orgId: org.id, directoryId: d.id, displayName: 'G', displayNameNormalized: 'g', resource: {} } });
    const got = await app.http.get(u(org, `directories/${d.id}`)).set(bearer(org.key)).expect(200);
    expect(got.body).toMatchObject({ userCount: 1, groupCount: 1, idp: 'entra' });
  });

  it('a duplicate name in the org → 409 directory-name-taken; the same name in another org is fine', async () => {
    await createDirectory(org, 'Entra');
    const dup = await app.http.post(u(org, 'directories')).set(bearer(org.key)).send({ name: 'Entra', idp: 'entra' });
    expect(dup.status).toBe(409);
    expect(dup.body.type).toBe('https://orgsync.dev/problems/directory-name-taken');
    const other = await createOrg(app, 'Other Dir Co');
    await createDirectory(other, 'Entra');
  });

  it.each([
    ['an unknown idp', { name: 'x', idp: 'ldap' }, [{ path: 'idp', message: 'must be one of okta, entra, google, generic' }]],
    ['no idp', { name: 'x' }, [{ path: 'idp', message: 'must be one of okta, entra, google, generic' }]],
    ['an empty name', { name: '  ', idp: 'okta' }, [{ path: 'name', message: 'must not be empty' }]],
    ['an unknown field', { name: 'x', idp: 'okta', token: 'mine' }, [{ path: 'token', message: 'unknown field' }]],
  ])('%s → 400 naming the field, nothing created', async (_name, body, errors) => {
    const before = await db().directory.count({ where: { orgId: org.id } });
    const res = await app.http.post(u(org, 'directories')).set(bearer(org.key)).send(body);
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual(errors);
    expect(await db().directory.count({ where: { orgId: org.id } })).toBe(before);
  });

  it('an unknown directory → 404', async () => {
    await app.http.get(u(org, `directories/${randomUUID()}`)).set(bearer(org.key)).expect(404);
    await app.http.post(u(org, `directories/${randomUUID()}/token`)).set(bearer(org.key)).send({}).expect(404);
    expect((await app.http.get(u(org, 'directories/not-a-uuid')).set(bearer(org.key))).status).toBe(400);
  });
});

describe('directories: SCIM token authentication and rotation', () => {
  let org: Org;
  let d1: { id: string; token: string };
  let d2: { id: string; token: string };
  let other: { id: string; token: string };

  beforeAll(async () => {
    org = await createOrg(app, 'Token Co');
    d1 = await createDirectory(org, 'one', 'okta');
    d2 = await createDirectory(org, 'two', 'google');
    other = await createDirectory(await createOrg(app, 'Token Other Co'), 'one', 'okta');
  });

  it('the current token authenticates, naming the directory, its org and idp', async () => {
    expect(await svc.directories.authenticate(d1.id, d1.token, new Date())).toEqual({ directoryId: d1.id, orgId: org.id, idp: 'okta', name: 'one' });
    expect(await svc.directories.authenticate(d1.id.toUpperCase(), d1.token, new Date()), 'UUID case does not matter').toMatchObject({ directoryId: d1.id });
    expect(await svc.directories.authenticate(d2.id, d2.token, new Date())).toEqual({ directoryId: d2.id, orgId: org.id, idp: 'google', name: 'two' });
  });

  it.each<[string, () => [string, string]]>([
    ['a wrong token', () => [d1.id, `osd_${'A'.repeat(43)}`]],
    ['an empty token', () => [d1.id, '']],
    ['the token with one character changed', () => [d1.id, d1.token.slice(0, -1) + (d1.token.endsWith('A') ? 'B' : 'A')]],
    ['the hash instead of the token', () => [d1.id, sha256hex(d1.token)]],
    ['another directory\'s token, same org', () => [d1.id, d2.token]],
    ['another org\'s directory token', () => [d1.id, other.token]],
    ['the right token on another directory', () => [d2.id, d1.token]],
    ['an unknown directory', () => [randomUUID(), d1.token]],
    ['a directory id that is not a UUID', () => ['not-a-uuid', d1.token]],
  ])('%s → null', async (_name, args) => {
    const [id, token] = args();
    expect(await svc.directories.authenticate(id, token, new Date())).toBeNull();
  });

  it('a directory id that is not a UUID is refused without touching the database', async () => {
    const noDb = createServices({ db: null as never, operatorToken: undefined });
    await expect(noDb.directories.authenticate('../../etc', d1.token, new Date())).resolves.toBeNull();
    await expect(noDb.directories.authenticate(`${d1.id}x`, d1.token, new Date())).resolves.toBeNull();
  });

  it('rotation: the previous token works until previousTokenExpiresAt (default grace), then stops', async () => {
    const before = Date.now();
    const res = await app.http.post(u(org, `directories/${d1.id}/token`)).set(bearer(org.key)).send({}).expect(200);
    const { token, previousTokenExpiresAt } = res.body;
    expect(token).toMatch(/^osd_[A-Za-z0-9_-]{43}$/);
    expect(token).not.toBe(d1.token);
    const expires = new Date(previousTokenExpiresAt).getTime();
    expect(expires, 'default grace from config').toBeGreaterThanOrEqual(before + GRACE * 1000);
    expect(expires).toBeLessThanOrEqual(Date.now() + GRACE * 1000);

    expect(await svc.directories.authenticate(d1.id, token, new Date()), 'new token').toMatchObject({ directoryId: d1.id });
    expect(await svc.directories.authenticate(d1.id, d1.token, new Date()), 'previous within grace').toMatchObject({ directoryId: d1.id });
    expect(await svc.directories.authenticate(d1.id, d1.token, new Date(expires - 1)), 'previous, last millisecond').toMatchObject({ directoryId: d1.id });
    expect(await svc.directories.authenticate(d1.id, d1.token, new Date(expires)), 'previous at expiry').toBeNull();
    expect(await svc.directories.authenticate(d1.id, d1.token, new Date(expires + 60_000)), 'previous after grace').toBeNull();
    expect(await svc.directories.authenticate(d1.id, token, new Date(expires + 60_000)), 'new token after grace').toMatchObject({ directoryId: d1.id });
    expect(await svc.directories.authenticate(d2.id, d1.token, new Date()), 'a previous token is only good for its own directory').toBeNull();

    const row = await db().directory.findUnique({ where: { id: d1.id } });
    expect(row).toMatchObject({ tokenHash: sha256hex(token), previousTokenHash: sha256hex(d1.token) });
    const got = await app.http.get(u(org, `directories/${d1.id}`)).set(bearer(org.key)).expect(200);
    expect(got.body.previousTokenExpiresAt).toBe(previousTokenExpiresAt);
    d1 = { ...d1, token };
  });

  it('graceSeconds: 0 revokes the old token at once', async () => {
    const res = await app.http.post(u(org, `directories/${d1.id}/token`)).set(bearer(org.key)).send({ graceSeconds: 0 }).expect(200);
    expect(new Date(res.body.previousTokenExpiresAt).getTime()).toBeLessThanOrEqual(Date.now());
    expect(await svc.directories.authenticate(d1.id, d1.token, new Date()), 'old token, grace 0').toBeNull();
    expect(await svc.directories.authenticate(d1.id, d1.token, new Date(Date.now() - 3_600_000)), 'even with a clock behind').toBeNull();
    expect(await svc.directories.authenticate(d1.id, res.body.token, new Date())).toMatchObject({ directoryId: d1.id });
    const row = await db().directory.findUnique({ where: { id: d1.id } });
    expect(row?.previousTokenHash).toBeNull();
    d1 = { ...d1, token: res.body.token };
  });

  it('an explicit grace period; rotating again ends the grace of the token before', async () => {
    const first = d1.token;
    const r1 = (await app.http.post(u(org, `directories/${d1.id}/token`)).set(bearer(org.key)).send({ graceSeconds: 120 }).expect(200)).body;
    const expires = new Date(r1.previousTokenExpiresAt).getTime();
    expect(expires - Date.now()).toBeGreaterThan(100_000);
    expect(expires - Date.now()).toBeLessThanOrEqual(120_000);
    expect(await svc.directories.authenticate(d1.id, first, new Date())).not.toBeNull();
    const r2 = (await app.http.post(u(org, `directories/${d1.id}/token`)).set(bearer(org.key)).send({ graceSeconds: 120 }).expect(200)).body;
    expect(await svc.directories.authenticate(d1.id, first, new Date()), 'two rotations back').toBeNull();
    expect(await svc.directories.authenticate(d1.id, r1.token, new Date()), 'one rotation back').not.toBeNull();
    expect(await svc.directories.authenticate(d1.id, r2.token, new Date())).not.toBeNull();
    d1 = { ...d1, token: r2.token };
  });

  it.each([
    [{ graceSeconds: -1 }, 'must be 0 or more'],
    [{ graceSeconds: 1.5 }, 'must be a whole number of seconds'],
    [{ graceSeconds: 31 * 86400 }, 'at most 30 days (2592000)'],
    [{ graceSeconds: '60' }, expect.any(String)],
  ])('bad grace %j → 400 on graceSeconds, token unchanged', async (body, message) => {
    const before = await db().directory.findUnique({ where: { id: d1.id } });
    const res = await app.http.post(u(org, `directories/${d1.id}/token`)).set(bearer(org.key)).send(body);
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([{ path: 'graceSeconds', message }]);
    expect(await db().directory.findUnique({ where: { id: d1.id } })).toEqual(before);
  });

  it('rotation is audited, never with the token or its hash', async () => {
    const res = await app.http.get(u(org, 'audit?action=directory.token.rotate')).set(bearer(org.key)).expect(200);
    expect(res.body.items.map((e: { after: { graceSeconds: number } }) => e.after.graceSeconds), 'four rotations, newest first').toEqual([120, 120, 0, GRACE]);
    expect(res.body.items[0]).toMatchObject({ actor: expect.stringMatching(/^admin-key:/), targetType: 'directory', targetId: d1.id });
    const text = JSON.stringify(res.body);
    const row = await db().directory.findUnique({ where: { id: d1.id } });
    expect(text).not.toContain(d1.token);
    expect(text).not.toContain(row!.tokenHash);
    expect(text).not.toMatch(/osd_/);
  });

  it('concurrent rotations lose no token: the last one issued is current, the one before it is previous', async () => {
    const r = await createDirectory(org, 'raced');
    const results = await Promise.all(Array.from({ length: 5 }, () =>
      app.http.post(u(org, `directories/${r.id}/token`)).set(bearer(org.key)).send({ graceSeconds: 600 })));
    expect(results.map((x) => x.status)).toEqual([200, 200, 200, 200, 200]);
    const ok = [];
    for (const x of results) if (await svc.directories.authenticate(r.id, x.body.token, new Date())) ok.push(x.body.token);
    expect(ok, 'current and previous').toHaveLength(2);
    expect(await svc.directories.authenticate(r.id, r.token, new Date()), 'the original token is two rotations back').toBeNull();
  });

  it('records tokenLastUsedAt, at most once a minute', async () => {
    const t = await createDirectory(org, 'touched');
    const t0 = new Date(Date.now() + 1000);
    const last = async () => (await db().directory.findUnique({ where: { id: t.id } }))!.tokenLastUsedAt?.getTime();
    expect(await last()).toBeUndefined();
    await svc.directories.authenticate(t.id, 'wrong', t0);
    expect(await last(), 'a failed attempt does not count').toBeUndefined();
    await svc.directories.authenticate(t.id, t.token, t0);
    expect(await last()).toBe(t0.getTime());
    await svc.directories.authenticate(t.id, t.token, new Date(t0.getTime() + 30_000));
    expect(await last(), 'within the minute: no write').toBe(t0.getTime());
    await svc.directories.authenticate(t.id, t.token, new Date(t0.getTime() + 61_000));
    expect(await last()).toBe(t0.getTime() + 61_000);
    const got = await app.http.get(u(org, `directories/${t.id}`)).set(bearer(org.key)).expect(200);
    expect(got.body.tokenLastUsedAt).toBe(new Date(t0.getTime() + 61_000).toISOString());
  });
});

describe('directories: SCIM request events', () => {
  let org: Org;
  let d: { id: string };

  beforeAll(async () => {
    org = await createOrg(app, 'Events Co');
    d = await createDirectory(org, 'events');
    const other = await createDirectory(org, 'other events');
    const statuses = [201, 409, 200, 400, 500];
    for (const [i, status] of statuses.entries()) {
      await scimEventStore.append(db(), org.id, {
        directoryId: d.id, method: i % 2 ? 'PATCH' : 'POST', path: `/Users/${i}`, status, durationMs: i,
        ...(status >= 400 ? { scimType: status === 409 ? 'uniqueness' : null, detail: `failure ${i}` } : {}),
      });
      await sleep(5);
    }
    await scimEventStore.append(db(), org.id, { directoryId: other.id, method: 'GET', path: '/Users', status: 401, durationMs: 1 });
  });

  it('lists the directory\'s events newest first, with paging', async () => {
    const all = await app.http.get(u(org, `directories/${d.id}/events`)).set(bearer(org.key)).expect(200);
    expect(all.body.items.map((e: { path: string }) => e.path)).toEqual(['/Users/4', '/Users/3', '/Users/2', '/Users/1', '/Users/0']);
    expect(all.body.items[3]).toMatchObject({ method: 'PATCH', status: 409, scimType: 'uniqueness', detail: 'failure 1', durationMs: 1, at: expect.any(String) });
    expect(all.body.next).toBeNull();

    const seen: string[] = [];
    let next: string | null = null;
    do {
      const res: { body: { items: { path: string }[]; next: string | null } } = await app.http
        .get(u(org, `directories/${d.id}/events?limit=2${next ? `&cursor=${next}` : ''}`)).set(bearer(org.key)).expect(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.items.map((e) => e.path));
      next = res.body.next;
    } while (next);
    expect(seen).toEqual(['/Users/4', '/Users/3', '/Users/2', '/Users/1', '/Users/0']);
  });

  it('failedOnly=true keeps status >= 400', async () => {
    const res = await app.http.get(u(org, `directories/${d.id}/events?failedOnly=true`)).set(bearer(org.key)).expect(200);
    expect(res.body.items.map((e: { status: number }) => e.status)).toEqual([500, 400, 409]);
    const page = await app.http.get(u(org, `directories/${d.id}/events?failedOnly=true&limit=2`)).set(bearer(org.key)).expect(200);
    const rest = await app.http.get(u(org, `directories/${d.id}/events?failedOnly=true&limit=2&cursor=${page.body.next}`)).set(bearer(org.key)).expect(200);
    expect([...page.body.items, ...rest.body.items].map((e: { status: number }) => e.status)).toEqual([500, 400, 409]);
    const off = await app.http.get(u(org, `directories/${d.id}/events?failedOnly=false`)).set(bearer(org.key)).expect(200);
    expect(off.body.items).toHaveLength(5);
    const bad = await app.http.get(u(org, `directories/${d.id}/events?failedOnly=yes`)).set(bearer(org.key));
    expect(bad.status).toBe(400);
    expect(bad.body.errors).toEqual([{ path: 'query.failedOnly', message: 'must be true or false' }]);
  });

  it('another org cannot read them', async () => {
    const b = await createOrg(app, 'Events Other Co');
    await app.http.get(u(b, `directories/${d.id}/events`)).set(bearer(b.key)).expect(404);
    await app.http.get(u(org, `directories/${d.id}/events`)).set(bearer(b.key)).expect(404);
  });
});

describe('directories: group mappings grant and revoke product access', () => {
  let org: Org;
  let x: { id: string };
  let y: { id: string };
  let prod: string;
  let wiki: string;
  const acc: Record<string, string> = {};
  const scim: Record<string, string> = {};
  const groups: Record<string, string> = {};
  let engMapping: string;
  let salesMapping: string;

  const ctx = (): RequestContext => ({ orgId: org.id, actor: { kind: 'system', name: 'test' }, requestId: null, now: new Date() });
  const deltas = (accountId: string) =>
    db().billableDelta.findMany({ where: { accountId }, orderBy: { seq: 'asc' }, select: { kind: true, cause: true } });
  const groupAccess = (accountId: string) =>
    db().productAccess.findMany({ where: { accountId, grantedBy: { startsWith: 'group:' } }, select: { siteId: true, product: true, role: true, grantedBy: true } });
  const billable = async (accountId: string) => (await db().account.findUnique({ where: { id: accountId } }))!.billable;
  const sync = (directoryId: string, ids: string[] | 'all', cause: string) =>
    inTransaction(app.svc.db, (tx) => syncGroupAccess(tx, ctx(), directoryId, ids, cause));

  async function scimUser(directoryId: string, name: string, extra: { active?: boolean; deletedAt?: Date } = {}) {
    acc[name] = (await app.http.post(u(org, 'accounts')).set(bearer(org.key)).send({ email: `${name}@grp.example` }).expect(201)).body.id;
    const row = await db().scimUser.create({
      data: { orgId: org.id, directoryId, accountId: acc[name]!, userName: `${name}@grp.example`, userNameNormalized: `${name}@grp.example`, resource: {}, ...extra },
    });
    scim[name] = row.id;
  }
  async function group(directoryId: string, key: string, displayName: string, members: string[]) {
    const g = await db().scimGroup.create({ data: { orgId: org.id, directoryId, displayName, displayNameNormalized: normalizeGroupName(displayName), resource: {} } });
    groups[key] = g.id;
    for (const m of members) await db().scimGroupMember.create({ data: { orgId: org.id, directoryId, groupId: g.id, userId: scim[m]! } });
  }

  beforeAll(async () => {
    org = await createOrg(app, 'Groups Co');
    await verifyDomain(app, org, 'grp.example');
    await app.http.post(u(org, 'subscription/trial')).set(bearer(org.key)).send({}).expect(200);
    prod = (await app.http.post(u(org, 'sites')).set(bearer(org.key)).send({ name: 'prod', products: ['jira', 'jsm', 'confluence'] }).expect(201)).body.id;
    wiki = (await app.http.post(u(org, 'sites')).set(bearer(org.key)).send({ name: 'wiki', products: ['confluence'] }).expect(201)).body.id;
    x = await createDirectory(org, 'X');
    y = await createDirectory(org, 'Y', 'entra');
    await scimUser(x.id, 'ann');
    await scimUser(x.id, 'bob');
    await scimUser(x.id, 'cat', { deletedAt: new Date() });
    await scimUser(x.id, 'dan', { active: false });
    await scimUser(y.id, 'eve');
    await group(x.id, 'xEng', 'Engineering', ['ann', 'cat', 'dan']);
    await group(x.id, 'xSales', 'Sales', ['bob']);
    await group(y.id, 'yEng', 'Engineering', ['eve']);
    const managed = await db().account.findMany({ where: { orgId: org.id }, select: { managed: true, policyId: true } });
    expect(managed.every((a) => a.managed && a.policyId === org.defaultPolicyId), 'accounts are managed, in the default policy').toBe(true);
  });

  it('creating a mapping grants the live, active members of the matching group (any case) at once, with a billable delta', async () => {
    const res = await app.http.post(u(org, `directories/${x.id}/group-mappings`)).set(bearer(org.key)).send({ group: 'ENGINEERING', siteId: prod, product: 'jira' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ id: expect.any(String), directoryId: x.id, group: 'engineering', siteId: prod, product: 'jira', role: 'user' });
    engMapping = res.body.id;

    expect(await groupAccess(acc.ann!)).toEqual([{ siteId: prod, product: 'jira', role: 'user', grantedBy: `group:${engMapping}` }]);
    expect(await deltas(acc.ann!)).toEqual([{ kind: 'added', cause: 'group-mapping-created' }]);
    for (const name of ['bob', 'cat', 'dan', 'eve']) {
      expect(await groupAccess(acc[name]!), `${name}: not a live member of X/Engineering`).toEqual([]);
      expect(await deltas(acc[name]!), `${name}: no delta`).toEqual([]);
    }
    const view = await app.http.get(u(org, `accounts/${acc.ann}`)).set(bearer(org.key)).expect(200);
    expect(view.body).toMatchObject({ billable: true, billableReasons: ['managed', 'active', 'access:jira'] });
    expect(view.body.access).toEqual([{ siteId: prod, product: 'jira', role: 'user', grantedBy: `group:${engMapping}` }]);

    const audit = await app.http.get(u(org, 'audit?action=directory.group-mapping.create')).set(bearer(org.key)).expect(200);
    expect(audit.body.items[0]).toMatchObject({ targetId: x.id, after: { id: engMapping, group: 'engineering', accessGranted: 1, billableDeltas: 1 } });
  });

  it('JSM defaults to agent; the role rules of direct access apply', async () => {
    const res = await app.http.post(u(org, `directories/${x.id}/group-mappings`)).set(bearer(org.key)).send({ group: 'Sales', siteId: prod, product: 'jsm' }).expect(201);
    expect(res.body.role).toBe('agent');
    salesMapping = res.body.id;
    expect(await groupAccess(acc.bob!)).toEqual([{ siteId: prod, product: 'jsm', role: 'agent', grantedBy: `group:${salesMapping}` }]);
    expect(await deltas(acc.bob!)).toEqual([{ kind: 'added', cause: 'group-mapping-created' }]);
  });

  it.each([
    ['a product the site does not host → 409 product-not-on-site', () => ({ group: 'Engineering', siteId: wiki, product: 'jira' }), 409, 'product-not-on-site', undefined],
    ['an unknown site → 400 on siteId', () => ({ group: 'Engineering', siteId: randomUUID(), product: 'jira' }), 400, 'invalid-input', 'siteId'],
    ['JSM role "user" → 400 on role', () => ({ group: 'Engineering', siteId: prod, product: 'jsm', role: 'user' }), 400, 'invalid-input', 'role'],
    ['an agent role on Jira → 400 on role', () => ({ group: 'Engineering', siteId: prod, product: 'jira', role: 'agent' }), 400, 'invalid-input', 'role'],
    ['the same group/site/product again (other case) → 409', () => ({ group: 'engineering', siteId: prod, product: 'jira' }), 409, 'group-mapping-exists', undefined],
    ['an empty group → 400 on group', () => ({ group: ' ', siteId: prod, product: 'jira' }), 400, 'invalid-input', 'group'],
    ['no product → 400 on product', () => ({ group: 'Engineering', siteId: prod }), 400, 'invalid-input', 'product'],
  ] as const)('%s, nothing changes', async (_name, body, status, type, path) => {
    const before = { mappings: await db().groupMapping.count(), access: await db().productAccess.count(), deltas: await db().billableDelta.count() };
    const res = await app.http.post(u(org, `directories/${x.id}/group-mappings`)).set(bearer(org.key)).send(body());
    expect(res.status).toBe(status);
    expect(res.body.type).toBe(`https://orgsync.dev/problems/${type}`);
    if (path) expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual([path]);
    expect({ mappings: await db().groupMapping.count(), access: await db().productAccess.count(), deltas: await db().billableDelta.count() }).toEqual(before);
  });

  it('concurrent creates of one mapping: one 201, the rest 409, one grant', async () => {
    const body = { group: 'Sales', siteId: wiki, product: 'confluence' };
    const res = await Promise.all(Array.from({ length: 4 }, () => app.http.post(u(org, `directories/${x.id}/group-mappings`)).set(bearer(org.key)).send(body)));
    expect(res.map((r) => r.status).sort()).toEqual([201, 409, 409, 409]);
    const created = res.find((r) => r.status === 201)!.body.id;
    expect(await db().productAccess.count({ where: { grantedBy: `group:${created}` } })).toBe(1);
    await app.http.delete(u(org, `directories/${x.id}/group-mappings/${created}`)).set(bearer(org.key)).expect(204);
    expect(await groupAccess(acc.bob!)).toHaveLength(1);
  });

  it('lists the directory\'s mappings', async () => {
    const res = await app.http.get(u(org, `directories/${x.id}/group-mappings`)).set(bearer(org.key)).expect(200);
    expect(res.body.items.map((m: { id: string }) => m.id)).toEqual([engMapping, salesMapping]);
    const none = await app.http.get(u(org, `directories/${y.id}/group-mappings`)).set(bearer(org.key)).expect(200);
    expect(none.body).toEqual({ items: [], next: null });
  });

  it('syncGroupAccess after a membership is removed revokes the access (removed delta); after it is added back, grants it', async () => {
    await db().scimGroupMember.delete({ where: { groupId_userId: { groupId: groups.xEng!, userId: scim.ann! } } });
    await sync(x.id, [scim.ann!], 'scim-group-membership');
    expect(await groupAccess(acc.ann!)).toEqual([]);
    expect((await deltas(acc.ann!)).at(-1)).toEqual({ kind: 'removed', cause: 'scim-group-membership' });
    expect(await billable(acc.ann!)).toBe(false);

    await sync(x.id, [scim.ann!], 'scim-group-membership');
    expect(await deltas(acc.ann!), 'nothing changed: no delta').toHaveLength(2);

    await db().scimGroupMember.create({ data: { orgId: org.id, directoryId: x.id, groupId: groups.xEng!, userId: scim.ann! } });
    await sync(x.id, 'all', 'resync');
    expect(await groupAccess(acc.ann!)).toEqual([{ siteId: prod, product: 'jira', role: 'user', grantedBy: `group:${engMapping}` }]);
    expect((await deltas(acc.ann!)).at(-1)).toEqual({ kind: 'added', cause: 'resync' });
    for (const name of ['bob', 'cat', 'dan', 'eve']) expect((await deltas(acc[name]!)).length, `${name} untouched by 'all'`).toBe(name === 'bob' ? 1 : 0);
  });

  it('a tombstoned or inactive SCIM user loses group access; revived and active, gets it back', async () => {
    await db().scimUser.update({ where: { id: scim.ann! }, data: { deletedAt: new Date() } });
    await sync(x.id, [scim.ann!], 'scim-user-deleted');
    expect(await groupAccess(acc.ann!)).toEqual([]);
    await db().scimUser.update({ where: { id: scim.ann! }, data: { deletedAt: null, active: false } });
    await sync(x.id, [scim.ann!], 'scim-user-revived');
    expect(await groupAccess(acc.ann!), 'revived but inactive').toEqual([]);
    await db().scimUser.update({ where: { id: scim.ann! }, data: { active: true } });
    await sync(x.id, [scim.ann!], 'scim-user-activated');
    expect(await groupAccess(acc.ann!)).toHaveLength(1);
    expect((await deltas(acc.ann!)).slice(-2)).toEqual([{ kind: 'removed', cause: 'scim-user-deleted' }, { kind: 'added', cause: 'scim-user-activated' }]);
    // The tombstoned and inactive members of X/Engineering got nothing through any of this.
    expect(await groupAccess(acc.cat!)).toEqual([]);
    expect(await groupAccess(acc.dan!)).toEqual([]);
  });

  it('ids that are not SCIM users of the directory change nothing', async () => {
    const before = await db().productAccess.count({ where: { orgId: org.id } });
    await sync(x.id, [scim.eve!, randomUUID(), 'not-a-uuid'], 'noise');
    await sync(y.id, [scim.ann!], 'noise');
    await sync(x.id, [], 'noise');
    expect(await db().productAccess.count({ where: { orgId: org.id } })).toBe(before);
    expect(await db().billableDelta.count({ where: { orgId: org.id, cause: 'noise' } })).toBe(0);
  });

  it('mappings of another directory are separate: same group name, own members, own grants', async () => {
    const m = (await app.http.post(u(org, `directories/${y.id}/group-mappings`)).set(bearer(org.key)).send({ group: 'Engineering', siteId: wiki, product: 'confluence' }).expect(201)).body;
    expect(await groupAccess(acc.eve!)).toEqual([{ siteId: wiki, product: 'confluence', role: 'user', grantedBy: `group:${m.id}` }]);
    expect(await groupAccess(acc.ann!), 'X members get nothing from Y mappings').toHaveLength(1);
    await sync(x.id, 'all', 'resync-x');
    expect(await groupAccess(acc.eve!), 'a sync of X leaves Y grants alone').toHaveLength(1);
    await app.http.delete(u(org, `directories/${x.id}/group-mappings/${m.id}`)).set(bearer(org.key)).expect(404);
  });

  it('a site that drops the product: group access goes with it and is not re-granted by a sync', async () => {
    const site = (await app.http.post(u(org, 'sites')).set(bearer(org.key)).send({ name: 'shrinking', products: ['jpd'] }).expect(201)).body.id;
    const m = (await app.http.post(u(org, `directories/${x.id}/group-mappings`)).set(bearer(org.key)).send({ group: 'Sales', siteId: site, product: 'jpd' }).expect(201)).body;
    expect(await groupAccess(acc.bob!)).toHaveLength(2);
    await app.http.patch(u(org, `sites/${site}`)).set(bearer(org.key)).send({ products: [] }).expect(200);
    expect(await groupAccess(acc.bob!)).toHaveLength(1);
    await sync(x.id, 'all', 'resync');
    expect(await groupAccess(acc.bob!), 'the mapping stays, but the site no longer hosts jpd').toEqual([{ siteId: prod, product: 'jsm', role: 'agent', grantedBy: `group:${salesMapping}` }]);
    await app.http.delete(u(org, `directories/${x.id}/group-mappings/${m.id}`)).set(bearer(org.key)).expect(204);
  });

  it('deleting a mapping revokes what it granted (removed delta) and leaves direct access alone', async () => {
    // bob: only the Sales mapping → removed. ann: the Engineering mapping plus direct Jira → stays billable.
    await app.http.post(u(org, `sites/${prod}/access`)).set(bearer(org.key)).send({ accountId: acc.ann, product: 'jira' }).expect(201);
    const annDeltas = (await deltas(acc.ann!)).length;

    await app.http.delete(u(org, `directories/${x.id}/group-mappings/${salesMapping}`)).set(bearer(org.key)).expect(204);
    expect(await groupAccess(acc.bob!)).toEqual([]);
    expect((await deltas(acc.bob!)).at(-1)).toEqual({ kind: 'removed', cause: 'group-mapping-deleted' });
    expect(await billable(acc.bob!)).toBe(false);

    await app.http.delete(u(org, `directories/${x.id}/group-mappings/${engMapping}`)).set(bearer(org.key)).expect(204);
    expect(await groupAccess(acc.ann!)).toEqual([]);
    expect(await db().productAccess.findMany({ where: { accountId: acc.ann! }, select: { grantedBy: true } })).toEqual([{ grantedBy: 'direct' }]);
    expect(await billable(acc.ann!)).toBe(true);
    expect(await deltas(acc.ann!), 'still billable through direct access: no delta').toHaveLength(annDeltas);

    const audit = await app.http.get(u(org, 'audit?action=directory.group-mapping.delete')).set(bearer(org.key)).expect(200);
    expect(audit.body.items[1]).toMatchObject({ targetId: x.id, before: { id: salesMapping, group: 'sales' }, after: { accessRevoked: 1, billableDeltas: 1 } });
    expect(audit.body.items[0]).toMatchObject({ before: { id: engMapping }, after: { accessRevoked: 1, billableDeltas: 0 } });

    await app.http.delete(u(org, `directories/${x.id}/group-mappings/${engMapping}`)).set(bearer(org.key)).expect(404);
    const list = await app.http.get(u(org, `directories/${x.id}/group-mappings`)).set(bearer(org.key)).expect(200);
    expect(list.body.items).toEqual([]);
  });
});

describe('directories: tenant isolation', () => {
  let a: Org;
  let b: Org;
  let dir: { id: string; token: string };
  let mappingId: string;

  beforeAll(async () => {
    a = await createOrg(app, 'Iso A');
    b = await createOrg(app, 'Iso B');
    dir = await createDirectory(a, 'A dir');
    const site = (await app.http.post(u(a, 'sites')).set(bearer(a.key)).send({ name: 'a', products: ['jira'] }).expect(201)).body.id;
    mappingId = (await app.http.post(u(a, `directories/${dir.id}/group-mappings`)).set(bearer(a.key)).send({ group: 'g', siteId: site, product: 'jira' }).expect(201)).body.id;
  });

  const calls = (o: () => Org) => [
    ['get', () => `directories/${dir.id}`, undefined],
    ['post', () => `directories/${dir.id}/token`, {}],
    ['get', () => `directories/${dir.id}/events`, undefined],
    ['get', () => `directories/${dir.id}/group-mappings`, undefined],
    ['post', () => `directories/${dir.id}/group-mappings`, { group: 'h', siteId: randomUUID(), product: 'jira' }],
    ['delete', () => `directories/${dir.id}/group-mappings/${mappingId}`, undefined],
  ].map(([m, p, body]) => [m, p, body, o] as const);

  it.each([
    ...calls(() => a).map((c) => ['B key on A path', ...c] as const),
    ...calls(() => b).map((c) => ['B key on B path with A ids', ...c] as const),
  ])('%s: %s → 404, nothing changed', async (_what, method, path, body, org) => {
    const before = { dir: await db().directory.findUnique({ where: { id: dir.id } }), mappings: await db().groupMapping.count({ where: { directoryId: dir.id } }), audit: await db().auditEvent.count({ where: { orgId: a.id } }) };
    const req = app.http[method as 'get' | 'post' | 'delete'](u(org(), (path as () => string)())).set(bearer(b.key));
    const res = body === undefined ? await req : await req.send(body as object);
    expect(res.status, JSON.stringify(res.body)).toBe(404);
    expect({ dir: await db().directory.findUnique({ where: { id: dir.id } }), mappings: await db().groupMapping.count({ where: { directoryId: dir.id } }), audit: await db().auditEvent.count({ where: { orgId: a.id } }) }).toEqual(before);
  });

  it('B never sees A\'s directories in its list', async () => {
    const res = await app.http.get(u(b, 'directories')).set(bearer(b.key)).expect(200);
    expect(res.body.items).toEqual([]);
  });
});
