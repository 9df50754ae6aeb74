/**
 * What the dialect rules (dialect.ts) need to know about SCIM schemas and attribute paths, read
 * from scimmy's own schema definitions so the two can never disagree: attribute names in their
 * canonical case, types (to know which string "True" is a boolean), mutability (to drop readOnly
 * attributes) and canonical values. Plus a strict parser for attribute paths (RFC 7644 §3.10) and
 * for the only filters we ever interpret ourselves: `a eq "x" and b eq true` (RFC 7644 §3.4.2.2).
 *
 * Nothing here throws on input, and nothing here feeds client strings to scimmy's filter parser:
 * that parser walks `__proto__` path segments into Object.prototype (see `hasForbiddenSegment`).
 */
import SCIMMY from 'scimmy';
import { suggestedValues } from './canonical-values.js';

export type ScimKind = 'User' | 'Group';
export type Obj = Record<string, unknown>;

export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

export interface AttrInfo {
  /** Canonical spelling, e.g. `userName`, `$ref`. */
  readonly name: string;
  readonly type: string;
  readonly multiValued: boolean;
  /** RFC 7643 §2.2 mutability "readOnly" (scimmy: `mutable: false`): id, meta, groups, manager.displayName. */
  readonly readOnly: boolean;
  readonly canonicalValues: readonly string[] | undefined;
  /** Sub-attributes by lower-cased name (RFC 7643 §2.1: attribute names are case-insensitive). */
  readonly sub: ReadonlyMap<string, AttrInfo> | undefined;
}

export interface SchemaInfo {
  readonly id: string;
  readonly core: boolean;
  readonly attrs: ReadonlyMap<string, AttrInfo>;
}

export interface Catalog {
  readonly kind: ScimKind;
  readonly core: SchemaInfo;
  readonly extensions: readonly SchemaInfo[];
}

export const isPlainObject = (v: unknown): v is Obj =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);

/** Defines an own property even for a key such as `__proto__` (plain assignment would swap the prototype). */
export function setOwn(target: Obj, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Case-insensitive own-key lookup (RFC 7643 §2.1). */
export function getCI(o: Obj, key: string): unknown {
  if (Object.prototype.hasOwnProperty.call(o, key)) return o[key];
  const lower = key.toLowerCase();
  for (const k of Object.keys(o)) if (k.toLowerCase() === lower) return o[k];
  return undefined;
}

const FORBIDDEN = /(?:^|[^A-Za-z0-9_$])(?:__proto__|constructor|prototype)(?![A-Za-z0-9_$])/i;

/**
 * True when a path or key names `__proto__`, `constructor` or `prototype`. scimmy 1.3.5 walks such
 * segments into Object.prototype — from a PATCH path filter (`members[__proto__.x eq "y"]`), from a
 * PATCH remove value key, and from a POST/PUT key `urn:…:User:__proto__.x` — polluting every object
 * in the process. No SCIM attribute has such a name, so nothing legitimate is lost.
 */
export const hasForbiddenSegment = (s: string): boolean => FORBIDDEN.test(s);

const MAX_DEPTH = 32;

/**
 * A deep copy of plain JSON data without forbidden keys: the normalisers never mutate their input
 * and never hand a polluting key to scimmy. Past MAX_DEPTH the original is kept (no SCIM attribute
 * is that deep; scimmy rejects or ignores it) so a hostile nesting depth cannot overflow the stack.
 */
export function clean(v: unknown, depth = 0): unknown {
  if (depth > MAX_DEPTH) return v;
  if (Array.isArray(v)) return v.map((x) => clean(x, depth + 1));
  if (!isPlainObject(v)) return v;
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) if (!hasForbiddenSegment(k)) setOwn(out, k, clean(x, depth + 1));
  return out;
}

function attrInfo(a: SCIMMY.Types.Attribute): AttrInfo {
  const config = a.config as { multiValued?: boolean; mutable?: boolean | string; canonicalValues?: boolean | string[] };
  const sub = a.subAttributes?.length ? new Map(a.subAttributes.map((s) => [s.name.toLowerCase(), attrInfo(s)] as const)) : undefined;
  return {
    name: a.name,
    type: String(a.type),
    multiValued: config.multiValued === true,
    readOnly: config.mutable === false,
    // Suggestions only (canonical-values.ts), still used to fold their case.
    canonicalValues: suggestedValues(a),
    sub,
  };
}

type Definition = { id: string; attributes: unknown[] };

function schemaInfo(def: Definition, core: boolean): SchemaInfo {
  const attrs = new Map<string, AttrInfo>();
  for (const a of def.attributes) if (a instanceof SCIMMY.Types.Attribute) attrs.set(a.name.toLowerCase(), attrInfo(a));
  return { id: def.id, core, attrs };
}

const cache = new Map<string, Catalog>();

/**
 * The schemas a body of this kind may use: the core schema, the enterprise extension for users
 * (RFC 7643 §4.3; Entra and Okta both send it even when the caller has not yet declared it to
 * scimmy), and any extension the caller has declared on scimmy's schema since.
 */
