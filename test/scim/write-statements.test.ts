// What a SCIM write costs in SQL, and that skipping the billability recomputation where nothing
// it depends on changed (scim-user-service afterWrite) still leaves the ledger right.
import net from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../support/app.js';
import { onPostgres } from '../support/database.js';
import { bearer, orgWithDirectory, PATCH_OP, scim, startTestApp, user, type Directory } from '../support/scim.js';
import { reconcileOrg } from '../../src/billing/reconcile.js';
import { inSqlTransaction } from '../../src/store/transaction.js';
import { scimUserStore } from '../../src/store/scim-user-store.js';

let app: TestApp;
let dir: Directory;
let userId: string;
let accountId: string;
beforeAll(async () => {
  app = await startTestApp();
  dir = await orgWithDirectory(app, { name: 'Write Statements', domain: 'write-statements.example', trial: true });
  const res = await scim(app, dir).post('/Users', user('ann@write-statements.example')).expect(201);
  userId = res.body.id;
  accountId = (await app.svc.db.prisma.scimUser.findUniqueOrThrow({ where: { id: userId } })).accountId!;
  const site = (await app.http.post(`/api/v1/orgs/${dir.orgId}/sites`).set(bearer(dir.orgKey)).send({ name: 'main', products: ['jira'] }).expect(201)).body;
  await app.http.post(`/api/v1/orgs/${dir.orgId}/sites/${site.id}/access`).set(bearer(dir.orgKey)).send({ accountId, product: 'jira' }).expect(201);
});
afterAll(async () => app?.close());

const patch = (ops: unknown[]) => scim(app, dir).patch(`/Users/${userId}`, { schemas: [PATCH_OP], Operations: ops });
const deltas = () => app.svc.db.prisma.billableDelta.findMany({ where: { accountId }, orderBy: { seq: 'asc' }, select: { kind: true, cause: true } });

