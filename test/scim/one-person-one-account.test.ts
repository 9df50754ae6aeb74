// Issue 11 §4 "One person, one account": an IdP rename (Okta userName/email change, Entra UPN
// change) renames the SCIM user's account instead of linking (or creating) a second account;
// the IdP's names follow every push; an address held by another account is a sync issue.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../support/app.js';
import { bearer, orgWithDirectory, PATCH_OP, scim, startTestApp, user, type Directory } from '../support/scim.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => app?.close());

const db = () => app.svc.db.prisma;
const admin = (dir: Directory, p: string) => `/api/v1/orgs/${dir.orgId}/${p}`;
const deltas = (accountId: string) => db().billableDelta.findMany({ where: { accountId }, orderBy: { seq: 'asc' }, select: { kind: true, cause: true } });
const accountsOf = (dir: Directory) => db().account.findMany({ where: { orgId: dir.orgId }, orderBy: { createdAt: 'asc' } });
const scimUser = async (id: string) => (await db().scimUser.findUnique({ where: { id } }))!;
const audits = (dir: Directory, targetId: string, action: string) =>
  db().auditEvent.findMany({ where: { orgId: dir.orgId, targetId, action }, orderBy: { createdAt: 'asc' }, select: { before: true, after: true } });

async function siteWithJira(dir: Directory): Promise<string> {
  return (await app.http.post(admin(dir, 'sites')).set(bearer(dir.orgKey)).send({ name: 'prod', products: ['jira'] }).expect(201)).body.id;
}
async function grantJira(dir: Directory, site: string, accountId: string) {
  await app.http.post(admin(dir, `sites/${site}/access`)).set(bearer(dir.orgKey)).send({ accountId, product: 'jira' }).expect(201);
}

