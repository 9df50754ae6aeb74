import SCIMMY from 'scimmy';

/**
 * RFC 7643 §7 ("canonicalValues … MAY be used", §2.3.1 "service providers MAY allow other values")
 * makes canonical values suggestions. scimmy enforces them: `emails[].type: "internal"` failed the
 * whole user with 400, and `x509Certificates.type` (canonicalValues `[]`) refused every value
 * (issue 13, defect 2). Here each attribute's list is taken off scimmy's config — so neither its
 * coercion nor our compiled serializer refuses other values — and kept as suggestions: the dialect
 * normaliser still folds `"Work"` to `"work"`, and /Schemas still publishes them.
 */

type AttributeLike = { name: string; subAttributes?: AttributeLike[]; config: { canonicalValues?: unknown } };
type DefinitionLike = { id: string; attributes: unknown[] };

const byAttribute = new WeakMap<object, readonly string[]>();
/** `${schemaId}|${attribute path, lower-case}` → values, for the /Schemas documents. */
const byPath = new Map<string, readonly string[]>();

const isAttribute = (a: unknown): a is AttributeLike => a instanceof SCIMMY.Types.Attribute;
const isDefinition = (a: unknown): a is DefinitionLike => a instanceof SCIMMY.Types.SchemaDefinition;

function release(schemaId: string, a: AttributeLike, path: string): void {
  const values = a.config.canonicalValues;
  if (Array.isArray(values)) {
    // An empty list suggests nothing (scimmy's x509Certificates.type, roles.type).
    if (values.length) {
      byAttribute.set(a, values as string[]);
      byPath.set(`${schemaId}|${path.toLowerCase()}`, values as string[]);
    }
    a.config.canonicalValues = false;
  }
  for (const s of a.subAttributes ?? []) release(schemaId, s, `${path}.${s.name}`);
}

/** Makes every canonical value list of these schema definitions (and their extensions) non-binding. Idempotent. */
export function releaseCanonicalValues(definitions: DefinitionLike[]): void {
  for (const d of definitions) {
    for (const a of d.attributes) {
      if (isAttribute(a)) release(d.id, a, a.name);
      else if (isDefinition(a)) releaseCanonicalValues([a]);
    }
  }
}

/** The suggested values of a scimmy attribute (whether or not they were released yet). */
export function suggestedValues(a: { config: { canonicalValues?: unknown } }): readonly string[] | undefined {
  const own = a.config.canonicalValues;
  return byAttribute.get(a) ?? (Array.isArray(own) && own.length ? (own as string[]) : undefined);
}

type SchemaAttributeDoc = { name?: unknown; subAttributes?: unknown; canonicalValues?: unknown };

/** Puts the suggestions back into a /Schemas document (one schema resource or a ListResponse of them). */
export function withSuggestedValues(doc: unknown): unknown {
  const put = (schemaId: string, attrs: unknown, prefix: string) => {
    if (!Array.isArray(attrs)) return;
    for (const a of attrs as SchemaAttributeDoc[]) {
      if (typeof a?.name !== 'string') continue;
      const path = prefix ? `${prefix}.${a.name}` : a.name;
      const values = byPath.get(`${schemaId}|${path.toLowerCase()}`);
      if (values && a.canonicalValues === undefined) a.canonicalValues = [...values];
      put(schemaId, a.subAttributes, path);
    }
  };
  const one = (s: unknown) => {
    const r = s as { id?: unknown; attributes?: unknown };
    if (typeof r?.id === 'string') put(r.id, r.attributes, '');
  };
  const list = (doc as { Resources?: unknown })?.Resources;
  if (Array.isArray(list)) list.forEach(one);
  else one(doc);
  return doc;
}
