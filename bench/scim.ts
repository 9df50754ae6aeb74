/**
 * `npm run bench:scim [-- --db pglite|postgres|both] [--users 10000,100000] [--seconds 10] [--quick]`
 *
 * SCIM throughput and latency of one orgsync process, on PGlite and on PostgreSQL.
 *
 * The service runs as a separate child process (`node bin/orgsync.js serve`), so the load
 * generator (undici, one bounded loop per connection) and the server do not share an event loop.
 * Each database gets a fresh store (a temporary PGlite data directory, or a new database
 * orgsync_bench_<random> on the local PostgreSQL server, dropped afterwards), one org with a
 * domain verified by operator override (so SCIM users become managed accounts) and a trial, and
 * one `idp: okta` directory. Then, against 127.0.0.1 only:
 *
 *   creates      POST /Users, unique userNames, at concurrency C
 *   seed         the directory is filled to the first size through the SCIM API (POST /Users at C)
 *   lookup       GET /Users?filter=userName eq "…" of random existing users
 *   patch        PATCH /Users/{id}: replace displayName, or toggle active (each worker its own users)
 *   seed         filled to the second size with SQL INSERTs into Account / ScimUser / ScimUserEmail,
 *                rows built by the service's own userInput() (PGlite: server stopped meanwhile,
 *                because PGlite allows one process per data directory)
 *   lookup       again, at the second size
 *   list         GET /Users?startIndex=N&count=100, random N
 *
 * Peak server RSS is sampled from /proc/<pid>/status (VmRSS every 100 ms, and VmHWM at the end).
 * Every loop is bounded by a request count and a deadline; the whole run has a hard time limit.
 *
 * Options:
 *   --db pglite|postgres|both   (default both)
 *   --users A,B                 directory sizes for the two lookup rounds (default 10000,100000)
 *   --seconds N                 measured seconds per phase (default 10; warm-up 2 s more)
 *   --concurrency N             connections / in-flight requests (default 20)
 *   --quick                     small sizes (300,1500) and 2-second phases: proves the script works
 *   --database-url URL          PostgreSQL server to create the bench database on
 *                               (default postgresql://postgres@127.0.0.1:5432/test)
 *   --profile DIR               run the server with --cpu-prof, profiles written to DIR
 *   --pool N                    DATABASE_POOL_SIZE for the server (default: the service default)
 *   --keep                      keep the bench database / data directory (for EXPLAIN and the like)
 *   --node-options=FLAGS        extra node flags for the server only (e.g. --node-options=--max-old-space-size=160)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool, WebSocket } from 'undici';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { declareResources, userInput } from '../src/scim/resources.js';
import { normaliseResource } from '../src/scim/dialect.js';
import { printHeaderHelpAndExit } from './help.js';

const ROOT = resolve(import.meta.dirname, '..');
const SCIM_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const DOMAIN = 'bench.example';
const OPERATOR = `bench-operator-${randomBytes(12).toString('hex')}`;

type DbKind = 'pglite' | 'postgres';

// ---------------------------------------------------------------------------------------------
// Options

const { values: argv } = parseArgs({
  options: {
    db: { type: 'string', default: 'both' },
    users: { type: 'string' },
    seconds: { type: 'string' },
    concurrency: { type: 'string', default: '20' },
    quick: { type: 'boolean', default: false },
    'database-url': { type: 'string', default: 'postgresql://postgres@127.0.0.1:5432/test' },
    profile: { type: 'string' },
    pool: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'node-options': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  allowPositionals: false,
});
if (argv.help) printHeaderHelpAndExit(import.meta.url);
const quick = argv.quick!;
const dbs: DbKind[] = argv.db === 'both' ? ['pglite', 'postgres'] : argv.db === 'pglite' || argv.db === 'postgres' ? [argv.db] : die(`--db must be pglite, postgres or both (got ${argv.db})`);
const sizes = (argv.users ?? (quick ? '300,1500' : '10000,100000')).split(',').map((s) => Number.parseInt(s, 10));
if (sizes.length !== 2 || sizes.some((n) => !Number.isInteger(n) || n < 100 || n > 1_000_000) || sizes[0]! > sizes[1]!) die('--users takes two sizes A,B with 100 <= A <= B <= 1000000');
const [SMALL, LARGE] = sizes as [number, number];
const SECONDS = Number(argv.seconds ?? (quick ? 2 : 10));
const WARMUP = quick ? 0.5 : 2;
const CONCURRENCY = Number.parseInt(argv.concurrency!, 10);
if (!(SECONDS > 0 && SECONDS <= 120)) die('--seconds must be in (0, 120]');
if (!(CONCURRENCY >= 1 && CONCURRENCY <= 256)) die('--concurrency must be 1..256');
const PG_URL = argv['database-url']!;
const PROFILE_DIR = argv.profile ? resolve(argv.profile) : undefined;
// Seeding through POST /Users stops after this long; the rest of the first size is seeded with SQL.
const API_SEED_SECONDS = quick ? 5 : 60;
// A run that hangs anywhere still ends: 40 minutes for both databases at default sizes.
const HARD_LIMIT_MS = (quick ? 5 : 40) * 60_000;

function die(msg: string): never {
  process.stderr.write(`bench:scim: ${msg}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// Cleanup: every server we start and every database we create is torn down, whatever happens.

const cleanups: (() => Promise<void> | void)[] = [];
let cleaning: Promise<void> = Promise.resolve();
/** Runs (and forgets) the registered cleanups; calls queue behind each other. */
const cleanup = () => (cleaning = cleaning.then(async () => {
  for (const fn of cleanups.splice(0).reverse()) {
    try { await fn(); } catch (err) { process.stderr.write(`cleanup: ${String(err)}\n`); }
  }
}));
const hardLimit = setTimeout(() => {
  process.stderr.write(`bench:scim: hard time limit (${HARD_LIMIT_MS / 60_000} min) reached, stopping\n`);
  void cleanup().finally(() => process.exit(3));
}, HARD_LIMIT_MS);
hardLimit.unref();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void cleanup().finally(() => process.exit(130)));

