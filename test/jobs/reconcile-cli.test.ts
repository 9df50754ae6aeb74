import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { startService } from '../../src/server.js';
import { openDatabase } from '../../src/store/database.js';

/**
 * `orgsync reconcile [--org]` as a real process, on a PGlite data directory the test prepared
 * (the same code runs on PostgreSQL; the directory keeps the test independent of DATABASE_URL).
 */
const BIN = new URL('../../bin/orgsync.js', import.meta.url).pathname;
const OP = 'cli-test-operator-token-0123';
let dir: string;
let orgId: string;
let accountId: string;

const cli = (...args: string[]) =>
  spawnSync(process.execPath, [BIN, 'reconcile', ...args], { encoding: 'utf8', env: { ...process.env, DATABASE_URL: '', DATA_DIR: dir, LOG_LEVEL: 'silent' } });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'orgsync-cli-'));
  const svc = await startService(loadConfig({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: dir, ORGSYNC_OPERATOR_TOKEN: OP, LOG_LEVEL: 'silent', JOBS_ENABLED: 'false' }));
  try {
    const http = request(svc.url);
    const auth = { Authorization: `Bearer ${OP}` };
    const org = (await http.post('/api/v1/orgs').set(auth).send({ name: 'CLI Co' }).expect(201)).body;
    orgId = org.id;
    const u = (p: string) => `/api/v1/orgs/${orgId}/${p}`;
    await http.post(u('domains')).set(auth).send({ domain: 'cli.example' }).expect(201);
    await http.post(u('domains/cli.example/verify')).set(auth).send({ override: true }).expect(200);
    await http.post(u('subscription/trial')).set(auth).send({}).expect(200);
    const site = (await http.post(u('sites')).set(auth).send({ name: 'main', products: ['jira'] }).expect(201)).body;
    for (const email of ['a@cli.example', 'b@cli.example']) {
      const a = (await http.post(u('accounts')).set(auth).send({ email }).expect(201)).body;
      await http.post(u(`sites/${site.id}/access`)).set(auth).send({ accountId: a.id, product: 'jira' }).expect(201);
      accountId = a.id;
    }
  } finally {
    await svc.stop();
  }
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('orgsync reconcile', () => {
  it('exits 0 and prints the summary when there is nothing to correct', () => {
    const r = cli('--org', orgId);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('org\trun\tbillable\tledger\tcorrections');
    expect(r.stdout).toMatch(new RegExp(`${orgId}\\t[0-9a-f-]{36}\\t2\\t2\\t0`));
    expect(r.stdout).toContain('reconciled 1 of 1 orgs: 0 corrections in 0 orgs');
  });

  it('exits 1 when it had to correct something, and 0 on the next run', async () => {
    const db = await openDatabase({ kind: 'pglite', dataDir: dir });
    await db.prisma.account.update({ where: { id: accountId }, data: { billable: false } });
    await db.close();
    const r = cli('--org', orgId);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stdout).toContain('1 corrections in 1 orgs');
    expect(cli().status).toBe(0);
  });

  it('exits 2 on usage errors', () => {
    const bad = cli('--org', 'not-a-uuid');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--org must be an org id');
    expect(cli('--frobnicate').status).toBe(2);
    expect(cli('--org').status).toBe(2);
    const unknown = cli('--org', '00000000-0000-4000-8000-000000000000');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('no org');
    const help = cli('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Exit codes');
  });
});
