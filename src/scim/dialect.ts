/**
 * One place for every identity-provider dialect quirk of the SCIM surface.
 *
 * Okta and Microsoft Entra ID (and Microsoft's own test collections) send bodies that RFC 7643/7644
 * do not quite describe. These functions turn them into standard bodies that scimmy 1.3.5 applies
 * the way the RFC says, before scimmy sees them:
 *
 *   - `normalisePatch` → a PatchOp (RFC 7644 §3.5.2) for `new SCIMMY.Messages.PatchOp(…).apply(…)`;
 *   - `normaliseResource` → a resource (RFC 7643 §4) for `new SCIMMY.Schemas.User|Group(…, 'in')`.
 *
 * Both are pure (the input is never mutated, the same input gives the same output) and never throw:
 * what they do not understand is passed through unchanged for scimmy to reject with the right
 * status and scimType. Each rule below says which client sends the shape and why it is rewritten.
 */
import {
  PATCH_OP, catalog, clean, getCI, hasForbiddenSegment, isPlainObject, knownSchemaId, matchesEq, parseEqFilter, parsePath, renderPath, setOwn,
  type AttrInfo, type Catalog, type Literal, type Obj, type ParsedPath, type ScimKind, type SchemaInfo,
} from './dialect-schema.js';

export type { ScimKind } from './dialect-schema.js';

type Op = { op: string; path?: unknown; value?: unknown };

/**
 * What a PatchOp becomes when every operation in it only touched attributes we ignore (an Okta
 * password sync, an `id` or `meta` write): an `add` of nothing, which scimmy accepts and which
 * changes nothing — `apply` then resolves to undefined, as for any patch without changes.
 * RFC 7643 §2.2: readOnly values sent by a client SHALL be ignored; an empty Operations list would
 * instead be a 400 (RFC 7644 §3.5.2: at least one operation).
 */
const noOp = (): Op => ({ op: 'add', value: {} });

/**
 * What scimmy gets instead of a path naming `__proto__`, `constructor` or `prototype`: a plain
 * unknown attribute, which it answers with 400 invalidPath before parsing any filter. Left alone,
 * scimmy 1.3.5 would walk the segment into Object.prototype.
 */
export const FORBIDDEN_PATH = 'forbiddenPathSegment';

/** RFC 7643 §4.1.1: the password is writeOnly; orgsync never stores one (Okta sends it on create and on password sync). */
const isPassword = (cat: Catalog, p: ParsedPath) => cat.kind === 'User' && p.schema.core && p.attr?.name === 'password';

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/**
 * One attribute value in the shape scimmy coerces:
 *  - booleans: Entra (without `?aadOptscim062020`) sends `"False"`/`"True"`, Microsoft's test
 *    collection `"true"`; scimmy only takes JSON booleans (RFC 7643 §2.3.2). Only attributes
 *    typed boolean are touched, so a title "True" stays a string;
 *  - canonical values (RFC 7643 §2.3.1, caseExact false): `"Work"` → `"work"`, member type
 *    `"user"` → `"User"`; scimmy compares them case-sensitively and answers 400 otherwise.
 */
function scalar(attr: AttrInfo, v: unknown): unknown {
  if (typeof v !== 'string') return v;
  if (attr.type === 'boolean') {
    const t = v.trim().toLowerCase();
    return t === 'true' ? true : t === 'false' ? false : v;
  }
  const canonical = attr.canonicalValues?.find((c) => c.toLowerCase() === v.toLowerCase());
  return canonical ?? v;
}

/**
 * A complex value (`name`, `manager`, one `emails` or `members` entry) with its sub-attribute names
 * in canonical case — scimmy finds attributes case-insensitively but assigns by exact name, so
 * `{"Value": …}` in a PATCH is a 400 invalidPath — booleans and canonical values fixed, readOnly
 * sub-attributes dropped (RFC 7643 §2.2, e.g. manager.displayName) and, inside a multi-valued
 * entry, null sub-attributes dropped: Entra sends `"$ref": null` with every member it adds, and
 * null means "no value" (RFC 7643 §2.5).
 */
