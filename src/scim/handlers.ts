import SCIMMY from 'scimmy';
import { InvalidFilter, InvalidInput, PreconditionFailed } from '../domain/errors.js';
import type { DirectoryContext, ScimUserService } from '../services/scim-user-service.js';
import type { ScimGroupService } from '../services/scim-group-service.js';
import { compileFilter, compileSort, type ScimKind, type ScimWhere } from './filter.js';
import { normalisePatch, normaliseResource } from './dialect.js';
import { coercedUserInput, etag, groupInput, parseIfMatch, renderGroup, renderUser, userInput } from './resources.js';
import { applyPatchOperations, withoutUnknownOperations } from './patch-engine.js';
import { unknownAttributes } from './unknown-attributes.js';
import type { IgnoredAttributes } from '../services/scim-ignored-attributes.js';
import { planGroupPatch } from './group-patch.js';
import { PATCH_OP } from './dialect-schema.js';
import { boundPatchPaths } from './patch-path.js';
import { applyPatch } from './scimmy-patch.js';
import { attributesOf, listQuery, listResponse, type AttributeSpec } from './query.js';

/** The outcome of a SCIM call, independent of express (an HTTP-free request object, like polis). */
export type ScimResult = { status: number; body?: unknown; headers?: Record<string, string>; resourceId?: string; note?: string };
export type ScimRequest = {
  ctx: DirectoryContext; base: string; query: Record<string, unknown>; body: unknown; ifMatch: string | undefined; id?: string;
  /** RFC 7644 §3.5.2 lets PATCH answer 204 without a body; see router.ts for who gets it. */
  patchNoContent: boolean;
};

/** 200 with the resource, or 204 (with the ETag still set) when the client prefers it. */
function patched(r: ScimRequest, status200: ScimResult): ScimResult {
  return r.patchNoContent ? { ...status200, status: 204, body: undefined } : status200;
}
const skippedNote = (skipped: string[]) => (skipped.length ? { note: `skipped ${skipped.length} member id(s) that name no user: ${skipped.slice(0, 5).join(', ')}` } : {});

const withoutMembers = ({ members: _members, ...attributes }: ReturnType<typeof groupInput>) => attributes;

function expectedVersion(ifMatch: string | undefined, current?: number): number | null {
  const v = parseIfMatch(ifMatch);
  if (v === 'mismatch' || (typeof v === 'number' && current !== undefined && v !== current)) {
    throw new PreconditionFailed(`If-Match ${ifMatch} does not match the current version ${current !== undefined ? etag(current) : ''}`.trim());
  }
  return v;
}

