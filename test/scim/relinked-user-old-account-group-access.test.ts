// Regression: a SCIM user whose email changes is relinked to the account of the new email, and
// syncGroupAccess recomputed only that new account — the old account kept the product access its
// group mapping had granted (and stayed billable). The old account must lose it, with its delta.
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

describe('relinked SCIM user: the old account loses its group-granted access', () => {
  it.each([
    ['PATCH of the email', 'patch'],
    ['PUT with the new email', 'put'],
  ] as const)('%s: old account revoked (removed delta), new account granted (added delta)', async (_name, how) => {
    const oldEmail = `${how}-old@relink.example`;
    const newEmail = `${how}-new@relink.example`;
    const u = (await s.post('/Users', user(oldEmail)).expect(201)).body;
    await s.post('/Groups', { schemas: [SCIM_GROUP], displayName: `Engineering`, members: [{ value: u.id }] }).expect((res) => {
      // The second case adds the user to the group created by the first one.
      if (res.status === 409) return;
      expect(res.status).toBe(201);
    });
    const group = (await db().scimGroup.findFirst({ where: { directoryId: dir.id, displayNameNormalized: 'engineering' } }))!;
    await s.patch(`/Groups/${group.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: [{ value: u.id }] }] }).expect(200);

    const before = await accountOf(oldEmail);
    expect(await groupAccess(before.id), 'granted through the mapping').toEqual([{ siteId: site, product: 'jira' }]);
    expect(before.billable).toBe(true);

    if (how === 'patch') {
      await s.patch(`/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'emails[type eq "work"].value', value: newEmail }] }).expect(200);
    } else {
      await s.put(`/Users/${u.id}`, user(oldEmail, { userName: oldEmail, emails: [{ value: newEmail, type: 'work', primary: true }] })).expect(200);
    }

    const old = await accountOf(oldEmail);
    const now = await accountOf(newEmail);
    expect((await db().scimUser.findUnique({ where: { id: u.id } }))!.accountId, 'relinked to the account of the new email').toBe(now.id);
    expect(await groupAccess(now.id), 'the new account gets the group access').toEqual([{ siteId: site, product: 'jira' }]);
    expect(await groupAccess(old.id), 'the old account keeps no group access').toEqual([]);
    expect(old.billable, 'the old account is no longer billable').toBe(false);
    expect(old.status, 'no SCIM user is linked to the old account any more').toBe('disabled');
    expect((await deltas(old.id)).at(-1), 'the old account has its removed delta').toEqual({ kind: 'removed', cause: 'scim-user-updated' });
    expect((await deltas(now.id)).at(-1)).toEqual({ kind: 'added', cause: 'scim-user-updated' });
  });
});
