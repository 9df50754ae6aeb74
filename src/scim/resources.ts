import SCIMMY from 'scimmy';
import type { ScimUserRow } from '../store/scim-user-store.js';
import type { ScimGroupRow } from '../store/scim-group-store.js';
import { scimEmailsOf, type ScimUserInput } from '../services/scim-user-service.js';
import type { ScimGroupInput } from '../services/scim-group-service.js';
import { fastRender, recompileSerializers } from './render.js';
import { identifierKey } from '../domain/identity.js';
import { releaseCanonicalValues } from './canonical-values.js';
import { assertValueShapes } from './value-shapes.js';
import { project, type Projection } from './attribute-projection.js';

export const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
type Obj = Record<string, unknown>;

let declared = false;
/** Declares our resource types to scimmy once (discovery documents are built from them). */
export function declareResources(): void {
  if (declared) return;
  declared = true;
  SCIMMY.Resources.declare(SCIMMY.Resources.User.extend(SCIMMY.Schemas.EnterpriseUser, false));
  SCIMMY.Resources.declare(SCIMMY.Resources.Group);
  // Canonical values are suggestions (RFC 7643 §7; issue 13 defect 2): scimmy refused `emails[].type
  // "internal"`, and any roles.type or x509Certificates.type (its lists there are empty).
  releaseCanonicalValues([SCIMMY.Schemas.User.definition, SCIMMY.Schemas.EnterpriseUser.definition, SCIMMY.Schemas.Group.definition] as never);
  recompileSerializers();
}

const str = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v : null);

/** Coerces a (dialect-normalised) body with scimmy's User schema: types checked, readOnly attributes dropped (RFC 7643 §2.2). */
export function userInput(body: unknown): ScimUserInput {
  assertValueShapes('User', body);
  return userInputOf(JSON.parse(JSON.stringify(new SCIMMY.Schemas.User(body as Obj, 'in'))) as Obj);
}

/**
 * The input of a resource the PATCH engine produced (patch-engine.ts), without a scimmy instance:
 * the compiled serializer (render.ts) checks every value's type and shape against the schema and
 * gives what scimmy's coercion gives for such a resource; undefined when it cannot be sure (then
 * the caller applies the PatchOp with scimmy, which coerces or refuses).
 */
export function coercedUserInput(resource: Obj): ScimUserInput | undefined {
  const { id: _id, meta: _meta, ...rest } = resource;
  const out = fastRender('User', { ...rest, id: '-' }, '');
  if (!out) return undefined;
  delete out.id;
  delete out.meta;
  return userInputOf(out);
}

function userInputOf(instance: Obj): ScimUserInput {
  delete instance.meta;
  delete instance.id;
  // Okta sends the password on create; we never keep it (RFC 7643 §4.1.1: writeOnly, never returned).
  delete instance.password;
  const name = (instance.name ?? {}) as Obj;
  const ent = (instance[ENTERPRISE] ?? {}) as Obj;
  const userName = String(instance.userName ?? '').trim();
  if (!userName) throw new TypeError("Required attribute 'userName' is missing or empty");
  const emails = scimEmailsOf(instance);
  return {
    columns: {
      userName, userNameNormalized: identifierKey(userName), externalId: str(instance.externalId),
      active: instance.active !== false, displayName: str(instance.displayName), givenName: str(name.givenName), familyName: str(name.familyName),
      title: str(instance.title), userType: str(instance.userType), employeeNumber: str(ent.employeeNumber), department: str(ent.department),
    },
    emails,
    resource: instance,
  };
}

const MEMBER_KEYS = new Set(['value', 'display', 'type', '$ref']);
/** A member entry scimmy would accept unchanged: RFC 7643 §4.2 sub-attributes, strings, type User or Group. */
const plainMember = (m: unknown): m is Obj =>
  typeof m === 'object' && m !== null && !Array.isArray(m) && Object.getPrototypeOf(m) === Object.prototype &&
  typeof (m as Obj).value === 'string' &&
  Object.entries(m as Obj).every(([k, v]) => MEMBER_KEYS.has(k) && (typeof v === 'string' || (k === 'display' && v === null)) && (k !== 'type' || v === 'User' || v === 'Group'));

export function groupInput(body: unknown): ScimGroupInput {
  // scimmy coerces each member entry at ~50 µs: 1000 members kept the event loop 50–70 ms (issue 12 §2).
  // Entries of the plain shape are taken as they are (they only become ScimGroupMember rows);
  // anything else goes through scimmy, which refuses it with its own message.
  assertValueShapes('Group', body);
  const raw = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Obj) : null;
  const plain = raw && Array.isArray(raw.members) && (raw.members as unknown[]).every(plainMember) ? (raw.members as Obj[]) : null;
  const coerced = plain ? { ...raw, members: undefined } : body;
  const instance = JSON.parse(JSON.stringify(new SCIMMY.Schemas.Group(coerced as Obj, 'in'))) as Obj;
  delete instance.meta;
  delete instance.id;
  const members = plain ?? (Array.isArray(instance.members) ? (instance.members as Obj[]) : []);
  delete instance.members; // kept in ScimGroupMember rows, the source of truth
  const displayName = String(instance.displayName ?? '').trim();
  if (!displayName) throw new TypeError("Required attribute 'displayName' is missing or empty");
  return {
    displayName, externalId: str(instance.externalId),
    members: members.map((m) => ({ id: String(m.value ?? ''), display: str(m.display) })).filter((m) => m.id),
    resource: instance,
  };
}

const meta = (row: { createdAt: Date; updatedAt: Date; version: number }) => ({ created: row.createdAt, lastModified: row.updatedAt, version: etag(row.version) });

/** RFC 7644 §3.14: a weak ETag from the row version. */
export const etag = (version: number) => `W/"${version}"`;
export function parseIfMatch(header: string | undefined): number | null | 'mismatch' {
  if (!header || header.trim() === '*') return null;
  const m = /^\s*(?:W\/)?"(\d+)"\s*$/.exec(header);
  return m ? Number(m[1]) : 'mismatch';
}

export function renderUser(row: ScimUserRow, base: string, projection?: Projection): Obj {
  const data = { ...(row.resource as Obj), id: row.id, meta: meta(row) };
  // The compiled serializer (same JSON as scimmy, see render.ts); scimmy for what it is unsure of.
  const full = fastRender('User', data, `${base}/Users`) ?? scimmyRender(SCIMMY.Schemas.User, data, `${base}/Users`);
  return projection ? project('User', full, projection) : full;
}

/** What scimmy renders (the reference the compiled serializer is tested against). */
export function scimmyRender(schema: typeof SCIMMY.Schemas.User | typeof SCIMMY.Schemas.Group, data: Obj, basepath: string): Obj {
  return JSON.parse(JSON.stringify(new schema(data, 'out', basepath))) as Obj;
}

export function renderGroup(row: ScimGroupRow, members: { value: string; display: string | null }[] | null, base: string, projection?: Projection): Obj {
  const data: Obj = { ...(row.resource as Obj), id: row.id, displayName: row.displayName, meta: meta(row) };
  if (members) {
    data.members = members.map((m) => ({ value: m.value, ...(m.display ? { display: m.display } : {}), $ref: `${base}/Users/${m.value}`, type: 'User' }));
  }
  const full = fastRender('Group', data, `${base}/Groups`) ?? scimmyRender(SCIMMY.Schemas.Group, data, `${base}/Groups`);
  return projection ? project('Group', full, projection) : full;
}
