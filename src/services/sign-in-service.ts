import { acceptedTwoFactorValues, describeEvidence, twoFactorAsserted } from '../domain/two-factor.js';
import type { Database } from '../store/database.js';
import { inTransaction, isUniqueViolation, type Tx } from '../store/transaction.js';
import { accountStore, type AccountRow } from '../store/account-store.js';
import { orgStore } from '../store/org-store.js';
import { ssoIdentityStore } from '../store/sso-identity-store.js';
import { policyStore } from '../store/policy-store.js';
import { subscriptionStore } from '../store/subscription-store.js';
import {
  loginFactsStore, replayCacheStore, sessionStore, signInFactsStore, ssoConnectionStore, ssoRequestStore, testRunStore,
  type SignInAccount, type SignInPolicy, type SsoConnectionRow, type SsoRequestRow, type SsoTestRunRow,
} from '../store/sso-store.js';
import { NotFound, SsoRefused, type SsoCheck } from '../domain/errors.js';
import { parseEmail } from '../domain/identity.js';
import type { VerifiedAnswer } from '../domain/sso.js';
import { enforcementActive, subscriptionStatus } from '../domain/subscription.js';
import { audit } from './audit.js';
import { syncBillability } from './billability-sync.js';
import type { RequestContext } from './context.js';
import { randomToken, sha256Hex, type SecretBox } from './secret-box.js';

export type LoginDecision = {
  email: string;
  /** `sso`: go to `sso.loginUrl`; `password`: the person's own credentials. */
  method: 'sso' | 'password';
  twoFactorRequired: boolean;
  sso: { connectionId: string; connectionName: string; protocol: 'saml' | 'oidc'; loginUrl: string } | null;
};

export type SignInServiceOptions = { publicUrl: string; box: SecretBox; requestTtlSeconds: number };

/** What a browser-facing SSO route needs of a connection; the OIDC client secret decrypted. */
export type BrowserConnection = SsoConnectionRow & { clientSecret: string | null };

export type SignInResult =
  | { kind: 'session'; token: string; expiresAt: Date; maxAgeSeconds: number; account: { id: string; email: string } }
  | { kind: 'test'; run: SsoTestRunRow; accountEmail: string | null; policyName: string | null };

type Evaluation = {
  checks: SsoCheck[];
  refusal: { reason: string; message: string } | null;
  account: SignInAccount | null;
  /** A JIT account to create on a real login: its email parts and policy. */
  jit: { email: string; normalized: string; domain: string; policyId: string } | null;
  policy: SignInPolicy | null;
  /** OIDC: the (issuer, sub) to bind to the account once the sign-in succeeds (first sign-in of that identity). */
  bind?: { issuer: string; subject: string } | null;
};

/** How long a connection read by the browser routes is reused (see connection()). */
export const CONNECTION_CACHE_MS = 5000;

const ssoCtx = (conn: { id: string; orgId: string }, now: Date, requestId: string | null): RequestContext => ({
  orgId: conn.orgId, actor: { kind: 'sso', connectionId: conn.id }, requestId, now,
});

/**
 * Sign-in through an org's identity providers (SPEC §3): which way a person signs in, the
 * requests we issue (SAML AuthnRequest IDs, OIDC state), what happens when the IdP answers —
 * request match, replay cache, account and policy checks, JIT — and the sessions that follow.
 * The protocol checks themselves happen before, in src/sso/{saml,oidc}.
 */
