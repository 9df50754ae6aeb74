/**
 * orgsync's own SCIM PATCH applier (RFC 7644 §3.5.2), compiled against the schema catalogue that
 * dialect-schema.ts reads from scimmy's definitions.
 *
 * It takes the stored resource (ScimUser.resource: what scimmy coerced on the way in) and the
 * operations as dialect.normalisePatch made them (lower-case op names, paths in canonical case,
 * values coerced to the attribute types, readOnly attributes gone), applies them to a copy, and
 * returns the new resource. No scimmy instance is built: scimmy's PatchOp builds the resource three
 * times per request (our 'out' instance, its own copy, the inbound validation of the result),
 * which was most of a PATCH's CPU (issue 13).
 *
 * It covers what identity providers send — every Okta and Entra fixture in fixtures/scim —:
 * add/replace/remove of attributes, sub-attributes (`name.givenName`), extension attributes
 * (`urn:…:enterprise:2.0:User:department`), whole multi-valued attributes, and entries selected
 * by `eq` filters (`emails[type eq "work"].value`, `phoneNumbers[type eq "mobile"]`). A shape it
 * does not cover returns `bail`, and the caller applies the PatchOp with scimmy as before (the
 * paths are bounded either way: patch-path.ts); test/scim/patch-engine.property.test.ts compares
 * the two on generated operations.
 *
 * Unknown attributes are ignored, as POST and PUT ignore them (identity providers send custom
 * mappings), and reported in `ignored` so the directory can list them (issue 13 defect 6).
 */
import { FORBIDDEN_PATH } from './dialect.js';
import { InvalidInput } from '../domain/errors.js';
import { wrongShape } from './value-shapes.js';
import { catalog, getCI, isPlainObject, matchesEq, parseEqFilter, parsePath, renderPath, type AttrInfo, type Obj, type ParsedPath, type ScimKind } from './dialect-schema.js';
import { attributeNameOf, isKnownAttribute } from './unknown-attributes.js';
import { parsePatchPath, type FilterNode } from './filter-parser.js';

export type PatchOutcome =
  | { kind: 'unchanged'; ignored: string[] }
  | { kind: 'changed'; resource: Obj; ignored: string[] }
  /** A shape this engine leaves to scimmy (which applies it or answers the RFC's error). */
  | { kind: 'bail'; reason: string };

class Bail extends Error {}
const bail = (reason: string): never => {
  throw new Bail(reason);
};

/** JSON copy of a stored resource (jsonb values only: no Dates, no undefined). */
const copy = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

/** The value of an attribute as RFC 7643 §2.5 reads it: null and empty are "unassigned". */
const unassigned = (v: unknown) => v === undefined || v === null || (Array.isArray(v) && v.length === 0);

type Holder = { get(): Obj | undefined; ensure(): Obj; cleanup(): void };

function holderOf(resource: Obj, p: ParsedPath): Holder {
  if (p.schema.core) return { get: () => resource, ensure: () => resource, cleanup: () => undefined };
  const id = p.schema.id;
  return {
    get: () => {
      const h = resource[id];
      if (h === undefined || h === null) return undefined;
      return isPlainObject(h) ? h : bail('extension is not an object');
    },
    ensure: () => {
      const h = resource[id];
      if (isPlainObject(h)) return h;
      if (h !== undefined && h !== null) bail('extension is not an object');
      const created: Obj = {};
      resource[id] = created;
      addSchema(resource, id);
      return created;
    },
    // An extension left without attributes is no extension (RFC 7643 §3: schemas lists those present).
    cleanup: () => {
      const h = resource[id];
      if (h === undefined || h === null || (isPlainObject(h) && Object.values(h).every(unassigned))) removeExtension(resource, id);
    },
  };
}

function addSchema(resource: Obj, id: string) {
  const schemas = Array.isArray(resource.schemas) ? (resource.schemas as unknown[]) : [];
  if (!schemas.includes(id)) resource.schemas = [...schemas, id];
}
function removeExtension(resource: Obj, id: string) {
  delete resource[id];
  if (Array.isArray(resource.schemas)) resource.schemas = (resource.schemas as unknown[]).filter((s) => s !== id);
}

/** The entries of a multi-valued complex attribute, as a list we may change in place. */
function entries(holder: Obj | undefined, attr: AttrInfo): Obj[] {
  const v = holder?.[attr.name];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every(isPlainObject)) bail('stored multi-valued attribute is not a list of objects');
  return v as Obj[];
}

/** RFC 7643 §2.4: "primary" true appears at most once; a new primary entry demotes the others. */
function demoteOthers(list: Obj[], keep: Obj) {
  if (keep.primary !== true) return;
  for (const e of list) if (e !== keep && e.primary === true) e.primary = false;
}

function setValue(target: Obj, name: string, v: unknown) {
  if (v === null || v === undefined) delete target[name];
  else target[name] = v;
}

