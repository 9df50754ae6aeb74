import SCIMMY from 'scimmy';
import type { MemberChange } from '../services/scim-group-service.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A group PatchOp (already through dialect.normalisePatch) split into what the service applies as
 * membership rows and what scimmy applies to the group's other attributes.
 */
export type GroupPatchPlan = { members: MemberChange[]; attributes: Obj[] };

/** `members[value eq "<id>"]`, as Okta sends it and normalisePatch writes Entra's removes. */
const MEMBER_FILTER = /^members\[\s*value\s+eq\s+"([^"\\]*)"\s*\]$/i;
/** Any path that reaches into members (with a filter, a sub-attribute or the schema URN). */
const MEMBERS_PATH = /(^|:)members(\[|\.|$)/i;
const MEMBER_KEYS = new Set(['value', 'display', 'type', '$ref']);

/** The entries of an add/replace of `members`, or null when one is not a plain `{value: "<id>", display?}`. */
function entries(value: unknown): { id: string; display: string | null }[] | null {
  const list = Array.isArray(value) ? value : [value];
  const out: { id: string; display: string | null }[] = [];
  for (const e of list) {
    if (!isObj(e) || typeof e.value !== 'string' || e.value === '') return null;
    if (Object.keys(e).some((k) => !MEMBER_KEYS.has(k))) return null;
    if (e.display !== undefined && typeof e.display !== 'string') return null;
    // RFC 7643 §4.2: members may be Users or Groups; a value that names no user is skipped either way.
    if (e.type !== undefined && typeof e.type !== 'string') return null;
    out.push({ id: e.value, display: typeof e.display === 'string' && e.display.trim() !== '' ? e.display : null });
  }
  return out;
}

/**
 * Splits a normalised group PatchOp. The message itself is validated as scimmy does (400 with
 * its scimType). Member operations of the shapes identity providers send — add or replace of
 * `members` with `{value}` entries, remove of `members` (all of them) or of `members[value eq "…"]` —
 * become MemberChange rows; operations on other attributes go to scimmy. Anything else touching
 * members (a filter of another shape, a sub-attribute, entries scimmy would have to judge) makes
 * the plan null: the caller then applies the whole PatchOp to the full group, under its lock.
 */
export function planGroupPatch(body: unknown): GroupPatchPlan | null {
  new SCIMMY.Messages.PatchOp(body as never); // throws SCIMMY.Types.Error (400) for a malformed message
  const ops = (body as { Operations: unknown[] }).Operations;
  const plan: GroupPatchPlan = { members: [], attributes: [] };
  for (const raw of ops) {
    if (!isObj(raw) || typeof raw.op !== 'string') return null;
    const op = raw.op.toLowerCase();
    const path = typeof raw.path === 'string' ? raw.path.trim() : raw.path;
    if (typeof path !== 'string' || !MEMBERS_PATH.test(path)) {
      // Not about members (a path-less add/replace was split per attribute by normalisePatch).
      if (op !== 'remove' && path === undefined && isObj(raw.value) && Object.keys(raw.value).some((k) => /members/i.test(k))) return null;
      plan.attributes.push(raw);
      continue;
    }
    if (path === 'members') {
      if (op === 'remove') {
        if ('value' in raw) return null; // a remove by value normalisePatch could not turn into filters
        plan.members.push({ op: 'replace', members: [] });
        continue;
      }
      const members = entries(raw.value);
      if (!members) return null;
      plan.members.push({ op: op === 'replace' ? 'replace' : 'add', members });
      continue;
    }
    const m = MEMBER_FILTER.exec(path);
    if (m && op === 'remove' && !('value' in raw)) {
      plan.members.push({ op: 'remove', ids: [m[1]!] });
      continue;
    }
    return null;
  }
  return plan;
}
