import type { Tx } from './transaction.js';

/**
 * OIDC identities bound to accounts (issue 12 §4): the provider's (issuer, sub) is who signed in;
 * the email claim is only what they call themselves today.
 */
export const ssoIdentityStore = {
  /** The account this (issuer, sub) signed into first, with its current email. */
  async find(tx: Tx, orgId: string, issuer: string, subject: string): Promise<{ accountId: string; email: string } | null> {
    const row = await tx.ssoIdentity.findUnique({
      where: { orgId_issuer_subject: { orgId, issuer, subject } },
      select: { accountId: true, account: { select: { email: true } } },
    });
    return row ? { accountId: row.accountId, email: row.account.email } : null;
  },
  /** The subject this account is bound to at this issuer, if any. */
  async subjectOf(tx: Tx, accountId: string, issuer: string): Promise<string | null> {
    const row = await tx.ssoIdentity.findUnique({ where: { accountId_issuer: { accountId, issuer } }, select: { subject: true } });
    return row?.subject ?? null;
  },
  /** Binds at first sign-in; a concurrent first sign-in of the same identity binding the same account is not an error. */
  async bind(tx: Tx, b: { orgId: string; issuer: string; subject: string; accountId: string; connectionId: string }): Promise<void> {
    await tx.$executeRaw`
      INSERT INTO "SsoIdentity" ("id", "orgId", "issuer", "subject", "accountId", "connectionId")
      VALUES (gen_random_uuid(), ${b.orgId}::uuid, ${b.issuer}, ${b.subject}, ${b.accountId}::uuid, ${b.connectionId}::uuid)
      ON CONFLICT DO NOTHING`;
  },
};
