import type { Tx } from './transaction.js';
import { afterCursor, orderBy, toPage, type PageRequest } from './paging.js';
import { Prisma } from '../generated/prisma/client.js';
import { NO_SUBSCRIPTION, type SubscriptionFacts } from '../domain/subscription.js';

export type SsoProtocol = 'saml' | 'oidc';

export type SsoConnectionRow = {
  id: string; orgId: string; type: SsoProtocol; name: string; jit: boolean; rolloutPolicyId: string | null;
  entityId: string | null; ssoUrl: string | null; certificates: string[]; allowIdpInitiated: boolean;
  issuer: string | null; clientId: string | null; clientSecretEnc: string | null; trustEmailClaim: boolean; twoFactorValues: string[]; createdAt: Date; updatedAt: Date;
};

export type SsoConnectionData = Partial<Omit<SsoConnectionRow, 'id' | 'orgId' | 'type' | 'createdAt' | 'updatedAt'>>;

export type SsoRequestRow = {
  id: string; orgId: string; connectionId: string; purpose: 'login' | 'test'; browserHash: string; loginHint: string | null;
  nonce: string | null; codeVerifier: string | null; testId: string | null; createdAt: Date; expiresAt: Date; consumedAt: Date | null;
};

export type SsoTestRunRow = {
  id: string; orgId: string; connectionId: string; startedBy: string; createdAt: Date; expiresAt: Date; completedAt: Date | null;
  wouldSucceed: boolean | null; reason: string | null; checks: unknown; attributes: unknown; profile: unknown; accountId: string | null; policyId: string | null;
};

const testRunSelect = {
  id: true, orgId: true, connectionId: true, startedBy: true, createdAt: true, expiresAt: true, completedAt: true, wouldSucceed: true,
  reason: true, checks: true, attributes: true, profile: true, accountId: true, policyId: true,
} as const;

export const ssoConnectionStore = {
  async create(tx: Tx, orgId: string, c: SsoConnectionData & { id: string; type: SsoProtocol; name: string }): Promise<SsoConnectionRow> {
    return tx.ssoConnection.create({ data: { ...c, orgId } });
  },
  async get(tx: Tx, orgId: string, id: string): Promise<SsoConnectionRow | null> {
    return tx.ssoConnection.findFirst({ where: { id, orgId } });
  },
  /** By id alone: a browser arriving at /sso/{id}/… names the connection, not its org. */
  async byId(tx: Tx, id: string): Promise<SsoConnectionRow | null> {
    return tx.ssoConnection.findUnique({ where: { id } });
  },
  async list(tx: Tx, orgId: string, page: PageRequest) {
    const rows = await tx.ssoConnection.findMany({ where: { orgId, ...afterCursor(page.cursor) }, orderBy: [...orderBy()], take: page.limit + 1 });
    return toPage(rows, page.limit, (r) => r);
  },
  async update(tx: Tx, orgId: string, id: string, data: SsoConnectionData): Promise<SsoConnectionRow> {
    await tx.ssoConnection.updateMany({ where: { id, orgId }, data });
    return (await ssoConnectionStore.get(tx, orgId, id))!;
  },
  async delete(tx: Tx, orgId: string, id: string): Promise<void> {
    await tx.ssoRequest.deleteMany({ where: { orgId, connectionId: id } });
    await tx.ssoTestRun.deleteMany({ where: { orgId, connectionId: id } });
    await tx.ssoAssertionSeen.deleteMany({ where: { connectionId: id } });
    await tx.ssoConnection.deleteMany({ where: { id, orgId } });
  },
  /** Policies that name the connection (enforce SSO through it). */
  async policiesUsing(tx: Tx, orgId: string, id: string): Promise<{ id: string; name: string }[]> {
    return tx.policy.findMany({ where: { orgId, ssoConnectionId: id }, select: { id: true, name: true }, orderBy: { name: 'asc' } });
  },
  async allOfOrg(tx: Tx, orgId: string): Promise<{ id: string; name: string; type: SsoProtocol }[]> {
    return tx.ssoConnection.findMany({ where: { orgId }, select: { id: true, name: true, type: true }, orderBy: [...orderBy()] });
  },
};

