import SCIMMY from 'scimmy';

/**
 * Outbound rendering of stored SCIM resources without building a scimmy Schema instance.
 *
 * `new SCIMMY.Schemas.User(data, 'out', basepath)` coerces every attribute twice through proxies
 * and property descriptors (≈ half the CPU of a list of 100 users). What it produces for a resource
 * that scimmy itself coerced on the way in (which is what ScimUser.resource / ScimGroup.resource
 * hold: see userInput/groupInput) is simple, and this module produces the same JSON from a
 * serializer compiled once from the same schema definitions:
 *
 * - `schemas`: the schema id, the ids of extensions present, then the stored `schemas`, de-duplicated;
 * - `meta`: the stored meta plus `resourceType` and `location` (RFC 7643 §3.1), dates as ISO strings;
 * - every attribute, and every sub-attribute, in the order the schema declares it (PostgreSQL's
 *   jsonb keeps keys in its own order), nulls dropped, attributes returned "never" (password)
 *   and inbound-only attributes dropped.
 *
 * Anything this serializer is not sure to render exactly as scimmy would (a key that is not a
 * declared attribute in its declared case, a value of the wrong type, a non-canonical value, a
 * missing required value, an empty complex value) makes it return undefined, and the caller falls
 * back to scimmy: a stored resource never renders differently, it only renders faster.
 * test/scim/render.test.ts compares both on every dialect fixture and on generated resources.
 * `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5) still go through scimmy.
 */

type Obj = Record<string, unknown>;
type AnyDefinition = { id: string; name: string; attributes: unknown[] };
type AttributeLike = {
  name: string; type: string; subAttributes?: AttributeLike[];
  config: { multiValued?: boolean; required?: boolean; direction?: string; returned?: boolean | string; canonicalValues?: unknown };
};

type Node = {
  name: string; type: string; multi: boolean; required: boolean;
  /** Coerced but left out of the JSON (returned: never), or skipped by the outbound direction. */
  hidden: boolean;
  canonical: readonly unknown[] | null;
  sub: Node[] | null;
  subNames: Set<string> | null;
};
type Compiled = { id: string; name: string; nodes: Node[]; names: Set<string>; extensions: { id: string; compiled: Compiled }[] };

/** The bail-out signal: this resource is rendered by scimmy instead. */
const BAIL: unique symbol = Symbol('bail');
type Bail = typeof BAIL;

const isAttribute = (a: unknown): a is AttributeLike => a instanceof SCIMMY.Types.Attribute;
const isDefinition = (a: unknown): a is AnyDefinition => a instanceof SCIMMY.Types.SchemaDefinition;

function node(a: AttributeLike): Node {
  const dir = a.config.direction ?? 'both';
  const returned = a.config.returned;
  const sub = a.type === 'complex' ? (a.subAttributes ?? []).map(node) : null;
  return {
    name: a.name, type: a.type, multi: a.config.multiValued === true, required: a.config.required === true,
    // SchemaDefinition.coerce skips inbound-only attributes for 'out'; toJSON drops returned never/false.
    hidden: !(dir === 'both' || dir === 'out') || returned === false || returned === 'never',
    canonical: Array.isArray(a.config.canonicalValues) ? a.config.canonicalValues : null,
    sub, subNames: sub ? new Set(sub.map((s) => s.name)) : null,
  };
}

function compile(definition: AnyDefinition): Compiled {
  const nodes = definition.attributes.filter(isAttribute).map(node);
  const extensions = definition.attributes.filter(isDefinition).map((d) => ({ id: d.id, compiled: compile(d) }));
  return { id: definition.id, name: definition.name, nodes, names: new Set([...nodes.map((n) => n.name), ...extensions.map((e) => e.id)]), extensions };
}

const plain = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

function scalar(n: Node, v: unknown): unknown {
  if (n.canonical && !n.canonical.includes(v)) return BAIL;
  switch (n.type) {
    case 'string': case 'reference': case 'binary': return typeof v === 'string' ? v : BAIL;
    case 'boolean': return typeof v === 'boolean' ? v : BAIL;
    case 'integer': return typeof v === 'number' && Number.isInteger(v) ? v : BAIL;
    case 'dateTime': {
      if (!(v instanceof Date) && typeof v !== 'string') return BAIL;
      const d = new Date(v);
      return Number.isNaN(d.getTime()) ? BAIL : d.toISOString();
    }
    default: return BAIL; // decimal and anything else: scimmy's own number checks
  }
}