export function userHandlers(users: ScimUserService, ignoredAttributes: IgnoredAttributes) {
  return {
    async list(r: ScimRequest): Promise<ScimResult> {
      const q = listQuery(r.query, 'User');
      const where = q.filter !== undefined ? compileFilterOrEmpty('User', q.filter) : {};
      const { total, rows } = await users.list(r.ctx, where, compileSort('User', q.sortBy, q.sortOrder), q.startIndex - 1, q.count);
      return { status: 200, body: listResponse(total, q.startIndex, rows.map((u) => renderUser(u, r.base, q.attributes.projection))) };
    },
    async get(r: ScimRequest): Promise<ScimResult> {
      const u = await users.get(r.ctx, r.id!);
      return { status: 200, body: renderUser(u, r.base, attributesOf(r.query, 'User').projection), headers: { ETag: etag(u.version) }, resourceId: u.id };
    },
    async create(r: ScimRequest): Promise<ScimResult> {
      const body = normaliseResource('User', r.body);
      const { user } = await users.create(r.ctx, userInput(body));
      await ignoredAttributes.note(r.ctx, 'User', unknownAttributes('User', body));
      return { status: 201, body: renderUser(user, r.base, attributesOf(r.query, 'User').projection), headers: { ETag: etag(user.version), Location: `${r.base}/Users/${user.id}` }, resourceId: user.id };
    },
    async replace(r: ScimRequest): Promise<ScimResult> {
      const body = normaliseResource('User', r.body);
      const input = userInput(body);
      // If-Match is compared with the version the write reads (one statement less than reading first).
      const u = await users.replace(r.ctx, r.id!, input, expectedVersion(r.ifMatch));
      await ignoredAttributes.note(r.ctx, 'User', unknownAttributes('User', body));
      return { status: 200, body: renderUser(u, r.base, attributesOf(r.query, 'User').projection), headers: { ETag: etag(u.version) }, resourceId: u.id };
    },
    async patch(r: ScimRequest): Promise<ScimResult> {
      // 400 invalidPath / invalidFilter / invalidValue before any database work: every user operation goes to scimmy.
      boundPatchPaths(r.body, { forScimmy: true });
      let ignored: string[] = [];
      // Applied to the user as the write's transaction reads it; a concurrent write between that
      // read and the UPDATE makes the transaction run again on the new state (never a 412 without If-Match).
      const u = await users.patch(r.ctx, r.id!, async (current) => {
        expectedVersion(r.ifMatch, current.version);
        // Our own applier on the stored resource (patch-engine.ts); scimmy for the shapes it leaves.
        const stored = current.resource as Record<string, unknown>;
        const normalised = normalisePatch('User', r.body, stored) as { Operations?: unknown };
        const outcome = applyPatchOperations('User', stored, normalised.Operations);
        if (outcome.kind !== 'bail') {
          if (outcome.ignored.length) ignored = outcome.ignored;
          if (outcome.kind === 'unchanged') return null;
          const input = coercedUserInput(outcome.resource);
          if (input) return input;
        }
        const full = renderUser(current, r.base);
        const result = await applyPatch(full, normalisePatch('User', r.body, full), SCIMMY.Schemas.User);
        return result ? userInput(result) : null;
      });
      await ignoredAttributes.note(r.ctx, 'User', ignored);
      return patched(r, { status: 200, body: renderUser(u, r.base, attributesOf(r.query, 'User').projection), headers: { ETag: etag(u.version) }, resourceId: u.id });
    },
    async delete(r: ScimRequest): Promise<ScimResult> {
      await users.delete(r.ctx, r.id!);
      return { status: 204, resourceId: r.id! };
    },
  };
}

/**
 * A group PATCH whose member operations are of no shape planGroupPatch turns into rows is applied
 * by scimmy to the whole group; with 1000 members that kept the event loop 210 ms (issue 12 §2).
 */
export const WHOLE_GROUP_PATCH_MAX_MEMBERS = 100;

