import { catalog, type ScimKind } from './dialect-schema.js';

/**
 * `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5) applied to a rendered resource.
 *
 * scimmy's egress filter dropped `schemas` (RFC 7643 §3: REQUIRED in every representation; issue 13,
 * defect 1) and threw on sub-attributes (`name.givenName`), extension URNs and `meta.lastModified`.
 * This works on the JSON the serializer produced, so it is also faster:
 * - `schemas` and `id` (returned "always", RFC 7643 §3.1) are always there;
 * - `name.givenName` keeps that sub-attribute of a complex value, `emails.value` of each entry;
 * - `urn:…:core:2.0:User:userName` is `userName`; an extension URN names the whole extension,
 *   `urn:…:enterprise:2.0:User:manager.value` one of its attributes;
 * - names are case-insensitive (RFC 7643 §2.1); names the schema does not have select nothing.
 */
export type AttributeRef = { schema: string | null; attr: string | null; sub: string | null };
export type Projection = { mode: 'include' | 'exclude'; refs: AttributeRef[] };
type Obj = Record<string, unknown>;

const ALWAYS = new Set(['schemas', 'id']);

/** Resolves the (validated) paths of parseAttributeList against the kind's schemas. */
export function projectionOf(kind: ScimKind, include: string[], exclude: string[]): Projection | undefined {
  const paths = include.length ? include : exclude;
  if (!paths.length) return undefined;
  return { mode: include.length ? 'include' : 'exclude', refs: paths.map((p) => attributeRef(kind, p)) };
}

function attributeRef(kind: ScimKind, path: string): AttributeRef {
  const cat = catalog(kind);
  const lower = path.toLowerCase();
  let schema: string | null = null;
  let rest = path;
  for (const s of [cat.core, ...cat.extensions]) {
    const id = s.id.toLowerCase();
    if (lower === id) return { schema: s.core ? null : s.id, attr: null, sub: null };
    if (lower.startsWith(`${id}:`)) {
      schema = s.core ? null : s.id;
      rest = path.slice(id.length + 1);
      break;
    }
  }
  const [attr, sub] = rest.split('.', 2) as [string, string | undefined];
  return { schema, attr: attr.toLowerCase(), sub: sub?.toLowerCase() ?? null };
}

const plain = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const keyOf = (o: Obj, lower: string) => Object.keys(o).find((k) => k.toLowerCase() === lower);

/** The subset of `value` a list of sub-attribute names selects (undefined: nothing left). */
function pickSubs(value: unknown, subs: Set<string> | 'all'): unknown {
  if (subs === 'all') return value;
  const one = (v: unknown) => {
    if (!plain(v)) return undefined;
    const out: Obj = {};
    for (const [k, x] of Object.entries(v)) if (subs.has(k.toLowerCase())) out[k] = x;
    return Object.keys(out).length ? out : undefined;
  };
  if (Array.isArray(value)) {
    const items = value.map(one).filter((x) => x !== undefined);
    return items.length ? items : undefined;
  }
  return one(value);
}

function dropSubs(value: unknown, subs: Set<string>): unknown {
  const one = (v: unknown) => {
    if (!plain(v)) return v;
    const out: Obj = {};
    for (const [k, x] of Object.entries(v)) if (!subs.has(k.toLowerCase())) out[k] = x;
    return out;
  };
  return Array.isArray(value) ? value.map(one) : one(value);
}

/** What each attribute of one schema's object keeps: 'all', or a set of sub-attribute names. */
type Selection = Map<string, Set<string> | 'all'>;

function select(refs: AttributeRef[], schema: string | null): { whole: boolean; attrs: Selection } {
  const attrs: Selection = new Map();
  let whole = false;
  for (const r of refs) {
    if ((r.schema ?? null) !== schema) continue;
    if (r.attr === null) { whole = true; continue; }
    const had = attrs.get(r.attr);
    if (r.sub === null || had === 'all') attrs.set(r.attr, 'all');
    else attrs.set(r.attr, new Set([...(had ?? []), r.sub]));
  }
  return { whole, attrs };
}

function include(o: Obj, sel: Selection, top: boolean): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(o)) {
    const lower = k.toLowerCase();
    if (top && ALWAYS.has(lower)) { out[k] = v; continue; }
    const subs = sel.get(lower);
    if (!subs) continue;
    const picked = pickSubs(v, subs);
    if (picked !== undefined) out[k] = picked;
  }
  return out;
}

function exclude(o: Obj, sel: Selection, top: boolean): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(o)) {
    const lower = k.toLowerCase();
    const subs = sel.get(lower);
    if (!subs || (top && ALWAYS.has(lower))) out[k] = v;
    else if (subs !== 'all') out[k] = dropSubs(v, subs);
  }
  return out;
}

/** The representation with only what the projection asks for (a new object; `rendered` is not changed). */
export function project(kind: ScimKind, rendered: Obj, p: Projection): Obj {
  const extensions = catalog(kind).extensions.map((e) => e.id);
  const core = select(p.refs, null);
  const extKeys = new Set(extensions.map((e) => keyOf(rendered, e.toLowerCase())).filter((k): k is string => k !== undefined));
  const coreObj: Obj = {};
  for (const [k, v] of Object.entries(rendered)) if (!extKeys.has(k)) coreObj[k] = v;
  // The core schema's URN alone names every core attribute.
  const out = p.mode === 'include'
    ? (core.whole ? coreObj : include(coreObj, core.attrs, true))
    : (core.whole ? include(coreObj, new Map(), true) : exclude(coreObj, core.attrs, true));
  for (const ext of extensions) {
    const key = keyOf(rendered, ext.toLowerCase());
    const value = key === undefined ? undefined : rendered[key];
    if (key === undefined || !plain(value)) continue;
    const s = select(p.refs, ext);
    let kept: Obj | undefined;
    if (p.mode === 'include') kept = s.whole ? value : include(value, s.attrs, false);
    else kept = s.whole ? undefined : exclude(value, s.attrs, false);
    if (kept && Object.keys(kept).length) out[key] = kept;
  }
  return out;
}