export const ssoRequestStore = {
  async create(tx: Tx, r: Omit<SsoRequestRow, 'createdAt' | 'consumedAt'>): Promise<void> {
    await tx.ssoRequest.create({ data: r });
  },
  /**
   * Marks the request used and returns it — once: a second answer to the same request (a
   * replayed response, a reused state) finds nothing. Expired requests are not returned.
   */
  async consume(tx: Tx, connectionId: string, id: string, now: Date): Promise<SsoRequestRow | null> {
    const n = await tx.ssoRequest.updateMany({ where: { id, connectionId, consumedAt: null, expiresAt: { gt: now } }, data: { consumedAt: now } });
    if (n.count !== 1) return null;
    return tx.ssoRequest.findUnique({ where: { id } });
  },
  async get(tx: Tx, connectionId: string, id: string): Promise<SsoRequestRow | null> {
    return tx.ssoRequest.findFirst({ where: { id, connectionId } });
  },
  async purgeExpired(tx: Tx, now: Date): Promise<number> {
    return (await tx.ssoRequest.deleteMany({ where: { expiresAt: { lt: now } } })).count;
  },
};

export const replayCacheStore = {
  async purgeExpired(tx: Tx, now: Date): Promise<number> {
    return (await tx.ssoAssertionSeen.deleteMany({ where: { expiresAt: { lt: now } } })).count;
  },
};

export const sessionStore = {
  async create(tx: Tx, s: { tokenHash: string; orgId: string; accountId: string; connectionId: string | null; method: SsoProtocol; expiresAt: Date }) {
    return tx.userSession.create({ data: s });
  },
  async active(tx: Tx, tokenHash: string, now: Date) {
    return tx.userSession.findFirst({ where: { tokenHash, revokedAt: null, expiresAt: { gt: now } } });
  },
  async revoke(tx: Tx, tokenHash: string, now: Date): Promise<void> {
    await tx.userSession.updateMany({ where: { tokenHash, revokedAt: null }, data: { revokedAt: now } });
  },
  async purgeExpired(tx: Tx, now: Date): Promise<number> {
    return (await tx.userSession.deleteMany({ where: { expiresAt: { lt: now } } })).count;
  },
};

export const testRunStore = {
  async create(tx: Tx, r: { id: string; orgId: string; connectionId: string; startedBy: string; tokenHash: string; expiresAt: Date }): Promise<SsoTestRunRow> {
    return tx.ssoTestRun.create({ data: { ...r, checks: [], attributes: {} }, select: testRunSelect });
  },
  /** The pending run a test URL names; used once. */
  async claim(tx: Tx, tokenHash: string, now: Date): Promise<SsoTestRunRow | null> {
    const run = await tx.ssoTestRun.findUnique({ where: { tokenHash }, select: testRunSelect });
    if (!run || run.completedAt || run.expiresAt <= now) return null;
    return run;
  },
  async get(tx: Tx, orgId: string, id: string): Promise<SsoTestRunRow | null> {
    return tx.ssoTestRun.findFirst({ where: { id, orgId }, select: testRunSelect });
  },
  /** A test of this connection still waiting for its answer (a forged RelayState names nothing else). */
  async isPending(tx: Tx, connectionId: string, id: string): Promise<boolean> {
    return (await tx.ssoTestRun.count({ where: { id, connectionId, completedAt: null } })) > 0;
  },
  async complete(tx: Tx, id: string, r: {
    completedAt: Date; wouldSucceed: boolean; reason: string | null; checks: unknown; attributes: unknown; profile: unknown;
    accountId: string | null; policyId: string | null;
  }): Promise<SsoTestRunRow> {
    return tx.ssoTestRun.update({
      where: { id },
      data: {
        ...r,
        checks: r.checks as Prisma.InputJsonValue,
        attributes: r.attributes as Prisma.InputJsonValue,
        profile: r.profile === null ? Prisma.JsonNull : (r.profile as Prisma.InputJsonValue),
      },
      select: testRunSelect,
    });
  },
  async list(tx: Tx, orgId: string, connectionId: string, page: PageRequest) {
    const rows = await tx.ssoTestRun.findMany({
      where: { orgId, connectionId, ...afterCursor(page.cursor, 'desc') }, orderBy: [...orderBy('desc')], take: page.limit + 1, select: testRunSelect,
    });
    return toPage(rows, page.limit, (r) => r);
  },
};

