/**
 * SCIM filtering, sorting and attribute lists (RFC7644§3.4.2.2, §3.4.2.3, §3.4.2.5) → Prisma.
 *
 * The filter string is parsed by our own parser (filter-parser.ts; it explains why not scimmy's)
 * into a tree, and the tree is translated here onto the columns the SCIM services keep beside
 * each resource. Nothing is expanded: and/or/not become Prisma AND/OR with negation pushed down
 * to the leaves, so the where grows linearly with the filter.
 *
 * The where returned filters attributes only. The caller ANDs it with the tenant scope
 * (`{ directoryId, deletedAt: null }` for users, `{ directoryId }` for groups), e.g.
 * `{ AND: [{ directoryId, deletedAt: null }, compileFilter('User', f)] }`; it never names
 * directoryId, orgId or deletedAt itself, so even a spread cannot override the scope.
 *
 * Semantics where the RFC leaves room:
 * - Comparisons follow RFC 7643 caseExact: userName, emails.value and Group displayName compare
 *   lower-cased against their *Normalized columns; other caseExact=false strings (displayName,
 *   name.*, title, userType, emails.type, employeeNumber, department) use Prisma
 *   `mode: 'insensitive'`; id, externalId and member/group ids compare exactly.
 * - Two-valued logic: an absent attribute (SQL NULL) does not equal anything, so
 *   `title ne "x"` and `not (title eq "x")` both match users without a title (SQL alone would
 *   drop them: NOT (NULL = 'x') is NULL).
 * - Multi-valued attributes match when any value matches (RFC7644§3.4.2.2):
 *   `emails.value ne "a@x"` is "has an email other than a@x"; `not (emails.value eq "a@x")` is
 *   "has no email a@x". A value filter `emails[type eq "work" and value co "@x"]` requires
 *   both on the same email.
 * - `pr`: a string attribute is present when it is neither null nor ""; a multi-valued
 *   attribute when it has any value; a NOT NULL column always.
 * - `eq null` matches an absent attribute, `ne null` a present one.
 * - An id that is not a UUID cannot match anything (no database error).
 * - Dates without a time zone are read as UTC.
 * - Unqualified employeeNumber / department are accepted as the enterprise extension's.
 */
import type { Prisma } from '../generated/prisma/client.js';
import { InvalidFilter } from '../domain/errors.js';
import { identifierKey } from '../domain/identity.js';
import { FILTER_LIMITS, parseAttrPath, parseFilter, type AttrExpr, type AttrPath, type CompareOp, type FilterNode, type FilterValue } from './filter-parser.js';

export { FILTER_LIMITS, parseFilter } from './filter-parser.js';
export type { FilterNode } from './filter-parser.js';

export type ScimKind = 'User' | 'Group';
/** The where type of a kind; generic helpers around compileFilter can return ScimWhere<K>. */
export type ScimWhere<K extends ScimKind> = K extends 'User' ? Prisma.ScimUserWhereInput : Prisma.ScimGroupWhereInput;

export const SCHEMAS = Object.freeze({
  user: 'urn:ietf:params:scim:schemas:core:2.0:User',
  enterpriseUser: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
  group: 'urn:ietf:params:scim:schemas:core:2.0:Group',
});

// ---------------------------------------------------------------------------------------------
// Attribute table

type ScalarAttr = {
  kind: 'scalar';
  /** SCIM name, for messages. */
  name: string;
  column: string;
  type: 'string' | 'boolean' | 'dateTime' | 'uuid';
  nullable: boolean;
  /** Strings only: true → exact; false → case-insensitive (lower-cased value or mode insensitive). */
  caseExact: boolean;
  /** The column holds the lower-cased value (userNameNormalized, ...): compare with the lower-cased filter value. */
  lowerCased: boolean;
  /** How the column's value was keyed from the attribute (and so the filter value is): identifierKey for userName and emails.value. */
  key: (s: string) => string;
};

type ComplexAttr = {
  kind: 'complex';
  name: string;
  /** Multi-valued attributes live in child rows: a Prisma list relation, matched with some/none. */
  relation: string | null;
  subs: Map<string, ScalarAttr>;
  /** `emails co "x"` means `emails.value co "x"` (RFC7644§3.4.2.2 on multi-valued attributes). */
  defaultSub: string | null;
};

