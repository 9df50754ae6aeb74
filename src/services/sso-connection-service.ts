import { randomUUID } from 'node:crypto';
import type { Database } from '../store/database.js';
import { inTransaction, isUniqueViolation, type Tx } from '../store/transaction.js';
import { ssoConnectionStore, testRunStore, type SsoConnectionData, type SsoConnectionRow, type SsoTestRunRow } from '../store/sso-store.js';
import { policyStore } from '../store/policy-store.js';
import type { PageRequest } from '../store/paging.js';
import { Conflict, InvalidInput, NotFound } from '../domain/errors.js';
import { audit } from './audit.js';
import { actorLabel, type RequestContext } from './context.js';
import { certificateInfo, checkUrl, parseCertificate, parseIdpMetadata } from './idp-metadata.js';
import { randomToken, sha256Hex, type SecretBox } from './secret-box.js';
import { acceptedTwoFactorValues } from '../domain/two-factor.js';

export type SamlConnectionInput = {
  type: 'saml'; name: string; metadataXml?: string | undefined; entityId?: string | undefined; ssoUrl?: string | undefined;
  certificate?: string | undefined; certificates?: string[] | undefined; allowIdpInitiated?: boolean | undefined;
  jit?: boolean | undefined; rolloutPolicyId?: string | null | undefined; twoFactorValues?: string[] | undefined;
};
export type OidcConnectionInput = {
  type: 'oidc'; name: string; issuer: string; clientId: string; clientSecret: string; trustEmailClaim?: boolean | undefined;
  jit?: boolean | undefined; rolloutPolicyId?: string | null | undefined; twoFactorValues?: string[] | undefined;
};
export type ConnectionPatch = {
  name?: string | undefined; jit?: boolean | undefined; rolloutPolicyId?: string | null | undefined; allowIdpInitiated?: boolean | undefined;
  twoFactorValues?: string[] | undefined;
  metadataXml?: string | undefined; entityId?: string | undefined; ssoUrl?: string | undefined; certificate?: string | undefined; certificates?: string[] | undefined;
  issuer?: string | undefined; clientId?: string | undefined; clientSecret?: string | undefined; trustEmailClaim?: boolean | undefined;
};

export type SsoConnectionServiceOptions = {
  publicUrl: string;
  box: SecretBox;
  /** Runs OIDC discovery for an issuer an admin saves (src/sso/oidc); throws InvalidInput when it fails. */
  checkOidcIssuer?: (issuer: string) => Promise<void>;
  testTtlSeconds?: number;
  /** Told when a connection changes or goes, so that caches of it (the sign-in service's) drop it. */
  onChange?: (id: string) => void;
};