/** Everything POST /login needs, in one statement (it answers unauthenticated traffic: keep it cheap). */
export type LoginFacts = {
  orgId: string;
  account: { status: 'active' | 'disabled'; managed: boolean; policyId: string | null } | null;
  policy: { enforceSso: boolean; requireTwoFactor: boolean; ssoConnectionId: string | null } | null;
  connection: { id: string; name: string; type: SsoProtocol; jit: boolean } | null;
  subscription: SubscriptionFacts;
};

export const loginFactsStore = {
  async find(tx: Tx, domain: string, emailNormalized: string): Promise<LoginFacts | null> {
    // The person's policy, or the default policy when there is no account yet (JIT would place them there).
    const rows = await tx.$queryRaw<Array<{
      orgId: string; accountStatus: 'active' | 'disabled' | null; accountManaged: boolean | null; accountPolicyId: string | null; hasAccount: boolean;
      enforceSso: boolean | null; requireTwoFactor: boolean | null; ssoConnectionId: string | null;
      connId: string | null; connName: string | null; connType: SsoProtocol | null; connJit: boolean | null;
      hasSubscription: boolean; edition: SubscriptionFacts['edition'] | null; plan: SubscriptionFacts['plan']; cycle: SubscriptionFacts['cycle'] | null;
      trialStartedAt: Date | null; trialEndsAt: Date | null; paymentMethodAddedAt: Date | null; activatedAt: Date | null; cancelledAt: Date | null;
    }>>`
      SELECT d."orgId"::text AS "orgId", a."id" IS NOT NULL AS "hasAccount", a."status"::text AS "accountStatus", a."managed" AS "accountManaged",
             a."policyId"::text AS "accountPolicyId", p."enforceSso", p."requireTwoFactor", p."ssoConnectionId"::text AS "ssoConnectionId",
             c."id"::text AS "connId", c."name" AS "connName", c."type"::text AS "connType", c."jit" AS "connJit",
             s."orgId" IS NOT NULL AS "hasSubscription", s."edition"::text AS "edition", s."plan"::text AS "plan", s."cycle"::text AS "cycle",
             s."trialStartedAt", s."trialEndsAt", s."paymentMethodAddedAt", s."activatedAt", s."cancelledAt"
      FROM "Domain" d
      LEFT JOIN "Subscription" s ON s."orgId" = d."orgId"
      LEFT JOIN "Account" a ON a."orgId" = d."orgId" AND a."emailNormalized" = ${emailNormalized}
      LEFT JOIN "Policy" p ON p."orgId" = d."orgId" AND (CASE WHEN a."id" IS NULL THEN p."isDefault" ELSE p."id" = a."policyId" END)
      LEFT JOIN "SsoConnection" c ON c."id" = p."ssoConnectionId"
      WHERE d."domain" = ${domain} AND d."verified"
      LIMIT 1`;
    const r = rows[0];
    if (!r) return null;
    return {
      orgId: r.orgId,
      account: r.hasAccount ? { status: r.accountStatus!, managed: r.accountManaged!, policyId: r.accountPolicyId } : null,
      policy: r.enforceSso === null ? null : { enforceSso: r.enforceSso, requireTwoFactor: r.requireTwoFactor!, ssoConnectionId: r.ssoConnectionId },
      connection: r.connId ? { id: r.connId, name: r.connName!, type: r.connType!, jit: r.connJit! } : null,
      subscription: r.hasSubscription
        ? {
          edition: r.edition!, plan: r.plan, cycle: r.cycle!, trialStartedAt: r.trialStartedAt, trialEndsAt: r.trialEndsAt,
          paymentMethodAddedAt: r.paymentMethodAddedAt, activatedAt: r.activatedAt, cancelledAt: r.cancelledAt,
        }
        : NO_SUBSCRIPTION,
    };
  },
};

