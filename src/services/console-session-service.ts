import type { Database } from '../store/database.js';
import { consoleSessionStore } from '../store/console-session-store.js';
import { orgStore } from '../store/org-store.js';
import type { OrgService } from './org-service.js';
import { randomToken, sha256Hex } from './secret-box.js';

/** Advisory last-seen (and the key's last-used) times are written at most this often. */
const TOUCH_EVERY_MS = 60_000;

export type LiveConsoleSession = { ok: true; sessionId: string; orgId: string; keyId: string; expiresAt: Date };
/**
 * Why a token opens nothing: `unknown` (no such session: never was, or purged), `expired`,
 * `ended` (signed out), `revoked` (its admin key was revoked).
 */
export type EndedConsoleSession = { ok: false; reason: 'unknown' | 'expired' | 'ended' | 'revoked' };

/**
 * Console sessions, kept in the database (issue 12 §4: a sealed cookie could not be ended and
 * carried the admin key). Signing in checks the admin key once and issues a random token; the
 * cookie carries the token, the database only its sha256, so neither a cookie nor a database
 * dump holds key material, and a leaked dump cannot be turned into a cookie. A session ends at
 * sign-out, when its admin key is revoked (org-service revokes the key's sessions in the same
 * transaction, and every lookup also checks the key) and at its expiry, which does not slide.
 */
export function createConsoleSessionService(db: Database, deps: { orgs: OrgService }) {
  return {
    /** A new session for a valid admin key, or null when the key is not valid now. */
    async open(adminKey: string, now: Date, ttlMs: number): Promise<(LiveConsoleSession & { token: string }) | null> {
      const key = await deps.orgs.authenticateAdminKey(adminKey, now);
      if (!key) return null;
      const token = randomToken();
      const expiresAt = new Date(now.getTime() + ttlMs);
      const row = await consoleSessionStore.create(db.prisma, { tokenHash: sha256Hex(token), orgId: key.orgId, adminKeyId: key.keyId, expiresAt, now });
      return { ok: true, token, sessionId: row.id, orgId: key.orgId, keyId: key.keyId, expiresAt };
    },

    /** The live session a token names, or why there is none. */
    async resume(token: string, now: Date): Promise<LiveConsoleSession | EndedConsoleSession> {
      const s = await consoleSessionStore.find(db.prisma, sha256Hex(token));
      if (!s) return { ok: false, reason: 'unknown' };
      if (s.keyRevokedAt) return { ok: false, reason: 'revoked' };
      if (s.revokedAt) return { ok: false, reason: 'ended' };
      if (s.expiresAt <= now) return { ok: false, reason: 'expired' };
      if (now.getTime() - s.lastSeenAt.getTime() > TOUCH_EVERY_MS) {
        await consoleSessionStore.touch(db.prisma, s.id, now);
        // Console use is use of the key: admins read lastUsedAt to decide which keys to revoke.
        await orgStore.touchAdminKey(db.prisma, s.adminKeyId, now);
      }
      return { ok: true, sessionId: s.id, orgId: s.orgId, keyId: s.adminKeyId, expiresAt: s.expiresAt };
    },

    /** Ends the session a token names (sign-out); true when it was live. */
    async close(token: string, now: Date): Promise<boolean> {
      const s = await consoleSessionStore.find(db.prisma, sha256Hex(token));
      return s ? consoleSessionStore.revoke(db.prisma, s.id, now) : false;
    },
  };
}

export type ConsoleSessionService = ReturnType<typeof createConsoleSessionService>;

/** Housekeeping for the retention-purge job: expired console sessions. */
export function purgeExpiredConsoleSessions(db: Database, now: Date): Promise<number> {
  return consoleSessionStore.purgeExpired(db.prisma, now);
}
