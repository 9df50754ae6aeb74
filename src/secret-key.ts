import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config.js';
import type { Logger } from './log.js';
import { createSecretBox, type SecretBox } from './services/secret-box.js';

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
    logger.warn('SECRET_KEY is not set: using a key for this process only; sessions end and saved OIDC client secrets and new billing webhook secrets become unreadable at restart, and replicas cannot share sessions');
  }
  return randomBytes(32).toString('base64url');
}

/** Whether resolveSecretKey gives a key that outlives this process (SECRET_KEY, or DATA_DIR/secret.key). */
export function secretKeyIsDurable(config: Pick<Config, 'sso' | 'database'>): boolean {
  return Boolean(config.sso.secretKey) || (config.database.kind === 'pglite' && config.database.dataDir !== 'memory');
}

/**
 * The secret box for the post-migration repair (sealing plaintext webhook secrets), or null when
 * the key would be lost at exit: secrets sealed under it could never be read again.
 */
export function durableSecretBox(config: Pick<Config, 'sso' | 'database'>, logger: Logger): SecretBox | null {
  if (!secretKeyIsDurable(config)) {
    logger.warn('SECRET_KEY is not set: billing webhook secrets stored in plaintext by an older version stay so until it is set');
    return null;
  }
  return createSecretBox(resolveSecretKey(config, logger));
}