export type SignInAccount = { id: string; email: string; status: 'active' | 'disabled'; managed: boolean; source: string; policyId: string | null };
export type SignInPolicy = { id: string; name: string; enforceSso: boolean; ssoConnectionId: string | null; sessionDurationMinutes: number; requireTwoFactor: boolean };

/**
 * What a sign-in needs after the protocol checks, in one statement: the replay-cache insert
 * (`fresh`: the assertion was not seen before), whether the org verified the email's domain, the
 * account, and its policy — or, when there is no account, the policy a JIT account would join
 * (`jitPolicyId`, else the default policy).
 */
export const signInFactsStore = {
  async load(tx: Tx, q: {
    orgId: string; domain: string; emailNormalized: string; jitPolicyId: string | null;
    remember: { connectionId: string; assertionId: string; expiresAt: Date };
  }): Promise<{ fresh: boolean; domainVerified: boolean; account: SignInAccount | null; policy: SignInPolicy | null }> {
    const r = q.remember;
    const rows = await tx.$queryRaw<Array<{
      fresh: number; domainVerified: boolean; aId: string | null; aEmail: string | null; aStatus: 'active' | 'disabled' | null; aManaged: boolean | null;
      aSource: string | null; aPolicyId: string | null; pId: string | null; pName: string | null; pEnforceSso: boolean | null; pSso: string | null; pMinutes: number | null; p2fa: boolean | null;
    }>>`
      WITH seen AS (
        INSERT INTO "SsoAssertionSeen" ("connectionId", "assertionId", "expiresAt")
        VALUES (${r.connectionId}::uuid, ${r.assertionId}, ${r.expiresAt}::timestamptz)
        ON CONFLICT ("connectionId", "assertionId") DO NOTHING RETURNING 1
      )
      SELECT (SELECT count(*) FROM seen)::int AS fresh,
             EXISTS (SELECT 1 FROM "Domain" WHERE "orgId" = ${q.orgId}::uuid AND "domain" = ${q.domain} AND "verified") AS "domainVerified",
             a."id"::text AS "aId", a."email" AS "aEmail", a."status"::text AS "aStatus", a."managed" AS "aManaged", a."source"::text AS "aSource",
             a."policyId"::text AS "aPolicyId", p."id"::text AS "pId", p."name" AS "pName", p."enforceSso" AS "pEnforceSso",
             p."ssoConnectionId"::text AS "pSso", p."sessionDurationMinutes" AS "pMinutes", p."requireTwoFactor" AS "p2fa"
      FROM (SELECT 1) AS one
      LEFT JOIN "Account" a ON a."orgId" = ${q.orgId}::uuid AND a."emailNormalized" = ${q.emailNormalized}
      LEFT JOIN "Policy" p ON p."orgId" = ${q.orgId}::uuid AND p."id" = (CASE WHEN a."id" IS NULL
        THEN COALESCE(${q.jitPolicyId}::uuid, (SELECT d."id" FROM "Policy" d WHERE d."orgId" = ${q.orgId}::uuid AND d."isDefault"))
        ELSE a."policyId" END)`;
    const x = rows[0]!;
    return {
      fresh: x.fresh === 1,
      domainVerified: x.domainVerified,
      account: x.aId ? { id: x.aId, email: x.aEmail!, status: x.aStatus!, managed: x.aManaged!, source: x.aSource!, policyId: x.aPolicyId } : null,
      policy: x.pId ? { id: x.pId, name: x.pName!, enforceSso: x.pEnforceSso!, ssoConnectionId: x.pSso, sessionDurationMinutes: x.pMinutes!, requireTwoFactor: x.p2fa! } : null,
    };
  },
};