function complex(n: Node, v: unknown): Obj | Bail {
  if (!plain(v)) return BAIL;
  for (const k in v) if (!n.subNames!.has(k)) return BAIL;
  const out: Obj = {};
  for (const s of n.sub!) {
    const r = value(s, v[s.name]);
    if (r === BAIL) return BAIL;
    if (r !== undefined && !s.hidden) out[s.name] = r;
  }
  return out;
}

function value(n: Node, v: unknown): unknown {
  if (v === undefined || v === null) return n.required ? BAIL : undefined;
  if (n.multi) {
    if (!Array.isArray(v)) return BAIL;
    const out: unknown[] = new Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const r = n.sub ? complex(n, v[i]) : v[i] === null ? BAIL : scalar(n, v[i]);
      if (r === BAIL) return BAIL;
      out[i] = r;
    }
    return out;
  }
  if (Array.isArray(v)) return BAIL;
  if (n.sub) {
    const r = complex(n, v);
    // An empty single complex value: scimmy's handling of it is not worth copying.
    return r === BAIL || Object.keys(r).length === 0 ? BAIL : r;
  }
  return scalar(n, v);
}

const COMMON = new Set(['schemas', 'id', 'externalId', 'meta']);

function extension(c: Compiled, v: unknown): Obj | Bail {
  if (!plain(v)) return BAIL;
  for (const k in v) if (!c.names.has(k) || COMMON.has(k)) return BAIL;
  const out: Obj = {};
  for (const n of c.nodes) {
    if (COMMON.has(n.name)) continue;
    const r = value(n, v[n.name]);
    if (r === BAIL) return BAIL;
    if (r !== undefined && !n.hidden) out[n.name] = r;
  }
  return Object.keys(out).length ? out : BAIL;
}

function render(c: Compiled, data: Obj, basepath: string): Obj | undefined {
  for (const k in data) if (!c.names.has(k)) return undefined;
  const stored = data.schemas;
  if (stored !== undefined && (!Array.isArray(stored) || stored.some((s) => typeof s !== 'string'))) return undefined;
  // scimmy's Schema constructor refuses stored schemas that lack the resource's own schema.
  if (stored && stored.length && !stored.includes(c.id)) return undefined;
  const schemas = [...new Set<string>([c.id, ...c.extensions.filter((e) => data[e.id] !== undefined).map((e) => e.id), ...((stored as string[] | undefined) ?? [])])];
  const id = data.id;
  if (typeof id !== 'string' || !id) return undefined;
  const meta = data.meta;
  if (meta !== undefined && !plain(meta)) return undefined;
  const metaSource: Obj = { ...(meta ?? {}), resourceType: c.name, location: `${basepath}/${id}` };
  const out: Obj = {};
  for (const n of c.nodes) {
    const v = n.name === 'schemas' ? schemas : n.name === 'meta' ? metaSource : data[n.name];
    const r = value(n, v);
    if (r === BAIL) return undefined;
    if (r !== undefined && !n.hidden) out[n.name] = r;
  }
  for (const e of c.extensions) {
    if (data[e.id] === undefined) continue;
    const r = extension(e.compiled, data[e.id]);
    if (r === BAIL) return undefined;
    out[e.id] = r;
  }
  return out;
}

let compiled: { User: Compiled; Group: Compiled } | null = null;
/** Compiled on first use; declareResources() calls this after changing the definitions. */
export function recompileSerializers(): void {
  compiled = null;
}
function serializers() {
  return (compiled ??= {
    User: compile(SCIMMY.Schemas.User.definition as unknown as AnyDefinition),
    Group: compile(SCIMMY.Schemas.Group.definition as unknown as AnyDefinition),
  });
}

/**
 * The outbound JSON of a resource (data: the stored resource with id and meta {created,
 * lastModified, version}), or undefined when scimmy must render it. basepath is the
 * resource type's URL (`…/Users`), as for scimmy.
 */
export function fastRender(kind: 'User' | 'Group', data: Obj, basepath: string): Obj | undefined {
  return render(serializers()[kind], data, basepath);
}
