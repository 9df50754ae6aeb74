/**
 * `npm run bench:billing [-- --db pglite|postgres|both] [--quick] [--section NAME] [--deltas N] [--batch A,B]`
 *
 * Benchmarks of the billing module, one section each, on PGlite (in-memory) and on PostgreSQL
 * (a fresh database orgsync_bench_<random> on the server, dropped afterwards). Each section
 * gets its own fresh, migrated database per engine and prints one markdown table.
 *
 *   delta-throughput   the delivery worker (deliverPending): N billable deltas are seeded into
 *                      the outbox by SQL for one synthetic org (accounts taking turns, kinds
 *                      alternating), then batches run until the outbox is drained; deltas/s is
 *                      N / drain time. Once per batch size without a webhook, and once with a
 *                      webhook configured (every delta also queues a WebhookDelivery row).
 *                      Checked afterwards: N ledger entries, positions 1..N, nothing unapplied.
 *                      Target: >= 5,000 deltas/s on PostgreSQL.
 *
 *   reconciliation     reconcileOrg on one org of 100,000 managed accounts × 3 sites (300,000
 *                      access rows; quick: 5,000), seeded by SQL with its ledger history: twice
 *                      clean (0 corrections), once after 1% of the ledger entries were deleted.
 *                      Target: < 2 s on PostgreSQL.
 *
 * More sections are added to SECTIONS below; each is
 * `{ name, title, columns, run(ctx) → rows }` and receives a fresh database from the harness.
 *
 * Options:
 *   --db pglite|postgres|both   (default both)
 *   --quick                     small sizes: proves the script works
 *   --section NAME              run only this section (default: all)
 *   --deltas N                  outbox rows for delta-throughput (default 200000; quick 5000)
 *   --batch A,B                 batch sizes for delta-throughput (default 1000,5000; quick 500)
 *   --database-url URL          PostgreSQL server (default postgresql://postgres@127.0.0.1:5432/test)
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openDatabase, type Database } from '../src/store/database.js';
import { migrate } from '../src/store/migrator.js';
import { deliverBatch } from '../src/billing/delivery-worker.js';
import { reconcileOrg } from '../src/billing/reconcile.js';
import { printHeaderHelpAndExit } from './help.js';

type DbKind = 'pglite' | 'postgres';

// ---------------------------------------------------------------------------------------------
// Options

const { values: argv } = parseArgs({
  options: {
    db: { type: 'string', default: 'both' },
    quick: { type: 'boolean', default: false },
    section: { type: 'string' },
    deltas: { type: 'string' },
    batch: { type: 'string' },
    'database-url': { type: 'string', default: 'postgresql://postgres@127.0.0.1:5432/test' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  allowPositionals: false,
});
if (argv.help) printHeaderHelpAndExit(import.meta.url);

function die(msg: string): never {
  process.stderr.write(`bench:billing: ${msg}\n`);
  process.exit(2);
}

export type BenchArgs = {
  quick: boolean;
  deltas: number;
  batches: number[];
  pgUrl: string;
};

const quick = argv.quick!;
const args: BenchArgs = {
  quick,
  deltas: Number.parseInt(argv.deltas ?? (quick ? '5000' : '200000'), 10),
  batches: (argv.batch ?? (quick ? '500' : '1000,5000')).split(',').map((s) => Number.parseInt(s, 10)),
  pgUrl: argv['database-url']!,
};
if (!Number.isInteger(args.deltas) || args.deltas < 1 || args.deltas > 10_000_000) die('--deltas must be 1..10000000');
if (args.batches.some((b) => !Number.isInteger(b) || b < 1 || b > 100_000)) die('--batch takes sizes 1..100000, comma-separated');
const engines: DbKind[] = argv.db === 'both' ? ['pglite', 'postgres'] : argv.db === 'pglite' || argv.db === 'postgres' ? [argv.db] : die(`--db must be pglite, postgres or both (got ${argv.db})`);

// ---------------------------------------------------------------------------------------------
// Fresh databases, always torn down

type BenchDatabase = { kind: DbKind; db: Database; close(): Promise<void> };

async function openBenchDatabase(kind: DbKind): Promise<BenchDatabase> {
  if (kind === 'pglite') {
    const db = await openDatabase({ kind: 'pglite', dataDir: 'memory' });
    await migrate(db);
    return { kind, db, close: () => db.close() };
  }
  const name = `orgsync_bench_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: args.pgUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(args.pgUrl);
  url.pathname = `/${name}`;
  const drop = async () => {
    const c = new pg.Client({ connectionString: args.pgUrl });
    await c.connect();
    try {
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await c.end();
    }
  };
  try {
    const db = await openDatabase({ kind: 'postgres', url: url.toString(), poolSize: 10 });
    await migrate(db);
    return {
      kind, db,
      close: async () => {
        await db.close();
        await drop();
      },
    };
  } catch (err) {
    await drop();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Sections

export type SectionContext = { kind: DbKind; db: Database; args: BenchArgs; log(msg: string): void };
export type Section = {
  name: string;
  title: string;
  columns: string[];
  /** Rows of the section's table for one engine (the harness prepends nothing: include the DB column). */
  run(ctx: SectionContext): Promise<string[][]>;
};

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** N outbox rows for one org in one statement: `accounts` accounts taking turns, each alternating added/removed. */
async function seedOutbox(db: Database, orgId: string, n: number, accounts: number): Promise<void> {
  const chunk = 50_000;
  for (let from = 0; from < n; from += chunk) {
    const to = Math.min(n, from + chunk);
    await db.prisma.$executeRaw`
      INSERT INTO "BillableDelta" ("id", "orgId", "accountId", "kind", "reasons", "cause")
      SELECT gen_random_uuid(), ${orgId}::uuid,
             ('00000000-0000-4000-8000-' || lpad(to_hex(g.i % ${accounts}::int), 12, '0'))::uuid,
             (CASE WHEN (g.i / ${accounts}::int) % 2 = 0 THEN 'added' ELSE 'removed' END)::"DeltaKind",
             ARRAY['managed', 'active', 'access:jira'], 'bench'
      FROM generate_series(${from}::int, ${to - 1}::int) AS g(i)
      ORDER BY g.i`;
  }
  if (db.kind === 'postgres') await db.withSession((s) => s.exec('VACUUM ANALYZE "BillableDelta"'));
}