type Attr = ScalarAttr | ComplexAttr;
type SchemaDef = { urn: string; attrs: Map<string, Attr> };

const lower = (s: string) => s.toLowerCase();

function scalar(name: string, column: string, type: ScalarAttr['type'], opts: { nullable?: boolean; caseExact?: boolean; lowerCased?: boolean; key?: (s: string) => string } = {}): ScalarAttr {
  return { kind: 'scalar', name, column, type, nullable: opts.nullable ?? false, caseExact: opts.caseExact ?? false, lowerCased: opts.lowerCased ?? false, key: opts.key ?? lower };
}

function complex(name: string, relation: string | null, defaultSub: string | null, subs: ScalarAttr[]): ComplexAttr {
  return { kind: 'complex', name, relation, defaultSub, subs: new Map(subs.map((s) => [s.name.toLowerCase(), s])) };
}

/** Keys are lower-case; Maps, not objects, so no name can resolve to an inherited property. */
function schema(urn: string, attrs: Attr[]): SchemaDef {
  return { urn, attrs: new Map(attrs.map((a) => [a.name.toLowerCase(), a])) };
}

const meta = (created: string, lastModified: string) =>
  complex('meta', null, null, [scalar('created', created, 'dateTime'), scalar('lastModified', lastModified, 'dateTime')]);

const USER_SCHEMAS: SchemaDef[] = [
  schema(SCHEMAS.user, [
    scalar('id', 'id', 'uuid'),
    scalar('externalId', 'externalId', 'string', { nullable: true, caseExact: true }),
    scalar('userName', 'userNameNormalized', 'string', { lowerCased: true, key: identifierKey }),
    scalar('active', 'active', 'boolean'),
    scalar('displayName', 'displayName', 'string', { nullable: true }),
    complex('name', null, null, [
      scalar('givenName', 'givenName', 'string', { nullable: true }),
      scalar('familyName', 'familyName', 'string', { nullable: true }),
    ]),
    scalar('title', 'title', 'string', { nullable: true }),
    scalar('userType', 'userType', 'string', { nullable: true }),
    complex('emails', 'emails', 'value', [
      scalar('value', 'valueNormalized', 'string', { lowerCased: true, key: identifierKey }),
      scalar('type', 'type', 'string', { nullable: true }),
      scalar('primary', 'primary', 'boolean'),
    ]),
    complex('groups', 'groups', 'value', [scalar('value', 'groupId', 'uuid')]),
    meta('createdAt', 'updatedAt'),
  ]),
  schema(SCHEMAS.enterpriseUser, [
    scalar('employeeNumber', 'employeeNumber', 'string', { nullable: true }),
    scalar('department', 'department', 'string', { nullable: true }),
  ]),
];

const GROUP_SCHEMAS: SchemaDef[] = [
  schema(SCHEMAS.group, [
    scalar('id', 'id', 'uuid'),
    scalar('externalId', 'externalId', 'string', { nullable: true, caseExact: true }),
    scalar('displayName', 'displayNameNormalized', 'string', { lowerCased: true }),
    complex('members', 'members', 'value', [scalar('value', 'userId', 'uuid')]),
    meta('createdAt', 'updatedAt'),
  ]),
];

const schemasOf = (kind: ScimKind) => (kind === 'User' ? USER_SCHEMAS : GROUP_SCHEMAS);

/** Every filterable path, for messages and for /ServiceProviderConfig documentation. */
export function filterableAttributes(kind: ScimKind): string[] {
  const out: string[] = [];
  schemasOf(kind).forEach((s, index) => {
    const prefix = index === 0 ? '' : `${s.urn}:`;
    for (const a of s.attrs.values()) {
      if (a.kind === 'scalar') out.push(prefix + a.name);
      else {
        if (a.defaultSub) out.push(prefix + a.name);
        for (const sub of a.subs.values()) out.push(`${prefix}${a.name}.${sub.name}`);
      }
    }
  });
  return out;
}

/** Attributes sortBy accepts: single-valued ones (multi-valued ones have no column to order by). */
export function sortableAttributes(kind: ScimKind): string[] {
  const out: string[] = [];
  schemasOf(kind).forEach((s, index) => {
    const prefix = index === 0 ? '' : `${s.urn}:`;
    for (const a of s.attrs.values()) {
      if (a.kind === 'scalar') out.push(prefix + a.name);
      else if (!a.relation) for (const sub of a.subs.values()) out.push(`${prefix}${a.name}.${sub.name}`);
    }
  });
  return out;
}

