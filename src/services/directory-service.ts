import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { scimIgnoredAttributeStore } from '../store/scim-ignored-attribute-store.js';
import { scimUserStore } from '../store/scim-user-store.js';
import { accountStore } from '../store/account-store.js';
import { parseEmail } from '../domain/identity.js';
import type { Database } from '../store/database.js';
import { inTransaction, isUniqueViolation, type Tx } from '../store/transaction.js';
import { directoryStore, type DirectoryCredentials, type DirectoryRow, type IdpKind } from '../store/directory-store.js';
import { groupMappingStore, type GroupMappingRow } from '../store/group-mapping-store.js';
import { scimEventStore, type ScimEventEntry } from '../store/scim-event-store.js';
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

/**
 * How long a replica trusts the directory credentials it read (docs/scim.md, "Authentication
 * cache"). A rotation or revocation made through this process takes effect at once (the entry is
 * dropped); one made through another replica takes effect there within this many milliseconds.
 * A token that does not match the cached hashes is always checked against the database, so a
 * new token works everywhere at once.
 */
export const AUTH_CACHE_TTL_MS = 5_000;
/** SCIM request events are written in batches: every EVENT_FLUSH_MS, or at EVENT_BATCH_ROWS rows. */
export const EVENT_FLUSH_MS = 100;
export const EVENT_BATCH_ROWS = 200;

type CachedCredentials = { creds: DirectoryCredentials; at: number };
type PendingEvent = { orgId: string; entry: ScimEventEntry & { createdAt: Date } };

/**
 * Per database (every service instance on one database shares it, so a rotation through one
 * invalidates what another cached): the credentials cache and the event buffer.
 */
type DirectoryState = {
  credentials: Map<string, CachedCredentials>;
  /** Bumped by every invalidation: a read that started before one is not cached. */
  epoch: number;
  events: PendingEvent[];
  timer: NodeJS.Timeout | null;
  flushing: Promise<void>;
  onEventError: ((err: unknown) => void) | null;
};
const states = new WeakMap<Database, DirectoryState>();
function stateOf(db: Database): DirectoryState {
  let s = states.get(db);
  if (!s) states.set(db, (s = { credentials: new Map(), epoch: 0, events: [], timer: null, flushing: Promise.resolve(), onEventError: null }));
  return s;
}

/**
 * Drops cached credentials (and any being read right now, which will not be cached): after a
 * rotation, and after directories are deleted (the retention purge), so that their tokens stop
 * working in this process at once. Other replicas stop trusting them within AUTH_CACHE_TTL_MS.
 */
export function invalidateDirectoryCredentials(db: Database, directoryIds: string[]): void {
  if (!db) return;
  const state = stateOf(db);
  state.epoch++;
  for (const id of directoryIds) state.credentials.delete(id.toLowerCase());
}

/** Writes the buffered events: one multi-row INSERT; if it fails, row by row, so one bad row loses only itself. */
async function flushEvents(db: Database, state: DirectoryState): Promise<void> {
  if (state.timer) clearTimeout(state.timer);
  state.timer = null;
  const batch = state.events.splice(0);
  const run = state.flushing.then(async () => {
    if (!batch.length) return;
    try {
      await scimEventStore.appendMany(db, batch);
    } catch {
      for (const e of batch) {
        try {
          await scimEventStore.appendMany(db, [e]);
        } catch (err) {
          state.onEventError?.(err);
        }
      }
    }
  });
  state.flushing = run;
  return run;
}

const mappingView = (m: GroupMappingRow) => ({
  id: m.id, directoryId: m.directoryId, group: m.groupName, siteId: m.siteId, product: m.product, role: m.role, createdAt: m.createdAt,
});

