import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Database } from '../store/database.js';
import { inTransaction } from '../store/transaction.js';
import { orgStore, type AdminKeyRow } from '../store/org-store.js';
import { consoleSessionStore } from '../store/console-session-store.js';
import { policyStore } from '../store/policy-store.js';
import { subscriptionStore } from '../store/subscription-store.js';
import type { PageRequest } from '../store/paging.js';
import { NotFound } from '../domain/errors.js';
import { audit } from './audit.js';
import type { Actor, RequestContext } from './context.js';

/** Admin keys look like `osk_<key id, 32 hex>_<secret, 43 base64url>`; only sha256(secret) is stored. */
const KEY_PATTERN = /^osk_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;

export const DEFAULT_POLICY_NAME = 'Default policy';

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function newAdminKey(): { id: string; secret: string; plaintext: string } {
  const id = randomUUID();
  const secret = randomBytes(32).toString('base64url');
  return { id, secret, plaintext: `osk_${id.replaceAll('-', '')}_${secret}` };
}

function keyIdFromHex(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const keyView = (k: AdminKeyRow) => ({ id: k.id, name: k.name, createdAt: k.createdAt, lastUsedAt: k.lastUsedAt, revokedAt: k.revokedAt });

export function createOrgService(db: Database, opts: { operatorToken: string | undefined }) {
  const operatorDigest = opts.operatorToken ? sha256(opts.operatorToken) : null;

  return {
    /** Constant-time: the comparison is over fixed-length digests, never the raw strings. */
    isOperatorToken(token: string): boolean {
      return operatorDigest !== null && timingSafeEqual(sha256(token), operatorDigest);
    },

    /** Resolves an admin key to its org, or null for anything that is not a live key. */
    async authenticateAdminKey(token: string, now: Date): Promise<{ orgId: string; keyId: string } | null> {
      const m = KEY_PATTERN.exec(token);
      if (!m) return null;
      const id = keyIdFromHex(m[1]!);
      const key = await orgStore.findAdminKey(db.prisma, id);
      // Compare even when the key is unknown, so timing does not reveal which key ids exist.
      const ok = timingSafeEqual(sha256(m[2]!), key ? Buffer.from(key.secretHash, 'hex') : Buffer.alloc(32));
      if (!key || !ok || key.revokedAt) return null;
      // Last-used time is advisory: one write a minute per key at most.
      if (!key.lastUsedAt || now.getTime() - key.lastUsedAt.getTime() > 60_000) {
        await orgStore.touchAdminKey(db.prisma, key.id, now);
      }
      return { orgId: key.orgId, keyId: key.id };
    },

    async createOrg(input: { name: string }, actor: Actor, requestId: string | null, now: Date) {
      const orgId = randomUUID();
      const key = newAdminKey();
      return inTransaction(db, async (tx) => {
        const org = await orgStore.create(tx, orgId, input.name);
        // Every org has exactly one default policy from its first moment (SPEC §3).
        const policy = await policyStore.create(tx, orgId, { name: DEFAULT_POLICY_NAME, isDefault: true });
        await subscriptionStore.create(tx, orgId);
        await orgStore.createAdminKey(tx, orgId, { id: key.id, name: 'initial', secretHash: sha256(key.secret).toString('hex') });
        const ctx: RequestContext = { orgId, actor, requestId, now };
        await audit(tx, ctx, { action: 'org.create', targetType: 'org', targetId: orgId, after: { name: org.name, defaultPolicyId: policy.id } });
        return { id: org.id, name: org.name, createdAt: org.createdAt, defaultPolicyId: policy.id, adminKey: key.plaintext };
      });
    },

    async getOrg(orgId: string) {
      const org = await orgStore.get(db.prisma, orgId);
      if (!org) throw new NotFound('org', orgId);
      return org;
    },

    async orgExists(orgId: string): Promise<boolean> {
      return (await orgStore.get(db.prisma, orgId)) !== null;
    },

    listOrgs(page: PageRequest) {
      return orgStore.list(db.prisma, page);
    },

    async createAdminKey(ctx: RequestContext, input: { name: string }) {
      const key = newAdminKey();
      return inTransaction(db, async (tx) => {
        const row = await orgStore.createAdminKey(tx, ctx.orgId, { id: key.id, name: input.name, secretHash: sha256(key.secret).toString('hex') });
        await audit(tx, ctx, { action: 'admin-key.create', targetType: 'admin-key', targetId: row.id, after: { name: row.name } });
        return { ...keyView(row), key: key.plaintext };
      });
    },

    async listAdminKeys(ctx: RequestContext) {
      return (await orgStore.listAdminKeys(db.prisma, ctx.orgId)).map(keyView);
    },

    /** Revokes the key and, in the same transaction, every console session opened with it. */
    async revokeAdminKey(ctx: RequestContext, keyId: string) {
      return inTransaction(db, async (tx) => {
        const row = await orgStore.revokeAdminKey(tx, ctx.orgId, keyId, ctx.now);
        if (!row) throw new NotFound('admin key', keyId);
        const consoleSessionsEnded = await consoleSessionStore.revokeForKey(tx, ctx.orgId, keyId, ctx.now);
        await audit(tx, ctx, {
          action: 'admin-key.revoke', targetType: 'admin-key', targetId: keyId, before: { revokedAt: null }, after: { revokedAt: row.revokedAt, consoleSessionsEnded },
        });
        return keyView(row);
      });
    },
  };
}

export type OrgService = ReturnType<typeof createOrgService>;