const deltaThroughput: Section = {
  name: 'delta-throughput',
  title: 'Delivery worker: outbox → ledger (deliverPending until drained)',
  columns: ['DB', 'deltas', 'batch size', 'webhook', 'batches', 'drain s', 'deltas/s', 'slowest batch ms'],
  async run({ kind, db, args: a, log }) {
    const rows: string[][] = [];
    const runs = [...a.batches.map((b) => ({ batch: b, webhook: false })), { batch: a.batches[0]!, webhook: true }];
    for (const r of runs) {
      await db.prisma.$executeRaw`TRUNCATE "BillableDelta", "LedgerEntry", "WebhookDelivery", "BillingWebhook"`;
      const orgId = randomUUID();
      if (r.webhook) await db.prisma.billingWebhook.create({ data: { orgId, url: 'https://billing.invalid/hook', secretEnc: 'whsec_bench' } });
      log(`${kind}: seeding ${fmt(a.deltas)} deltas`);
      await seedOutbox(db, orgId, a.deltas, Math.max(1, Math.floor(a.deltas / 4)));
      log(`${kind}: draining, batch ${r.batch}${r.webhook ? ', with webhook' : ''}`);
      let batches = 0;
      let slowest = 0;
      let applied = 0;
      let queued = 0;
      const t0 = performance.now();
      for (;;) {
        const b0 = performance.now();
        const res = await deliverBatch(db, { batchSize: r.batch });
        if (res.claimed === 0) break;
        slowest = Math.max(slowest, performance.now() - b0);
        batches++;
        applied += res.applied;
        queued += res.webhooksQueued;
      }
      const seconds = (performance.now() - t0) / 1000;
      // Proof that the run did what it claims.
      const [check] = await db.prisma.$queryRaw<{ entries: number; maxSeq: number; unapplied: number }[]>`
        SELECT (SELECT count(*) FROM "LedgerEntry")::int AS entries,
               (SELECT coalesce(max("streamSeq"), 0) FROM "LedgerEntry")::int AS "maxSeq",
               (SELECT count(*) FROM "BillableDelta" WHERE "appliedAt" IS NULL)::int AS unapplied`;
      if (applied !== a.deltas || check!.entries !== a.deltas || check!.maxSeq !== a.deltas || check!.unapplied !== 0 || (r.webhook && queued !== a.deltas)) {
        throw new Error(`${kind}: drain check failed: applied ${applied}, queued ${queued}, ${JSON.stringify(check)}`);
      }
      rows.push([kind === 'pglite' ? 'PGlite' : 'PostgreSQL', fmt(a.deltas), String(r.batch), r.webhook ? 'yes' : 'no', fmt(batches), seconds.toFixed(2), fmt(a.deltas / seconds), slowest.toFixed(0)]);
    }
    return rows;
  },
};