export function groupHandlers(groups: ScimGroupService, ignoredAttributes: IgnoredAttributes) {
  async function render(r: ScimRequest, rows: Awaited<ReturnType<ScimGroupService['get']>>[], attributes: AttributeSpec | undefined) {
    // Members are loaded only when they will be shown (Entra reads groups with excludedAttributes=members).
    const wantMembers = !attributes || attributes.wants('members');
    const members = wantMembers ? await groups.membersOf(rows.map((g) => g.id)) : new Map<string, { userId: string; display: string | null }[]>();
    const names = wantMembers ? await groups.memberNames([...new Set([...members.values()].flat().map((m) => m.userId))]) : new Map<string, string | null>();
    // display: what the IdP called the member, else the user's own displayName.
    return rows.map((g) => renderGroup(g, wantMembers ? (members.get(g.id) ?? []).map((m) => ({ value: m.userId, display: m.display ?? names.get(m.userId) ?? null })) : null, r.base, attributes?.projection));
  }
  return {
    async list(r: ScimRequest): Promise<ScimResult> {
      const q = listQuery(r.query, 'Group');
      const where = q.filter !== undefined ? compileFilterOrEmpty('Group', q.filter) : {};
      const { total, rows } = await groups.list(r.ctx, where, compileSort('Group', q.sortBy, q.sortOrder), q.startIndex - 1, q.count);
      return { status: 200, body: listResponse(total, q.startIndex, await render(r, rows, q.attributes)) };
    },
    async get(r: ScimRequest): Promise<ScimResult> {
      const g = await groups.get(r.ctx, r.id!);
      const [body] = await render(r, [g], attributesOf(r.query, 'Group'));
      return { status: 200, body, headers: { ETag: etag(g.version) }, resourceId: g.id };
    },
    async create(r: ScimRequest): Promise<ScimResult> {
      const sent = normaliseResource('Group', r.body);
      const { group: g, skipped } = await groups.create(r.ctx, groupInput(sent));
      await ignoredAttributes.note(r.ctx, 'Group', unknownAttributes('Group', sent));
      const [body] = await render(r, [g], attributesOf(r.query, 'Group'));
      return { status: 201, body, headers: { ETag: etag(g.version), Location: `${r.base}/Groups/${g.id}` }, resourceId: g.id, ...skippedNote(skipped) };
    },
    async replace(r: ScimRequest): Promise<ScimResult> {
      const sent = normaliseResource('Group', r.body);
      const input = groupInput(sent);
      const { members, ...attributes } = input;
      // If-Match is compared with the version the write locks; without one, concurrent PUTs queue.
      const { group: g, skipped } = await groups.write(r.ctx, r.id!, expectedVersion(r.ifMatch), async () => ({ attributes, members: [{ op: 'replace', members }] }));
      await ignoredAttributes.note(r.ctx, 'Group', unknownAttributes('Group', sent));
      const [body] = await render(r, [g], attributesOf(r.query, 'Group'));
      return { status: 200, body, headers: { ETag: etag(g.version) }, resourceId: g.id, ...skippedNote(skipped) };
    },
    async patch(r: ScimRequest): Promise<ScimResult> {
      // 400 invalidPath / invalidFilter before any database work; member operations of the usual
      // shapes become rows, so the bound on what scimmy applies is checked on the rest (applyPatch).
      boundPatchPaths(r.body);
      // Membership changes are row operations (Entra and Okta send them without If-Match, several at
      // once: they all apply); the other attributes are patched by scimmy on the locked group.
      const version = expectedVersion(r.ifMatch);
      const known = withoutUnknownOperations('Group', normalisePatch('Group', r.body));
      const plan = planGroupPatch(known.body);
      const out = await groups.write(r.ctx, r.id!, version, async (current, members) => {
        if (plan) {
          if (!plan.attributes.length) return plan.members.length ? { attributes: null, members: plan.members } : null;
          const result = await applyPatch(renderGroup(current, null, r.base), { schemas: [PATCH_OP], Operations: plan.attributes }, SCIMMY.Schemas.Group);
          const attributes = result ? withoutMembers(groupInput(result)) : null;
          return attributes || plan.members.length ? { attributes, members: plan.members } : null;
        }
        // An operation on members of another shape: the whole PatchOp on the full group.
        const currentMembers = await members();
        if (currentMembers.length > WHOLE_GROUP_PATCH_MAX_MEMBERS) {
          const message = `this PATCH touches members in a shape applied to the whole group through scimmy (about 0.2 ms per member), done for groups of at most ${WHOLE_GROUP_PATCH_MAX_MEMBERS} members; this group has ${currentMembers.length}. Use add or replace of "members" with {"value": id} entries, or remove with the path members[value eq "id"]`;
          throw new InvalidInput(message, [{ path: 'Operations', message }]);
        }
        const full = renderGroup(current, currentMembers.map((m) => ({ value: m.userId, display: m.display })), r.base);
        const result = await applyPatch(full, withoutUnknownOperations('Group', normalisePatch('Group', r.body, full)).body, SCIMMY.Schemas.Group);
        if (!result) return null;
        const { members: list, ...attributes } = groupInput(result);
        return { attributes, members: [{ op: 'replace', members: list }] };
      });
      await ignoredAttributes.note(r.ctx, 'Group', known.ignored);
      const g = out.group;
      // Entra PATCHes large groups: don't render the member list nobody will read.
      const [body] = r.patchNoContent ? [undefined] : await render(r, [g], attributesOf(r.query, 'Group'));
      return patched(r, { status: 200, body, headers: { ETag: etag(g.version) }, resourceId: g.id, ...skippedNote(out.skipped) });
    },
    async delete(r: ScimRequest): Promise<ScimResult> {
      await groups.delete(r.ctx, r.id!);
      return { status: 204, resourceId: r.id! };
    },
  };
}

function compileFilterOrEmpty<K extends ScimKind>(kind: K, filter: string): ScimWhere<K> {
  if (!filter.trim()) throw new InvalidFilter('the filter is empty');
  return compileFilter(kind, filter) as ScimWhere<K>;
}