describe('an IdP rename renames the same account', () => {
  it('Okta rename by PUT (new userName and primary email): same id, policy, access and billing; no second account, one billable person', async () => {
    const dir = await orgWithDirectory(app, { name: 'Rename Okta Co', domain: 'rename-okta.example', trial: true });
    const s = scim(app, dir);
    const site = await siteWithJira(dir);
    const policy = (await app.http.post(admin(dir, 'policies')).set(bearer(dir.orgKey)).send({ name: 'Engineering' }).expect(201)).body.id;
    const u = (await s.post('/Users', user('jane.doe@rename-okta.example')).expect(201)).body;
    const [acc] = await accountsOf(dir);
    await grantJira(dir, site, acc!.id);
    await app.http.post(admin(dir, `policies/${policy}/members`)).set(bearer(dir.orgKey)).send({ accountIds: [acc!.id] }).expect(200);

    const res = await s.put(`/Users/${u.id}`, user('jane.smith@rename-okta.example'));
    expect(res.status).toBe(200);
    expect(res.body.userName).toBe('jane.smith@rename-okta.example');

    const after = await accountsOf(dir);
    expect(after.map((a) => [a.id, a.email]), 'one account, renamed').toEqual([[acc!.id, 'jane.smith@rename-okta.example']]);
    expect(after[0]).toMatchObject({ emailNormalized: 'jane.smith@rename-okta.example', emailDomain: 'rename-okta.example', managed: true, policyId: policy, source: 'scim', status: 'active', billable: true });
    expect((await scimUser(u.id)).accountId).toBe(acc!.id);
    expect((await scimUser(u.id)).pendingEmail).toBeNull();
    expect(await db().productAccess.count({ where: { accountId: acc!.id, product: 'jira' } }), 'access stays').toBe(1);
    expect(await deltas(acc!.id), 'billing history stays: no removed, no second added').toEqual([{ kind: 'added', cause: 'access-granted' }]);
    expect(await audits(dir, acc!.id, 'account.update')).toEqual([
      { before: { email: 'jane.doe@rename-okta.example' }, after: { email: 'jane.smith@rename-okta.example', by: 'scim' } },
    ]);
    const estimate = (await app.http.get(admin(dir, 'billing/estimate')).set(bearer(dir.orgKey)).expect(200)).body;
    expect(estimate.billableUsers).toBe(1);
    const billable = (await app.http.get(admin(dir, 'billing/billable-users')).set(bearer(dir.orgKey)).expect(200)).body.items;
    expect(billable.map((b: { accountId: string }) => b.accountId)).toEqual([acc!.id]);
    // The old address is free again: a new person may get it, as a new account.
    await s.post('/Users', user('jane.doe@rename-okta.example')).expect(201);
    expect((await accountsOf(dir)).map((a) => a.email)).toEqual(['jane.smith@rename-okta.example', 'jane.doe@rename-okta.example']);
  });

  it('Entra UPN change by PATCH (userName and work email): the account follows, the PATCH answers 204', async () => {
    const dir = await orgWithDirectory(app, { name: 'Rename Entra Co', domain: 'rename-entra.example', idp: 'entra', trial: true });
    const s = scim(app, dir);
    const u = (await s.post('/Users', user('old.upn@rename-entra.example')).expect(201)).body;
    const [acc] = await accountsOf(dir);
    const res = await s.patch(`/Users/${u.id}`, {
      schemas: [PATCH_OP], Operations: [
        { op: 'Replace', path: 'userName', value: 'new.upn@rename-entra.example' },
        { op: 'Replace', path: 'emails[type eq "work"].value', value: 'new.upn@rename-entra.example' },
      ],
    });
    expect(res.status).toBe(204);
    const after = await accountsOf(dir);
    expect(after.map((a) => [a.id, a.email, a.status])).toEqual([[acc!.id, 'new.upn@rename-entra.example', 'active']]);
    expect((await scimUser(u.id)).userName).toBe('new.upn@rename-entra.example');
  });

  it('a rename to another domain: managed follows the domain, and billability with it (one account throughout)', async () => {
    const dir = await orgWithDirectory(app, { name: 'Rename Domain Co', domain: 'rename-domain.example', trial: true });
    const s = scim(app, dir);
    const site = await siteWithJira(dir);
    const u = (await s.post('/Users', user('lee@rename-domain.example')).expect(201)).body;
    const [acc] = await accountsOf(dir);
    await grantJira(dir, site, acc!.id);

    await s.put(`/Users/${u.id}`, user('lee@partner.example')).expect(200);
    let row = (await accountsOf(dir))[0]!;
    expect(row).toMatchObject({ id: acc!.id, email: 'lee@partner.example', managed: false, policyId: null, billable: false });
    expect((await audits(dir, acc!.id, 'account.update')).at(-1)).toEqual({
      before: { email: 'lee@rename-domain.example', managed: true, policyId: dir.defaultPolicyId },
      after: { email: 'lee@partner.example', managed: false, policyId: null, by: 'scim' },
    });

    await s.put(`/Users/${u.id}`, user('lee@rename-domain.example')).expect(200);
    row = (await accountsOf(dir))[0]!;
    expect(row).toMatchObject({ id: acc!.id, email: 'lee@rename-domain.example', managed: true, policyId: dir.defaultPolicyId, billable: true });
    expect(await deltas(acc!.id)).toEqual([
      { kind: 'added', cause: 'access-granted' }, { kind: 'removed', cause: 'scim-user-updated' }, { kind: 'added', cause: 'scim-user-updated' },
    ]);
    expect(await db().account.count({ where: { orgId: dir.orgId } })).toBe(1);
  });
});

