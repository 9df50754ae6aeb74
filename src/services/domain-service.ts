import { randomBytes } from 'node:crypto';
import type { Database } from '../store/database.js';
import { inTransaction, isUniqueViolation, lockOrg } from '../store/transaction.js';
import { domainStore, type DomainRow } from '../store/domain-store.js';
import { accountStore } from '../store/account-store.js';
import { policyStore } from '../store/policy-store.js';
import { Conflict, Forbidden, NotFound, PolicyViolation, VerificationFailed } from '../domain/errors.js';
import { normalizeDomain } from '../domain/identity.js';
import { audit } from './audit.js';
import { syncBillability } from './billability-sync.js';
import type { DomainVerifier } from './domain-verifier.js';
import { TXT_PREFIX, WELL_KNOWN_PATH } from './domain-verifier.js';
import type { RequestContext } from './context.js';

export const domainView = (d: DomainRow) => ({
  domain: d.domain,
  verified: d.verified,
  verificationToken: d.verificationToken,
  verifiedAt: d.verifiedAt,
  verifiedBy: d.verifiedBy,
  createdAt: d.createdAt,
  // Tell the admin exactly what to publish.
  instructions: {
    dnsTxt: { name: d.domain, value: `${TXT_PREFIX}${d.verificationToken}` },
    httpsFile: { url: `https://${d.domain}${WELL_KNOWN_PATH}`, content: d.verificationToken },
  },
});

export function createDomainService(db: Database, verifier: DomainVerifier) {
  return {
    async claim(ctx: RequestContext, input: { domain: string }) {
      const domain = normalizeDomain(input.domain);
      const token = randomBytes(24).toString('base64url');
      try {
        return await inTransaction(db, async (tx) => {
          const row = await domainStore.create(tx, ctx.orgId, domain, token);
          await audit(tx, ctx, { action: 'domain.claim', targetType: 'domain', targetId: domain, after: { domain, verified: false } });
          return domainView(row);
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw new Conflict('domain-already-claimed', `${domain} is already claimed by this org`);
        throw err;
      }
    },

    async list(ctx: RequestContext) {
      return (await domainStore.list(db.prisma, ctx.orgId)).map(domainView);
    },

    async get(ctx: RequestContext, rawDomain: string) {
      const row = await domainStore.get(db.prisma, ctx.orgId, normalizeDomainOr404(rawDomain));
      if (!row) throw new NotFound('domain', rawDomain);
      return domainView(row);
    },

    /**
     * Verifies a claimed domain (DNS TXT or HTTPS file; the operator may override, audited),
     * then turns every account on it managed and into the default policy, with billable deltas.
     */
    async verify(ctx: RequestContext, rawDomain: string, input: { override?: boolean | undefined }) {
      const domain = normalizeDomainOr404(rawDomain);
      const claimed = await domainStore.get(db.prisma, ctx.orgId, domain);
      if (!claimed) throw new NotFound('domain', rawDomain);
      if (claimed.verified) return { ...domainView(claimed), accountsManaged: 0 };

      let method: string;
      if (input.override) {
        if (ctx.actor.kind !== 'operator') throw new Forbidden('only the service operator may verify a domain without a check');
        method = 'operator-override';
      } else {
        // The network check happens outside the transaction: no lock is held while DNS answers.
        const result = await verifier.check(domain, claimed.verificationToken);
        if (!result.ok) {
          throw new VerificationFailed(`could not verify ${domain}: ${result.tried.join('; ')}`);
        }
        method = result.method;
      }

      try {
        return await inTransaction(db, async (tx) => {
          await lockOrg(tx, ctx.orgId);
          await domainStore.lockDomainName(tx, domain);
          const current = await domainStore.get(tx, ctx.orgId, domain);
          if (!current) throw new NotFound('domain', rawDomain);
          if (current.verified) return { ...domainView(current), accountsManaged: 0 };
          if (await domainStore.verifiedByAnotherOrg(tx, ctx.orgId, domain)) {
            throw new PolicyViolation('domain-verified-elsewhere', `${domain} is already verified by another org`);
          }
          const row = await domainStore.markVerified(tx, ctx.orgId, domain, ctx.now, method);
          const defaultPolicy = await policyStore.defaultPolicy(tx, ctx.orgId);
          const managed = await accountStore.manageDomainAccounts(tx, ctx.orgId, domain, defaultPolicy.id);
          await audit(tx, ctx, {
            action: input.override ? 'domain.verify.override' : 'domain.verify',
            targetType: 'domain', targetId: domain,
            before: { verified: false }, after: { verified: true, method, accountsManaged: managed.length },
          });
          await syncBillability(tx, ctx, managed, 'domain-verified');
          return { ...domainView(row), accountsManaged: managed.length };
        });
      } catch (err) {
        if (isUniqueViolation(err, 'Domain_verified_once')) {
          throw new PolicyViolation('domain-verified-elsewhere', `${domain} is already verified by another org`);
        }
        throw err;
      }
    },
  };
}

/** A path segment that is not even a domain name cannot name a claimed domain: 404, not 400. */
function normalizeDomainOr404(raw: string): string {
  try {
    return normalizeDomain(raw);
  } catch {
    throw new NotFound('domain', raw);
  }
}

export type DomainService = ReturnType<typeof createDomainService>;