export function catalog(kind: ScimKind): Catalog {
  const schema = kind === 'User' ? SCIMMY.Schemas.User : SCIMMY.Schemas.Group;
  const def = schema.definition as unknown as Definition;
  const declared = def.attributes.filter((a): a is Definition => a instanceof SCIMMY.Types.SchemaDefinition);
  const extensions: Definition[] = kind === 'User' ? [SCIMMY.Schemas.EnterpriseUser.definition as unknown as Definition] : [];
  for (const d of declared) if (!extensions.some((e) => e.id.toLowerCase() === d.id.toLowerCase())) extensions.push(d);
  const key = `${kind}|${extensions.map((e) => e.id).join('|')}`;
  let found = cache.get(key);
  if (!found) {
    found = { kind, core: schemaInfo(def, true), extensions: extensions.map((e) => schemaInfo(e, false)) };
    cache.set(key, found);
  }
  return found;
}

/** A schema URN in its canonical case, when it is one this kind knows. */
export function knownSchemaId(cat: Catalog, urn: string): string | undefined {
  const lower = urn.toLowerCase();
  return [cat.core, ...cat.extensions].find((s) => s.id.toLowerCase() === lower)?.id;
}

/** An attribute path (RFC 7644 §3.10) resolved against the catalog. */
export interface ParsedPath {
  readonly schema: SchemaInfo;
  /** Undefined when the path is an extension schema URN by itself. */
  readonly attr: AttrInfo | undefined;
  /** The text between `[` and `]`, untouched. */
  readonly filter: string | undefined;
  readonly sub: AttrInfo | undefined;
}

const ATTR_PATH = /^([A-Za-z][\w$-]*)(?:\[([^\]]*)\])?(?:\.([A-Za-z$][\w$-]*))?$/;

/** Resolves `name.givenName`, `emails[type eq "work"].value`, `urn:…:User:manager.value`, `UserName`… or undefined. */
export function parsePath(cat: Catalog, path: string): ParsedPath | undefined {
  let schema = cat.core;
  let rest = path;
  const lower = path.toLowerCase();
  if (lower.startsWith('urn:')) {
    const found = [...cat.extensions, cat.core].find((s) => lower === s.id.toLowerCase() || lower.startsWith(`${s.id.toLowerCase()}:`));
    if (!found) return undefined;
    if (lower === found.id.toLowerCase()) return found.core ? undefined : { schema: found, attr: undefined, filter: undefined, sub: undefined };
    schema = found;
    rest = path.slice(found.id.length + 1);
  }
  const m = ATTR_PATH.exec(rest);
  if (!m) return undefined;
  const [, name = '', filter, subName] = m;
  const attr = schema.attrs.get(name.toLowerCase());
  if (!attr) return undefined;
  if (filter !== undefined && !attr.multiValued) return undefined;
  let sub: AttrInfo | undefined;
  if (subName !== undefined) {
    sub = attr.sub?.get(subName.toLowerCase());
    if (!sub) return undefined;
  }
  return { schema, attr, filter, sub };
}

/** The canonical spelling scimmy resolves (it needs exact attribute case when it assigns). */
export function renderPath(p: ParsedPath, opts: { filter?: boolean; sub?: boolean } = {}): string {
  const prefix = p.schema.core ? '' : `${p.schema.id}:`;
  if (!p.attr) return p.schema.id;
  const filter = opts.filter !== false && p.filter !== undefined ? `[${p.filter}]` : '';
  const sub = opts.sub !== false && p.sub ? `.${p.sub.name}` : '';
  return `${prefix}${p.attr.name}${filter}${sub}`;
}

export type Literal = string | number | boolean | null;

/**
 * Parses a value filter made only of `sub eq literal` joined by `and` (what Entra and Okta put in
 * paths) into [sub-attribute, literal] pairs; anything else (or, not, other operators, escapes) is
 * undefined and left to scimmy.
 */
export function parseEqFilter(attr: AttrInfo, filter: string): Array<[AttrInfo, Literal]> | undefined {
  const term = /^\s*([A-Za-z][\w$-]*)\s+eq\s+("[^"\\]*"|true|false|null|-?\d+(?:\.\d+)?)\s*(?:(and)\s+|$)/i;
  const pairs: Array<[AttrInfo, Literal]> = [];
  let rest = filter;
  while (rest.length) {
    const m = term.exec(rest);
    if (!m) return undefined;
    const [whole, name = '', raw = ''] = m;
    const sub = attr.sub?.get(name.toLowerCase());
    if (!sub) return undefined;
    const lower = raw.toLowerCase();
    const literal: Literal = raw.startsWith('"') ? raw.slice(1, -1) : lower === 'true' ? true : lower === 'false' ? false : lower === 'null' ? null : Number(raw);
    pairs.push([sub, literal]);
    rest = rest.slice(whole.length);
    if (!m[3] && rest.length) return undefined;
    if (m[3] && !rest.length) return undefined;
  }
  return pairs.length ? pairs : undefined;
}

/** Mirrors scimmy's `eq` (Filter.match): exact comparison, a "true"/"false" string matching a boolean. */
export function matchesEq(entry: unknown, pairs: Array<[AttrInfo, Literal]>): boolean {
  if (!isPlainObject(entry)) return false;
  return pairs.every(([sub, expected]) => {
    const actual = getCI(entry, sub.name);
    if (typeof actual === 'boolean' && typeof expected === 'string') {
      const l = expected.toLowerCase();
      return l === 'true' ? actual : l === 'false' ? !actual : false;
    }
    return actual === (expected ?? undefined);
  });
}