// ---------------------------------------------------------------------------------------------
// Section: reconciliation (src/billing/reconcile.ts)

/**
 * One org of `accounts` managed accounts × 3 sites, seeded by SQL in a state the system itself
 * would have produced: 90% active, 5% portal-only JSM customers (not billable), every billable
 * account with its applied `added` delta and ledger entry, flags matching. Then reconcileOrg
 * (billable set from scratch, ledger net state, diff, corrections, run report) is timed on the
 * clean org twice, and once after `drift` accounts were made to disagree with the ledger.
 */
async function seedReconciliationOrg(db: Database, accounts: number): Promise<string> {
  const orgId = randomUUID();
  const policyId = randomUUID();
  const sites = [randomUUID(), randomUUID(), randomUUID()];
  const x = db.prisma;
  await x.$executeRaw`INSERT INTO "Org" ("id", "orgId", "name") VALUES (${orgId}::uuid, ${orgId}::uuid, 'Bench Org')`;
  await x.$executeRaw`
    INSERT INTO "Subscription" ("orgId", "plan", "trialStartedAt", "trialEndsAt", "paymentMethodAddedAt", "updatedAt")
    VALUES (${orgId}::uuid, 'standard', now() - interval '60 days', now() - interval '30 days', now() - interval '40 days', now())`;
  await x.$executeRaw`INSERT INTO "Policy" ("id", "orgId", "name", "isDefault", "updatedAt") VALUES (${policyId}::uuid, ${orgId}::uuid, 'Default', true, now())`;
  await x.$executeRaw`
    INSERT INTO "Site" ("id", "orgId", "name", "products") VALUES
      (${sites[0]}::uuid, ${orgId}::uuid, 'one', ARRAY['jira', 'jsm']::"Product"[]),
      (${sites[1]}::uuid, ${orgId}::uuid, 'two', ARRAY['confluence', 'jsm']::"Product"[]),
      (${sites[2]}::uuid, ${orgId}::uuid, 'three', ARRAY['jsm', 'jira']::"Product"[])`;
  const chunk = 50_000;
  for (let from = 1; from <= accounts; from += chunk) {
    const to = Math.min(accounts, from + chunk - 1);
    // i % 10 = 0: disabled; i % 20 = 5: portal-only customer. Account id = md5(orgId:i).
    await x.$executeRaw`
      INSERT INTO "Account" ("id", "orgId", "email", "emailNormalized", "emailDomain", "managed", "status", "policyId", "billable", "createdAt", "updatedAt")
      SELECT md5(${orgId} || ':' || i)::uuid, ${orgId}::uuid, 'u' || i || '@bench.example', 'u' || i || '@bench.example', 'bench.example',
             true, (CASE WHEN i % 10 = 0 THEN 'disabled' ELSE 'active' END)::"AccountStatus", ${policyId}::uuid,
             (i % 10 <> 0 AND i % 20 <> 5), now() - interval '20 days', now()
      FROM generate_series(${from}::int, ${to}::int) AS i`;
    await x.$executeRaw`
      INSERT INTO "ProductAccess" ("id", "orgId", "siteId", "accountId", "product", "role", "grantedBy")
      SELECT gen_random_uuid(), ${orgId}::uuid, s.site, md5(${orgId} || ':' || i)::uuid,
             (CASE WHEN i % 20 = 5 THEN 'jsm' ELSE s.product END)::"Product",
             (CASE WHEN i % 20 = 5 THEN 'customer' WHEN s.product = 'jsm' THEN 'agent' ELSE 'user' END)::"AccessRole", 'direct'
      FROM generate_series(${from}::int, ${to}::int) AS i
      CROSS JOIN (VALUES (${sites[0]}::uuid, 'jira'), (${sites[1]}::uuid, 'confluence'), (${sites[2]}::uuid, 'jsm')) AS s(site, product)`;
  }
  // The history that produced it: one applied `added` delta and its ledger entry per billable account.
  await x.$executeRaw`
    INSERT INTO "BillableDelta" ("id", "orgId", "accountId", "kind", "reasons", "cause", "occurredAt", "appliedAt")
    SELECT gen_random_uuid(), ${orgId}::uuid, a."id", 'added', ARRAY['managed', 'active', 'access:confluence', 'access:jira', 'access:jsm'], 'bench',
           now() - interval '20 days', now() - interval '20 days'
    FROM "Account" a WHERE a."orgId" = ${orgId}::uuid AND a."billable" ORDER BY a."createdAt", a."id"`;
  await x.$executeRaw`
    INSERT INTO "LedgerEntry" ("deltaId", "orgId", "accountId", "kind", "reasons", "cause", "occurredAt", "streamSeq", "appliedAt")
    SELECT d."id", d."orgId", d."accountId", d."kind", d."reasons", d."cause", d."occurredAt", row_number() OVER (ORDER BY d."seq"), d."appliedAt"
    FROM "BillableDelta" d WHERE d."orgId" = ${orgId}::uuid`;
  if (db.kind === 'postgres') await db.withSession((s) => s.exec('VACUUM ANALYZE'));
  return orgId;
}