function applyOne(resource: Obj, op: string, p: ParsedPath, value: unknown, hasValue: boolean) {
  // The extension as a whole: RFC 7644 §3.5.2.2 remove of `urn:…:enterprise:2.0:User` removes it.
  if (!p.attr) {
    if (op === 'remove' && !hasValue) return removeExtension(resource, p.schema.id);
    return bail('extension value without attribute');
  }
  const attr = p.attr;
  const h = holderOf(resource, p);
  if (op !== 'remove' && !hasValue) bail(`${op} without value`);

  if (p.filter !== undefined) {
    if (attr.type !== 'complex') bail('filter on a multi-valued simple attribute');
    const list = entries(h.get(), attr);
    const matches = list.filter(entryFilter(attr, p));
    // RFC 7644 §3.5.2.1/§3.5.2.3: noTarget — scimmy answers it with its own wording.
    if (!matches.length) bail('filter matches nothing');
    if (op === 'remove') {
      if (hasValue) bail('remove with a filter and a value');
      if (p.sub) for (const e of matches) delete e[p.sub.name];
      else h.ensure()[attr.name] = list.filter((e) => !matches.includes(e));
    } else {
      const sub = p.sub ?? bail('add/replace of whole filtered entries');
      if (isPlainObject(value) || Array.isArray(value)) bail('complex value for a sub-attribute');
      for (const e of matches) {
        setValue(e, sub.name, value);
        if (sub.name === 'primary') demoteOthers(list, e);
      }
    }
    const holder = h.get();
    if (holder && Array.isArray(holder[attr.name]) && (holder[attr.name] as unknown[]).length === 0) delete holder[attr.name];
    return h.cleanup();
  }

  if (p.sub) {
    if (attr.multiValued) bail('sub-attribute of a multi-valued attribute without a filter');
    if (op === 'remove') {
      if (hasValue) bail('remove with a value');
      const current = h.get()?.[attr.name];
      if (current === undefined || current === null) return h.cleanup();
      if (!isPlainObject(current)) bail('stored complex attribute is not an object');
      delete (current as Obj)[p.sub.name];
      if (Object.values(current as Obj).every(unassigned)) delete h.get()![attr.name];
      return h.cleanup();
    }
    if (isPlainObject(value) || Array.isArray(value)) bail('complex value for a sub-attribute');
    if (value === null) bail('null value for a sub-attribute');
    const target = h.ensure();
    const current = target[attr.name];
    if (current !== undefined && current !== null && !isPlainObject(current)) bail('stored complex attribute is not an object');
    const obj = (isPlainObject(current) ? current : (target[attr.name] = {})) as Obj;
    obj[p.sub.name] = value;
    return;
  }

  if (op === 'remove') {
    // Entra's member removal by value is a group shape; users never send it.
    if (hasValue) bail('remove with a value');
    const holder = h.get();
    if (holder) delete holder[attr.name];
    return h.cleanup();
  }

  if (attr.multiValued) {
    if (value === null) bail('null for a multi-valued attribute');
    const added = Array.isArray(value) ? value : [value];
    // scimmy would store `[[…]]` or `[null]` as `{}` / null: a 400 naming the entry (issue 13, defect 5).
    added.forEach((entry, i) => {
      const wrong = wrongShape(attr, entry);
      if (wrong) throw new InvalidInput(`${attr.name}[${i}]: ${wrong}`, [{ path: `${attr.name}[${i}]`, message: wrong }]);
    });
    const target = h.ensure();
    if (op === 'replace') {
      // RFC 7644 §3.5.2.3: without a filter, the attribute and all its values are replaced.
      target[attr.name] = copy(added);
    } else {
      // RFC 7644 §3.5.2.1: values already present are not added again.
      const list = attr.type === 'complex' ? entries(target, attr) : ((target[attr.name] as unknown[] | undefined) ?? []);
      for (const entry of added) if (!list.some((e) => deepEqual(e, entry))) list.push(copy(entry));
      target[attr.name] = list;
      if (attr.type === 'complex') for (const e of added as Obj[]) if (e.primary === true) demoteOthers(list as Obj[], (list as Obj[]).find((x) => deepEqual(x, e))!);
    }
    if ((target[attr.name] as unknown[]).length === 0) delete target[attr.name];
    return h.cleanup();
  }

  if (attr.type === 'complex') {
    // The normaliser turns a replace of a complex value into add (RFC 7644 §3.5.2.3 merge).
    if (!isPlainObject(value) || op !== 'add') bail('complex value other than an object merge');
    const target = h.ensure();
    const current = target[attr.name];
    if (current !== undefined && current !== null && !isPlainObject(current)) bail('stored complex attribute is not an object');
    const merged: Obj = { ...((current as Obj | undefined) ?? {}) };
    for (const [k, x] of Object.entries(value as Obj)) {
      if (!attr.sub?.has(k.toLowerCase())) bail('unknown sub-attribute in a complex value');
      setValue(merged, k, copy(x));
    }
    if (Object.values(merged).every(unassigned)) delete target[attr.name];
    else target[attr.name] = merged;
    return h.cleanup();
  }

  if (isPlainObject(value) || Array.isArray(value)) bail('complex value for a simple attribute');
  if (value === null) {
    const holder = h.get();
    if (holder) delete holder[attr.name];
    return h.cleanup();
  }
  h.ensure()[attr.name] = value;
}

