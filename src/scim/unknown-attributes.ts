/**
 * Attributes the schema does not know (issue 13, defect 6). RFC 7644 leaves open what a service
 * does with them; identity providers send custom mappings (an Okta profile attribute, an Entra
 * extension attribute) and quarantine an app that refuses them, so orgsync ignores them on POST,
 * PUT and PATCH alike and names each one once as a sync issue of the directory.
 */
import { catalog, isPlainObject, type AttrInfo, type Catalog, type Obj, type ScimKind } from './dialect-schema.js';

/** The name an unknown attribute path is listed under: its attribute, without filter. */
export function attributeNameOf(path: string): string | undefined {
  const m = /^(?:(urn:[^[\]]*):)?([A-Za-z][\w$-]*)(?:\[[^\]]*\])?(?:\.([A-Za-z$][\w$-]*))?$/i.exec(path);
  if (!m) return undefined;
  return `${m[1] ? `${m[1]}:` : ''}${m[2]}${m[3] ? `.${m[3]}` : ''}`;
}

/**
 * Whether a name (`title`, `name.middleName`, `urn:…:User:department`) is a known attribute or
 * sub-attribute. A path that does not resolve although its name is known is wrong in some other
 * way (a filter on a single-valued attribute): that is an error, not an unknown attribute.
 */
export function isKnownAttribute(cat: Catalog, name: string): boolean {
  const lower = name.toLowerCase();
  const schema = [...cat.extensions, cat.core].find((s) => lower.startsWith(`${s.id.toLowerCase()}:`));
  const rest = schema ? name.slice(schema.id.length + 1) : lower.startsWith('urn:') ? undefined : name;
  if (rest === undefined) return false;
  const [attrName, subName] = rest.split('.');
  const attr = (schema ?? cat.core).attrs.get(attrName!.toLowerCase());
  if (!attr) return false;
  return subName === undefined || Boolean(attr.sub?.has(subName.toLowerCase()));
}

function unknownSubs(attr: AttrInfo, v: unknown, prefix: string, out: Set<string>) {
  if (attr.type !== 'complex' || !attr.sub) return;
  for (const entry of attr.multiValued && Array.isArray(v) ? v : [v]) {
    if (!isPlainObject(entry)) continue;
    for (const k of Object.keys(entry)) if (!attr.sub.has(k.toLowerCase())) out.add(`${prefix}${attr.name}.${k}`);
  }
}

/** The unknown attributes of a (dialect-normalised) POST/PUT body, as names for the sync issue. */
export function unknownAttributes(kind: ScimKind, body: unknown): string[] {
  if (!isPlainObject(body)) return [];
  const cat = catalog(kind);
  const out = new Set<string>();
  for (const [key, v] of Object.entries(body as Obj)) {
    const lower = key.toLowerCase();
    if (lower === 'schemas') continue;
    const ext = cat.extensions.find((s) => s.id.toLowerCase() === lower);
    if (ext) {
      if (!isPlainObject(v)) continue;
      for (const [k, x] of Object.entries(v)) {
        const attr = ext.attrs.get(k.toLowerCase());
        if (!attr) out.add(`${ext.id}:${k}`);
        else unknownSubs(attr, x, `${ext.id}:`, out);
      }
      continue;
    }
    const attr = cat.core.attrs.get(lower);
    if (!attr) out.add(key);
    else unknownSubs(attr, v, '', out);
  }
  return [...out];
}
