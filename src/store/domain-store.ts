import type { Tx } from './transaction.js';

export type DomainRow = {
  id: string; orgId: string; domain: string; verificationToken: string; verified: boolean;
  verifiedAt: Date | null; verifiedBy: string | null; createdAt: Date;
};

export const domainStore = {
  async create(tx: Tx, orgId: string, domain: string, verificationToken: string): Promise<DomainRow> {
    return tx.domain.create({ data: { orgId, domain, verificationToken } });
  },
  async get(tx: Tx, orgId: string, domain: string): Promise<DomainRow | null> {
    return tx.domain.findUnique({ where: { orgId_domain: { orgId, domain } } });
  },
  async list(tx: Tx, orgId: string): Promise<DomainRow[]> {
    return tx.domain.findMany({ where: { orgId }, orderBy: [{ domain: 'asc' }] });
  },
  async isVerified(tx: Tx, orgId: string, domain: string): Promise<boolean> {
    return (await tx.domain.count({ where: { orgId, domain, verified: true } })) > 0;
  },
  async verifiedByAnotherOrg(tx: Tx, orgId: string, domain: string): Promise<boolean> {
    return (await tx.domain.count({ where: { domain, verified: true, orgId: { not: orgId } } })) > 0;
  },
  /** Serialises verification of one domain name across orgs (the check below is cross-tenant). */
  async lockDomainName(tx: Tx, domain: string): Promise<void> {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${'domain:' + domain}))`;
  },
  async markVerified(tx: Tx, orgId: string, domain: string, at: Date, by: string): Promise<DomainRow> {
    return tx.domain.update({ where: { orgId_domain: { orgId, domain } }, data: { verified: true, verifiedAt: at, verifiedBy: by } });
  },
};