function complex(cat: Catalog, attr: AttrInfo, v: Obj, entry: boolean): Obj {
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) {
    const sub = attr.sub?.get(k.toLowerCase());
    if (!sub) {
      // Microsoft's SCIM test collection adds members as {"displayName": …, "value": …}; the Group
      // member sub-attribute is `display` (RFC 7643 §4.2) and scimmy would drop the name silently.
      if (cat.kind === 'Group' && attr.name === 'members' && k.toLowerCase() === 'displayname' && getCI(v, 'display') === undefined) {
        if (x !== null) out.display = x;
      } else setOwn(out, k, x);
      continue;
    }
    if (sub.readOnly) continue;
    if (entry && x === null) continue;
    out[sub.name] = scalar(sub, x);
  }
  return out;
}

/** The value of a whole attribute (no sub-attribute named): a collection, a complex value or a scalar. */
function attrValue(cat: Catalog, attr: AttrInfo, v: unknown): unknown {
  if (attr.type === 'complex') {
    if (attr.multiValued) {
      if (Array.isArray(v)) return v.map((e) => (isPlainObject(e) ? complex(cat, attr, e, true) : e));
      return isPlainObject(v) ? complex(cat, attr, v, true) : v;
    }
    if (isPlainObject(v)) return complex(cat, attr, v, false);
    // Entra sends the enterprise manager as a bare id: {"op":"Add","path":"…:User:manager","value":"271"}
    // (SCIM-SDK issues #541, #686). RFC 7643 §4.3 makes manager complex, with the id in `value`.
    if ((typeof v === 'string' || typeof v === 'number') && attr.sub?.has('value')) return { value: v };
    return v;
  }
  if (attr.multiValued && Array.isArray(v)) return v.map((x) => scalar(attr, x));
  return scalar(attr, v);
}

// ---------------------------------------------------------------------------------------------
// PATCH
// ---------------------------------------------------------------------------------------------

/**
 * The multi-valued attributes of the resource being patched, as they will be after each operation
 * so far — only as far as we can tell for sure. Used by the filtered-add rule to know whether a
 * filter such as `emails[type eq "work"]` matches anything; an attribute we cannot follow becomes
 * "unknown" and its operations are left alone.
 */
class Working {
  private readonly lists = new Map<AttrInfo, Obj[] | 'unknown'>();
  constructor(private readonly current: Obj | undefined) {}

  list(schema: SchemaInfo, attr: AttrInfo): Obj[] | 'unknown' {
    const known = this.lists.get(attr);
    if (known) return known;
    let found: Obj[] | 'unknown' = 'unknown';
    if (this.current) {
      const holder = schema.core ? this.current : getCI(this.current, schema.id);
      // Not an object where the extension should be: nothing we can follow (stays "unknown").
      const raw = isPlainObject(holder) ? getCI(holder, attr.name) : holder === undefined || holder === null ? undefined : holder;
      if (raw === undefined || raw === null) found = []; // null is "unassigned" (RFC 7643 §2.5)
      else if (Array.isArray(raw) && raw.every(isPlainObject)) found = raw.map((e) => ({ ...e }));
    }
    this.lists.set(attr, found);
    return found;
  }

  add(attr: AttrInfo, entries: unknown): void {
    const list = this.lists.get(attr);
    if (!Array.isArray(list)) return;
    const values = Array.isArray(entries) ? entries : [entries];
    if (values.every(isPlainObject)) list.push(...values);
    else this.lists.set(attr, 'unknown');
  }

  set(attr: AttrInfo, entries: Obj[] | 'unknown'): void {
    this.lists.set(attr, entries);
  }

  /** Follows an operation we leave as it is. */
  observe(op: string, p: ParsedPath, value: unknown): void {
    const attr = p.attr;
    if (!attr?.multiValued || attr.type !== 'complex' || this.list(p.schema, attr) === 'unknown') return;
    if (p.filter === undefined) {
      if (p.sub) this.set(attr, 'unknown');
      else if (op === 'add') this.add(attr, value);
      else if (op === 'replace') this.set(attr, (Array.isArray(value) ? value : [value]).every(isPlainObject) ? ((Array.isArray(value) ? value : [value]) as Obj[]) : 'unknown');
      else if (op === 'remove') this.set(attr, value === undefined ? [] : 'unknown');
      return;
    }
    const pairs = parseEqFilter(attr, p.filter);
    if (!pairs) return this.set(attr, 'unknown');
    const list = this.list(p.schema, attr) as Obj[];
    if (op === 'remove' && !p.sub) this.set(attr, list.filter((e) => !matchesEq(e, pairs)));
    else if (!p.sub || pairs.some(([s]) => s === p.sub)) this.set(attr, 'unknown');
    // Otherwise a sub-attribute outside the filter changes: the same entries still match.
  }
}

