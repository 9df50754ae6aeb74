import { parseArgs } from 'node:util';
import { loadConfig, ConfigError, type Config } from './config.js';
import { createLogger } from './log.js';
import { openDatabase } from './store/database.js';
import { migrateAndRepair } from './services/migration-repairs.js';
import { durableSecretBox } from './secret-key.js';
import { DataDirLocked } from './store/data-dir-lock.js';
import { startService } from './server.js';
import { runReconcileCommand } from './jobs/reconcile-command.js';

const HELP = `orgsync — identity sync: SCIM provisioning, SSO and billable-user accounting

Usage:
  orgsync serve      migrate the database, then serve HTTP (the default)
  orgsync migrate    apply pending migrations and exit
  orgsync reconcile [--org <orgId>]
                     recompute the billable set and correct the ledger; exits 1 when it
                     corrected anything, 0 when clean (orgsync reconcile --help)
  orgsync --help     this text

Configuration comes from the environment (see README.md): PORT, HOST, DATABASE_URL,
DATA_DIR, DATABASE_POOL_SIZE, ORGSYNC_OPERATOR_TOKEN, PUBLIC_URL, LOG_LEVEL,
BODY_LIMIT_BYTES, SHUTDOWN_TIMEOUT_MS, HTTP_HEADERS_TIMEOUT_MS, HTTP_REQUEST_TIMEOUT_MS,
HTTP_KEEP_ALIVE_TIMEOUT_MS, JOBS_ENABLED, JOBS_FAST, JOBS_SCHEDULE, SMTP_URL, MAIL_FROM.
`;

export async function main(argv: string[]): Promise<number> {
  try {
    return await run(argv);
  } catch (err) {
    // Another live process holds the PGlite data directory: a clear refusal, not a stack.
    if (err instanceof DataDirLocked) {
      process.stderr.write(`orgsync: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: false, options: { help: { type: 'boolean', short: 'h' } } });
  const command = positionals[0] ?? 'serve';
  if (command === 'reconcile') return reconcile(argv.slice(argv.indexOf('reconcile') + 1));
  if (values.help || command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const config = configOrNull();
  if (!config) return 2;
  const logger = createLogger(config.logLevel);

  if (command === 'migrate') {
    exitOnSignal();
    const db = await openDatabase(config.database, { logger });
    try {
      const r = await migrateAndRepair(db, { box: durableSecretBox(config, logger) });
      logger.info({ applied: r.applied, alreadyApplied: r.alreadyApplied.length, repairedAccounts: r.repaired, webhookSecretsSealed: r.webhookSecretsSealed }, 'migrations done');
    } finally {
      await db.close();
    }
    return 0;
  }
  if (command !== 'serve') {
    process.stderr.write(`unknown command "${command}"\n\n${HELP}`);
    return 2;
  }

  const svc = await startService(config, { logger });
  await new Promise<void>((resolve) => {
    const onSignal = (signal: string) => {
      logger.info({ signal }, 'shutting down');
      void svc.stop().then(resolve);
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
  return 0;
}

/** `orgsync reconcile`: its own options (strict), then the run on a migrated database. */
async function reconcile(args: string[]): Promise<number> {
  const config = configOrNull();
  if (!config) return 2;
  const logger = createLogger(config.logLevel);
  exitOnSignal();
  return runReconcileCommand(args, {
    openDb: async () => {
      const db = await openDatabase(config.database, { logger });
      await migrateAndRepair(db, { box: durableSecretBox(config, logger) });
      return db;
    },
    closeDb: (db) => db.close(),
    stdout: process.stdout, stderr: process.stderr,
  });
}

/**
 * migrate and reconcile: SIGINT/SIGTERM end the process through process.exit, so that its exit
 * hook releases the PGlite data directory's lock (a signal's default action would leave it for
 * the next start to take over as stale).
 */
function exitOnSignal(): void {
  process.once('SIGINT', () => process.exit(130));
  process.once('SIGTERM', () => process.exit(143));
}

/** The configuration, or null after printing every bad variable (the caller exits 2). */
function configOrNull(): Config | null {
  try {
    return loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return null;
    }
    throw err;
  }
}