describe('a new address held by another account', () => {
  it('keeps the link, answers 200, lists an email-conflict sync issue; once the address is freed the account follows at the next push', async () => {
    const dir = await orgWithDirectory(app, { name: 'Conflict Co', domain: 'conflict.example', trial: true });
    const s = scim(app, dir);
    const u = (await s.post('/Users', user('sam@conflict.example')).expect(201)).body;
    const [acc] = await accountsOf(dir);
    const other = (await app.http.post(admin(dir, 'accounts')).set(bearer(dir.orgKey)).send({ email: 'samuel@conflict.example', displayName: 'Another Samuel' }).expect(201)).body;

    const res = await s.patch(`/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'emails[type eq "work"].value', value: 'Samuel@conflict.example' }] });
    expect(res.status, 'the IdP is refused nothing').toBe(200);
    expect((await scimUser(u.id))).toMatchObject({ accountId: acc!.id, pendingEmail: 'Samuel@conflict.example' });
    const rows = await accountsOf(dir);
    expect(rows.map((a) => [a.id, a.email, a.source, a.displayName])).toEqual([
      [acc!.id, 'sam@conflict.example', 'scim', null],
      [other.id, 'samuel@conflict.example', 'manual', 'Another Samuel'],
    ]);
    expect(await audits(dir, other.id, 'account.claim'), 'the other account is not claimed').toEqual([]);

    const issues = (await app.http.get(admin(dir, `directories/${dir.id}/sync-issues`)).set(bearer(dir.orgKey)).expect(200)).body.items;
    expect(issues).toEqual([expect.objectContaining({
      scimUserId: u.id, issue: 'email-conflict', accountId: acc!.id, email: 'sam@conflict.example', pendingEmail: 'Samuel@conflict.example', heldByAccountId: other.id,
    })]);
    expect(issues[0].detail).toContain(other.id);

    // The admin frees the address; the next push of the user renames its account and the issue goes.
    await app.http.patch(admin(dir, `accounts/${other.id}`)).set(bearer(dir.orgKey)).send({ email: 'samuel.other@conflict.example' }).expect(200);
    await s.patch(`/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'title', value: 'Engineer' }] }).expect(200);
    expect((await accountsOf(dir)).map((a) => [a.id, a.email])).toEqual([[acc!.id, 'Samuel@conflict.example'], [other.id, 'samuel.other@conflict.example']]);
    expect((await scimUser(u.id)).pendingEmail).toBeNull();
    expect((await app.http.get(admin(dir, `directories/${dir.id}/sync-issues`)).set(bearer(dir.orgKey)).expect(200)).body.items).toEqual([]);
  });

  it('an account shared with another directory\'s user is not renamed by one of them (it would flip back and forth): a sync issue', async () => {
    const a = await orgWithDirectory(app, { name: 'Shared Co', domain: 'shared.example', trial: true });
    const second = (await app.http.post(admin(a, 'directories')).set(bearer(a.orgKey)).send({ name: 'second', idp: 'generic' }).expect(201)).body;
    const b: Directory = { ...a, id: second.id, token: second.token, base: `/scim/v2/${second.id}` };
    const ua = (await scim(app, a).post('/Users', user('kai@shared.example')).expect(201)).body;
    await scim(app, b).post('/Users', user('kai@shared.example')).expect(201);
    const [acc] = await accountsOf(a);
    await scim(app, a).put(`/Users/${ua.id}`, user('kai.new@shared.example')).expect(200);
    expect((await accountsOf(a)).map((x) => [x.id, x.email])).toEqual([[acc!.id, 'kai@shared.example']]);
    expect((await scimUser(ua.id))).toMatchObject({ accountId: acc!.id, pendingEmail: 'kai.new@shared.example' });
    const issues = (await app.http.get(admin(a, `directories/${a.id}/sync-issues`)).set(bearer(a.orgKey)).expect(200)).body.items;
    expect(issues.map((i: { issue: string; heldByAccountId: string | null }) => [i.issue, i.heldByAccountId])).toEqual([['email-conflict', null]]);
  });
});