/**
 * The value filter of a path as a predicate on entries: `eq` terms joined by `and` (what IdPs
 * send) as dialect-schema reads them; otherwise the tree of the bounded filter parser
 * (filter-parser.ts, FILTER_LIMITS), for eq, ne and pr under and/or/not. Other operators are
 * left to scimmy.
 */
function entryFilter(attr: AttrInfo, p: ParsedPath): (e: Obj) => boolean {
  const pairs = parseEqFilter(attr, p.filter!);
  if (pairs) return (e) => matchesEq(e, pairs);
  const tree = parsePatchPath(renderPath(p, { sub: false })).filter ?? bail('no filter');
  const check = (n: FilterNode): void => {
    if (n.kind === 'and' || n.kind === 'or') return n.items.forEach(check);
    if (n.kind === 'not') return check(n.item);
    if (n.kind !== 'attr' || n.path.schema || n.path.segments.length !== 1 || !attr.sub?.has(n.path.segments[0]!.toLowerCase())) return bail('filter term not on a sub-attribute');
    if (n.op !== 'eq' && n.op !== 'ne' && n.op !== 'pr') bail(`filter operator ${n.op}`);
  };
  check(tree);
  const evaluate = (n: FilterNode, e: Obj): boolean => {
    switch (n.kind) {
      case 'and': return n.items.every((x) => evaluate(x, e));
      case 'or': return n.items.some((x) => evaluate(x, e));
      case 'not': return !evaluate(n.item, e);
      case 'attr': {
        const sub = attr.sub!.get(n.path.segments[0]!.toLowerCase())!;
        if (n.op === 'pr') return !unassigned(getCI(e, sub.name));
        const v = n.value!;
        const equal = matchesEq(e, [[sub, v.type === 'null' ? null : v.value]]);
        return n.op === 'eq' ? equal : !equal;
      }
      default: return bail('nested value filter');
    }
  };
  return (e) => evaluate(tree, e);
}

/**
 * Applies normalised operations to a copy of `stored`. `unchanged` when the result equals it
 * (nothing is written, the version stays: IdP retries and Okta's password-only PATCH are no-ops).
 */
export function applyPatchOperations(kind: ScimKind, stored: Obj, operations: unknown): PatchOutcome {
  if (!Array.isArray(operations) || operations.length === 0) return { kind: 'bail', reason: 'no operations' };
  const cat = catalog(kind);
  const resource = copy(stored);
  const ignored: string[] = [];
  try {
    for (const raw of operations) {
      if (!isPlainObject(raw)) bail('operation is not an object');
      const op = raw.op;
      if (op !== 'add' && op !== 'replace' && op !== 'remove') bail('unknown op');
      const hasValue = Object.prototype.hasOwnProperty.call(raw, 'value');
      const path = raw.path;
      if (path === undefined) {
        // The normaliser's no-op (every operation touched readOnly or password attributes).
        if (op === 'add' && isPlainObject(raw.value) && Object.keys(raw.value).length === 0) continue;
        bail('operation without path');
      }
      if (typeof path !== 'string' || path === FORBIDDEN_PATH) bail('path scimmy refuses');
      const p = parsePath(cat, path as string);
      if (!p) {
        const name = attributeNameOf(path as string);
        if (!name || isKnownAttribute(cat, name)) bail('path of a known attribute that does not resolve');
        if (!ignored.includes(name!)) ignored.push(name!);
        continue;
      }
      applyOne(resource, op as string, p, raw.value, hasValue);
    }
  } catch (err) {
    if (err instanceof Bail) return { kind: 'bail', reason: err.message };
    throw err;
  }
  return deepEqual(resource, stored) ? { kind: 'unchanged', ignored } : { kind: 'changed', resource, ignored };
}

/**
 * A normalised PatchOp without the operations on unknown attributes (for groups, whose member
 * operations are planned as rows and the rest applied by scimmy, which would answer invalidPath).
 */
export function withoutUnknownOperations(kind: ScimKind, body: unknown): { body: unknown; ignored: string[] } {
  if (!isPlainObject(body) || !Array.isArray(body.Operations)) return { body, ignored: [] };
  const cat = catalog(kind);
  const ignored: string[] = [];
  const kept = (body.Operations as unknown[]).filter((op) => {
    if (!isPlainObject(op) || typeof op.path !== 'string' || op.path === FORBIDDEN_PATH || parsePath(cat, op.path)) return true;
    const name = attributeNameOf(op.path);
    if (!name || isKnownAttribute(cat, name)) return true;
    if (!ignored.includes(name)) ignored.push(name);
    return false;
  });
  if (!ignored.length) return { body, ignored };
  // At least one operation (RFC 7644 §3.5.2): the normaliser's no-op when all were ignored.
  return { body: { ...body, Operations: kept.length ? kept : [{ op: 'add', value: {} }] }, ignored };
}