const reconciliation: Section = {
  name: 'reconciliation',
  title: 'Reconciliation: billable set from scratch vs the ledger, one org (reconcileOrg)',
  columns: ['DB', 'accounts', 'access rows', 'billable', 'run', 'drift injected', 'corrections', 'ms'],
  async run({ kind, db, args: a, log }) {
    const accounts = a.quick ? 5_000 : 100_000;
    log(`${kind}: seeding an org with ${fmt(accounts)} accounts × 3 sites`);
    const orgId = await seedReconciliationOrg(db, accounts);
    const rows: string[][] = [];
    const time = async (label: string, drift: number) => {
      const t0 = performance.now();
      const r = await reconcileOrg(db, orgId, { trigger: 'bench' });
      const ms = performance.now() - t0;
      if (r.corrections !== drift) throw new Error(`${kind}: expected ${drift} corrections, got ${r.corrections}`);
      const run = await db.prisma.reconciliationRun.findUniqueOrThrow({ where: { id: r.id } });
      log(`${kind}: ${label} ${JSON.stringify((run.report as { timingsMs?: unknown }).timingsMs)}`);
      rows.push([kind === 'pglite' ? 'PGlite' : 'PostgreSQL', fmt(accounts), fmt(accounts * 3), fmt(r.billableCount), label, fmt(drift), fmt(r.corrections), ms.toFixed(0)]);
    };
    log(`${kind}: reconciling`);
    await time('clean, first', 0);
    await time('clean, again', 0);
    // Drift: 1% of the accounts lose their ledger entry (a lost delta); their flags stay right.
    const drift = Math.max(1, Math.floor(accounts / 100));
    await db.prisma.$executeRaw`
      DELETE FROM "LedgerEntry" WHERE "deltaId" IN (
        SELECT "deltaId" FROM "LedgerEntry" WHERE "orgId" = ${orgId}::uuid ORDER BY "streamSeq" LIMIT ${drift}::int)`;
    await time('1% drift', drift);
    return rows;
  },
};

/** The sections, in order. */
const SECTIONS: Section[] = [deltaThroughput, reconciliation];

// ---------------------------------------------------------------------------------------------
// Harness

function table(columns: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(columns), line(columns.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(line)].join('\n');
}

async function main(): Promise<void> {
  const chosen = argv.section ? SECTIONS.filter((s) => s.name === argv.section) : SECTIONS;
  if (!chosen.length) die(`--section must be one of ${SECTIONS.map((s) => s.name).join(', ')}`);
  const log = (msg: string) => process.stderr.write(`bench:billing: ${msg}\n`);
  const out: string[] = [];
  for (const section of chosen) {
    const rows: string[][] = [];
    for (const kind of engines) {
      const bdb = await openBenchDatabase(kind);
      try {
        rows.push(...(await section.run({ kind, db: bdb.db, args, log })));
      } finally {
        await bdb.close();
      }
    }
    out.push(`### ${section.title}\n\n${table(section.columns, rows)}\n`);
  }
  const { cpus, totalmem } = await import('node:os');
  out.push(`_${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}${quick ? ', --quick' : ''}_\n`);
  process.stdout.write(`${out.join('\n')}`);
}

main().catch((err) => {
  process.stderr.write(`bench:billing: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
