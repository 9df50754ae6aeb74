// The compiled serializer (src/scim/render.ts) must produce byte for byte what scimmy's
// `new Schemas.User(data, 'out', basepath)` produces — same keys, same order — for every stored
// resource, and hand back to scimmy (undefined) whatever it is not sure about.
import { describe, expect, it } from 'vitest';
import { scimFixtures, type ScimFixture } from '../support/scim-fixtures.js';
import fc from 'fast-check';
import SCIMMY from 'scimmy';
import { declareResources, groupInput, renderGroup, renderUser, scimmyRender, userInput } from '../../src/scim/resources.js';
import { normalisePatch, normaliseResource } from '../../src/scim/dialect.js';
import { fastRender } from '../../src/scim/render.js';
import type { ScimUserRow } from '../../src/store/scim-user-store.js';
import type { ScimGroupRow } from '../../src/store/scim-group-store.js';

declareResources();

type Obj = Record<string, unknown>;
const BASE = 'https://orgsync.example.test/scim/v2/0b4c7a8e-3f43-4a43-9d7e-0d1f2e3a4b5c';
const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const json = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** What PostgreSQL's jsonb gives back: object keys ordered by length, then bytes. */
function jsonbOrder(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(jsonbOrder);
  if (v === null || typeof v !== 'object') return v;
  const keys = Object.keys(v).sort((a, b) => Buffer.byteLength(a) - Buffer.byteLength(b) || Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return Object.fromEntries(keys.map((k) => [k, jsonbOrder((v as Obj)[k])]));
}

let n = 0;
function userRow(resource: Obj, over: Partial<ScimUserRow> = {}): ScimUserRow {
  n++;
  return {
    id: `6f1c2d3e-4a5b-4c6d-8e7f-${String(n).padStart(12, '0')}`, orgId: 'o', directoryId: 'd', accountId: null, resource, version: n % 7 + 1,
    deletedAt: null, createdAt: new Date(1_700_000_000_000 + n * 1000), updatedAt: new Date(1_700_000_500_000 + n * 1777),
    userName: String(resource.userName ?? ''), userNameNormalized: '', externalId: null, active: true, displayName: null, givenName: null,
    familyName: null, title: null, userType: null, employeeNumber: null, department: null, ...over,
  };
}
function groupRow(resource: Obj): ScimGroupRow {
  n++;
  return {
    id: `7a1c2d3e-4a5b-4c6d-8e7f-${String(n).padStart(12, '0')}`, orgId: 'o', directoryId: 'd', displayName: String(resource.displayName ?? 'g'),
    displayNameNormalized: '', externalId: null, resource, version: 1, createdAt: new Date(1_700_000_000_000), updatedAt: new Date(1_700_000_000_000 + n),
  };
}

const scimmyUser = (row: ScimUserRow) => scimmyRender(SCIMMY.Schemas.User, { ...(row.resource as Obj), id: row.id, meta: metaOf(row) }, `${BASE}/Users`);
const metaOf = (row: { createdAt: Date; updatedAt: Date; version: number }) => ({ created: row.createdAt, lastModified: row.updatedAt, version: `W/"${row.version}"` });

/** Same JSON text (so the same keys in the same order), and the fast path really taken. */
function expectSameUser(resource: Obj, label: string) {
  for (const stored of [resource, jsonbOrder(resource) as Obj]) {
    const row = userRow(stored);
    const fast = fastRender('User', { ...(row.resource as Obj), id: row.id, meta: metaOf(row) }, `${BASE}/Users`);
    expect(fast, `${label}: the compiled serializer renders it`).toBeDefined();
    expect(JSON.stringify(fast), label).toBe(JSON.stringify(scimmyUser(row)));
    expect(JSON.stringify(renderUser(row, BASE)), label).toBe(JSON.stringify(scimmyUser(row)));
  }
}

type Fixture = ScimFixture;

/** Every resource a fixture yields once stored: the POST/PUT body, the before and expected states, and the PATCH result. */
async function storedResources(f: Fixture): Promise<Obj[]> {
  const kind = f.resource === 'Users' ? 'User' : 'Group';
  const input = (body: unknown) => (kind === 'User' ? userInput(body).resource : groupInput(body).resource);
  const out: Obj[] = [];
  const add = (fn: () => Obj) => {
    try {
      out.push(json(fn()));
    } catch {
      // not a storable resource (a PatchOp body, or invalid on purpose)
    }
  };
  if (f.method !== 'PATCH') add(() => input(normaliseResource(kind, f.request)));
  if (f.before) add(() => input(normaliseResource(kind, f.before)));
  if (f.expect) add(() => input(normaliseResource(kind, f.expect)));
  if (f.method === 'PATCH' && f.before) {
    const Schema = kind === 'User' ? SCIMMY.Schemas.User : SCIMMY.Schemas.Group;
    let patched: unknown;
    try {
      await new SCIMMY.Messages.PatchOp(normalisePatch(kind, f.request, f.before) as never).apply(new Schema(f.before, 'out') as never, async (p: unknown) => {
        patched = p;
        return p as never;
      });
      if (patched) add(() => input(json(patched)));
    } catch {
      // a fixture whose patch is refused
    }
  }
  return out;
}

describe('compiled serializer = scimmy, on the recorded Okta and Entra ID bodies', () => {
  const all = scimFixtures();
  it('the corpus is not empty', () => expect(all.length).toBeGreaterThan(20));

  it.each(all.map((f) => [f.file, f] as const))('%s', async (_file, f) => {
    const resources = await storedResources(f);
    expect(resources.length, 'at least one storable resource').toBeGreaterThan(0);
    for (const [i, r] of resources.entries()) {
      if (f.resource === 'Users') {
        expectSameUser(r, `${f.file} #${i}`);
      } else {
        const members = [{ value: 'f0e1d2c3-b4a5-4968-8776-655443322110', display: 'A' }, { value: '00000000-0000-4000-8000-000000000001', display: null }];
        for (const stored of [r, jsonbOrder(r) as Obj]) {
          const row = groupRow(stored);
          const data = { ...stored, id: row.id, displayName: row.displayName, meta: metaOf(row), members: members.map((m) => ({ value: m.value, ...(m.display ? { display: m.display } : {}), $ref: `${BASE}/Users/${m.value}`, type: 'User' })) };
          const fast = fastRender('Group', data, `${BASE}/Groups`);
          expect(fast, `${f.file} #${i}: rendered by the compiled serializer`).toBeDefined();
          expect(JSON.stringify(renderGroup(row, members, BASE)), `${f.file} #${i}`).toBe(JSON.stringify(scimmyRender(SCIMMY.Schemas.Group, data, `${BASE}/Groups`)));
        }
      }
    }
  });
});

// Generated users: every User and enterprise attribute, in random combinations, cases and key orders,
// stored the way the service stores them (through userInput, i.e. scimmy's inbound coercion).
const str = fc.string({ minLength: 1, maxLength: 12 });
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 2 });
const multi = <T>(a: fc.Arbitrary<T>) => maybe(fc.array(a, { maxLength: 3 }));
const typed = (types: string[]) => fc.record({ value: maybe(str), display: maybe(str), type: maybe(fc.constantFrom(...types)), primary: maybe(fc.constant(false)) }, { requiredKeys: [] });
const userArb = fc.record({
  schemas: fc.constantFrom(['urn:ietf:params:scim:schemas:core:2.0:User'], ['urn:ietf:params:scim:schemas:core:2.0:User', ENT]),
  userName: str,
  externalId: maybe(str),
  name: maybe(fc.record({ formatted: maybe(str), familyName: maybe(str), givenName: str, middleName: maybe(str), honorificPrefix: maybe(str), honorificSuffix: maybe(str) }, { requiredKeys: ['givenName'] })),
  displayName: maybe(str), nickName: maybe(str), profileUrl: maybe(fc.constantFrom('https://example.com/u/1', 'http://x.test/p')),
  title: maybe(str), userType: maybe(str), preferredLanguage: maybe(fc.constantFrom('en-US', 'fr')), locale: maybe(str), timezone: maybe(fc.constantFrom('Europe/Paris', 'America/Los_Angeles')),
  active: maybe(fc.boolean()), password: maybe(str),
  emails: multi(typed(['work', 'home', 'other'])),
  phoneNumbers: multi(typed(['work', 'home', 'mobile', 'fax', 'pager', 'other'])),
  ims: multi(typed(['aim', 'gtalk', 'icq', 'xmpp', 'msn', 'skype', 'qq', 'yahoo'])),
  addresses: multi(fc.record({ formatted: maybe(str), streetAddress: maybe(str), locality: maybe(str), region: maybe(str), postalCode: maybe(str), country: maybe(fc.constantFrom('US', 'FR')), type: maybe(fc.constantFrom('work', 'home', 'other')) }, { requiredKeys: [] })),
  entitlements: multi(fc.record({ value: str, display: maybe(str), type: maybe(str) }, { requiredKeys: ['value'] })),
  roles: multi(fc.record({ value: str, display: maybe(str), type: maybe(str), primary: maybe(fc.constant(false)) }, { requiredKeys: ['value'] })),
  [ENT]: maybe(fc.record({
    employeeNumber: maybe(str), costCenter: maybe(str), organization: maybe(str), division: maybe(str), department: maybe(str),
    manager: maybe(fc.record({ value: str, displayName: maybe(str) }, { requiredKeys: ['value'] })),
  }, { requiredKeys: [] })),
}, { requiredKeys: ['schemas', 'userName'] });