export function createSignInService(db: Database, opts: SignInServiceOptions) {
  const connectionCache = new Map<string, { row: SsoConnectionRow; until: number }>();
  const base = opts.publicUrl.replace(/\/+$/, '');
  const loginUrl = (c: { id: string; type: 'saml' | 'oidc' }, email?: string) =>
    `${base}/sso/${c.id}/${c.type}/login${email ? `?email=${encodeURIComponent(email)}` : ''}`;

  async function enforcing(tx: Tx, orgId: string, now: Date): Promise<boolean> {
    return enforcementActive(subscriptionStatus(await subscriptionStore.get(tx, orgId), now).state);
  }

  /**
   * Everything after the protocol checks: the replay cache (remembered in the same statement that
   * loads the facts; a refusal rolls it back), then email, domain, account and policy — without
   * other writes, so it serves real logins and the rollout test alike.
   */
  async function evaluate(tx: Tx, conn: SsoConnectionRow, answer: VerifiedAnswer, now: Date): Promise<Evaluation & { replayed: boolean }> {
    const checks: SsoCheck[] = [];
    const refuse = (reason: string, name: string, message: string): Evaluation & { replayed: boolean } => {
      checks.push({ name, passed: false, detail: message });
      return { checks, refusal: { reason, message }, account: null, jit: null, policy: null, replayed: false };
    };
    // OIDC (issue 12 §4): the provider's (issuer, sub) is who signed in. Bound at the first sign-in,
    // it finds the account afterwards whatever the email claim says now; unbound, the email claim
    // links the account only when the provider says it is verified (or the connection trusts it).
    const issuer = answer.protocol === 'oidc' ? conn.issuer : null;
    const bound = issuer ? await ssoIdentityStore.find(tx, conn.orgId, issuer, answer.profile.subject) : null;
    if (bound) {
      checks.push({ name: 'identity', passed: true, detail: `sub ${answer.profile.subject} of ${issuer} signed into ${bound.email} before: the same account` });
    } else if (issuer && answer.profile.email) {
      if (answer.profile.emailVerified !== true && !conn.trustEmailClaim) {
        const said = answer.profile.emailVerified === false ? 'says email_verified is false' : 'sends no email_verified claim';
        return refuse('email-not-verified', 'email-verified',
          `the provider ${said} for ${answer.profile.email}, so it cannot link this first sign-in to an account by email (for a provider that never sends it, such as Entra ID, set trustEmailClaim on the connection)`);
      }
      checks.push({ name: 'identity', passed: true, detail: `first sign-in of sub ${answer.profile.subject}: linked by its ${answer.profile.emailVerified === true ? 'verified email' : 'email (the connection trusts its email claim)'}` });
    }
    const claimed = bound ? bound.email : answer.profile.email;
    if (!claimed) return refuse('no-email', 'email', 'the identity provider sent no email (NameID in emailAddress format, an email attribute, or the email claim)');
    let email;
    try {
      email = parseEmail(claimed);
    } catch {
      return refuse('no-email', 'email', `"${claimed}" is not an email address`);
    }
    const facts = await signInFactsStore.load(tx, {
      orgId: conn.orgId, domain: email.domain, emailNormalized: email.normalized, jitPolicyId: conn.rolloutPolicyId,
      remember: { connectionId: conn.id, assertionId: answer.assertionId, expiresAt: answer.assertionExpiresAt },
    });
    if (!facts.fresh) {
      checks.push({ name: 'replay', passed: false, detail: `assertion ${answer.assertionId} was already used` });
      return { checks, refusal: { reason: 'replayed', message: 'this answer was already used to sign in; start the sign-in again' }, account: null, jit: null, policy: null, replayed: true };
    }
    checks.push({ name: 'replay', passed: true, detail: 'first use of this assertion' });
    checks.push({ name: 'email', passed: true, detail: email.email });
    if (!facts.domainVerified) {
      return refuse('domain-not-verified', 'domain', `${email.domain} is not a verified domain of this org, so the org does not manage ${email.email}`);
    }
    checks.push({ name: 'domain', passed: true, detail: `${email.domain} is verified by this org` });
    const { account } = facts;
    let jit: Evaluation['jit'] = null;
    if (!account) {
      if (!conn.jit) return refuse('no-account', 'account', `no account for ${email.email}, and this connection does not create accounts at first login (jit is off)`);
      jit = { email: email.email, normalized: email.normalized, domain: email.domain, policyId: facts.policy!.id };
      checks.push({ name: 'account', passed: true, detail: `no account yet: one will be created (source jit) in policy "${facts.policy!.name}"` });
    } else {
      if (account.status !== 'active') return { ...refuse('account-disabled', 'account', `the account ${account.email} is disabled`), account };
      if (!account.managed || !facts.policy) return { ...refuse('not-managed', 'account', `the account ${account.email} is not managed by this org`), account };
      if (issuer && !bound) {
        const other = await ssoIdentityStore.subjectOf(tx, account.id, issuer);
        if (other !== null && other !== answer.profile.subject) {
          return { ...refuse('identity-mismatch', 'identity', `${account.email} is bound to another identity (sub) of this provider; the email claim alone does not move it`), account };
        }
      }
      checks.push({ name: 'account', passed: true, detail: `${account.email} (${account.source}, active)` });
    }
    const policy = facts.policy!;
    // A policy that enforces SSO through another connection wins over this one (while enforcement is on).
    if (policy.enforceSso && policy.ssoConnectionId !== conn.id && (await enforcing(tx, conn.orgId, now))) {
      const other = policy.ssoConnectionId ? await ssoConnectionStore.get(tx, conn.orgId, policy.ssoConnectionId) : null;
      checks.push({ name: 'policy', passed: false, detail: `policy "${policy.name}" requires SSO through "${other?.name ?? policy.ssoConnectionId}", not "${conn.name}"` });
      return { checks, refusal: { reason: 'wrong-connection', message: `policy "${policy.name}" requires signing in through "${other?.name ?? 'another connection'}"` }, account, jit: null, policy, replayed: false };
    }
    checks.push({
      name: 'policy', passed: true,
      detail: `policy "${policy.name}": ${policy.enforceSso ? 'SSO enforced through this connection' : 'SSO allowed (not enforced)'}; session ${policy.sessionDurationMinutes} min`,
    });
    // Issue 14 §2: the policy's two-step verification is the IdP's to run; its answer must say it
    // did. Like SSO enforcement, only while the org is subscribed (SPEC: unsubscribing stops both).
    if (policy.requireTwoFactor && (await enforcing(tx, conn.orgId, now))) {
      const accepted = acceptedTwoFactorValues(conn.twoFactorValues);
      const by = twoFactorAsserted(answer.authnEvidence ?? [], accepted);
      if (!by) {
        const own = conn.twoFactorValues?.length ? `this connection's twoFactorValues (${accepted.join(', ')})` : 'the default values (mfa, otp, hwk, swk, sms, Entra ID\'s multipleauthn, REFEDS MFA, …; set twoFactorValues on the connection for others)';
        checks.push({ name: 'two-factor', passed: false, detail: `policy "${policy.name}" requires two-step verification; the IdP asserted ${describeEvidence(answer.authnEvidence ?? [])}, none of it in ${own}` });
        return {
          checks, account, jit: null, policy, replayed: false,
          refusal: { reason: 'two-factor-not-asserted', message: `policy "${policy.name}" requires two-step verification, and the identity provider did not say it performed one (it asserted ${describeEvidence(answer.authnEvidence ?? [])}); sign in with a second factor at the identity provider` },
        };
      }
      checks.push({ name: 'two-factor', passed: true, detail: `required by policy "${policy.name}": the IdP asserted ${by.source} ${by.value}` });
    }
    return { checks, refusal: null, account, jit, policy, replayed: false, bind: issuer && !bound ? { issuer, subject: answer.profile.subject } : null };
  }

  async function createJitAccount(tx: Tx, ctx: RequestContext, jit: NonNullable<Evaluation['jit']>, answer: VerifiedAnswer): Promise<AccountRow> {
    const row = await accountStore.create(tx, ctx.orgId, {
      email: jit.email, emailNormalized: jit.normalized, emailDomain: jit.domain, displayName: answer.profile.displayName,
      givenName: answer.profile.givenName, familyName: answer.profile.familyName, managed: true, policyId: jit.policyId, source: 'jit',
    });
    await audit(tx, ctx, {
      action: 'account.create', targetType: 'account', targetId: row.id,
      after: { email: row.email, managed: true, source: 'jit', policyId: row.policyId, subject: answer.profile.subject },
    });
    await syncBillability(tx, ctx, [row.id], 'jit-login');
    return row;
  }

  async function completeTest(tx: Tx, conn: SsoConnectionRow, testId: string, outcome: {
    checks: SsoCheck[]; refusal: { reason: string; message: string } | null; answer: VerifiedAnswer | null; account: { id: string } | null; policy: { id: string } | null;
  }, ctx: RequestContext): Promise<SsoTestRunRow> {
    const run = await testRunStore.complete(tx, testId, {
      completedAt: ctx.now, wouldSucceed: outcome.refusal === null, reason: outcome.refusal ? `${outcome.refusal.reason}: ${outcome.refusal.message}` : null,
      checks: outcome.checks, attributes: outcome.answer?.attributes ?? {}, profile: outcome.answer?.profile ?? null,
      accountId: outcome.account?.id ?? null, policyId: outcome.policy?.id ?? null,
    });
    await audit(tx, ctx, {
      action: 'sso.test.completed', targetType: 'sso-connection', targetId: conn.id,
      after: { testId, wouldSucceed: run.wouldSucceed, reason: outcome.refusal?.reason ?? null, email: outcome.answer?.profile.email ?? null },
    });
    return run;
  }

  return {
    /** POST /login: which way this person signs in. Unknown, external and disabled accounts get the generic answer. */
    async decide(rawEmail: string, now: Date): Promise<LoginDecision> {
      const email = parseEmail(rawEmail);
      const generic: LoginDecision = { email: email.email, method: 'password', twoFactorRequired: false, sso: null };
      // Read-only, outside a transaction: one statement for the account, its policy and connection.
      const facts = await loginFactsStore.find(db.prisma, email.domain, email.normalized);
      if (!facts?.policy) return generic;
      const { account, policy, connection } = facts;
      if (account && (account.status !== 'active' || !account.managed || !account.policyId)) return generic;
      const enforced = enforcementActive(subscriptionStatus(facts.subscription, now).state);
      // Someone without an account on the org's domain: the default policy says how they would sign in (JIT).
      if (enforced && policy.enforceSso && connection && (account || connection.jit)) {
        return { email: email.email, method: 'sso', twoFactorRequired: false, sso: { connectionId: connection.id, connectionName: connection.name, protocol: connection.type, loginUrl: loginUrl(connection, email.email) } };
      }
      if (!account) return generic;
      return { email: email.email, method: 'password', twoFactorRequired: enforced && policy.requireTwoFactor, sso: null };
    },

    /**
     * The connection a browser names in /sso/{id}/…; 404 for an unknown id. Kept for a few seconds
     * (every ACS post reads it): this process forgets it at once when an admin changes or deletes it
     * (forgetConnection); another replica within CONNECTION_CACHE_MS.
     */
    async connection(id: string): Promise<BrowserConnection> {
      const hit = connectionCache.get(id);
      let c = hit && hit.until > Date.now() ? hit.row : null;
      if (!c) {
        c = /^[0-9a-f-]{36}$/i.test(id) ? await ssoConnectionStore.byId(db.prisma, id) : null;
        if (c) {
          if (connectionCache.size >= 1000) connectionCache.clear();
          connectionCache.set(id, { row: c, until: Date.now() + CONNECTION_CACHE_MS });
        }
      }
      if (!c) throw new NotFound('SSO connection', id);
      let clientSecret: string | null = null;
      if (c.clientSecretEnc) {
        try {
          clientSecret = opts.box.decrypt(c.clientSecretEnc);
        } catch {
          throw new SsoRefused('secret-unreadable', 'the connection\'s client secret cannot be decrypted with this service\'s SECRET_KEY; an admin must save it again', [], 403);
        }
      }
      return { ...c, clientSecret };
    },

    forgetConnection(id: string): void {
      connectionCache.delete(id);
    },

    /** Records a request we are about to send to the IdP. */
    async beginLogin(conn: SsoConnectionRow, r: { id: string; purpose: 'login' | 'test'; browserHash: string; loginHint?: string | null; nonce?: string | null; codeVerifier?: string | null; testId?: string | null }, now: Date): Promise<void> {
      await inTransaction(db, (tx) => ssoRequestStore.create(tx, {
        id: r.id, orgId: conn.orgId, connectionId: conn.id, purpose: r.purpose, browserHash: r.browserHash, loginHint: r.loginHint ?? null,
        nonce: r.nonce ?? null, codeVerifier: r.codeVerifier ?? null, testId: r.testId ?? null, expiresAt: new Date(now.getTime() + opts.requestTtlSeconds * 1000),
      }));
    },

    /** The pending rollout test a test URL names (GET /sso/test/{token}). */
    async pendingTest(token: string, now: Date): Promise<{ run: SsoTestRunRow; conn: BrowserConnection }> {
      const run = await testRunStore.claim(db.prisma, sha256Hex(token), now);
      if (!run) throw new NotFound('SSO test (the link is unknown, used or expired: start a new test)');
      return { run, conn: await this.connection(run.connectionId) };
    },

    /** Uses up the request an answer names (once; not after it expired). */
    async consumeRequest(conn: SsoConnectionRow, id: string, now: Date): Promise<SsoRequestRow | null> {
      return inTransaction(db, (tx) => ssoRequestStore.consume(tx, conn.id, id, now));
    },

    /** A request we issued, consumed or not: locates the test run of a refused answer (by RelayState or state). */
    async findRequest(conn: SsoConnectionRow, id: string): Promise<SsoRequestRow | null> {
      return ssoRequestStore.get(db.prisma, conn.id, id);
    },

    /**
     * An answer that passed the protocol checks. `request` is the request it answers (consumed
     * by the caller), or null for an IdP-initiated SAML login the connection allows. A test
     * request records its result and never creates a session or an account.
     */
    async complete(conn: SsoConnectionRow, answer: VerifiedAnswer, request: SsoRequestRow | null, meta: { now: Date; requestId: string | null }): Promise<SignInResult> {
      const ctx = ssoCtx(conn, meta.now, meta.requestId);
      // Two first logins of one person at once, or a JIT login racing the IdP's SCIM push of the
      // same person: the other transaction created the account first. The sign-in runs again and
      // finds that account (issue 11: a JIT login does not fail because of a concurrent create).
      for (let attempt = 1; ; attempt++) {
        try {
          return await inTransaction(db, async (tx) => {
            const checks: SsoCheck[] = [...answer.checks];
            checks.push(request
              ? { name: 'request', passed: true, detail: `answers our request ${request.id}` }
              : { name: 'request', passed: true, detail: 'IdP-initiated (allowed by this connection)' });
            const ev = await evaluate(tx, conn, answer, meta.now);
            checks.push(...ev.checks);
            // A replayed answer is refused even for a test: its first use already counted.
            if (ev.replayed) throw Object.assign(new SsoRefused('replayed', ev.refusal!.message, checks, 403), { email: answer.profile.email });
            if (request?.purpose === 'test' && request.testId) {
              const run = await completeTest(tx, conn, request.testId, { checks, refusal: ev.refusal, answer, account: ev.account, policy: ev.policy }, ctx);
              return { kind: 'test', run, accountEmail: ev.account?.email ?? (ev.jit ? `${ev.jit.email} (would be created)` : null), policyName: ev.policy?.name ?? null };
            }
            if (ev.refusal) throw Object.assign(new SsoRefused(ev.refusal.reason, ev.refusal.message, checks, 403), { email: answer.profile.email });
            let account = ev.account;
            if (!account && ev.jit) {
              account = await createJitAccount(tx, ctx, ev.jit, answer);
            }
            const policy = ev.policy!;
            const token = randomToken();
            const maxAgeSeconds = policy.sessionDurationMinutes * 60;
            const expiresAt = new Date(meta.now.getTime() + maxAgeSeconds * 1000);
            await sessionStore.create(tx, { tokenHash: sha256Hex(token), orgId: conn.orgId, accountId: account!.id, connectionId: conn.id, method: answer.protocol, expiresAt });
            await accountStore.recordSignIn(tx, conn.orgId, account!.id, conn.id, meta.now);
            if (ev.bind) await ssoIdentityStore.bind(tx, { orgId: conn.orgId, ...ev.bind, accountId: account!.id, connectionId: conn.id });
            await audit(tx, ctx, {
              action: 'sso.login.succeeded', targetType: 'account', targetId: account!.id,
              after: { email: account!.email, connection: conn.name, protocol: answer.protocol, policyId: policy.id, sessionExpiresAt: expiresAt, jit: Boolean(ev.jit), subject: answer.profile.subject },
            });
            return { kind: 'session', token, expiresAt, maxAgeSeconds, account: { id: account!.id, email: account!.email } };
          });
        } catch (err) {
          if (!isUniqueViolation(err, 'emailNormalized')) throw err;
          if (attempt >= 3) throw new SsoRefused('retry', 'your account was being created by another sign-in; sign in again', [...answer.checks], 403);
        }
      }
    },

    /**
     * Audits a refused answer (its own transaction: the one that found the problem rolled back)
     * and, when it answered a rollout test, records the test's failure. Returns the test run then.
     */
    async refuse(conn: SsoConnectionRow, err: SsoRefused, request: SsoRequestRow | null, meta: { now: Date; requestId: string | null; email?: string | null }): Promise<SsoTestRunRow | null> {
      const ctx = ssoCtx(conn, meta.now, meta.requestId);
      return inTransaction(db, async (tx) => {
        if (request?.purpose === 'test' && request.testId) {
          if (await testRunStore.isPending(tx, conn.id, request.testId)) {
            return completeTest(tx, conn, request.testId, { checks: [...err.checks], refusal: { reason: err.reason, message: err.message }, answer: null, account: null, policy: null }, ctx);
          }
        }
        await audit(tx, ctx, {
          action: 'sso.login.refused', targetType: 'sso-connection', targetId: conn.id,
          after: { reason: err.reason, detail: err.message, email: meta.email ?? err.email, failedChecks: err.checks.filter((c) => !c.passed).map((c) => c.name) },
        });
        return null;
      });
    },

    /** GET /me: the signed-in person, or null. */
    async me(token: string, now: Date) {
      const s = await sessionStore.active(db.prisma, sha256Hex(token), now);
      if (!s) return null;
      const account = await accountStore.get(db.prisma, s.orgId, s.accountId);
      if (!account || account.status !== 'active') return null;
      const [org, policy, conn] = await Promise.all([
        orgStore.get(db.prisma, s.orgId),
        account.policyId ? policyStore.get(db.prisma, s.orgId, account.policyId) : null,
        s.connectionId ? ssoConnectionStore.get(db.prisma, s.orgId, s.connectionId) : null,
      ]);
      return {
        account: { id: account.id, email: account.email, displayName: account.displayName, source: account.source, managed: account.managed },
        org: org ? { id: org.id, name: org.name } : null,
        policy: policy ? { id: policy.id, name: policy.name, sessionDurationMinutes: policy.sessionDurationMinutes } : null,
        session: { method: s.method, connection: conn ? { id: conn.id, name: conn.name } : null, createdAt: s.createdAt, expiresAt: s.expiresAt },
      };
    },

    async logout(token: string, now: Date): Promise<void> {
      await inTransaction(db, (tx) => sessionStore.revoke(tx, sha256Hex(token), now));
    },

  };
}

export type SignInService = ReturnType<typeof createSignInService>;

/** Housekeeping for the retention-purge job: expired SSO requests, replay-cache entries and sessions. */
export async function purgeExpiredSso(db: Database, now: Date) {
  return inTransaction(db, async (tx) => ({
    requests: await ssoRequestStore.purgeExpired(tx, now),
    assertions: await replayCacheStore.purgeExpired(tx, now),
    sessions: await sessionStore.purgeExpired(tx, now),
  }));
}
