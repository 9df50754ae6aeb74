import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config.js';
import type { Logger } from './log.js';

/**
 * The key material behind SSO secrets and cookies. SECRET_KEY wins. Without it, an embedded
 * database on disk keeps a generated key next to its data (DATA_DIR/secret.key, mode 0600), so
 * `npm start` works out of the box and survives restarts; an in-memory database or PostgreSQL
 * gets a key for this process only — sessions end and saved OIDC secrets cannot be read after
 * a restart, which is why that case warns. Replicas on PostgreSQL must share SECRET_KEY.
 */
export function resolveSecretKey(config: Pick<Config, 'sso' | 'database'>, logger: Logger): string {
  if (config.sso.secretKey) return config.sso.secretKey;
  if (config.database.kind === 'pglite' && config.database.dataDir !== 'memory') {
    const file = join(config.database.dataDir, 'secret.key');
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    mkdirSync(config.database.dataDir, { recursive: true, mode: 0o700 });
    const key = randomBytes(32).toString('base64url');
    try {
      writeFileSync(file, key + '\n', { mode: 0o600, flag: 'wx' });
    } catch (err) {
      // Another process on the same data dir wrote it first: use theirs.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readFileSync(file, 'utf8').trim();
      throw err;
    }
    logger.info({ file }, 'generated SECRET_KEY for the embedded database');
    return key;
  }
  if (config.database.kind === 'postgres') {
    logger.warn('SECRET_KEY is not set: using a key for this process only; sessions end and saved OIDC client secrets become unreadable at restart, and replicas cannot share sessions');
  }
  return randomBytes(32).toString('base64url');
}