type Resolved = { container: ComplexAttr | null; attr: ScalarAttr | null };

function resolve(kind: ScimKind, path: AttrPath, purpose: 'filtering' | 'sorting'): Resolved {
  const schemas = schemasOf(kind);
  const list = () => (purpose === 'filtering' ? filterableAttributes(kind) : sortableAttributes(kind)).join(', ');
  const unsupported = () => new InvalidFilter(`${purpose} on '${path.text}' is not supported; ${purpose === 'filtering' ? 'filterable' : 'sortable'} attributes: ${list()}`);
  let candidates: SchemaDef[];
  if (path.schema) {
    const s = schemas.find((x) => x.urn.toLowerCase() === path.schema!.toLowerCase());
    if (!s) {
      throw new InvalidFilter(`'${path.schema}' is not a schema of ${kind}s (in '${path.text}'); use ${schemas.map((x) => x.urn).join(' or ')}`);
    }
    candidates = [s];
  } else {
    candidates = schemas;
  }
  const [first, second] = path.segments as [string, string | undefined];
  let top: Attr | undefined;
  for (const s of candidates) {
    top = s.attrs.get(first.toLowerCase());
    if (top) break;
  }
  if (!top) throw unsupported();
  if (top.kind === 'scalar') {
    if (second !== undefined) throw new InvalidFilter(`'${top.name}' has no sub-attributes (in '${path.text}')`);
    return { container: null, attr: top };
  }
  if (second === undefined) return { container: top, attr: top.defaultSub ? top.subs.get(top.defaultSub)! : null };
  const sub = top.subs.get(second.toLowerCase());
  if (!sub) throw unsupported();
  return { container: top, attr: sub };
}

function resolveSub(container: ComplexAttr, path: AttrPath): ScalarAttr {
  const sub = path.schema || path.segments.length !== 1 ? undefined : container.subs.get(path.segments[0]!.toLowerCase());
  if (!sub) {
    const names = [...container.subs.values()].map((s) => s.name).join(', ');
    throw new InvalidFilter(`filtering on '${path.text}' inside '${container.name}[…]' is not supported; filterable sub-attributes of ${container.name}: ${names}`);
  }
  return sub;
}

// ---------------------------------------------------------------------------------------------
// Translation

type Where = Record<string, unknown>;

/** Constant wheres, recognised by identity so that and/or can simplify around them. */
const ALL: Where = Object.freeze({}) as Where;
const noneMarks = new WeakSet<Where>();
/** Matches no row: `col IN ()` (Prisma renders an always-false condition). */
function none(column: string): Where {
  const w = { [column]: { in: [] } };
  noneMarks.add(w);
  return w;
}
const isNone = (w: Where) => noneMarks.has(w);

function and(items: Where[]): Where {
  const flat: Where[] = [];
  for (const w of items) {
    if (w === ALL) continue;
    if (isNone(w)) return w;
    if (Object.keys(w).length === 1 && Array.isArray(w.AND)) flat.push(...(w.AND as Where[]));
    else flat.push(w);
  }
  if (flat.length === 0) return ALL;
  return flat.length === 1 ? flat[0]! : { AND: flat };
}

function or(items: Where[]): Where {
  const flat: Where[] = [];
  let anyNone: Where | null = null;
  for (const w of items) {
    if (w === ALL) return ALL;
    if (isNone(w)) {
      anyNone ??= w;
      continue;
    }
    if (Object.keys(w).length === 1 && Array.isArray(w.OR)) flat.push(...(w.OR as Where[]));
    else flat.push(w);
  }
  if (flat.length === 0) return anyNone ?? ALL;
  return flat.length === 1 ? flat[0]! : { OR: flat };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(Z|z|[+-]\d{2}:?\d{2})?)?$/;