// ---------------------------------------------------------------------------------------------
// The server as a child process, with an RSS sampler

type Server = { child: ChildProcess; pid: number; url: string; log: string; peakRssKb: number; phasePeakKb: number; inspectPort: number; stop(): Promise<void> };

function readStatusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

async function startServer(env: Record<string, string>, logPath: string): Promise<Server> {
  const port = await freePort();
  const fd = openSync(logPath, 'a');
  // --profile: the inspector on a loopback port; each phase is profiled separately through it (see Profiler).
  const inspectPort = PROFILE_DIR ? await freePort() : 0;
  const nodeFlags = [...(argv['node-options'] ?? '').split(/\s+/).filter(Boolean), ...(PROFILE_DIR ? [`--inspect=127.0.0.1:${inspectPort}`] : [])];
  const child = spawn(process.execPath, [...nodeFlags, join(ROOT, 'bin', 'orgsync.js'), 'serve'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...(process.env.NODE_OPTIONS ? { NODE_OPTIONS: process.env.NODE_OPTIONS } : {}),
      PORT: String(port), HOST: '127.0.0.1', ORGSYNC_OPERATOR_TOKEN: OPERATOR, LOG_LEVEL: 'warn',
      SCIM_RATE_LIMIT_PER_SECOND: '100000', SCIM_RATE_LIMIT_BURST: '1000000',
      ...(argv.pool ? { DATABASE_POOL_SIZE: argv.pool } : {}),
      ...env,
    },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const pid = child.pid!;
  let exited = false;
  const exit = new Promise<void>((res) => child.once('exit', () => { exited = true; res(); }));
  const url = `http://127.0.0.1:${port}`;
  const server: Server = {
    child, pid, url, log: logPath, peakRssKb: 0, phasePeakKb: 0, inspectPort,
    async stop() {
      clearInterval(sampler);
      server.peakRssKb = Math.max(server.peakRssKb, readStatusKb(pid, 'VmHWM'));
      if (!exited) child.kill('SIGTERM');
      const timer = setTimeout(() => { if (!exited) child.kill('SIGKILL'); }, 20_000);
      await exit;
      clearTimeout(timer);
    },
  };
  const sampler = setInterval(() => {
    const rss = readStatusKb(pid, 'VmRSS');
    server.peakRssKb = Math.max(server.peakRssKb, rss);
    server.phasePeakKb = Math.max(server.phasePeakKb, rss);
  }, 100);
  cleanups.push(() => server.stop());
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (exited) throw new Error(`the server exited during start-up; see ${logPath}:\n${readFileSync(logPath, 'utf8').slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`the server did not answer /healthz within 120 s; see ${logPath}`);
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) break;
    } catch { /* not listening yet */ }
    await sleep(50);
  }
  return server;
}

/**
 * --profile: a CPU profile of the server per phase, taken through the inspector protocol
 * (Profiler.start / Profiler.stop), written to DIR/<db>-<phase>.cpuprofile.
 */
async function profilePhase<T>(server: Server, name: string, fn: () => Promise<T>): Promise<T> {
  if (!PROFILE_DIR || !server.inspectPort) return fn();
  const targets = (await (await fetch(`http://127.0.0.1:${server.inspectPort}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl);
  await new Promise((res, rej) => { ws.onopen = res; ws.onerror = rej; });
  let id = 0;
  const pending = new Map<number, (r: unknown) => void>();
  ws.onmessage = (ev) => {
    const m = JSON.parse(String(ev.data)) as { id?: number; result?: unknown };
    if (m.id !== undefined) pending.get(m.id)?.(m.result);
  };
  const send = (method: string, params: Record<string, unknown> = {}) => new Promise<unknown>((res) => {
    pending.set(++id, res);
    ws.send(JSON.stringify({ id, method, params }));
  });
  await send('Profiler.enable');
  await send('Profiler.setSamplingInterval', { interval: 500 });
  await send('Profiler.start');
  try {
    return await fn();
  } finally {
    const r = (await send('Profiler.stop')) as { profile: unknown };
    const file = join(PROFILE_DIR, `${name.replace(/[^\w@.-]+/g, '_')}.cpuprofile`);
    writeFileSync(file, JSON.stringify(r.profile));
    // Where the RSS is: V8's heap (used / reserved), memory outside it (Buffers, WebAssembly).
    const before = (await send('Runtime.evaluate', { expression: 'process.memoryUsage().heapUsed', returnByValue: true })) as { result?: { value?: number } };
    await send('HeapProfiler.collectGarbage');
    const mem = (await send('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true })) as { result?: { value?: string } };
    const m = JSON.parse(mem.result?.value ?? '{}') as Record<string, number>;
    const mb = (k: string) => `${k} ${((m[k] ?? 0) / 2 ** 20).toFixed(0)} MB`;
    ws.close();
    log(`  profile ${file}; memory at the end: heapUsed ${((before.result?.value ?? 0) / 2 ** 20).toFixed(0)} MB, after a full GC: ${['rss', 'heapTotal', 'heapUsed', 'external', 'arrayBuffers'].map(mb).join(', ')}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Load loop: C workers on an undici pool, each bounded by count and deadline

type Req = { method: 'GET' | 'POST' | 'PATCH'; path: string; body?: string };
type Outcome = { status: number; text: string; worker: number; seq: number };
type PhaseResult = {
  /** CPU used during the measured run, in % of one core: the server, PostgreSQL's processes, this load generator. */
  cpu?: { server: number; postgres: number; bench: number; other: number };
  /** Peak server RSS during the measured run, MB. */
  rssMb?: number;
  /** PostgreSQL only: mean number of the bench database's sessions waiting for a lock (sampled every 50 ms). */
  lockWaiters?: number;
  requests: number; errors: number; statuses: Record<string, number>; seconds: number; rate: number;
  p50: number; p90: number; p99: number; max: number;
};

const headers = (token: string) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' });

async function runLoad(
  pool: Pool, token: string,
  opts: { seconds: number; maxRequests: number; concurrency?: number; record?: boolean },
  next: (worker: number, seq: number) => Req | null,
  onDone?: (o: Outcome) => void,
): Promise<PhaseResult> {
  const concurrency = opts.concurrency ?? CONCURRENCY;
  const lat = new Float64Array(opts.maxRequests);
  const statuses: Record<string, number> = {};
  let issued = 0;
  let done = 0;
  let errors = 0;
  const t0 = performance.now();
  const deadline = t0 + opts.seconds * 1000;
  const h = headers(token);
  const worker = async (w: number) => {
    let seq = 0;
    while (issued < opts.maxRequests && performance.now() < deadline) {
      const req = next(w, seq);
      if (!req) break;
      issued++;
      const start = performance.now();
      let status = 0;
      let text = '';
      try {
        const res = await pool.request({ method: req.method, path: req.path, headers: h, ...(req.body !== undefined ? { body: req.body } : {}) });
        status = res.statusCode;
        text = await res.body.text();
      } catch (err) {
        text = String(err);
      }
      const ms = performance.now() - start;
      if (done < lat.length) lat[done] = ms;
      done++;
      const key = status ? String(status) : 'network-error';
      statuses[key] = (statuses[key] ?? 0) + 1;
      if (status < 200 || status >= 300) errors++;
      onDone?.({ status, text, worker: w, seq });
      seq++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const seconds = (performance.now() - t0) / 1000;
  const sorted = lat.slice(0, Math.min(done, lat.length)).sort();
  const pct = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN);
  return { requests: done, errors, statuses, seconds, rate: done / seconds, p50: pct(50), p90: pct(90), p99: pct(99), max: sorted.at(-1) ?? NaN };
}

/** A warm-up run (not recorded), then the measured run. */
async function measure(
  name: string, at: { server: Server; pool: Pool; token: string; profileAs: string; pgDatabase?: string; lockWaiters?: () => Promise<number> }, maxRequests: number,
  next: (worker: number, seq: number) => Req | null, onDone?: (o: Outcome) => void,
): Promise<PhaseResult> {
  const { server, pool, token } = at;
  await waitForQuiet(name);
  if (WARMUP > 0) await runLoad(pool, token, { seconds: WARMUP, maxRequests: Math.max(1, Math.floor(maxRequests / 5)) }, next, onDone);
  const before = cpuSnapshot(server.pid, at.pgDatabase);
  server.phasePeakKb = readStatusKb(server.pid, 'VmRSS');
  let samples = 0;
  let waiting = 0;
  let sampling = true;
  const sampler = at.lockWaiters && (async () => {
    while (sampling) {
      waiting += await at.lockWaiters!();
      samples++;
      await sleep(50);
    }
  })();
  const r = await profilePhase(server, at.profileAs, () => runLoad(pool, token, { seconds: SECONDS, maxRequests }, next, onDone));
  sampling = false;
  await sampler;
  const used = cpuBetween(before, cpuSnapshot(server.pid, at.pgDatabase));
  const pct = (k: keyof typeof used) => (100 * used[k]) / r.seconds;
  r.cpu = { server: pct('server'), postgres: pct('postgres'), bench: pct('bench'), other: 0 };
  r.cpu.other = Math.max(0, pct('machine') - r.cpu.server - r.cpu.postgres - r.cpu.bench);
  r.rssMb = server.phasePeakKb / 1024;
  if (samples) r.lockWaiters = waiting / samples;
  log(`  ${name}: ${r.requests} requests in ${r.seconds.toFixed(1)} s = ${fmt(r.rate)}/s, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, statuses ${JSON.stringify(r.statuses)}; ` +
    `server CPU ${((10 * r.cpu.server * r.seconds) / r.requests).toFixed(2)} ms/request; ` +
    `CPU server ${r.cpu.server.toFixed(0)}%, postgres ${r.cpu.postgres.toFixed(0)}%, bench ${r.cpu.bench.toFixed(0)}%, everything else ${r.cpu.other.toFixed(0)}% (of ${cpus().length * 100}%); server RSS peak ${fmt(r.rssMb)} MB` +
    (r.lockWaiters !== undefined ? `; sessions waiting on a lock: ${r.lockWaiters.toFixed(1)} on average` : ''));
  return r;
}

const CLOCK_TICKS = 100; // USER_HZ on Linux
const noisyPhases: string[] = [];

/**
 * Other work on this small machine (tests of other checkouts, …) skews everything: before a
 * phase, wait (at most 30 s) until the machine is nearly idle with our load stopped.
 */
async function waitForQuiet(name: string): Promise<void> {
  const deadline = Date.now() + (quick ? 5_000 : 30_000);
  for (;;) {
    const a = cpuSnapshot(process.pid).machine;
    await sleep(1000);
    const busy = 100 * (cpuSnapshot(process.pid).machine - a);
    if (busy < 25) return;
    if (Date.now() > deadline) {
      noisyPhases.push(`${name} (machine ${busy.toFixed(0)}% busy before it)`);
      log(`  machine still ${busy.toFixed(0)}% busy before "${name}"; measuring anyway`);
      return;
    }
  }
}
function procCpuSeconds(pid: number | string): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS; // utime, stime
  } catch {
    return 0;
  }
}
/** CPU seconds so far of the server, of every PostgreSQL server process on the machine, and of this process. */
type CpuSnapshot = { server: number; postgres: Map<string, number>; bench: number; machine: number };
/**
 * CPU seconds so far of the server, of each PostgreSQL process serving `pgDatabase` (its backends,
 * and the server's background processes), of this process, and busy time of the whole machine.
 * Backends of other databases (other test runs) count as "everything else".
 */
function cpuSnapshot(serverPid: number, pgDatabase?: string): CpuSnapshot {
  const postgres = new Map<string, number>();
  if (pgDatabase) {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'postgres') continue;
        // "postgres: 15/main: <user> <database> <client> <state>" for a backend; background processes name no database.
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
        const backend = /^postgres: [^:]+: \S+ (\S+) /.exec(cmd);
        if (!backend || backend[1] === pgDatabase) postgres.set(pid, procCpuSeconds(pid));
      } catch { /* gone */ }
    }
  }
  const u = process.cpuUsage();
  // Busy time of the whole machine (all cores): user, nice, system, irq, softirq, steal.
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const machine = ((f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0)) / CLOCK_TICKS;
  return { server: procCpuSeconds(serverPid), postgres, bench: (u.user + u.system) / 1e6, machine };
}
/** CPU used between two snapshots, in seconds; PostgreSQL per process (backends come and go). */
function cpuBetween(a: CpuSnapshot, b: CpuSnapshot) {
  let postgres = 0;
  for (const [pid, t] of b.postgres) postgres += t - (a.postgres.get(pid) ?? 0);
  return { server: b.server - a.server, postgres, bench: b.bench - a.bench, machine: b.machine - a.machine };
}

// ---------------------------------------------------------------------------------------------
// Admin API set-up and SCIM bodies

async function adminCall(url: string, path: string, token: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

type Tenant = { orgId: string; directoryId: string; token: string; base: string };

async function createTenant(url: string): Promise<Tenant> {
  const org = await adminCall(url, '/api/v1/orgs', OPERATOR, { name: 'Bench' });
  const orgId = String(org.id);
  const key = String(org.adminKey);
  await adminCall(url, `/api/v1/orgs/${orgId}/domains`, key, { domain: DOMAIN });
  await adminCall(url, `/api/v1/orgs/${orgId}/domains/${DOMAIN}/verify`, OPERATOR, { override: true });
  await adminCall(url, `/api/v1/orgs/${orgId}/subscription/trial`, key, {});
  const dir = await adminCall(url, `/api/v1/orgs/${orgId}/directories`, key, { name: 'bench okta', idp: 'okta' });
  return { orgId, directoryId: String(dir.id), token: String(dir.token), base: `/scim/v2/${String(dir.id)}` };
}

const userName = (i: number) => `user${i}@${DOMAIN}`;
/** What Okta pushes on create (its password included, which orgsync drops). */
function userBody(i: number): Record<string, unknown> {
  return {
    schemas: [SCIM_USER], userName: userName(i), active: true, externalId: `00u${i.toString(36).padStart(8, '0')}`,
    name: { givenName: 'Bench', familyName: `User ${i}` }, displayName: `Bench User ${i}`, locale: 'en-US',
    emails: [{ value: userName(i), type: 'work', primary: true }], password: 'not-kept-Aa1!',
  };
}

type User = { id: string; userName: string; active: boolean };

// ---------------------------------------------------------------------------------------------
// SQL seeding: the rows POST /Users would write (Account, ScimUser, ScimUserEmail), in batches

/** Rows of a parameterised query (pg and PGlite both answer { rows }). */
type SqlRunner = { query(sql: string, params: unknown[]): Promise<{ rows: unknown[] }> };

async function seedSql(sql: SqlRunner, tenant: Tenant, from: number, to: number, users: User[]): Promise<void> {
  declareResources();
  const policy = (await sql.query(`SELECT "id"::text AS id FROM "Policy" WHERE "orgId" = $1::uuid AND "isDefault"`, [tenant.orgId])).rows as { id: string }[];
  const policyId = policy[0]?.id;
  if (!policyId) throw new Error('no default policy found for the bench org');
  const BATCH = 2000;
  for (let start = from; start < to; start += BATCH) {
    const accounts: unknown[] = [];
    const scimUsers: unknown[] = [];
    const emails: unknown[] = [];
    const at = new Date().toISOString();
    for (let i = start; i < Math.min(to, start + BATCH); i++) {
      const input = userInput(normaliseResource('User', userBody(i)));
      const c = input.columns;
      const accountId = randomUUID();
      const id = randomUUID();
      const email = c.userName; // the primary work email, already lower-case
      accounts.push({
        id: accountId, email, emailNormalized: email.toLowerCase(), emailDomain: DOMAIN, displayName: c.displayName, givenName: c.givenName,
        familyName: c.familyName, externalId: c.externalId, at,
      });
      scimUsers.push({ id, accountId, ...c, resource: input.resource, at });
      for (const e of input.emails) emails.push({ id: randomUUID(), userId: id, value: e.value, valueNormalized: e.value.toLowerCase(), type: e.type, primary: e.primary });
      users.push({ id, userName: c.userName, active: true });
    }
    await sql.query(`
      INSERT INTO "Account" ("id","orgId","email","emailNormalized","emailDomain","displayName","givenName","familyName","managed","status","source","directoryId","externalId","policyId","billable","createdAt","updatedAt")
      SELECT t.id, $2::uuid, t.email, t."emailNormalized", t."emailDomain", t."displayName", t."givenName", t."familyName", true, 'active', 'scim', $3::uuid, t."externalId", $4::uuid, false, t.at, t.at
      FROM json_to_recordset($1::json) AS t(id uuid, email text, "emailNormalized" text, "emailDomain" text, "displayName" text, "givenName" text, "familyName" text, "externalId" text, at timestamptz)`,
    [JSON.stringify(accounts), tenant.orgId, tenant.directoryId, policyId]);
    await sql.query(`
      INSERT INTO "ScimUser" ("id","orgId","directoryId","accountId","userName","userNameNormalized","externalId","active","displayName","givenName","familyName","title","userType","employeeNumber","department","resource","version","createdAt","updatedAt")
      SELECT t.id, $2::uuid, $3::uuid, t."accountId", t."userName", t."userNameNormalized", t."externalId", t.active, t."displayName", t."givenName", t."familyName", t.title, t."userType", t."employeeNumber", t.department, t.resource, 1, t.at, t.at
      FROM json_to_recordset($1::json) AS t(id uuid, "accountId" uuid, "userName" text, "userNameNormalized" text, "externalId" text, active boolean, "displayName" text, "givenName" text, "familyName" text, title text, "userType" text, "employeeNumber" text, department text, resource jsonb, at timestamptz)`,
    [JSON.stringify(scimUsers), tenant.orgId, tenant.directoryId]);
    await sql.query(`
      INSERT INTO "ScimUserEmail" ("id","orgId","directoryId","userId","value","valueNormalized","type","primary")
      SELECT t.id, $2::uuid, $3::uuid, t."userId", t.value, t."valueNormalized", t.type, t."primary"
      FROM json_to_recordset($1::json) AS t(id uuid, "userId" uuid, value text, "valueNormalized" text, type text, "primary" boolean)`,
    [JSON.stringify(emails), tenant.orgId, tenant.directoryId]);
  }
}

// ---------------------------------------------------------------------------------------------
// One database

type DbResult = {
  kind: DbKind;
  creates: PhaseResult; apiSeed: { users: number; seconds: number }; sqlSeed: { users: number; seconds: number };
  lookupSmall: PhaseResult; patch: PhaseResult; lookupLarge: PhaseResult; list: PhaseResult;
  peakRssMb: number; serverStarts: number; logs: string[]; notes: string[];
};

async function benchDb(kind: DbKind): Promise<DbResult> {
  log(`\n## ${kind}`);
  const work = mkdtempSync(join(tmpdir(), `orgsync-bench-${kind}-`));
  if (!argv.keep) cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  const notes: string[] = [];
  let env: Record<string, string>;
  let pgAdmin: pg.Client | null = null;
  let pgUrl = '';
  let pgDbName = '';
  if (kind === 'postgres') {
    const name = `orgsync_bench_${randomBytes(6).toString('hex')}`;
    pgDbName = name;
    pgAdmin = new pg.Client({ connectionString: PG_URL });
    await pgAdmin.connect();
    await pgAdmin.query(`CREATE DATABASE ${name}`);
    const admin = pgAdmin;
    cleanups.push(async () => {
      if (argv.keep) log(`  kept database ${name}`);
      else await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    });
    const u = new URL(PG_URL);
    u.pathname = `/${name}`;
    pgUrl = u.toString();
    env = { DATABASE_URL: pgUrl };
    log(`  database ${name} on ${u.host}`);
  } else {
    const dataDir = join(work, 'data');
    mkdirSync(dataDir);
    env = { DATA_DIR: dataDir };
    log(`  data directory ${dataDir}`);
  }

  const logs: string[] = [];
  let starts = 0;
  let peakRssKb = 0;
  const start = async () => {
    const path = join(work, `server-${++starts}.log`);
    logs.push(path);
    const t = performance.now();
    const s = await startServer(env, path);
    log(`  server pid ${s.pid} ready in ${((performance.now() - t) / 1000).toFixed(1)} s at ${s.url}, RSS ${fmt(readStatusKb(s.pid, 'VmRSS') / 1024)} MB`);
    return s;
  };
  const stop = async (s: Server) => {
    await s.stop();
    peakRssKb = Math.max(peakRssKb, s.peakRssKb);
  };

  let server = await start();
  const tenant = await createTenant(server.url);
  let pool = new Pool(server.url, { connections: CONCURRENCY, pipelining: 1, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const users: User[] = [];
  let nextIndex = 0;
  const lockWaiters = pgAdmin && (async () => {
    const r = await pgAdmin!.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`, [pgDbName]);
    return (r.rows[0] as { n: number }).n;
  });
  const at = (phase: string) => ({ server, pool, token: tenant.token, profileAs: `${kind}-${phase}`, ...(lockWaiters ? { lockWaiters, pgDatabase: pgDbName } : {}) });

  const createReq = (): Req => ({ method: 'POST', path: `${tenant.base}/Users`, body: JSON.stringify(userBody(nextIndex++)) });
  const onCreated = (o: Outcome) => {
    if (o.status !== 201) return;
    const b = JSON.parse(o.text) as { id: string; userName: string };
    users.push({ id: b.id, userName: b.userName, active: true });
  };

  /** Fills the directory to `target` users with SQL INSERTs (PGlite: with the server stopped meanwhile). */
  const sqlTopUp = async (target: number) => {
    const count = Math.max(0, target - users.length);
    if (!count) return;
    const t = performance.now();
    const from = nextIndex;
    nextIndex += count;
    if (kind === 'postgres') {
      const c = new pg.Client({ connectionString: pgUrl });
      await c.connect();
      try {
        await seedSql(c, tenant, from, from + count, users);
        // What autovacuum does within a minute of a bulk load (PostgreSQL 13+ vacuums after inserts too):
        // statistics, and the visibility map that index-only scans need.
        await c.query('VACUUM (ANALYZE) "Account", "ScimUser", "ScimUserEmail"');
      } finally {
        await c.end();
      }
    } else {
      // PGlite: one process per data directory — stop the server, seed, start it again.
      await pool.close();
      await stop(server);
      const db = new PGlite(env.DATA_DIR!, { postgresqlconf: 'shared_buffers=32MB' });
      await db.waitReady;
      try {
        await seedSql({ query: (q, p) => db.query(q, p as unknown[]) }, tenant, from, from + count, users);
      } finally {
        await db.close();
      }
      server = await start();
      pool = new Pool(server.url, { connections: CONCURRENCY, pipelining: 1, headersTimeout: 30_000, bodyTimeout: 30_000 });
      restartedForSeed = true;
    }
    sqlSeed.users += count;
    sqlSeed.seconds += (performance.now() - t) / 1000;
    log(`  seeded ${count} users with SQL INSERTs in ${((performance.now() - t) / 1000).toFixed(1)} s; directory has ${users.length}`);
  };
  let restartedForSeed = false;

  // 1. creates at concurrency C (bounded: never more than the first size)
  const creates = await measure('creates (POST /Users)', at('creates'), SMALL, createReq, onCreated);

  // 2. fill to the first size: through the API for up to API_SEED_SECONDS, the rest with SQL
  const apiSeedStart = performance.now();
  const apiSeedWanted = Math.max(0, SMALL - users.length);
  let apiSeedCount = 0;
  if (apiSeedWanted > 0) {
    const r = await runLoad(pool, tenant.token, { seconds: API_SEED_SECONDS, maxRequests: apiSeedWanted }, createReq, onCreated);
    apiSeedCount = r.requests - r.errors;
    if (r.errors) notes.push(`API seeding: ${r.errors} failed creates ${JSON.stringify(r.statuses)}`);
  }
  const apiSeed = { users: apiSeedCount, seconds: (performance.now() - apiSeedStart) / 1000 };
  log(`  seeded ${apiSeedCount} users through POST /Users in ${apiSeed.seconds.toFixed(1)} s (${fmt(apiSeedCount / apiSeed.seconds)}/s); directory has ${users.length}`);
  const sqlSeed = { users: 0, seconds: 0 };
  await sqlTopUp(SMALL);

  // 3. lookups at the first size
  const rnd = (n: number) => Math.floor(Math.random() * n);
  let badLookups = 0;
  const lookupReq = (): Req => ({ method: 'GET', path: `${tenant.base}/Users?filter=${encodeURIComponent(`userName eq "${users[rnd(users.length)]!.userName}"`)}` });
  const checkLookup = (o: Outcome) => {
    if (o.status === 200 && o.seq % 50 === 0 && (JSON.parse(o.text) as { totalResults: number }).totalResults !== 1) badLookups++;
  };
  const lookupSmall = await measure(`lookup @${users.length}`, at(`lookup-${users.length}`), 1_000_000, lookupReq, checkLookup);

  // 4. PATCH: worker w only touches users with index ≡ w (mod C), so no two in-flight PATCHes race on one user (no 412s).
  const patchReq = (w: number, seq: number): Req | null => {
    const slots = Math.floor((users.length - 1 - w) / CONCURRENCY) + 1;
    if (slots <= 0) return null;
    const u = users[w + CONCURRENCY * rnd(slots)]!;
    const op = seq % 2 === 0
      ? { op: 'replace', path: 'displayName', value: `Renamed ${randomBytes(4).toString('hex')}` }
      : { op: 'replace', value: { active: (u.active = !u.active) } };
    return { method: 'PATCH', path: `${tenant.base}/Users/${u.id}`, body: JSON.stringify({ schemas: [PATCH_OP], Operations: [op] }) };
  };
  const patch = await measure(`patch @${users.length} (displayName / active)`, at('patch'), 1_000_000, patchReq);

  // 5. fill to the second size with SQL
  await sqlTopUp(LARGE);

  // 6. lookups at the second size, 7. pages of 100
  const lookupLarge = await measure(`lookup @${users.length}`, at(`lookup-${users.length}`), 1_000_000, lookupReq, checkLookup);
  let badPages = 0;
  const listReq = (): Req => ({ method: 'GET', path: `${tenant.base}/Users?startIndex=${1 + rnd(users.length - 99)}&count=100` });
  const checkPage = (o: Outcome) => {
    if (o.status === 200 && o.seq % 50 === 0) {
      const b = JSON.parse(o.text) as { totalResults: number; Resources: unknown[] };
      if (b.totalResults !== users.length || b.Resources.length !== 100) badPages++;
    }
  };
  const list = await measure(`list count=100 @${users.length}`, at(`list-${users.length}`), 1_000_000, listReq, checkPage);
  if (restartedForSeed) notes.push('PGlite: the server was restarted around each SQL seeding (one process per data directory); peak RSS is the largest of its processes');
  if (badLookups) notes.push(`${badLookups} sampled lookups did not find exactly one user`);
  if (badPages) notes.push(`${badPages} sampled pages did not have 100 resources and totalResults ${users.length}`);

  await pool.close();
  await stop(server);
  const errorLines = logs.flatMap((p) => readFileSync(p, 'utf8').split('\n').filter((l) => /"level":(50|60)/.test(l)));
  if (errorLines.length) notes.push(`${errorLines.length} error lines in the server log, first: ${errorLines[0]!.slice(0, 300)}`);
  // The temporary store goes now, not at exit: the next database gets the disk and memory.
  await cleanup();
  return {
    kind, creates, apiSeed, sqlSeed, lookupSmall, patch, lookupLarge, list,
    peakRssMb: peakRssKb / 1024, serverStarts: starts, logs, notes,
  };
}

// ---------------------------------------------------------------------------------------------
// Report

function fmt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–';
}
const ms = (n: number) => (Number.isFinite(n) ? `${n.toFixed(1)} ms` : '–');
const mark = (ok: boolean) => (ok ? '✓' : '✗');
function log(msg: string) {
  process.stderr.write(`${msg}\n`);
}

function table(r: DbResult): string {
  const noWorse = r.lookupLarge.rate >= 0.9 * r.lookupSmall.rate;
  const p99NoWorse = r.lookupLarge.p99 <= Math.max(1.2 * r.lookupSmall.p99, r.lookupSmall.p99 + 1);
  const errs = (p: PhaseResult) => (p.errors ? ` (${p.errors} non-2xx: ${JSON.stringify(p.statuses)})` : '');
  const rows: [string, string, string, boolean][] = [
    [`creates/s, POST /Users, c=${CONCURRENCY}`, `${fmt(r.creates.rate)}/s (p50 ${ms(r.creates.p50)}, p99 ${ms(r.creates.p99)})${errs(r.creates)}`, '≥ 1,500/s', r.creates.rate >= 1500],
    [`lookups/s, filter userName eq, ${fmt(SMALL)} users`, `${fmt(r.lookupSmall.rate)}/s${errs(r.lookupSmall)}`, '≥ 3,000/s', r.lookupSmall.rate >= 3000],
    [`lookup p50 / p99, ${fmt(SMALL)} users`, `${ms(r.lookupSmall.p50)} / ${ms(r.lookupSmall.p99)}`, 'p99 < 10 ms', r.lookupSmall.p99 < 10],
    [`lookups/s, ${fmt(LARGE)} users`, `${fmt(r.lookupLarge.rate)}/s${errs(r.lookupLarge)}`, `≥ 3,000/s and ≥ 90% of ${fmt(SMALL)}-user rate`, r.lookupLarge.rate >= 3000 && noWorse],
    [`lookup p50 / p99, ${fmt(LARGE)} users`, `${ms(r.lookupLarge.p50)} / ${ms(r.lookupLarge.p99)}`, `p99 < 10 ms, ≤ ${fmt(SMALL)}-user p99 (+20%)`, r.lookupLarge.p99 < 10 && p99NoWorse],
    [`PATCH/s (displayName / active), ${fmt(SMALL)} users`, `${fmt(r.patch.rate)}/s (p50 ${ms(r.patch.p50)}, p99 ${ms(r.patch.p99)})${errs(r.patch)}`, '≥ 2,000/s', r.patch.rate >= 2000],
    [`list of 100/s, ${fmt(LARGE)} users`, `${fmt(r.list.rate)}/s (p50 ${ms(r.list.p50)}, p99 ${ms(r.list.p99)})${errs(r.list)}`, '≥ 1,000/s', r.list.rate >= 1000],
    ['peak server RSS', `${fmt(r.peakRssMb)} MB`, '≤ 300 MB', r.peakRssMb <= 300],
  ];
  const lines = [
    `### ${r.kind === 'pglite' ? 'PGlite (embedded)' : 'PostgreSQL 15 (local server)'}`,
    '',
    '| measurement | result | target | |',
    '|---|---|---|---|',
    ...rows.map(([m, v, t, ok]) => `| ${m} | ${v} | ${t} | ${mark(ok)} |`),
    '',
    `Seeding: ${fmt(r.creates.requests)} users from the creates phase (+ warm-up), ${fmt(r.apiSeed.users)} more through POST /Users at c=${CONCURRENCY} (${r.apiSeed.seconds.toFixed(0)} s), ` +
      `then ${fmt(r.sqlSeed.users)} with SQL INSERTs into Account/ScimUser/ScimUserEmail (${r.sqlSeed.seconds.toFixed(0)} s; rows built by the service's userInput(); no audit/event rows).`,
    ...r.notes.map((n) => `Note: ${n}.`),
  ];
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------

const results: DbResult[] = [];
const t0 = performance.now();
try {
  if (PROFILE_DIR) mkdirSync(PROFILE_DIR, { recursive: true });
  log(`bench:scim — sizes ${SMALL} / ${LARGE}, ${SECONDS} s per phase (+${WARMUP} s warm-up), concurrency ${CONCURRENCY}, ${dbs.join(' + ')}`);
  for (const kind of dbs) results.push(await benchDb(kind));
} catch (err) {
  await cleanup();
  process.stderr.write(`bench:scim failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}
await cleanup();
const out = [
  `## SCIM benchmark (${quick ? 'quick, ' : ''}${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${cpus().length} cores; ` +
    `${SECONDS} s per phase after ${WARMUP} s warm-up; load generator in a separate process on the same machine` +
    `${argv['node-options'] ? `; server node flags: ${argv['node-options']}` : ''}${argv.pool ? `; DATABASE_POOL_SIZE=${argv.pool}` : ''})`,
  '',
  'Targets are for PostgreSQL on this 2-core machine; PGlite is shown against the same numbers for comparison.',
  '',
  ...results.map(table).flatMap((t) => [t, '']),
  ...(noisyPhases.length ? [`Other load on the machine before: ${noisyPhases.join('; ')}. Compare "everything else" CPU in the log.`, ''] : []),
  `Total ${((performance.now() - t0) / 1000).toFixed(0)} s.${PROFILE_DIR ? ` CPU profiles of the server in ${PROFILE_DIR}.` : ''}`,
];
process.stdout.write(`${out.join('\n')}\n`);
clearTimeout(hardLimit);
process.exit(0);
