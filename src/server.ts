import type { Server } from 'node:http';
import { createOutbound } from './net/outbound.js';
import type { Config } from './config.js';
import { createLogger, type Logger } from './log.js';
import { openDatabase, type Database } from './store/database.js';
import { migrateAndRepair } from './services/migration-repairs.js';
import { createServices, type Services } from './composition.js';
import { resolveSecretKey, secretKeyIsDurable } from './secret-key.js';
import { createSecretBox } from './services/secret-box.js';
import { warmSamlValidator } from './sso/saml/schema-validator.js';
import { enableSamlVerifierPool, stopSamlVerifierPool } from './sso/saml/pool.js';
import type { DomainVerifier } from './services/domain-verifier.js';
import { createApp } from './http/app.js';
import { createHttpServer } from './http/http-server.js';
import { createScheduler, type Scheduler } from './jobs/scheduler.js';
import { createJobs } from './jobs/jobs.js';
import type { Mailer } from './billing/mailer.js';

export type RunningService = {
  server: Server; db: Database; logger: Logger; url: string;
  /** The use cases this process serves (tests reach the secret box and services through it). */
  services: Services;
  /** The cron jobs; started only when config.jobs.enabled, but runJobOnce works either way. */
  scheduler: Scheduler;
  stop(): Promise<void>;
};

/**
 * Opens the database, migrates it, and serves. stop() drains: it stops accepting, lets
 * in-flight requests finish (up to the shutdown timeout), then closes the database.
 */
export async function startService(
  config: Config,
  opts: { logger?: Logger; verifier?: DomainVerifier; db?: Database; mailer?: Mailer | null } = {},
): Promise<RunningService> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  const t0 = performance.now();
  const db = opts.db ?? (await openDatabase(config.database, { logger }));
  const secretKey = resolveSecretKey(config, logger);
  const migrated = await migrateAndRepair(db, { box: secretKeyIsDurable(config) ? createSecretBox(secretKey) : null });
  logger.info({ applied: migrated.applied, repairedAccounts: migrated.repaired, webhookSecretsSealed: migrated.webhookSecretsSealed, database: db.kind }, 'database ready');

  // The XSD validator compiles its schemas once, before the first SAML response arrives.
  await warmSamlValidator();
  // SAML verification threads, started at the first SAML response (in-thread until they are warm).
  enableSamlVerifierPool({ logger, size: config.sso.verifyThreads });
  const services = createServices({
    db, operatorToken: config.operatorToken, scim: config.scim, publicUrl: config.http.publicUrl, billing: config.billing,
    secretKey, sso: config.sso, outbound: createOutbound(config.outbound),
    ...(opts.verifier ? { verifier: opts.verifier } : {}),
  });
  let draining = false;
  const app = createApp({ config, db, services, logger, isDraining: () => draining });
  const server = createHttpServer(app, config.http);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.http.port, config.http.host, resolve);
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.http.port;
  const url = `http://127.0.0.1:${port}`;
  const scheduler = createScheduler({
    db, logger, jobs: createJobs({ config, box: services.box, outbound: services.outbound, ...(opts.mailer !== undefined ? { mailer: opts.mailer } : {}) }),
  });
  if (config.jobs.enabled) scheduler.start();
  logger.info({ port, ms: Math.round(performance.now() - t0), operatorApi: Boolean(config.operatorToken) }, 'orgsync serving');

  let stopping: Promise<void> | null = null;
  const stop = () => (stopping ??= (async () => {
    draining = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const timer = setTimeout(() => server.closeAllConnections(), config.http.shutdownTimeoutMs);
    timer.unref();
    // No new ticks; the running ones finish (they are awaited) before the database closes.
    await Promise.all([closed, scheduler.stop()]);
    await stopSamlVerifierPool();
    clearTimeout(timer);
    await services.directories.flushEvents(); // buffered SCIM request events
    await db.close();
    logger.info('orgsync stopped');
  })());

  return { server, db, logger, url, services, scheduler, stop };
}
