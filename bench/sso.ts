/**
 * `npm run bench:sso [-- --db pglite|postgres] [--seconds 10] [--concurrency 10] [--quick]`
 *
 * SSO speed of one orgsync process (issue 5's targets): SAML ACS verifications per second and
 * their p99 for a ~10 KB signed response, and POST /login decisions per second and their p99.
 *
 * The service runs as a child process (`node bin/orgsync.js serve`, PUBLIC_URL = its loopback
 * address), so the load generator (undici) does not share its event loop. Setup through the
 * admin API: one org, a domain verified by operator override, a trial, 200 accounts, and a SAML
 * connection signed by the test IdP key in fixtures/saml/ that allows IdP-initiated responses
 * (each response must still be fresh: the replay cache refuses a second use). Then:
 *
 *   acs     POST /sso/{id}/saml/acs with a distinct signed response per request (pre-generated
 *           by samlify's IdentityProvider, padded with attributes to ~10 KB); a success is
 *           the whole sign-in: schema validation, signature, checks, replay cache, account and
 *           policy, session row and audit row, 303 to /me
 *   login   POST /login {email} for random accounts (the sign-in decision)
 *
 * Options:
 *   --db pglite|postgres        (default pglite; postgres uses --database-url and a fresh database)
 *   --seconds N                 measured seconds per phase (default 10, after 2 s of warm-up)
 *   --concurrency N             in-flight requests (default 10)
 *   --quick                     2-second phases: proves the script works
 *   --database-url URL          (default postgresql://postgres@127.0.0.1:5432/test)
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import pg from 'pg';
import { idpResponse, SAML_KEYS } from '../test/support/saml-idp.js';
import { printHeaderHelpAndExit } from './help.js';

const ROOT = resolve(import.meta.dirname, '..');
const OPERATOR = `bench-operator-${randomBytes(12).toString('hex')}`;
const { values: argv } = parseArgs({
  options: {
    db: { type: 'string', default: 'pglite' }, seconds: { type: 'string' }, concurrency: { type: 'string', default: '10' },
    quick: { type: 'boolean', default: false }, 'database-url': { type: 'string', default: 'postgresql://postgres@127.0.0.1:5432/test' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (argv.help) printHeaderHelpAndExit(import.meta.url);
const SECONDS = Number(argv.seconds ?? (argv.quick ? 2 : 10));
const WARMUP = argv.quick ? 0.5 : 2;
const CONCURRENCY = Number.parseInt(argv.concurrency!, 10);
if (!(SECONDS > 0 && SECONDS <= 120) || !(CONCURRENCY >= 1 && CONCURRENCY <= 256)) throw new Error('--seconds must be in (0,120], --concurrency in 1..256');
if (argv.db !== 'pglite' && argv.db !== 'postgres') throw new Error('--db must be pglite or postgres');
const ENTITY_ID = 'https://idp.bench.example/saml/metadata';
const ACCOUNTS = 200;

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => { const port = (s.address() as { port: number }).port; s.close(() => res(port)); });
  });
}

type Phase = { requests: number; errors: number; statuses: Record<string, number>; rate: number; p50: number; p99: number; max: number };

async function load(pool: Pool, seconds: number, next: () => { path: string; body: string; type: string } | null, okStatus: number): Promise<Phase> {
  const lat: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < deadline) {
      const req = next();
      if (!req) return;
      const start = performance.now();
      const res = await pool.request({ method: 'POST', path: req.path, headers: { 'content-type': req.type }, body: req.body });
      await res.body.dump();
      lat.push(performance.now() - start);
      statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
      if (res.statusCode !== okStatus) errors++;
    }
  }));
  const elapsed = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] ?? NaN;
  return { requests: lat.length, errors, statuses, rate: lat.length / elapsed, p50: pct(50), p99: pct(99), max: lat.at(-1) ?? NaN };
}

async function main() {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'orgsync-bench-sso-'));
  const pgDb = `orgsync_bench_${randomBytes(4).toString('hex')}`;
  const pgUrl = new URL(argv['database-url']!);
  if (argv.db === 'postgres') {
    const c = new pg.Client({ connectionString: pgUrl.toString() });
    await c.connect();
    await c.query(`CREATE DATABASE ${pgDb}`);
    await c.end();
  }
  const logPath = join(dataDir, 'server.log');
  const fd = openSync(logPath, 'a');
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'orgsync.js'), 'serve'], {
    cwd: ROOT, stdio: ['ignore', fd, fd],
    env: {
      PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: String(port), HOST: '127.0.0.1', PUBLIC_URL: url, LOG_LEVEL: 'warn',
      ORGSYNC_OPERATOR_TOKEN: OPERATOR, JOBS_ENABLED: 'false', SECRET_KEY: randomBytes(32).toString('base64url'),
      LOGIN_RATE_LIMIT_PER_SECOND: '100000', LOGIN_RATE_LIMIT_BURST: '1000000', // one client address, on purpose
      ...(argv.db === 'postgres' ? { DATABASE_URL: Object.assign(new URL(pgUrl), { pathname: `/${pgDb}` }).toString() } : { DATA_DIR: join(dataDir, 'db') }),
    },
  });
  closeSync(fd);
  const cleanup = async () => {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    if (argv.db === 'postgres') {
      const c = new pg.Client({ connectionString: pgUrl.toString() });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${pgDb} WITH (FORCE)`);
      await c.end();
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; ; i++) {
      if (i > 1200) throw new Error(`no /healthz after 120 s; see ${logPath}:\n${readFileSync(logPath, 'utf8').slice(-2000)}`);
      try { if ((await fetch(`${url}/healthz`)).ok) break; } catch { /* starting */ }
      await sleep(100);
    }
    const call = async (path: string, token: string, body: unknown) => {
      const r = await fetch(`${url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (r.status >= 300) throw new Error(`${path}: ${r.status} ${await r.text()}`);
      return (await r.json()) as Record<string, string>;
    };
    const org = await call('/api/v1/orgs', OPERATOR, { name: 'Bench SSO' });
    const api = (p: string) => `/api/v1/orgs/${org.id}/${p}`;
    await call(api('domains'), org.adminKey!, { domain: 'bench.example' });
    await call(api('domains/bench.example/verify'), OPERATOR, { override: true });
    await call(api('subscription/trial'), org.adminKey!, {});
    const conn = await call(api('sso-connections'), org.adminKey!, {
      type: 'saml', name: 'Bench IdP', entityId: ENTITY_ID, ssoUrl: 'https://idp.bench.example/sso', certificate: SAML_KEYS.idp.certificate, allowIdpInitiated: true,
    });
    const emails = Array.from({ length: ACCOUNTS }, (_, i) => `user${i}@bench.example`);
    for (const email of emails) await call(api('accounts'), org.adminKey!, { email });

    // ~10 KB responses: attributes pad the assertion the way a group-heavy IdP does.
    const padding = Object.fromEntries(Array.from({ length: 22 }, (_, i) => [`http://schemas.bench.example/claims/group${i}`, `group-${i}-${"x".repeat(120)}`]));
    const expected = Math.ceil((SECONDS + WARMUP) * 400);
    const samlConn = { id: conn.id!, entityId: ENTITY_ID, ssoUrl: 'https://idp.bench.example/sso', certificates: [SAML_KEYS.idp.certificate], allowIdpInitiated: true };
    process.stdout.write(`generating ${expected} signed responses… `);
    const responses: string[] = [];
    for (let i = 0; i < expected; i++) {
      const r = await idpResponse(samlConn, { nameId: emails[i % ACCOUNTS]!, inResponseTo: null, attributes: padding }, url);
      responses.push(new URLSearchParams({ SAMLResponse: r.base64 }).toString());
    }
    const size = Buffer.from(decodeURIComponent(responses[0]!.slice('SAMLResponse='.length)), 'base64').length;
    process.stdout.write(`done (${(size / 1024).toFixed(1)} KB of XML each)\n`);

    const pool = new Pool(url, { connections: CONCURRENCY, pipelining: 1 });
    let n = 0;
    const acsNext = () => (n < responses.length ? { path: `/sso/${conn.id}/saml/acs`, body: responses[n++]!, type: 'application/x-www-form-urlencoded' } : null);
    await load(pool, WARMUP, acsNext, 303);
    const acs = await load(pool, SECONDS, acsNext, 303);
    const loginNext = () => ({ path: '/login', body: JSON.stringify({ email: emails[Math.floor(Math.random() * ACCOUNTS)] }), type: 'application/json' });
    await load(pool, WARMUP, loginNext, 200);
    const login = await load(pool, SECONDS, loginNext, 200);
    await pool.close();
    if (acs.requests >= responses.length - n && n >= responses.length) console.log('note: the pre-generated responses ran out before the deadline; the ACS rate is a lower bound');

    const row = (name: string, p: Phase, target: string) =>
      `| ${name} | ${p.rate.toFixed(0)} | ${p.p50.toFixed(1)} | ${p.p99.toFixed(1)} | ${p.max.toFixed(1)} | ${p.requests} | ${p.errors} ${JSON.stringify(p.statuses)} | ${target} |`;
    console.log(`\norgsync SSO bench — ${argv.db}, concurrency ${CONCURRENCY}, ${SECONDS} s per phase (+${WARMUP} s warm-up)\n`);
    console.log('| phase | req/s | p50 ms | p99 ms | max ms | requests | errors (statuses) | target |');
    console.log('|---|---|---|---|---|---|---|---|');
    console.log(row(`ACS, ${(size / 1024).toFixed(1)} KB signed response`, acs, '≥ 100/s, p99 ≤ 100 ms'));
    console.log(row('POST /login decision', login, 'p99 < 20 ms'));
  } finally {
    await cleanup();
  }
}

await main();