export function createSsoConnectionService(db: Database, opts: SsoConnectionServiceOptions) {
  const base = opts.publicUrl.replace(/\/+$/, '');
  const testTtlMs = (opts.testTtlSeconds ?? 900) * 1000;

  /** What admins see: never the client secret; the SP side of the connection ready to paste into the IdP. */
  const view = (c: SsoConnectionRow, policies: { id: string; name: string }[] = []) => ({
    id: c.id, type: c.type, name: c.name, jit: c.jit, rolloutPolicyId: c.rolloutPolicyId,
    ...(c.type === 'saml'
      ? {
        entityId: c.entityId, ssoUrl: c.ssoUrl, allowIdpInitiated: c.allowIdpInitiated,
        certificate: c.certificates[0] ?? null,
        certificates: c.certificates.map(certificateInfo),
        serviceProvider: {
          entityId: `${base}/sso/${c.id}/saml/metadata`, metadataUrl: `${base}/sso/${c.id}/saml/metadata`,
          acsUrl: `${base}/sso/${c.id}/saml/acs`, loginUrl: `${base}/sso/${c.id}/saml/login`,
        },
      }
      : {
        issuer: c.issuer, clientId: c.clientId, clientSecretSet: Boolean(c.clientSecretEnc), trustEmailClaim: c.trustEmailClaim,
        relyingParty: { redirectUri: `${base}/sso/${c.id}/oidc/callback`, loginUrl: `${base}/sso/${c.id}/oidc/login` },
      }),
    enforcedByPolicies: policies,
    twoFactorValues: c.twoFactorValues ?? [],
    twoFactorAccepted: [...acceptedTwoFactorValues(c.twoFactorValues)],
    createdAt: c.createdAt, updatedAt: c.updatedAt,
  });

  const testView = (r: SsoTestRunRow) => ({
    id: r.id, connectionId: r.connectionId, startedBy: r.startedBy, createdAt: r.createdAt, expiresAt: r.expiresAt,
    status: r.completedAt ? 'completed' : r.expiresAt.getTime() < Date.now() ? 'expired' : 'waiting',
    completedAt: r.completedAt, wouldSucceed: r.wouldSucceed, reason: r.reason, checks: r.checks, attributes: r.attributes,
    profile: r.profile, accountId: r.accountId, policyId: r.policyId,
  });

  async function mustGet(tx: Tx, ctx: RequestContext, id: string): Promise<SsoConnectionRow> {
    const c = await ssoConnectionStore.get(tx, ctx.orgId, id);
    if (!c) throw new NotFound('SSO connection', id);
    return c;
  }

  async function checkRolloutPolicy(tx: Tx, ctx: RequestContext, id: string | null | undefined) {
    if (id && !(await policyStore.get(tx, ctx.orgId, id))) throw new InvalidInput('invalid body', [{ path: 'rolloutPolicyId', message: `no policy ${id} in this org` }]);
  }

  /** SAML settings from metadata or from the three fields; a signing certificate is required (STYLE.md: samlify would trust the response's own). */
  function samlSettings(input: Omit<ConnectionPatch, 'name'>, current?: SsoConnectionRow): Pick<SsoConnectionData, 'entityId' | 'ssoUrl' | 'certificates'> {
    if (input.metadataXml !== undefined) return parseIdpMetadata(input.metadataXml);
    const out: Pick<SsoConnectionData, 'entityId' | 'ssoUrl' | 'certificates'> = {};
    if (input.entityId !== undefined) out.entityId = input.entityId;
    if (input.ssoUrl !== undefined) out.ssoUrl = checkUrl(input.ssoUrl, 'ssoUrl', { allowHttpLoopbackOnly: true });
    const certs = input.certificates ?? (input.certificate !== undefined ? [input.certificate] : undefined);
    if (certs !== undefined) out.certificates = certs.map((c, i) => parseCertificate(c, input.certificates ? `certificates.${i}` : 'certificate'));
    const merged = { entityId: current?.entityId, ssoUrl: current?.ssoUrl, certificates: current?.certificates ?? [], ...out };
    const missing = [
      !merged.entityId && { path: 'entityId', message: 'required (the IdP entity id, the Issuer of its responses), or send metadataXml' },
      !merged.ssoUrl && { path: 'ssoUrl', message: 'required (the IdP single sign-on URL, HTTP-Redirect binding), or send metadataXml' },
      !merged.certificates?.length && { path: 'certificate', message: 'required: the IdP signing certificate (PEM); a connection without one cannot verify responses' },
    ].filter((x): x is { path: string; message: string } => Boolean(x));
    if (missing.length) throw new InvalidInput('invalid body', missing);
    return out;
  }

  async function oidcSettings(input: Omit<ConnectionPatch, 'name'>): Promise<Pick<SsoConnectionData, 'issuer' | 'clientId' | 'clientSecretEnc'>> {
    const out: Pick<SsoConnectionData, 'issuer' | 'clientId' | 'clientSecretEnc'> = {};
    if (input.issuer !== undefined) {
      // Kept exactly as given: the ID token's iss must equal it byte for byte (OIDC Discovery §4.3).
      out.issuer = checkUrl(input.issuer, 'issuer', { allowHttpLoopbackOnly: true });
      await opts.checkOidcIssuer?.(input.issuer);
    }
    if (input.clientId !== undefined) out.clientId = input.clientId;
    if (input.clientSecret !== undefined) out.clientSecretEnc = opts.box.encrypt(input.clientSecret);
    return out;
  }

  /** Audit rows never carry secrets or whole certificates. */
  const auditSummary = (c: SsoConnectionRow) => ({
    type: c.type, name: c.name, jit: c.jit, rolloutPolicyId: c.rolloutPolicyId, entityId: c.entityId, ssoUrl: c.ssoUrl,
    certificates: c.certificates.map((p) => certificateInfo(p).sha256Fingerprint), allowIdpInitiated: c.allowIdpInitiated,
    issuer: c.issuer, clientId: c.clientId, trustEmailClaim: c.trustEmailClaim, twoFactorValues: c.twoFactorValues ?? [],
  });

  const nameTaken = (err: unknown, name: string | undefined) => {
    if (isUniqueViolation(err)) throw new Conflict('sso-connection-name-taken', `an SSO connection named "${name}" already exists in this org`);
    throw err;
  };

  return {
    async create(ctx: RequestContext, input: SamlConnectionInput | OidcConnectionInput) {
      const id = randomUUID();
      const data: SsoConnectionData & { id: string; type: 'saml' | 'oidc'; name: string } = input.type === 'saml'
        ? { id, type: 'saml', name: input.name, jit: input.jit ?? false, rolloutPolicyId: input.rolloutPolicyId ?? null, twoFactorValues: input.twoFactorValues ?? [], allowIdpInitiated: input.allowIdpInitiated ?? false, ...samlSettings(input) }
        : { id, type: 'oidc', name: input.name, jit: input.jit ?? false, rolloutPolicyId: input.rolloutPolicyId ?? null, twoFactorValues: input.twoFactorValues ?? [], trustEmailClaim: input.trustEmailClaim ?? false, ...(await oidcSettings(input)) };
      try {
        return await inTransaction(db, async (tx) => {
          await checkRolloutPolicy(tx, ctx, data.rolloutPolicyId);
          const c = await ssoConnectionStore.create(tx, ctx.orgId, data);
          await audit(tx, ctx, { action: 'sso-connection.create', targetType: 'sso-connection', targetId: c.id, after: auditSummary(c) });
          return view(c);
        });
      } catch (err) {
        return nameTaken(err, input.name);
      }
    },

    async list(ctx: RequestContext, page: PageRequest) {
      const res = await ssoConnectionStore.list(db.prisma, ctx.orgId, page);
      return { items: res.items.map((c) => view(c)), next: res.next };
    },

    async get(ctx: RequestContext, id: string) {
      const c = await mustGet(db.prisma, ctx, id);
      return view(c, await ssoConnectionStore.policiesUsing(db.prisma, ctx.orgId, id));
    },

    async update(ctx: RequestContext, id: string, patch: ConnectionPatch) {
      const current = await mustGet(db.prisma, ctx, id);
      const protocolFields = current.type === 'saml'
        ? (['issuer', 'clientId', 'clientSecret', 'trustEmailClaim'] as const).filter((k) => patch[k] !== undefined)
        : (['metadataXml', 'entityId', 'ssoUrl', 'certificate', 'certificates', 'allowIdpInitiated'] as const).filter((k) => patch[k] !== undefined);
      if (protocolFields.length) throw new InvalidInput('invalid body', protocolFields.map((k) => ({ path: k, message: `not a field of ${current.type.toUpperCase()} connections` })));
      const data: SsoConnectionData = {
        ...(patch.name !== undefined ? { name: patch.name } : {}),
        ...(patch.jit !== undefined ? { jit: patch.jit } : {}),
        ...(patch.rolloutPolicyId !== undefined ? { rolloutPolicyId: patch.rolloutPolicyId } : {}),
        ...(patch.allowIdpInitiated !== undefined ? { allowIdpInitiated: patch.allowIdpInitiated } : {}),
        ...(patch.trustEmailClaim !== undefined ? { trustEmailClaim: patch.trustEmailClaim } : {}),
        ...(patch.twoFactorValues !== undefined ? { twoFactorValues: patch.twoFactorValues } : {}),
        ...(current.type === 'saml' ? samlSettings(patch, current) : await oidcSettings(patch)),
      };
      try {
        return await inTransaction(db, async (tx) => {
          const before = await mustGet(tx, ctx, id);
          await checkRolloutPolicy(tx, ctx, data.rolloutPolicyId);
          const after = await ssoConnectionStore.update(tx, ctx.orgId, id, data);
          await audit(tx, ctx, {
            action: 'sso-connection.update', targetType: 'sso-connection', targetId: id, before: auditSummary(before),
            after: { ...auditSummary(after), ...(patch.clientSecret !== undefined ? { clientSecretChanged: true } : {}) },
          });
          return view(after, await ssoConnectionStore.policiesUsing(tx, ctx.orgId, id));
        }).finally(() => opts.onChange?.(id));
      } catch (err) {
        return nameTaken(err, patch.name);
      }
    },

    /** Refused while a policy enforces SSO through it: its members would be locked out. */
    async delete(ctx: RequestContext, id: string) {
      await inTransaction(db, async (tx) => {
        const c = await mustGet(tx, ctx, id);
        const using = await ssoConnectionStore.policiesUsing(tx, ctx.orgId, id);
        if (using.length) {
          throw new Conflict('sso-connection-in-use', `policies ${using.map((p) => `"${p.name}"`).join(', ')} enforce SSO through this connection; point them elsewhere or stop enforcing SSO first`);
        }
        await ssoConnectionStore.delete(tx, ctx.orgId, id);
        await audit(tx, ctx, { action: 'sso-connection.delete', targetType: 'sso-connection', targetId: id, before: auditSummary(c) });
      });
      opts.onChange?.(id);
    },

    /** Starts a rollout test: a one-time URL that signs in through the IdP and reports, creating no session. */
    async startTest(ctx: RequestContext, id: string) {
      return inTransaction(db, async (tx) => {
        await mustGet(tx, ctx, id);
        const token = randomToken();
        const run = await testRunStore.create(tx, {
          id: randomUUID(), orgId: ctx.orgId, connectionId: id, startedBy: actorLabel(ctx.actor), tokenHash: sha256Hex(token),
          expiresAt: new Date(ctx.now.getTime() + testTtlMs),
        });
        await audit(tx, ctx, { action: 'sso-connection.test.start', targetType: 'sso-connection', targetId: id, after: { testId: run.id } });
        return { testId: run.id, url: `${base}/sso/test/${token}`, expiresAt: run.expiresAt, resultUrl: `${base}/api/v1/orgs/${ctx.orgId}/sso-connections/${id}/tests/${run.id}` };
      });
    },

    async tests(ctx: RequestContext, id: string, page: PageRequest) {
      await mustGet(db.prisma, ctx, id);
      const res = await testRunStore.list(db.prisma, ctx.orgId, id, page);
      return { items: res.items.map(testView), next: res.next };
    },

    async test(ctx: RequestContext, id: string, testId: string) {
      const r = await testRunStore.get(db.prisma, ctx.orgId, testId);
      if (!r || r.connectionId !== id) throw new NotFound('SSO test run', testId);
      return testView(r);
    },

    testView,
  };
}