const PRISMA_OP: Record<Exclude<CompareOp, 'ne'>, string> = {
  eq: 'equals', co: 'contains', sw: 'startsWith', ew: 'endsWith', gt: 'gt', ge: 'gte', lt: 'lt', le: 'lte',
};
const OPS_BY_TYPE: Record<ScalarAttr['type'], ReadonlySet<string>> = {
  string: new Set(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le', 'pr']),
  boolean: new Set(['eq', 'ne', 'pr']),
  dateTime: new Set(['eq', 'ne', 'gt', 'ge', 'lt', 'le', 'pr']),
  uuid: new Set(['eq', 'ne', 'pr']),
};
const TYPE_NAME: Record<ScalarAttr['type'], string> = { string: 'a string', boolean: 'a boolean', dateTime: 'a dateTime', uuid: 'an id' };

function describeValue(v: FilterValue): string {
  if (v.type === 'string') return JSON.stringify(v.value);
  return v.raw;
}

/** The filter value as the attribute's type, or InvalidFilter. `null` was handled by the caller. */
function coerce(attr: ScalarAttr, label: string, v: Exclude<FilterValue, { type: 'null' }>): string | boolean | Date {
  switch (attr.type) {
    case 'string':
    case 'uuid':
      // Unquoted true/false/numbers compare as the text written (userName eq 123).
      return v.type === 'string' ? v.value : v.raw;
    case 'boolean':
      if (v.type === 'boolean') return v.value;
      if (v.type === 'string' && /^(true|false)$/i.test(v.value)) return v.value.toLowerCase() === 'true';
      throw new InvalidFilter(`'${label}' is a boolean; compare it with true or false, not ${describeValue(v)}`);
    case 'dateTime': {
      const text = v.type === 'string' ? v.value : v.raw;
      const m = DATE_TIME.exec(text);
      // xsd:dateTime without a zone is read as UTC, not as the server's local time.
      const iso = m && text.length > 10 && !m[1] ? `${text}Z` : text;
      const date = m ? new Date(iso) : null;
      // Year 0 and BC dates are valid JavaScript but not what a SCIM client means (and PostgreSQL refuses year 0).
      if (!date || Number.isNaN(date.getTime()) || date.getUTCFullYear() < 1) {
        throw new InvalidFilter(`'${label}' is a dateTime; compare it with a date such as "2024-01-31T12:00:00Z", not ${describeValue(v)}`);
      }
      return date;
    }
  }
}

/** LIKE / ILIKE pattern for a literal text (PostgreSQL's default escape character is the backslash). */
const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/** The positive condition of `attr op value` on the row that holds attr.column. */
function leafPositive(attr: ScalarAttr, label: string, op: Exclude<CompareOp, 'ne'> | 'pr', value: FilterValue | null): Where {
  const col = attr.column;
  if (op === 'pr') {
    if (!attr.nullable) return attr.type === 'string' ? { [col]: { not: '' } } : ALL;
    return attr.type === 'string' ? and([{ [col]: { not: null } }, { [col]: { not: '' } }]) : { [col]: { not: null } };
  }
  if (!value) throw new InvalidFilter(`'${op}' needs a value`);
  if (value.type === 'null') {
    if (op !== 'eq') throw new InvalidFilter(`'${label} ${op} null' is not a valid comparison; only eq and ne accept null`);
    return attr.nullable ? { [col]: null } : none(col);
  }
  const v = coerce(attr, label, value);
  if (attr.type === 'uuid') {
    const id = v as string;
    return UUID.test(id) ? { [col]: id.toLowerCase() } : none(col);
  }
  if (attr.type === 'boolean') return { [col]: v };
  if (attr.type === 'dateTime') return { [col]: { [PRISMA_OP[op]]: v } };
  let text = v as string;
  if (attr.lowerCased) text = attr.key(text);
  const insensitive = !attr.caseExact && !attr.lowerCased;
  if (op === 'eq' && !insensitive) return { [col]: text };
  // Prisma renders contains/startsWith/endsWith as LIKE, and insensitive equals as ILIKE, with the
  // value as the pattern and no escaping: "_" or "%" in a filter value would be a wildcard.
  if (op === 'co' || op === 'sw' || op === 'ew' || (op === 'eq' && insensitive)) text = escapeLike(text);
  return { [col]: { [PRISMA_OP[op]]: text, ...(insensitive ? { mode: 'insensitive' } : {}) } };
}

/** The complement of a positive leaf, counting an absent attribute (NULL) as not matching. */
function leafNegative(attr: ScalarAttr, positive: Where): Where {
  if (positive === ALL) return none(attr.column);
  if (isNone(positive)) return ALL;
  return attr.nullable ? or([{ [attr.column]: null }, { NOT: positive }]) : { NOT: positive };
}

function leaf(attr: ScalarAttr, label: string, e: AttrExpr, negate: boolean): Where {
  if (!OPS_BY_TYPE[attr.type].has(e.op)) {
    throw new InvalidFilter(`operator '${e.op}' cannot be used with '${label}', which is ${TYPE_NAME[attr.type]}; use ${[...OPS_BY_TYPE[attr.type]].join(', ')}`);
  }
  // ne is not(eq), with the same null semantics (RFC7644§3.4.2.2: "not identical").
  if (e.op === 'ne') return leaf(attr, label, { ...e, op: 'eq' }, !negate);
  const col = attr.column;
  if (e.op === 'eq' && e.value?.type === 'null') {
    // eq null: the attribute is absent; negated, it is there.
    if (!attr.nullable) return negate ? ALL : none(col);
    return negate ? { [col]: { not: null } } : { [col]: null };
  }
  if (e.op === 'pr' && negate) {
    if (attr.type === 'string') return attr.nullable ? or([{ [col]: null }, { [col]: '' }]) : { [col]: '' };
    return attr.nullable ? { [col]: null } : none(col);
  }
  const positive = leafPositive(attr, label, e.op, e.value);
  return negate ? leafNegative(attr, positive) : positive;
}

/** Wraps a condition on child rows: any child matches (some), or, negated, none does. */
function related(container: ComplexAttr, inner: Where, negate: boolean): Where {
  return { [container.relation!]: { [negate ? 'none' : 'some']: inner === ALL ? {} : inner } };
}

function translate(kind: ScimKind, node: FilterNode, negate: boolean, ctx: ComplexAttr | null): Where {
  switch (node.kind) {
    case 'and': {
      const items = node.items.map((n) => translate(kind, n, negate, ctx));
      return negate ? or(items) : and(items);
    }
    case 'or': {
      const items = node.items.map((n) => translate(kind, n, negate, ctx));
      return negate ? and(items) : or(items);
    }
    case 'not':
      return translate(kind, node.item, !negate, ctx);
    case 'attr': {
      if (ctx) return leaf(resolveSub(ctx, node.path), `${ctx.name}.${node.path.text}`, node, negate);
      const { container, attr } = resolve(kind, node.path, 'filtering');
      if (container?.relation) {
        // `emails pr`: the user has any email at all.
        const inner = attr && !(node.op === 'pr' && node.path.segments.length === 1) ? leaf(attr, node.path.text, node, false) : ALL;
        if (isNone(inner)) return negate ? ALL : none('id');
        return related(container, inner, negate);
      }
      if (!attr) {
        const subs = [...container!.subs.values()].map((s) => `${container!.name}.${s.name}`).join(', ');
        throw new InvalidFilter(`'${node.path.text}' is a complex attribute; filter on one of its sub-attributes: ${subs}`);
      }
      return leaf(attr, node.path.text, node, negate);
    }
    case 'valuePath': {
      if (ctx) throw new InvalidFilter(`value filters cannot be nested ('${node.path.text}[…]')`);
      const { container } = resolve(kind, node.path, 'filtering');
      if (!container || node.path.segments.length !== 1) {
        throw new InvalidFilter(`'${node.path.text}[…]': a value filter applies to a complex attribute such as emails or members`);
      }
      const thenAttr = node.then ? resolveSub(container, node.then.path) : null;
      const thenLabel = `${container.name}.${node.then?.path.text ?? ''}`;
      if (container.relation) {
        const parts = [translate(kind, node.filter, false, container)];
        if (node.then && thenAttr) parts.push(leaf(thenAttr, thenLabel, node.then, false));
        const inner = and(parts);
        if (isNone(inner)) return negate ? ALL : none('id');
        return related(container, inner, negate);
      }
      // A single-valued complex attribute (name[givenName sw "a"]): its sub-attributes are columns of the row.
      const parts = [translate(kind, node.filter, negate, container)];
      if (node.then && thenAttr) parts.push(leaf(thenAttr, thenLabel, node.then, negate));
      return negate ? or(parts) : and(parts);
    }
  }
}

/**
 * Parses, validates and translates a SCIM filter (RFC7644§3.4.2.2) into a Prisma where for the
 * resource kind. Throws InvalidFilter with a message saying what is wrong (and where, for syntax).
 * The result must be ANDed with the directory scope by the caller (see the top of this file).
 */
export function compileFilter(kind: 'User', expr: string): Prisma.ScimUserWhereInput;
export function compileFilter(kind: 'Group', expr: string): Prisma.ScimGroupWhereInput;
export function compileFilter<K extends ScimKind>(kind: K, expr: string): ScimWhere<K>;
export function compileFilter(kind: ScimKind, expr: string): Prisma.ScimUserWhereInput | Prisma.ScimGroupWhereInput {
  if (kind !== 'User' && kind !== 'Group') throw new InvalidFilter(`filters apply to Users and Groups, not ${String(kind)}`);
  const where = translate(kind, parseFilter(expr), false, null);
  // A fresh object: callers may extend it without touching the shared constants.
  return (where === ALL ? {} : where) as Prisma.ScimUserWhereInput | Prisma.ScimGroupWhereInput;
}

// ---------------------------------------------------------------------------------------------
// Sorting (RFC7644§3.4.2.3)

export type SortOrder = 'asc' | 'desc';

/**
 * sortBy / sortOrder → Prisma orderBy, ending with createdAt asc, id asc as tie-breakers (those
 * already ordered on are not repeated). Case-insensitive attributes with a lower-cased column
 * (userName, Group displayName) sort on it; others sort as the database collates them.
 */
export function compileSort(kind: ScimKind, sortBy?: string, sortOrder?: string): Array<Record<string, SortOrder>> {
  let direction: SortOrder = 'asc';
  if (sortOrder !== undefined && sortOrder !== '') {
    if (typeof sortOrder !== 'string' || !/^(ascending|descending)$/i.test(sortOrder)) {
      throw new InvalidFilter(`sortOrder must be "ascending" or "descending", not ${JSON.stringify(String(sortOrder).slice(0, 50))}`);
    }
    direction = sortOrder.toLowerCase() === 'descending' ? 'desc' : 'asc';
  }
  const order: Array<Record<string, SortOrder>> = [];
  if (sortBy !== undefined && sortBy !== '') {
    if (typeof sortBy !== 'string' || sortBy.length > 300 || /\s/.test(sortBy.trim())) {
      throw new InvalidFilter('sortBy must be one attribute path, such as userName or meta.created');
    }
    const path = parseAttrPath(sortBy.trim());
    const { container, attr } = resolve(kind, path, 'sorting');
    if (!attr || container?.relation) {
      throw new InvalidFilter(`sorting on '${path.text}' is not supported; sortable attributes: ${sortableAttributes(kind).join(', ')}`);
    }
    order.push({ [attr.column]: direction });
  }
  for (const column of ['createdAt', 'id']) {
    if (!order.some((o) => Object.hasOwn(o, column))) order.push({ [column]: 'asc' });
  }
  return order;
}

// ---------------------------------------------------------------------------------------------
// attributes / excludedAttributes (RFC7644§3.4.2.5)

/**
 * Validates an `attributes` or `excludedAttributes` value: comma-separated attribute paths,
 * optionally URN-qualified (a bare extension URN names the whole extension). Refuses
 * __proto__ / constructor / prototype segments and values over FILTER_LIMITS.maxLength.
 * Returns the trimmed paths in order (empty entries dropped); undefined or "" → [].
 * Whether an attribute exists is not checked here (unknown ones are simply not returned).
 */
export function parseAttributeList(value: string | undefined): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value !== 'string') throw new InvalidFilter('attributes must be a comma-separated string');
  if (value.length > FILTER_LIMITS.maxLength) {
    throw new InvalidFilter(`the attribute list is ${value.length} characters long; the limit is ${FILTER_LIMITS.maxLength}`);
  }
  const out: string[] = [];
  for (const raw of value.split(',')) {
    const item = raw.trim();
    if (!item) continue;
    if (/\s/.test(item)) throw new InvalidFilter(`'${item}' is not a valid attribute path`);
    out.push(parseAttrPath(item, undefined, { allowSchemaOnly: true }).text);
  }
  return out;
}
