import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { scimUserStore } from '../store/scim-user-store.js';
import type { Database } from '../store/database.js';
import { inTransaction, isUniqueViolation, type Tx } from '../store/transaction.js';
import { directoryStore, type DirectoryRow, type IdpKind } from '../store/directory-store.js';
import { groupMappingStore, type GroupMappingRow } from '../store/group-mapping-store.js';
import { scimEventStore } from '../store/scim-event-store.js';
import { siteStore } from '../store/site-store.js';
import type { PageRequest } from '../store/paging.js';
import { Conflict, InvalidInput, NotFound } from '../domain/errors.js';
import type { AccessRole, Product } from '../domain/types.js';
import { audit } from './audit.js';
import { syncBillability } from './billability-sync.js';
import type { RequestContext } from './context.js';
import { applyGroupAccess, normalizeGroupName } from './group-access.js';
import { accessRoleFor } from './site-service.js';

export type { IdpKind } from '../store/directory-store.js';

/** A SCIM request's directory, once its bearer token has been checked. */
export type DirectoryPrincipal = { directoryId: string; orgId: string; idp: IdpKind; name: string };

export type DirectoryServiceOptions = { tokenGraceSeconds: number; publicUrl: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ZERO_DIGEST = Buffer.alloc(32);

/** Directory (SCIM) tokens look like `osd_<43 base64url>` (32 random bytes); only sha256(token) is stored. */
function newToken(): { plaintext: string; hash: string } {
  const plaintext = `osd_${randomBytes(32).toString('base64url')}`;
  return { plaintext, hash: sha256(plaintext).toString('hex') };
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** A stored hex digest as bytes; anything malformed compares as a digest no token has. */
function storedDigest(hex: string | null | undefined): Buffer {
  if (!hex || !/^[0-9a-f]{64}$/.test(hex)) return ZERO_DIGEST;
  return Buffer.from(hex, 'hex');
}

const mappingView = (m: GroupMappingRow) => ({
  id: m.id, directoryId: m.directoryId, group: m.groupName, siteId: m.siteId, product: m.product, role: m.role, createdAt: m.createdAt,
});

export function createDirectoryService(db: Database, opts: DirectoryServiceOptions) {
  const baseUrl = opts.publicUrl.replace(/\/+$/, '');
  const scimBaseUrl = (id: string) => `${baseUrl}/scim/v2/${id}`;

  const view = (d: DirectoryRow) => ({
    id: d.id, name: d.name, idp: d.idp, scimBaseUrl: scimBaseUrl(d.id),
    tokenIssuedAt: d.tokenIssuedAt, previousTokenExpiresAt: d.previousTokenExpiresAt, tokenLastUsedAt: d.tokenLastUsedAt,
    userCount: d.userCount, groupCount: d.groupCount, createdAt: d.createdAt,
  });

  async function mustGet(tx: Tx, ctx: RequestContext, id: string): Promise<DirectoryRow> {
    const d = await directoryStore.get(tx, ctx.orgId, id);
    if (!d) throw new NotFound('directory', id);
    return d;
  }

  return {
    /** Creates a SCIM directory; its token is in this answer only. */
    async create(ctx: RequestContext, input: { name: string; idp: IdpKind }) {
      const id = randomUUID();
      const token = newToken();
      try {
        return await inTransaction(db, async (tx) => {
          const d = await directoryStore.create(tx, ctx.orgId, { id, name: input.name, idp: input.idp, tokenHash: token.hash, tokenIssuedAt: ctx.now });
          await audit(tx, ctx, { action: 'directory.create', targetType: 'directory', targetId: d.id, after: { name: d.name, idp: d.idp } });
          return { id: d.id, name: d.name, idp: d.idp, scimBaseUrl: scimBaseUrl(d.id), token: token.plaintext, tokenIssuedAt: d.tokenIssuedAt, createdAt: d.createdAt };
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw new Conflict('directory-name-taken', `a directory named "${input.name}" already exists in this org`);
        throw err;
      }
    },

    async list(ctx: RequestContext, page: PageRequest = { limit: 50 }) {
      const res = await directoryStore.list(db.prisma, ctx.orgId, page);
      return { items: res.items.map(view), next: res.next };
    },

    async get(ctx: RequestContext, id: string) {
      return view(await mustGet(db.prisma, ctx, id));
    },

    /**
     * Issues a new token. The old one keeps working for graceSeconds (default: the configured
     * grace), so the IdP can be switched over without failed pushes; 0 revokes it at once. Only
     * one previous token is kept: rotating again ends the grace of the one before.
     */
    async rotateToken(ctx: RequestContext, id: string, input: { graceSeconds?: number | undefined } = {}) {
      const graceSeconds = input.graceSeconds ?? opts.tokenGraceSeconds;
      if (!Number.isInteger(graceSeconds) || graceSeconds < 0) {
        throw new InvalidInput('invalid grace period', [{ path: 'graceSeconds', message: 'must be a whole number of seconds, 0 or more' }]);
      }
      const token = newToken();
      return inTransaction(db, async (tx) => {
        const before = await directoryStore.lockCredentials(tx, ctx.orgId, id);
        if (!before) throw new NotFound('directory', id);
        const previousTokenExpiresAt = new Date(ctx.now.getTime() + graceSeconds * 1000);
        await directoryStore.setTokens(tx, ctx.orgId, before.id, {
          tokenHash: token.hash, tokenIssuedAt: ctx.now,
          // Grace 0: the old token is gone now; its expiry records when it stopped working.
          previousTokenHash: graceSeconds > 0 ? before.tokenHash : null,
          previousTokenExpiresAt,
        });
        await audit(tx, ctx, {
          action: 'directory.token.rotate', targetType: 'directory', targetId: before.id,
          before: { previousTokenExpiresAt: before.previousTokenExpiresAt },
          after: { tokenIssuedAt: ctx.now, previousTokenExpiresAt, graceSeconds },
        });
        return { token: token.plaintext, tokenIssuedAt: ctx.now, previousTokenExpiresAt };
      });
    },

    /**
     * Resolves a SCIM request's directory from its id and bearer token, or null. Constant-time:
     * the token's sha256 is compared with fixed-length digests of both the current and the
     * previous token, and the same comparisons run when the directory does not exist. A
     * directoryId that is not a UUID is refused without a query. Records tokenLastUsedAt at most
     * once a minute.
     */
    async authenticate(directoryId: string, token: string, now: Date): Promise<DirectoryPrincipal | null> {
      if (typeof directoryId !== 'string' || typeof token !== 'string' || !UUID.test(directoryId)) return null;
      const digest = sha256(token);
      const d = await directoryStore.credentials(db.prisma, directoryId.toLowerCase());
      const current = timingSafeEqual(digest, storedDigest(d?.tokenHash));
      const previous = timingSafeEqual(digest, storedDigest(d?.previousTokenHash));
      if (!d) return null;
      const previousValid = previous && d.previousTokenHash !== null && d.previousTokenExpiresAt !== null && now.getTime() < d.previousTokenExpiresAt.getTime();
      if (!current && !previousValid) return null;
      if (!d.tokenLastUsedAt || now.getTime() - d.tokenLastUsedAt.getTime() >= 60_000) await directoryStore.touch(db.prisma, d.id, now);
      return { directoryId: d.id, orgId: d.orgId, idp: d.idp, name: d.name };
    },

    /** The SCIM request log of a directory, newest first; failedOnly keeps status >= 400. */
    /** Pushed users the org cannot manage yet, and why (the IdP was told success for each). */
    async syncIssues(ctx: RequestContext, id: string, page: PageRequest) {
      await mustGet(db.prisma, ctx, id);
      return scimUserStore.syncIssues(db.prisma, ctx.orgId, id, page);
    },

    async events(ctx: RequestContext, id: string, page: PageRequest, filter: { failedOnly?: boolean | undefined } = {}) {
      await mustGet(db.prisma, ctx, id);
      const res = await scimEventStore.list(db.prisma, ctx.orgId, id, page, { failedOnly: filter.failedOnly });
      return {
        items: res.items.map((e) => ({
          id: e.id, at: e.createdAt, method: e.method, path: e.path, status: e.status, scimType: e.scimType, detail: e.detail,
          resourceId: e.resourceId, durationMs: e.durationMs, requestId: e.requestId,
        })),
        next: res.next,
      };
    },

    /**
     * Maps a SCIM group (by displayName, ignoring case) to product access on a site, and grants
     * it at once to the group's current live members, in the same transaction.
     */
    async createMapping(ctx: RequestContext, directoryId: string, input: { group: string; siteId: string; product: Product; role?: AccessRole | undefined }) {
      const role = accessRoleFor(input.product, input.role);
      const groupName = normalizeGroupName(input.group);
      try {
        return await inTransaction(db, async (tx) => {
          const dir = await mustGet(tx, ctx, directoryId);
          const site = await siteStore.get(tx, ctx.orgId, input.siteId);
          if (!site) throw new InvalidInput('unknown site', [{ path: 'siteId', message: `no site ${input.siteId} in this org` }]);
          if (!site.products.includes(input.product)) {
            throw new Conflict('product-not-on-site', `site "${site.name}" does not host ${input.product}; it hosts ${site.products.join(', ') || 'no products'}`);
          }
          // Before the mapping exists: a membership sync running now either commits first (and is
          // seen below) or waits and then sees this mapping.
          await directoryStore.lockGroupAccess(tx, dir.id);
          const m = await groupMappingStore.create(tx, ctx.orgId, { directoryId: dir.id, groupName, siteId: site.id, product: input.product, role });
          const members = await groupMappingStore.memberIdsOfGroupName(tx, ctx.orgId, dir.id, groupName);
          const change = await applyGroupAccess(tx, ctx, dir.id, members, 'group-mapping-created');
          await audit(tx, ctx, {
            action: 'directory.group-mapping.create', targetType: 'directory', targetId: dir.id,
            after: { ...mappingView(m), accessGranted: change.granted, accessRevoked: change.revoked, billableDeltas: change.deltas.length },
          });
          return mappingView(m);
        });
      } catch (err) {
        if (isUniqueViolation(err)) {
          throw new Conflict('group-mapping-exists', `group "${input.group}" is already mapped to ${input.product} on site ${input.siteId} in this directory`);
        }
        throw err;
      }
    },

    async listMappings(ctx: RequestContext, directoryId: string, page: PageRequest = { limit: 50 }) {
      await mustGet(db.prisma, ctx, directoryId);
      const res = await groupMappingStore.list(db.prisma, ctx.orgId, directoryId, page);
      return { items: res.items.map(mappingView), next: res.next };
    },

    /** Deletes a mapping and revokes, in the same transaction, every access it granted. */
    async deleteMapping(ctx: RequestContext, directoryId: string, mappingId: string) {
      return inTransaction(db, async (tx) => {
        const dir = await mustGet(tx, ctx, directoryId);
        await directoryStore.lockGroupAccess(tx, dir.id);
        const m = await groupMappingStore.get(tx, ctx.orgId, dir.id, mappingId);
        if (!m) throw new NotFound('group mapping', mappingId);
        const revoked = await groupMappingStore.revokeAllOf(tx, ctx.orgId, m.id);
        await groupMappingStore.delete(tx, ctx.orgId, m.id);
        const deltas = await syncBillability(tx, ctx, revoked.accountIds, 'group-mapping-deleted');
        await audit(tx, ctx, {
          action: 'directory.group-mapping.delete', targetType: 'directory', targetId: dir.id,
          before: mappingView(m), after: { accessRevoked: revoked.rows, billableDeltas: deltas.length },
        });
      });
    },
  };
}

export type DirectoryService = ReturnType<typeof createDirectoryService>;
