import { InvalidInput } from '../domain/errors.js';
import { catalog, isPlainObject, type AttrInfo, type Obj, type ScimKind, type SchemaInfo } from './dialect-schema.js';

/**
 * The entries of multi-valued attributes must have the attribute's shape (RFC 7643 §2.4: a
 * multi-valued attribute is an array of values of its type; §2.3.8 a complex value is an object).
 * scimmy turns `emails: [[[]]]` or `[null]` into `[{}]` / `[null]` and the user was created (issue 13,
 * defect 5); such a body is a 400 invalidValue naming the entry. Wrong shapes of single values
 * (`name: "x"`, `userName: []`) scimmy refuses itself. readOnly attributes (`groups`) are ignored
 * on input anyway (RFC 7643 §2.2), whatever their shape.
 */
export function assertValueShapes(kind: ScimKind, body: unknown): void {
  if (!isPlainObject(body)) return;
  const cat = catalog(kind);
  const problems: { path: string; message: string }[] = [];
  check(cat.core, body, '', problems);
  for (const ext of cat.extensions) {
    const key = Object.keys(body).find((k) => k.toLowerCase() === ext.id.toLowerCase());
    const value = key === undefined ? undefined : body[key];
    if (isPlainObject(value)) check(ext, value, `${ext.id}:`, problems);
  }
  if (problems.length) throw new InvalidInput(problems.map((p) => `${p.path}: ${p.message}`).join('; '), problems);
}

function check(schema: SchemaInfo, o: Obj, prefix: string, problems: { path: string; message: string }[]): void {
  for (const [key, value] of Object.entries(o)) {
    const attr = schema.attrs.get(key.toLowerCase());
    if (!attr || attr.readOnly || !attr.multiValued || !Array.isArray(value)) continue;
    value.forEach((entry, i) => {
      const wrong = wrongShape(attr, entry);
      if (wrong) problems.push({ path: `${prefix}${attr.name}[${i}]`, message: wrong });
    });
    if (problems.length >= 5) return;
  }
}

const shapeOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);

/** What is wrong with one entry of a multi-valued attribute, or null. */
export function wrongShape(attr: AttrInfo, entry: unknown): string | null {
  if (attr.type === 'complex') {
    if (isPlainObject(entry)) return null;
    const subs = attr.sub ? [...attr.sub.values()].map((s) => s.name).join(', ') : '';
    return `each value of ${attr.name} is an object (${subs}); got ${shapeOf(entry)}`;
  }
  if (entry === null || typeof entry === 'object') return `each value of ${attr.name} is a ${attr.type}; got ${shapeOf(entry)}`;
  return null;
}
