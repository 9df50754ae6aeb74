import type { Tx } from './transaction.js';

/** A console session with what decides whether it still holds: its own end and its admin key's. */
export type ConsoleSessionRow = {
  id: string; orgId: string; adminKeyId: string; createdAt: Date; expiresAt: Date; lastSeenAt: Date; revokedAt: Date | null;
  keyRevokedAt: Date | null;
};

const select = {
  id: true, orgId: true, adminKeyId: true, createdAt: true, expiresAt: true, lastSeenAt: true, revokedAt: true,
  adminKey: { select: { revokedAt: true } },
} as const;

export const consoleSessionStore = {
  async create(tx: Tx, s: { tokenHash: string; orgId: string; adminKeyId: string; expiresAt: Date; now: Date }): Promise<{ id: string }> {
    const { now, ...data } = s;
    return tx.consoleSession.create({ data: { ...data, createdAt: now, lastSeenAt: now }, select: { id: true } });
  },
  /** The session a token hash names, ended or not (the caller tells the admin why it ended). */
  async find(tx: Tx, tokenHash: string): Promise<ConsoleSessionRow | null> {
    const row = await tx.consoleSession.findUnique({ where: { tokenHash }, select });
    if (!row) return null;
    const { adminKey, ...rest } = row;
    return { ...rest, keyRevokedAt: adminKey.revokedAt };
  },
  async touch(tx: Tx, id: string, at: Date): Promise<void> {
    await tx.consoleSession.updateMany({ where: { id, revokedAt: null }, data: { lastSeenAt: at } });
  },
  /** Ends one session (sign-out); true when it was live. */
  async revoke(tx: Tx, id: string, at: Date): Promise<boolean> {
    return (await tx.consoleSession.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: at } })).count > 0;
  },
  /** Ends every live session opened with an admin key (the key was revoked); how many. */
  async revokeForKey(tx: Tx, orgId: string, adminKeyId: string, at: Date): Promise<number> {
    return (await tx.consoleSession.updateMany({ where: { orgId, adminKeyId, revokedAt: null }, data: { revokedAt: at } })).count;
  },
  /** Sessions past their expiry, ended or not: nothing can use them any more. */
  async purgeExpired(tx: Tx, now: Date): Promise<number> {
    return (await tx.consoleSession.deleteMany({ where: { expiresAt: { lt: now } } })).count;
  },
};
