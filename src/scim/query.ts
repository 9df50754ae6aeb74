import { FILTER_LIMITS, parseAttributeList } from './filter.js';
import { projectionOf, type Projection } from './attribute-projection.js';
import type { ScimKind } from './dialect-schema.js';

/**
 * startIndex/count parsed by us (RFC 7644 §3.4.2.4): scimmy-routers' cast is lost under
 * express 5, which re-parses req.query on every read (STYLE.md). Clamped, never ignored.
 */
export function paging(q: Record<string, unknown>): { startIndex: number; count: number } {
  const int = (v: unknown) => (typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number.parseInt(v, 10) : typeof v === 'number' ? Math.trunc(v) : NaN);
  const s = int(q.startIndex);
  const c = int(q.count);
  return {
    startIndex: Number.isNaN(s) || s < 1 ? 1 : s,
    count: Number.isNaN(c) ? DEFAULT_COUNT : Math.min(Math.max(c, 0), FILTER_LIMITS.maxResults),
  };
}
export const DEFAULT_COUNT = 100;

const LISTS = new Set(['attributes', 'excludedattributes']);

/**
 * Query parameter names are case-insensitive in practice (Entra sends `excludedattributes`).
 * A repeated parameter counts once, except attributes / excludedAttributes: a POST /.search body
 * gives them as JSON arrays (RFC 7644 §3.4.3), a query string may repeat them; both are joined.
 */
export function lowerKeys(q: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(q)) {
    if (k === '__proto__') continue;
    const key = k.toLowerCase();
    out[key] = !Array.isArray(v) ? v : LISTS.has(key) && v.every((x) => typeof x === 'string') ? v.join(',') : v[0];
  }
  return out;
}

export type AttributeSpec = { projection: Projection | undefined; wants(attribute: string): boolean };
export type ListQuery = { filter?: string; sortBy?: string; sortOrder?: string; startIndex: number; count: number; attributes: AttributeSpec };

export function listQuery(raw: Record<string, unknown>, kind: ScimKind): ListQuery {
  const q = lowerKeys(raw);
  const { startIndex, count } = paging({ startIndex: q.startindex, count: q.count });
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return {
    ...(str(q.filter) !== undefined ? { filter: str(q.filter)! } : {}),
    ...(str(q.sortby) ? { sortBy: str(q.sortby)! } : {}),
    ...(str(q.sortorder) ? { sortOrder: str(q.sortorder)! } : {}),
    startIndex, count,
    attributes: attributesOf(q, kind),
  };
}

/** attributes / excludedAttributes (RFC 7644 §3.4.2.5), and whether a top-level attribute will be shown. */
export function attributesOf(raw: Record<string, unknown>, kind: ScimKind): AttributeSpec {
  const q = lowerKeys(raw);
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  // Microsoft's collection sends value filters in attributes (`emails[type eq "work"]`); RFC 7644
  // §3.4.2.5 takes attribute names, so the filter part is dropped and the attribute returned whole.
  const bare = (v: string | undefined) => v?.replace(/\[[^\]]*\]/g, '');
  const include = parseAttributeList(bare(str(q.attributes)));
  const exclude = parseAttributeList(bare(str(q.excludedattributes)));
  const top = (a: string) => a.replace(/^urn:ietf:params:scim:schemas:core:2\.0:(User|Group):/i, '').split(/[.[]/)[0]!.toLowerCase();
  return {
    projection: projectionOf(kind, include, exclude),
    wants: (attribute) => {
      const a = attribute.toLowerCase();
      if (include.length) return include.some((x) => top(x) === a);
      return !exclude.some((x) => top(x) === a && !x.includes('.'));
    },
  };
}

export const LIST_RESPONSE = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export function listResponse(total: number, startIndex: number, resources: unknown[]) {
  return { schemas: [LIST_RESPONSE], totalResults: total, startIndex, itemsPerPage: resources.length, Resources: resources };
}
