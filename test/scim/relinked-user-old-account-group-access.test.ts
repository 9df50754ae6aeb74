// Regression: a SCIM user that leaves its account (its emails are removed: it is unlinked) kept,
// on that account, the product access its group mapping had granted — syncGroupAccess recomputed
// only the user's new account (none). The old account must lose it, with its delta.
// (An email change no longer relinks: the same account follows the rename, issue 11 §4, and keeps
// its group access — checked here too.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../support/app.js';
import { bearer, orgWithDirectory, PATCH_OP, scim, SCIM_GROUP, startTestApp, user, type Directory } from '../support/scim.js';

let app: TestApp;
let dir: Directory;
let s: ReturnType<typeof scim>;
let site: string;

beforeAll(async () => {
  app = await startTestApp();
  dir = await orgWithDirectory(app, { name: 'Relink Co', domain: 'relink.example', trial: true });
  s = scim(app, dir);
  site = (await app.http.post(`/api/v1/orgs/${dir.orgId}/sites`).set(bearer(dir.orgKey)).send({ name: 'prod', products: ['jira'] }).expect(201)).body.id;
  await app.http.post(`/api/v1/orgs/${dir.orgId}/directories/${dir.id}/group-mappings`).set(bearer(dir.orgKey)).send({ group: 'Engineering', siteId: site, product: 'jira' }).expect(201);
});
afterAll(async () => app?.close());

const db = () => app.svc.db.prisma;
const accountOf = async (email: string) => (await db().account.findFirst({ where: { orgId: dir.orgId, emailNormalized: email } }))!;
const groupAccess = (accountId: string) => db().productAccess.findMany({ where: { accountId, grantedBy: { startsWith: 'group:' } }, select: { siteId: true, product: true } });
const deltas = (accountId: string) => db().billableDelta.findMany({ where: { accountId }, orderBy: { seq: 'asc' }, select: { kind: true, cause: true } });

describe('a SCIM user leaving its account: the old account loses its group-granted access', () => {
  async function memberOfEngineering(email: string) {
    const u = (await s.post('/Users', user(email)).expect(201)).body;
    await s.post('/Groups', { schemas: [SCIM_GROUP], displayName: `Engineering`, members: [{ value: u.id }] }).expect((res) => {
      // Later cases add the user to the group created by the first one.
      if (res.status === 409) return;
      expect(res.status).toBe(201);
    });
    const group = (await db().scimGroup.findFirst({ where: { directoryId: dir.id, displayNameNormalized: 'engineering' } }))!;
    await s.patch(`/Groups/${group.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: [{ value: u.id }] }] }).expect(200);
    const acc = await accountOf(email);
    expect(await groupAccess(acc.id), 'granted through the mapping').toEqual([{ siteId: site, product: 'jira' }]);
    expect(acc.billable).toBe(true);
    return { u, acc };
  }

  it.each([
    ['PATCH removing the emails', 'patch'],
    ['PUT without emails', 'put'],
  ] as const)('%s: unlinked; the old account is revoked (removed delta) and disabled', async (_name, how) => {
    const { u, acc } = await memberOfEngineering(`${how}-leaver@relink.example`);
    if (how === 'patch') {
      await s.patch(`/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'userName', value: `${how}-leaver` }, { op: 'remove', path: 'emails' }] }).expect(200);
    } else {
      await s.put(`/Users/${u.id}`, user(`${how}-leaver`, { emails: [] })).expect(200);
    }
    const old = (await db().account.findUnique({ where: { id: acc.id } }))!;
    expect((await db().scimUser.findUnique({ where: { id: u.id } }))!.accountId, 'unlinked').toBeNull();
    expect(await groupAccess(old.id), 'the old account keeps no group access').toEqual([]);
    expect(old.billable, 'the old account is no longer billable').toBe(false);
    expect(old.status, 'no SCIM user is linked to the old account any more').toBe('disabled');
    expect((await deltas(old.id)).at(-1), 'the old account has its removed delta').toEqual({ kind: 'removed', cause: 'scim-user-updated' });
  });

  it('an email change renames the same account, which keeps its group access and stays billable (no delta)', async () => {
    const { u, acc } = await memberOfEngineering('renamed-old@relink.example');
    const before = await deltas(acc.id);
    await s.patch(`/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'emails[type eq "work"].value', value: 'renamed-new@relink.example' }] }).expect(200);
    const now = (await db().account.findUnique({ where: { id: acc.id } }))!;
    expect(now).toMatchObject({ email: 'renamed-new@relink.example', billable: true, status: 'active' });
    expect(await db().account.count({ where: { orgId: dir.orgId, emailNormalized: 'renamed-old@relink.example' } }), 'no second account').toBe(0);
    expect(await groupAccess(acc.id)).toEqual([{ siteId: site, product: 'jira' }]);
    expect(await deltas(acc.id)).toEqual(before);
  });
});