const mk = (op: string, path: string | undefined, value: unknown, hasValue: boolean): Op =>
  ({ op, ...(path !== undefined ? { path } : {}), ...(hasValue ? { value } : {}) });

/**
 * Entra (without `?aadOptscim062020`) removes members with
 * `{"op":"Remove","path":"members","value":[{"value":"<id>"}]}`. RFC 7644 §3.5.2.2 reads a remove
 * of `members` without a filter as "remove every member"; scimmy 1.3.5 happens to match the listed
 * values instead, but only when every listed sub-attribute equals the stored one (a differing
 * `display` silently removes nothing). One `members[value eq "<id>"]` remove per id is what the
 * RFC and Entra's compliant mode say, and what scimmy applies exactly.
 */
function memberRemovals(value: unknown, hasValue: boolean): Op[] {
  const list = Array.isArray(value) ? value : [value];
  const ids = list.map((e) => (isPlainObject(e) ? getCI(e, 'value') : undefined));
  const safe = (id: unknown): id is string => typeof id === 'string' && id !== '' && !/["\\\]]/.test(id);
  // An empty list removes nothing (scimmy agrees); ids a filter cannot quote are left for scimmy.
  if (!list.length || !ids.every(safe)) return [mk('remove', 'members', value, hasValue)];
  return [...new Set(ids)].map((id) => ({ op: 'remove', path: `members[value eq "${id}"]` }));
}

/**
 * Entra adds a value to a multi-valued attribute through a filter even when nothing matches yet —
 * a user's first work email, mobile number or work address arrives as
 * `{"op":"Add","path":"addresses[type eq \"work\"].locality","value":"Paris"}`, one operation per
 * sub-attribute. RFC 7644 §3.5.2.1/§3.5.2.3 answer 400 noTarget (and so does scimmy); Entra then
 * retries forever. When the filter is plain `eq` terms and matches nothing in the current resource,
 * the operation becomes an add of a new entry carrying the filter's values; later operations with
 * the same filter then match that entry and stay as they are.
 */
function upsert(op: string, p: ParsedPath, value: unknown, working: Working): Op | undefined {
  const attr = p.attr;
  if ((op !== 'add' && op !== 'replace') || !attr || p.filter === undefined || attr.type !== 'complex' || !attr.multiValued) return undefined;
  const list = working.list(p.schema, attr);
  const pairs = parseEqFilter(attr, p.filter);
  if (list === 'unknown' || !pairs || list.some((e) => matchesEq(e, pairs))) return undefined;
  const entry: Obj = {};
  if (p.sub) {
    if (value === undefined || value === null) return undefined;
    if (isPlainObject(value) || Array.isArray(value)) return undefined;
  } else if (!isPlainObject(value)) return undefined;
  else Object.assign(entry, value);
  for (const [sub, literal] of pairs) entry[sub.name] = scalar(sub, literal as Literal);
  if (p.sub) entry[p.sub.name] = value;
  working.add(attr, entry);
  return { op: 'add', path: renderPath(p, { filter: false, sub: false }), value: [entry] };
}

/** One operation with a path. Returns the operations scimmy should run instead (possibly none). */
function withPath(cat: Catalog, op: string, rawPath: string, value: unknown, hasValue: boolean, working: Working): Op[] {
  if (hasForbiddenSegment(rawPath)) return [mk(op, FORBIDDEN_PATH, value, hasValue)];
  const p = parsePath(cat, rawPath);
  if (!p) return [mk(op, rawPath, value, hasValue)];

  // The enterprise extension addressed as a whole (`"path": "urn:…:enterprise:2.0:User"`) is a set
  // of attributes, like a PATCH without path: one operation per attribute.
  if (!p.attr) {
    if (op !== 'remove' && isPlainObject(value)) {
      return Object.entries(value).flatMap(([k, v]) => withPath(cat, op, `${p.schema.id}:${k}`, v, true, working));
    }
    return [mk(op, p.schema.id, value, hasValue)];
  }
  const attr = p.attr;

  // RFC 7643 §2.2/§3.1: readOnly attributes (id, meta, User groups, manager.displayName) sent by a
  // client are ignored, not errors — Okta's group rename carries the group `id`. Passwords are
  // never stored.
  if (attr.readOnly || p.sub?.readOnly || isPassword(cat, p)) return [];

  if (cat.kind === 'Group' && attr.name === 'members' && op === 'remove' && p.filter === undefined && !p.sub && hasValue) {
    return memberRemovals(value, hasValue);
  }

  // Microsoft's test collection adds a member as a bare id (`"value": "stringid1"`); RFC 7643 §4.2
  // members are complex {value}. Wrap bare ids (alone or in a list) so the add means what it says.
  if (cat.kind === 'Group' && attr.name === 'members' && !p.sub && p.filter === undefined && op !== 'remove' && hasValue) {
    const wrap = (x: unknown) => (typeof x === 'string' ? { value: x } : x);
    if (typeof value === 'string') value = [wrap(value)];
    else if (Array.isArray(value)) value = value.map(wrap);
  }

  let v = value;
  if (hasValue) {
    if (p.sub) v = scalar(p.sub, value);
    else if (p.filter !== undefined && attr.type === 'complex') v = isPlainObject(value) ? complex(cat, attr, value, true) : value;
    else v = attrValue(cat, attr, value);
  }

  const upserted = upsert(op, p, v, working);
  if (upserted) return [upserted];

  // A sub-attribute of a complex extension attribute (`urn:…:User:manager.value`): scimmy 1.3.5
  // answers 400 noTarget when the manager is not set yet. An add of {value} to the manager means
  // the same (RFC 7644 §3.5.2.1: sub-attributes given are set, the others kept).
  if (!p.schema.core && !attr.multiValued && p.sub && p.filter === undefined && op !== 'remove') {
    return [{ op: 'add', path: renderPath(p, { sub: false }), value: { [p.sub.name]: v } }];
  }

  // RFC 7644 §3.5.2.3: a replace of a complex attribute replaces the sub-attributes given and leaves
  // the others unchanged. scimmy 1.3.5 clears the whole attribute first, so `{"name": {"givenName": …}}`
  // (Microsoft's test collection, without path) or a manager object (Entra) would lose familyName or
  // the manager's $ref; its add merges, which is the RFC's replace.
  let name = op;
  if (op === 'replace' && attr.type === 'complex' && !attr.multiValued && !p.sub && isPlainObject(v)) name = 'add';

  working.observe(name, p, v);
  return [mk(name, renderPath(p), v, hasValue)];
}

/**
 * An `add`/`replace` without path: the value is a set of attributes (RFC 7644 §3.5.2.1/§3.5.2.3).
 * Entra (`?aadOptscim062020`) sends keys such as `"name.givenName"` and
 * `"urn:…:enterprise:2.0:User:employeeNumber"`; Okta sends `{"id": …, "displayName": …}` to
 * rename a group and `{"active": false}` to deactivate. Each key becomes its own operation with a
 * path, so every rule above applies, and a multi-valued attribute given here is really replaced —
 * scimmy 1.3.5 appends instead when there is no path.
 */
function withoutPath(cat: Catalog, op: string, value: Obj, working: Working): Op[] {
  return Object.entries(value).flatMap(([key, v]) => {
    const ext = cat.extensions.find((s) => s.id.toLowerCase() === key.toLowerCase());
    if (ext && isPlainObject(v)) return Object.entries(v).flatMap(([k, x]) => withPath(cat, op, `${ext.id}:${k}`, x, true, working));
    return withPath(cat, op, key, v, true, working);
  });
}

function operation(cat: Catalog, raw: unknown, working: Working): unknown[] {
  if (!isPlainObject(raw)) return [raw];
  // Operation member names in any case ("Op", "Path", "Value" in hand-written test bodies); other
  // members (Microsoft's test collection adds "name") mean nothing to RFC 7644 §3.5.2 and go.
  let op: unknown;
  let path: unknown;
  let value: unknown;
  let hasValue = false;
  for (const [k, v] of Object.entries(raw)) {
    const l = k.toLowerCase();
    if (l === 'op') op = v;
    else if (l === 'path') path = v;
    else if (l === 'value') [value, hasValue] = [v, true];
  }
  // Entra sends "Add", "Replace", "Remove" (RFC 7644 §3.5.2 spells them in lower case).
  if (typeof op !== 'string' || !['add', 'remove', 'replace'].includes(op.toLowerCase())) return [raw];
  const name = op.toLowerCase();
  if (path !== undefined && typeof path !== 'string') return [{ ...mk(name, undefined, value, hasValue), path }];
  // An empty path is the resource itself, as if omitted.
  if (path === undefined || path.trim() === '') {
    if (name !== 'remove' && isPlainObject(value)) return withoutPath(cat, name, value, working);
    return [mk(name, undefined, value, hasValue)];
  }
  return withPath(cat, name, path.trim(), value, hasValue, working);
}

/**
 * Turns what Okta and Entra ID really send as a PATCH body into a standard RFC 7644 §3.5.2 PatchOp
 * scimmy applies correctly. Pure; never throws for input it does not understand — it leaves it for
 * scimmy to reject.
 *
 * `current` is the resource being patched, in the SCIM form given to `new SCIMMY.Schemas.X(current,
 * 'out')`. It is only read, and only by the filtered-add rule (Entra's first work email, mobile or
 * address): without it those operations are passed on as sent and scimmy answers 400 noTarget.
 */
export function normalisePatch(kind: ScimKind, body: unknown, current?: unknown): unknown {
  if (!isPlainObject(body)) return body;
  const cat = catalog(kind);
  // A copy (the input stays untouched) without `__proto__`/`constructor`/`prototype` keys, which
  // scimmy 1.3.5 would walk into Object.prototype from a remove value; no SCIM attribute has them.
  const src = clean(body) as Obj;
  const out: Obj = {};
  let operations: unknown;
  let sawOperations = false;
  for (const [k, v] of Object.entries(src)) {
    const l = k.toLowerCase();
    if (l === 'schemas') out.schemas = patchSchemas(v);
    // "Operations" is the RFC 7644 §3.5.2 spelling; hand-written bodies use "operations".
    else if (l === 'operations' && (!sawOperations || k === 'Operations')) [operations, sawOperations] = [v, true];
    else if (l !== 'operations') setOwn(out, k, v);
  }
  // Microsoft's test collection sometimes sends no `schemas` at all.
  if (!('schemas' in out)) out.schemas = [PATCH_OP];
  if (!sawOperations) return out;
  if (!Array.isArray(operations)) return { ...out, Operations: operations };
  const working = new Working(isPlainObject(current) ? current : undefined);
  const ops = operations.flatMap((o) => operation(cat, o, working));
  out.Operations = ops.length === 0 && operations.length > 0 ? [noOp()] : ops;
  return out;
}

/** `schemas` of a PatchOp: only the PatchOp URN, in any case, stands for the PatchOp URN (RFC 7644 §3.5.2). */
function patchSchemas(v: unknown): unknown {
  if (v === undefined || v === null) return [PATCH_OP];
  if (typeof v === 'string' && v.toLowerCase() === PATCH_OP.toLowerCase()) return [PATCH_OP];
  if (Array.isArray(v) && v.every((s) => typeof s === 'string' && s.toLowerCase() === PATCH_OP.toLowerCase())) return [PATCH_OP];
  return v;
}

// ---------------------------------------------------------------------------------------------
// POST / PUT
// ---------------------------------------------------------------------------------------------

/**
 * `schemas` of a resource: known URNs in their canonical case (scimmy compares them exactly and
 * answers 400 invalidSyntax to `…:core:2.0:user`), other URNs kept, non-URNs dropped — Entra sends
 * `http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group` with every group it
 * creates, which scimmy would echo back. Missing (Microsoft's test collection) means the core schema
 * (RFC 7643 §3: schemas is required).
 */
function resourceSchemas(cat: Catalog, v: unknown): unknown {
  if (!Array.isArray(v)) return v;
  const out: unknown[] = [];
  for (const s of v) {
    const canonical = typeof s === 'string' ? (knownSchemaId(cat, s) ?? (s.toLowerCase().startsWith('urn:') ? s : undefined)) : s;
    if (canonical !== undefined && !out.includes(canonical)) out.push(canonical);
  }
  return out.length ? out : [cat.core.id];
}

/** Same for POST/PUT resource bodies (RFC 7643). */
export function normaliseResource(kind: ScimKind, body: unknown): unknown {
  if (!isPlainObject(body)) return body;
  const cat = catalog(kind);
  // A copy without `__proto__`/`constructor`/`prototype` keys: scimmy 1.3.5 turns a key such as
  // `urn:…:enterprise:2.0:User:__proto__.x` into a write to Object.prototype.
  const src = clean(body) as Obj;
  const out: Obj = {};
  const extensions = new Map<SchemaInfo, Obj>();
  const holder = (schema: SchemaInfo): Obj => {
    if (schema.core) return out;
    let found = extensions.get(schema);
    if (!found) extensions.set(schema, (found = {}));
    return found;
  };
  const place = (target: Obj, attr: AttrInfo, value: unknown) => {
    const prev = target[attr.name];
    target[attr.name] = isPlainObject(prev) && isPlainObject(value) ? { ...prev, ...value } : value;
  };
  for (const [key, v] of Object.entries(src)) {
    if (key.toLowerCase() === 'schemas') {
      out.schemas = resourceSchemas(cat, v);
      continue;
    }
    // The extension as an object: {"urn:…:enterprise:2.0:User": {"Department": …, "Manager": {"Value": …}}}
    // (capitalised by Microsoft's test collection).
    const ext = cat.extensions.find((s) => s.id.toLowerCase() === key.toLowerCase());
    if (ext) {
      if (!isPlainObject(v)) {
        setOwn(out, key, v);
        continue;
      }
      for (const [k, x] of Object.entries(v)) {
        const p = parsePath(cat, `${ext.id}:${k}`);
        if (!p?.attr || p.filter !== undefined) setOwn(holder(ext), k, x);
        else if (!(p.attr.readOnly || p.sub?.readOnly)) place(holder(ext), p.attr, p.sub ? { [p.sub.name]: scalar(p.sub, x) } : attrValue(cat, p.attr, x));
      }
      continue;
    }
    // Attribute names in any case (`UserName`, `Emails` from Microsoft's test collection; scimmy
    // accepts them on create but the rest of our code reads canonical names), URN-qualified
    // (`urn:…:User:department`) and dotted (`name.givenName`) keys folded into the nested form.
    const p = parsePath(cat, key);
    if (!p?.attr || p.filter !== undefined) {
      setOwn(out, key, v);
      continue;
    }
    // readOnly (id, meta, User groups — Okta sends `"groups": []` on create) and the password are
    // dropped: RFC 7643 §3.1 has the service provider ignore them.
    if (p.attr.readOnly || p.sub?.readOnly || isPassword(cat, p)) continue;
    place(holder(p.schema), p.attr, p.sub ? { [p.sub.name]: scalar(p.sub, v) } : attrValue(cat, p.attr, v));
  }
  for (const [schema, values] of extensions) {
    const prev = out[schema.id];
    out[schema.id] = isPlainObject(prev) ? { ...prev, ...values } : values;
  }
  if (!('schemas' in out)) out.schemas = [cat.core.id, ...[...extensions.keys()].map((s) => s.id)];
  return out;
}

// ---------------------------------------------------------------------------------------------
// Helper for the caller's cross-directory check
// ---------------------------------------------------------------------------------------------

/**
 * Member ids a group PATCH/PUT/POST body refers to, for the caller's cross-directory check (a
 * member id from another directory → 400 invalidValue). Give it the normalised body. `added` are
 * the ids that would become members (add/replace operations, or `members` of a resource);
 * `removed` the ids a remove names.
 */
export function memberIds(body: unknown): { added: string[]; removed: string[] } {
  const added = new Set<string>();
  const removed = new Set<string>();
  const ids = (v: unknown, into: Set<string>) => {
    for (const e of Array.isArray(v) ? v : [v]) {
      const id = isPlainObject(e) ? getCI(e, 'value') : undefined;
      if (typeof id === 'string') into.add(id);
    }
  };
  if (!isPlainObject(body)) return { added: [], removed: [] };
  const operations = getCI(body, 'Operations');
  if (Array.isArray(operations)) {
    for (const raw of operations) {
      if (!isPlainObject(raw)) continue;
      const op = String(getCI(raw, 'op') ?? '').toLowerCase();
      const path = getCI(raw, 'path');
      const value = getCI(raw, 'value');
      if (path === undefined && isPlainObject(value)) {
        if (op !== 'remove') ids(getCI(value, 'members'), added);
      } else if (typeof path === 'string' && path.toLowerCase() === 'members') {
        ids(value, op === 'remove' ? removed : added);
      } else if (typeof path === 'string') {
        const m = /^members\[\s*value\s+eq\s+"([^"]*)"\s*\]$/i.exec(path);
        if (m?.[1] !== undefined && op === 'remove') removed.add(m[1]);
      }
    }
  } else ids(getCI(body, 'members') ?? [], added);
  return { added: [...added], removed: [...removed] };
}