describe('compiled serializer = scimmy, on generated users', () => {
  it('renders 500 generated users exactly as scimmy does', () => {
    let fastPath = 0;
    fc.assert(fc.property(userArb, fc.boolean(), (body, upper) => {
      // Attribute names arrive in any case (RFC 7643 §2.1); the inbound coercion fixes them.
      const raw = upper ? Object.fromEntries(Object.entries(body).map(([k, v]) => [k.startsWith('urn:') ? k : k.toUpperCase(), v])) : body;
      let resource: Obj;
      try {
        resource = json(userInput(raw).resource);
      } catch {
        return; // refused on the way in (e.g. an extension with no values): never stored
      }
      const row = userRow(jsonbOrder(resource) as Obj);
      const expected = JSON.stringify(scimmyUser(row));
      expect(JSON.stringify(renderUser(row, BASE))).toBe(expected);
      if (fastRender('User', { ...(row.resource as Obj), id: row.id, meta: metaOf(row) }, `${BASE}/Users`)) fastPath++;
    }), { numRuns: 500, seed: 7 });
    expect(fastPath, 'nearly every stored user takes the fast path').toBeGreaterThan(400);
  });
});

describe('what the compiled serializer leaves to scimmy', () => {
  const base = () => json(userInput({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'x@example.com', emails: [{ value: 'x@example.com', type: 'work', primary: true }] }).resource);
  it.each<[string, (r: Obj) => void]>([
    ['a key in another case', (r) => { r.UserName = r.userName; delete r.userName; }],
    ['an unknown attribute', (r) => { r.favouriteColour = 'blue'; }],
    ['a namespaced extension attribute', (r) => { r[`${ENT}:department`] = 'x'; }],
    ['a wrong type', (r) => { r.active = 'true'; }],
    ['a sub-attribute in another case', (r) => { (r.emails as Obj[])[0]!.Value = 'y@example.com'; }],
    ['an empty complex value', (r) => { r.name = {}; }],
    ['schemas without the User schema', (r) => { r.schemas = ['urn:ietf:params:scim:schemas:core:2.0:Group']; }],
  ])('%s → undefined, and renderUser answers what scimmy answers', (_name, change) => {
    const r = base();
    change(r);
    const row = userRow(r);
    expect(fastRender('User', { ...r, id: row.id, meta: metaOf(row) }, `${BASE}/Users`)).toBeUndefined();
    let expected: unknown;
    try {
      expected = JSON.stringify(scimmyUser(row));
    } catch (err) {
      expected = err;
    }
    if (expected instanceof Error) expect(() => renderUser(row, BASE)).toThrow(expected.message);
    else expect(JSON.stringify(renderUser(row, BASE))).toBe(expected);
  });

  it('a non-canonical value (canonical values are suggestions, RFC 7643 §7) renders fast, as scimmy renders it', () => {
    const r = base();
    (r.emails as Obj[])[0]!.type = 'office';
    const row = userRow(r);
    expect(fastRender('User', { ...r, id: row.id, meta: metaOf(row) }, `${BASE}/Users`)).toBeDefined();
    expect(JSON.stringify(renderUser(row, BASE))).toBe(JSON.stringify(scimmyUser(row)));
  });
});