describe('renames racing for one address (real concurrency on PostgreSQL)', () => {
  it('two users renamed to the same address at once, 20 rounds: one account takes it, the other keeps its own and is a sync issue; never 5xx', async () => {
    const dir = await orgWithDirectory(app, { name: 'Race Rename Co', domain: 'race-rename.example', trial: true });
    const s = scim(app, dir);
    for (let round = 0; round < 20; round++) {
      const a = (await s.post('/Users', user(`a${round}@race-rename.example`)).expect(201)).body;
      const b = (await s.post('/Users', user(`b${round}@race-rename.example`)).expect(201)).body;
      const target = `both${round}@race-rename.example`;
      const delay = (round % 4) * 2;
      const [ra, rb] = await Promise.all([
        s.put(`/Users/${a.id}`, user(`a${round}`, { emails: [{ value: target, type: 'work', primary: true }] })),
        new Promise((r) => setTimeout(r, delay)).then(() => s.put(`/Users/${b.id}`, user(`b${round}`, { emails: [{ value: target, type: 'work', primary: true }] }))),
      ]);
      expect([ra.status, rb.status], `round ${round}: ${JSON.stringify([ra.body, rb.body])}`).toEqual([200, 200]);
      const users = [await scimUser(a.id), await scimUser(b.id)];
      const accounts = await db().account.findMany({ where: { id: { in: users.map((x) => x.accountId!) } } });
      expect(new Set(users.map((x) => x.accountId)).size, `round ${round}: two accounts, one each`).toBe(2);
      expect(accounts.filter((x) => x.emailNormalized === target), `round ${round}: one account has the address`).toHaveLength(1);
      const loser = users.find((x) => accounts.find((acc) => acc.id === x.accountId)!.emailNormalized !== target)!;
      expect(loser.pendingEmail, `round ${round}: the other keeps its own address, pending`).toBe(target);
    }
    expect(await db().account.count({ where: { orgId: dir.orgId } }), 'no account created by a rename').toBe(40);
    const issues = (await app.http.get(admin(dir, `directories/${dir.id}/sync-issues?limit=100`)).set(bearer(dir.orgKey)).expect(200)).body.items;
    expect(issues.filter((i: { issue: string }) => i.issue === 'email-conflict')).toHaveLength(20);
  });
});

describe('the IdP\'s names follow every push', () => {
  it('create (of an existing account), PUT and PATCH update displayName, givenName and familyName; a name not sent stays', async () => {
    const dir = await orgWithDirectory(app, { name: 'Profile Co', domain: 'profile.example', trial: true });
    const s = scim(app, dir);
    const manual = (await app.http.post(admin(dir, 'accounts')).set(bearer(dir.orgKey)).send({ email: 'ada@profile.example', displayName: 'A. L.', givenName: 'A' }).expect(201)).body;
    const names = async () => {
      const a = (await db().account.findUnique({ where: { id: manual.id } }))!;
      return [a.displayName, a.givenName, a.familyName];
    };
    const u = (await s.post('/Users', user('ada@profile.example', { displayName: 'Ada Lovelace', name: { givenName: 'Ada', familyName: 'Lovelace' } })).expect(201)).body;
    expect((await scimUser(u.id)).accountId).toBe(manual.id);
    expect(await names(), 'a create that claims an account').toEqual(['Ada Lovelace', 'Ada', 'Lovelace']);

    await s.put(`/Users/${u.id}`, user('ada@profile.example', { displayName: 'Ada King', name: { givenName: 'Ada', familyName: 'King' } })).expect(200);
    expect(await names(), 'PUT').toEqual(['Ada King', 'Ada', 'King']);

    await s.patch(`/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'name.givenName', value: 'Augusta' }] }).expect(200);
    expect(await names(), 'PATCH of name.givenName').toEqual(['Ada King', 'Augusta', 'King']);
    await s.patch(`/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', value: { displayName: 'Augusta Ada King' } }] }).expect(200);
    expect(await names(), 'PATCH of displayName').toEqual(['Augusta Ada King', 'Augusta', 'King']);
    await s.patch(`/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'remove', path: 'displayName' }] }).expect(200);
    expect(await names(), 'a name the IdP no longer sends stays').toEqual(['Augusta Ada King', 'Augusta', 'King']);

    expect((await audits(dir, manual.id, 'account.update')).at(-1)).toEqual({ before: { displayName: 'Ada King' }, after: { displayName: 'Augusta Ada King', by: 'scim' } });
    const count = (await audits(dir, manual.id, 'account.update')).length;
    await s.patch(`/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'title', value: 'Countess' }] }).expect(200);
    expect((await audits(dir, manual.id, 'account.update')).length, 'unchanged names write no account row').toBe(count);
  });
});