/** The normalised form of an address, or null when it is not one. */
function normalizedOrNull(raw: string): string | null {
  try {
    return parseEmail(raw).normalized;
  } catch {
    return null;
  }
}

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

  const invalidateCredentials = (id: string) => invalidateDirectoryCredentials(db, [id]);

  async function readCredentials(state: DirectoryState, id: string): Promise<DirectoryCredentials | null> {
    const epoch = state.epoch;
    const at = performance.now();
    const d = await directoryStore.credentials(db.prisma, id);
    if (d && state.epoch === epoch) state.credentials.set(id, { creds: d, at });
    else state.credentials.delete(id);
    if (state.credentials.size > 10_000) for (const k of state.credentials.keys()) { state.credentials.delete(k); if (state.credentials.size <= 5_000) break; }
    return d;
  }

  /** The token's digest against the current and the previous token, always both (constant time). */
  function matches(d: DirectoryCredentials | null, digest: Buffer, now: Date): boolean {
    const current = timingSafeEqual(digest, storedDigest(d?.tokenHash));
    const previous = timingSafeEqual(digest, storedDigest(d?.previousTokenHash));
    if (!d) return false;
    const previousValid = previous && d.previousTokenHash !== null && d.previousTokenExpiresAt !== null && now.getTime() < d.previousTokenExpiresAt.getTime();
    return current || previousValid;
  }

  async function rotate(ctx: RequestContext, id: string, token: { plaintext: string; hash: string }, graceSeconds: number) {
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
      try {
        return await rotate(ctx, id, token, graceSeconds);
      } finally {
        // After the commit (or the failure): this process stops trusting what it cached at once.
        invalidateCredentials(id);
      }
    },

    /**
     * Resolves a SCIM request's directory from its id and bearer token, or null. Constant-time:
     * the token's sha256 is compared with fixed-length digests of both the current and the
     * previous token, and the same comparisons run when the directory does not exist. A
     * directoryId that is not a UUID is refused without a query. Records tokenLastUsedAt at most
     * once a minute. The credentials are cached for AUTH_CACHE_TTL_MS; a token that does not
     * match them is checked against the database again before it is refused.
     */
    async authenticate(directoryId: string, token: string, now: Date): Promise<DirectoryPrincipal | null> {
      if (typeof directoryId !== 'string' || typeof token !== 'string' || !UUID.test(directoryId)) return null;
      const id = directoryId.toLowerCase();
      const digest = sha256(token);
      const state = stateOf(db);
      const cached = state.credentials.get(id);
      const fresh = cached && performance.now() - cached.at < AUTH_CACHE_TTL_MS ? cached.creds : null;
      let d = fresh ?? (await readCredentials(state, id));
      let ok = matches(d, digest, now);
      if (!ok && fresh) {
        // Rotated by another replica since we cached it, perhaps: the database decides.
        d = await readCredentials(state, id);
        ok = matches(d, digest, now);
      }
      if (!d || !ok) return null;
      if (!d.tokenLastUsedAt || now.getTime() - d.tokenLastUsedAt.getTime() >= 60_000) {
        await directoryStore.touch(db.prisma, d.id, now);
        d.tokenLastUsedAt = now;
      }
      return { directoryId: d.id, orgId: d.orgId, idp: d.idp, name: d.name };
    },

    /**
     * Records a SCIM request's redacted event. Buffered: written with other events in one INSERT
     * within EVENT_FLUSH_MS (or at EVENT_BATCH_ROWS), and before any read of the events and at
     * shutdown (flushEvents). onError hears of events that could not be written.
     */
    recordEvent(orgId: string, entry: ScimEventEntry, onError: (err: unknown) => void): void {
      const state = stateOf(db);
      state.onEventError = onError;
      state.events.push({ orgId, entry: { ...entry, createdAt: new Date() } });
      if (state.events.length >= EVENT_BATCH_ROWS) void flushEvents(db, state);
      else if (!state.timer) {
        state.timer = setTimeout(() => void flushEvents(db, state), EVENT_FLUSH_MS);
        state.timer.unref();
      }
    },

    /** Writes every buffered event now (before reading them, and at shutdown). */
    flushEvents(): Promise<void> {
      return db ? flushEvents(db, stateOf(db)) : Promise.resolve();
    },

    /** The SCIM request log of a directory, newest first; failedOnly keeps status >= 400. */
    /** Pushed users the org cannot manage yet, and why (the IdP was told success for each). */
    async syncIssues(ctx: RequestContext, id: string, page: PageRequest) {
      await mustGet(db.prisma, ctx, id);
      const res = await scimUserStore.syncIssues(db.prisma, ctx.orgId, id, page);
      // An email conflict names who holds the address (one query for the page).
      const pending = new Map(res.items.flatMap((i) => i.issue === 'email-conflict' && i.pendingEmail ? [[i.scimUserId, normalizedOrNull(i.pendingEmail)] as const] : []));
      const holders = new Map((await accountStore.byEmails(db.prisma, ctx.orgId, [...pending.values()].filter((e): e is string => e !== null)))
        .map((a) => [a.emailNormalized, a] as const));
      // Attributes the IdP sends that the schema does not know: ignored, named once each (issue 13).
      const ignored = await scimIgnoredAttributeStore.list(db.prisma, ctx.orgId, id);
      return {
        ...res,
        ignoredAttributes: ignored.map((a) => ({
          ...a, issue: 'ignored-attribute' as const,
          detail: `the identity provider sends ${a.resourceType === 'Group' ? 'groups' : 'users'} with the attribute ${a.attribute}, which the SCIM schema does not define: it is ignored (remove the mapping in the IdP, or leave it: nothing fails)`,
        })),
        items: res.items.map((i) => {
          if (i.issue !== 'email-conflict') return i;
          const holder = holders.get(pending.get(i.scimUserId) ?? '');
          return {
            ...i, heldByAccountId: holder?.id ?? null,
            detail: holder
              ? `the identity provider changed the user's address to ${i.pendingEmail}, which account ${holder.id} of the org holds: the user stays linked to its account (${i.email}); ` +
                'change or remove the other account\'s address and this account follows at the next push'
              : `the identity provider changed the user's address to ${i.pendingEmail}, but another SCIM user shares the account (${i.email}), or the address was freed since: ` +
                'the account follows at the next push of the user once it is the only one linked to it',
          };
        }),
      };
    },

    async events(ctx: RequestContext, id: string, page: PageRequest, filter: { failedOnly?: boolean | undefined } = {}) {
      await mustGet(db.prisma, ctx, id);
      // Buffered events first: an admin reads what happened up to now.
      await flushEvents(db, stateOf(db));
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
          // seen below) or waits and then sees this mapping (group-access.ts: mapping lock, then
          // group-access lock, in that order everywhere).
          await directoryStore.lockMappingsExclusive(tx, dir.id);
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
        await directoryStore.lockMappingsExclusive(tx, dir.id);
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