/** Statements sent by this process while fn runs (PostgreSQL: pg.Client#query wrapped). */
async function statements(fn: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const orig = pg.Client.prototype.query;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const q = args[0] as string | { text?: string };
    seen.push(typeof q === 'string' ? q : (q?.text ?? ''));
    return (orig as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof orig;
  try {
    await fn();
  } finally {
    pg.Client.prototype.query = orig;
  }
  return seen.filter((s) => !s.includes('"ScimEvent"'));
}
/**
 * Round trips of the transactions fn runs: on each PostgreSQL socket, the writes from the one
 * carrying BEGIN to the one carrying COMMIT. Other statements on the same pooled connection
 * before or after (the batched SCIM event INSERT, flushed on a timer) are not counted.
 */
async function socketWrites(fn: () => Promise<unknown>): Promise<number> {
  const port = Number(new URL(process.env.DATABASE_URL!).port || 5432);
  const proto = net.Socket.prototype as unknown as Record<'_write' | '_writev', (...a: unknown[]) => unknown>;
  const orig = { _write: proto._write, _writev: proto._writev };
  const open = new Set<net.Socket>();
  let n = 0;
  const text = (a: unknown[]) => (Array.isArray(a[0]) ? (a[0] as { chunk: Buffer }[]).map((c) => String(c.chunk)).join('') : String(a[0]));
  for (const k of ['_write', '_writev'] as const) {
    proto[k] = function (this: net.Socket, ...a: unknown[]) {
      if (this.remotePort === port) {
        const t = text(a);
        if (t.includes('BEGIN')) open.add(this);
        if (open.has(this)) n++;
        if (t.includes('COMMIT')) open.delete(this);
      }
      return orig[k].apply(this, a);
    };
  }
  try {
    await fn();
  } finally {
    Object.assign(proto, orig);
  }
  return n;
}
afterEach(async () => {
  expect((await reconcileOrg(app.svc.db, dir.orgId, { trigger: 'test' })).corrections, 'no drift').toBe(0);
});

describe('SCIM user writes and billability', () => {
  it('the user is billable after the grant (one added delta)', async () => {
    expect(await deltas()).toEqual([{ kind: 'added', cause: 'access-granted' }]);
  });

  it.runIf(onPostgres)('PATCH title: no account lock, no billability statements; the read is the transaction\'s first statement (5 in all)', async () => {
    const sent = await statements(() => patch([{ op: 'replace', path: 'title', value: 'Counter' }]).expect(200));
    await patch([{ op: 'remove', path: 'title' }]).expect(200);
    // The read locks the ScimUser row only (FOR NO KEY UPDATE OF u: step 3 of the lock order), never its account.
    expect(sent.some((s) => /FOR UPDATE(?! OF u\b)/i.test(s) && s.includes('"Account"'))).toBe(false);
    expect(sent.some((s) => /FOR NO KEY UPDATE OF u\b/.test(s))).toBe(true);
    expect(sent.some((s) => s.includes('"Subscription"'))).toBe(false);
    expect(sent.map((s) => s.trim().split(/[\s;]+/)[0]!.toUpperCase())).toEqual(['BEGIN', 'SELECT', 'WITH', 'INSERT', 'COMMIT']);
    // The UPDATE is a CTE of a statement that asserts its match (orgsync_expect).
    expect(sent[2]).toMatch(/UPDATE "ScimUser"[\s\S]*orgsync_expect/);
  });

  it.runIf(onPostgres)('PATCH displayName: the account\'s name follows (one UPDATE more, issue 11 §4), still no account lock, no billability statements', async () => {
    const sent = await statements(() => patch([{ op: 'replace', path: 'displayName', value: 'Ann A.' }]).expect(200));
    expect(sent.some((s) => /FOR UPDATE(?! OF u\b)/i.test(s) && s.includes('"Account"'))).toBe(false);
    expect(sent.some((s) => s.includes('"Subscription"'))).toBe(false);
    expect(sent.map((s) => s.trim().split(/[\s;]+/)[0]!.toUpperCase())).toEqual(['BEGIN', 'SELECT', 'UPDATE', 'WITH', 'INSERT', 'COMMIT']);
    expect(sent.filter((s) => /^\s*UPDATE "Account"/.test(s))).toHaveLength(1);
  });

  it.runIf(onPostgres)('PATCH displayName: two round trips to PostgreSQL, the UPDATE\'s answer not waited for before the COMMIT', async () => {
    const writes = await socketWrites(() => patch([{ op: 'replace', path: 'displayName', value: 'Ann W.' }]).expect(200));
    // BEGIN with the read; then the UPDATEs, the guard, the audit row and the COMMIT in one write.
    expect(writes).toBe(2);
    const row = await app.svc.db.prisma.scimUser.findUniqueOrThrow({ where: { id: userId } });
    expect(row.displayName).toBe('Ann W.');
    expect((await app.svc.db.prisma.account.findUniqueOrThrow({ where: { id: accountId } })).displayName).toBe('Ann W.');
  });

  it('sent_update_that_misses_commits_nothing: a write whose UPDATE matched no row fails in the database (orgsync_expect, 40001), nothing commits around it', async () => {
    const before = await app.svc.db.prisma.scimUser.findUniqueOrThrow({ where: { id: userId } });
    const audits = await app.svc.db.prisma.auditEvent.count({ where: { orgId: dir.orgId } });
    let attempts = 0;
    const err = await inSqlTransaction(app.svc.db, async (tx) => {
      attempts++;
      // A stale version: the UPDATE matches nothing, as if the row had moved under the lock.
      const sent = await scimUserStore.sendUpdate(tx, before, before.version - 1, { displayName: 'Never' }, null, new Date());
      await tx.$executeRaw`INSERT INTO "AuditEvent" ("id", "orgId", "actor", "action", "targetType", "targetId", "before", "after")
        VALUES (gen_random_uuid(), ${dir.orgId}::uuid, 'test', 'scim.user.update', 'scim-user', ${userId}, '{}'::jsonb, '{}'::jsonb)`;
      return sent;
    }).then(() => null, (e: unknown) => e);
    expect(String((err as Error)?.message)).toMatch(/the SCIM user was changed by another transaction|could not|serializ/i);
    expect(attempts).toBeGreaterThan(1); // 40001 is retried like a serialization failure
    expect((await app.svc.db.prisma.scimUser.findUniqueOrThrow({ where: { id: userId } })).displayName).toBe(before.displayName);
    expect(await app.svc.db.prisma.auditEvent.count({ where: { orgId: dir.orgId } })).toBe(audits);
  });

  it('PATCH with a stale If-Match: 412, nothing written (checked against the version the write reads)', async () => {
    const current = await scim(app, dir).get(`/Users/${userId}`).expect(200);
    const stale = `W/"${Number(/\d+/.exec(current.headers.etag!)![0]) - 1}"`;
    const res = await scim(app, dir).patch(`/Users/${userId}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'title', value: 'Stale' }] }).set('If-Match', stale).expect(412);
    expect(res.body.status).toBe('412');
    const after = await scim(app, dir).get(`/Users/${userId}`).expect(200);
    expect(after.headers.etag).toBe(current.headers.etag);
    expect(after.body.title).toBeUndefined();
  });

  it.runIf(onPostgres)('POST of a new person: one statement (account, user, emails, audit rows) between BEGIN and COMMIT, the userName index being the check', async () => {
    const sent = await statements(() => scim(app, dir).post('/Users', user('counted@write-statements.example')).expect(201));
    expect(sent.map((s) => s.trim().split(/[\s;]+/)[0]!.toUpperCase())).toEqual(['BEGIN', 'WITH', 'COMMIT']);
    expect(await app.svc.db.prisma.scimUserEmail.count({ where: { value: 'counted@write-statements.example' } })).toBe(1);
  });

  it('a new person\'s create writes what the general path writes: a managed account in the default policy, its email row, the two audit rows', async () => {
    const res = await scim(app, dir).post('/Users', user('Newbie@Write-Statements.example', { externalId: 'ext-newbie', displayName: 'New Bie' })).expect(201);
    const row = await app.svc.db.prisma.scimUser.findUniqueOrThrow({ where: { id: res.body.id }, include: { emails: true } });
    const account = await app.svc.db.prisma.account.findUniqueOrThrow({ where: { id: row.accountId! } });
    expect(account).toMatchObject({
      email: 'Newbie@Write-Statements.example', emailNormalized: 'newbie@write-statements.example', emailDomain: 'write-statements.example',
      managed: true, policyId: dir.defaultPolicyId, source: 'scim', directoryId: dir.id, externalId: 'ext-newbie', status: 'active', billable: false,
      displayName: 'New Bie', givenName: 'Given', familyName: 'Family',
    });
    expect(row).toMatchObject({ userName: 'Newbie@Write-Statements.example', userNameNormalized: 'newbie@write-statements.example', active: true, version: 1, deletedAt: null });
    expect(row.emails.map((e) => ({ value: e.value, valueNormalized: e.valueNormalized, type: e.type, primary: e.primary })))
      .toEqual([{ value: 'Newbie@Write-Statements.example', valueNormalized: 'newbie@write-statements.example', type: 'work', primary: true }]);
    const audits = await app.svc.db.prisma.auditEvent.findMany({ where: { orgId: dir.orgId, targetId: { in: [account.id, row.id] } }, orderBy: { action: 'asc' } });
    expect(audits.map((a) => ({ actor: a.actor, action: a.action, targetType: a.targetType, targetId: a.targetId, before: a.before, after: a.after }))).toEqual([
      { actor: `scim:${dir.id}`, action: 'account.create', targetType: 'account', targetId: account.id, before: null,
        after: { email: 'Newbie@Write-Statements.example', managed: true, source: 'scim', directoryId: dir.id } },
      { actor: `scim:${dir.id}`, action: 'scim.user.create', targetType: 'scim-user', targetId: row.id, before: null,
        after: { userName: 'Newbie@Write-Statements.example', accountId: account.id, active: true } },
    ]);
    expect(audits.every((a) => a.requestId)).toBe(true);
    expect(await app.svc.db.prisma.billableDelta.count({ where: { accountId: account.id } })).toBe(0);
  });

  it('a create whose userName is in use leaves nothing behind: 409, no account for its new address, no audit row (the pipelined create rolls back)', async () => {
    const s = scim(app, dir);
    await s.post('/Users', user('taken@write-statements.example')).expect(201);
    const res = await s.post('/Users', user('TAKEN@write-statements.example', { emails: [{ value: 'newcomer@write-statements.example', type: 'work', primary: true }] })).expect(409);
    expect(res.body.scimType).toBe('uniqueness');
    expect(await app.svc.db.prisma.account.count({ where: { emailNormalized: 'newcomer@write-statements.example' } })).toBe(0);
    expect(await app.svc.db.prisma.auditEvent.count({ where: { orgId: dir.orgId, action: 'account.create', after: { path: ['email'], equals: 'newcomer@write-statements.example' } } })).toBe(0);
  });

  it('a create of a deleted userName revives the same record (the pipelined create gives way to the general path)', async () => {
    const s = scim(app, dir);
    const first = await s.post('/Users', user('phoenix@write-statements.example')).expect(201);
    await s.delete(`/Users/${first.body.id}`).expect(204);
    const again = await s.post('/Users', user('phoenix@write-statements.example', { displayName: 'Risen' })).expect(201);
    expect(again.body.id).toBe(first.body.id);
    expect(again.body.displayName).toBe('Risen');
    expect(await app.svc.db.prisma.auditEvent.count({ where: { orgId: dir.orgId, action: 'scim.user.revive', targetId: first.body.id } })).toBe(1);
  });

  it.runIf(onPostgres)('the raw write transaction is bounded like Prisma\'s was: 30 s per statement and idle in transaction', async () => {
    const shown = await inSqlTransaction(app.svc.db, async (tx) => [
      ...(await tx.$queryRaw<{ statement_timeout: string }[]>`SHOW statement_timeout`),
      ...(await tx.$queryRaw<{ idle_in_transaction_session_timeout: string }[]>`SHOW idle_in_transaction_session_timeout`),
    ]);
    expect(shown).toEqual([{ statement_timeout: '30s' }, { idle_in_transaction_session_timeout: '30s' }]);
  });

  it('PATCH displayName writes no delta', async () => {
    await patch([{ op: 'replace', path: 'displayName', value: 'Ann B.' }]).expect(200);
    expect(await deltas()).toEqual([{ kind: 'added', cause: 'access-granted' }]);
  });

  it('PATCH active:false disables the account and removes it from billing; active:true adds it back', async () => {
    await patch([{ op: 'replace', path: 'active', value: false }]).expect(200);
    expect((await app.svc.db.prisma.account.findUniqueOrThrow({ where: { id: accountId } })).status).toBe('disabled');
    await patch([{ op: 'replace', path: 'active', value: true }]).expect(200);
    expect(await deltas()).toEqual([
      { kind: 'added', cause: 'access-granted' },
      { kind: 'removed', cause: 'scim-user-deactivated' },
      { kind: 'added', cause: 'scim-user-activated' },
    ]);
  });

  it('a second SCIM user with the same email, then its deletion: the account stays billable (the first user is active)', async () => {
    const s = scim(app, dir);
    const twin = await s.post('/Users', user('ann-twin', { emails: [{ value: 'ann@write-statements.example', type: 'work', primary: true }] })).expect(201);
    await s.delete(`/Users/${twin.body.id}`).expect(204);
    expect((await deltas()).length).toBe(3);
    expect((await app.svc.db.prisma.account.findUniqueOrThrow({ where: { id: accountId } })).billable).toBe(true);
  });

  it.runIf(onPostgres)('PATCH active false then true: six and five round trips (were eight and seven), the ledger still right', async () => {
    expect(await socketWrites(() => patch([{ op: 'replace', path: 'active', value: false }]).expect(200))).toBe(6);
    expect(await socketWrites(() => patch([{ op: 'replace', path: 'active', value: true }]).expect(200))).toBe(5);
    expect((await app.svc.db.prisma.account.findUniqueOrThrow({ where: { id: accountId } })).status).toBe('active');
    expect((await deltas()).slice(-2)).toEqual([{ kind: 'removed', cause: 'scim-user-deactivated' }, { kind: 'added', cause: 'scim-user-activated' }]);
  });
});
