// Dialect normalisation (src/scim/dialect.ts): every recorded Okta / Entra ID body is normalised and
// then really applied with scimmy, the way the SCIM handlers do; then one table row per rule; then
// the scimmy 1.3.5 behaviours the handlers rely on, pinned so an upgrade that changes them fails here.
import { describe, expect, it } from 'vitest';
import { scimFixtures, type ScimFixture } from '../support/scim-fixtures.js';
import SCIMMY from 'scimmy';
import { FORBIDDEN_PATH, memberIds, normalisePatch, normaliseResource, type ScimKind } from '../../src/scim/dialect.js';

// As declareResources() does at start-up: users carry the enterprise extension (RFC 7643 §4.3).
SCIMMY.Resources.User.extend(SCIMMY.Schemas.EnterpriseUser, false);

const PO = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

type Obj = Record<string, unknown>;
type Fixture = ScimFixture;

const kindOf = (resource: Fixture['resource']): ScimKind => (resource === 'Users' ? 'User' : 'Group');
const schemaOf = (kind: ScimKind) => (kind === 'User' ? SCIMMY.Schemas.User : SCIMMY.Schemas.Group);
const json = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
const withoutMeta = (v: unknown): Obj => {
  const o = json(v) as Obj;
  delete o.meta;
  return o;
};

const fixtures = scimFixtures();

/** What the PATCH handler does: current resource → instance ('out') → PatchOp.apply with a finaliser. */
async function applyPatch(kind: ScimKind, body: unknown, before: Obj) {
  const Schema = schemaOf(kind);
  let finalised: unknown;
  let finaliserCalls = 0;
  const returned = await new SCIMMY.Messages.PatchOp(body as never).apply(new Schema(before, 'out') as never, async (patched: unknown) => {
    finaliserCalls++;
    finalised = patched;
    return patched as never;
  });
  return { returned: returned as unknown, finalised, finaliserCalls };
}

const scimError = (e: unknown) => {
  const err = e as { status?: number; scimType?: string; message: string };
  return { status: err.status, scimType: err.scimType };
};
async function rejection(p: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

describe('recorded IdP bodies, normalised and applied with scimmy', () => {
  it('has fixtures for both IdPs', () => {
    expect(fixtures.filter((f) => f.file.startsWith('okta/')).length, 'okta fixtures').toBeGreaterThanOrEqual(5);
    expect(fixtures.filter((f) => f.file.startsWith('entra/')).length, 'entra fixtures').toBeGreaterThanOrEqual(5);
  });

  it.each(fixtures.map((f) => [f.file, f] as const))('%s', async (file, f) => {
    const kind = kindOf(f.resource);
    const request = json(f.request);
    if (f.method === 'PATCH') {
      expect(f.before, `${file}: a PATCH fixture needs "before"`).toBeDefined();
      const body = normalisePatch(kind, f.request, f.before);
      expect(f.request, `${file}: the request is not mutated`).toEqual(request);
      expect(normalisePatch(kind, body, f.before), `${file}: normalising twice changes nothing`).toEqual(body);
      const { returned, finalised, finaliserCalls } = await applyPatch(kind, body, f.before!);
      expect(finaliserCalls, `${file}: scimmy calls the finaliser once`).toBe(1);
      const after = withoutMeta(returned ?? finalised);
      expect(after, `${file}: ${f.description}`).toEqual(withoutMeta(f.expect));
      expect(returned === undefined, `${file}: apply resolves to undefined exactly when nothing changed`).toBe(
        JSON.stringify(after) === JSON.stringify(withoutMeta(new (schemaOf(kind))(f.before!, 'out'))),
      );
    } else {
      const body = normaliseResource(kind, f.request);
      expect(f.request, `${file}: the request is not mutated`).toEqual(request);
      expect(normaliseResource(kind, body), `${file}: normalising twice changes nothing`).toEqual(body);
      const instance = new (schemaOf(kind))(body as Obj, 'in') as unknown as Obj;
      expect(instance.password, `${file}: no password reaches the instance`).toBeUndefined();
      expect(withoutMeta(instance), `${file}: ${f.description}`).toEqual(withoutMeta(f.expect));
    }
  });
});

// ---------------------------------------------------------------------------------------------
// One row per rule: what normalisePatch makes of an operation.
// ---------------------------------------------------------------------------------------------

type PatchRow = [rule: string, kind: ScimKind, operations: unknown[], expected: unknown[], current?: Obj];
const ops = (kind: ScimKind, operations: unknown[], current?: Obj) => (normalisePatch(kind, { schemas: [PO], Operations: operations }, current) as Obj).Operations;

const userWithWorkEmail: Obj = { schemas: [USER], id: 'u1', userName: 'a@x.com', emails: [{ value: 'a@x.com', type: 'work', primary: true }] };
const userWithoutEmail: Obj = { schemas: [USER], id: 'u1', userName: 'a@x.com' };

const patchRows: PatchRow[] = [
  // op names (Entra: "Add", "Replace", "Remove"; RFC 7644 §3.5.2 spells them in lower case)
  ['op Add', 'User', [{ op: 'Add', path: 'title', value: 'x' }], [{ op: 'add', path: 'title', value: 'x' }]],
  ['op REPLACE', 'User', [{ op: 'REPLACE', path: 'title', value: 'x' }], [{ op: 'replace', path: 'title', value: 'x' }]],
  ['op Remove', 'User', [{ op: 'Remove', path: 'title' }], [{ op: 'remove', path: 'title' }]],
  ['operation members in any case; unknown members dropped', 'User', [{ Op: 'add', Path: 'title', Value: 'x', name: 'setTitle' }], [{ op: 'add', path: 'title', value: 'x' }]],
  // string booleans (Entra without ?aadOptscim062020, Microsoft's test collection)
  ['active "False"', 'User', [{ op: 'Replace', path: 'active', value: 'False' }], [{ op: 'replace', path: 'active', value: false }]],
  ['active "true"', 'User', [{ op: 'replace', path: 'active', value: 'true' }], [{ op: 'replace', path: 'active', value: true }]],
  ['active " TRUE "', 'User', [{ op: 'replace', path: 'active', value: ' TRUE ' }], [{ op: 'replace', path: 'active', value: true }]],
  ['active "yes" is left for scimmy', 'User', [{ op: 'replace', path: 'active', value: 'yes' }], [{ op: 'replace', path: 'active', value: 'yes' }]],
  ['a string attribute keeps "True"', 'User', [{ op: 'replace', path: 'title', value: 'True' }], [{ op: 'replace', path: 'title', value: 'True' }]],
  ['primary through a filter', 'User', [{ op: 'replace', path: 'emails[type eq "work"].primary', value: 'True' }], [{ op: 'replace', path: 'emails[type eq "work"].primary', value: true }]],
  ['primary inside entries', 'User', [{ op: 'add', path: 'emails', value: [{ value: 'b@x.com', type: 'home', primary: 'False' }] }], [{ op: 'add', path: 'emails', value: [{ value: 'b@x.com', type: 'home', primary: false }] }]],
  ['active inside a value without path', 'User', [{ op: 'replace', value: { active: 'False' } }], [{ op: 'replace', path: 'active', value: false }]],
  // attribute names in any case (scimmy resolves them but assigns by exact name → 400 invalidPath)
  ['path UserName', 'User', [{ op: 'replace', path: 'UserName', value: 'b' }], [{ op: 'replace', path: 'userName', value: 'b' }]],
  ['path Name.GivenName', 'User', [{ op: 'replace', path: 'Name.GivenName', value: 'B' }], [{ op: 'replace', path: 'name.givenName', value: 'B' }]],
  ['sub-attribute after a filter; the filter text untouched', 'User', [{ op: 'replace', path: 'Emails[Type eq "work"].Value', value: 'b@x.com' }], [{ op: 'replace', path: 'emails[Type eq "work"].value', value: 'b@x.com' }]],
  ['extension URN in lower case', 'User', [{ op: 'replace', path: `${ENT.toLowerCase()}:Department`, value: 'R' }], [{ op: 'replace', path: `${ENT}:department`, value: 'R' }]],
  ['canonical values ignore case', 'User', [{ op: 'add', path: 'emails', value: [{ Value: 'b@x.com', Type: 'Work' }] }], [{ op: 'add', path: 'emails', value: [{ value: 'b@x.com', type: 'work' }] }]],
  ['unknown attributes are left for scimmy', 'User', [{ op: 'replace', path: 'favouriteColour', value: 'blue' }], [{ op: 'replace', path: 'favouriteColour', value: 'blue' }]],
  // no path: one operation per attribute (Entra dotted and URN keys; Okta {active}, {id, displayName})
  ['dotted key', 'User', [{ op: 'replace', value: { 'name.givenName': 'X' } }], [{ op: 'replace', path: 'name.givenName', value: 'X' }]],
  ['URN-qualified simple key', 'User', [{ op: 'replace', value: { [`${ENT}:department`]: 'R&D' } }], [{ op: 'replace', path: `${ENT}:department`, value: 'R&D' }]],
  ['URN-qualified complex key (merge: replace → add)', 'User', [{ op: 'replace', value: { [`${ENT}:manager`]: { value: '123' } } }], [{ op: 'add', path: `${ENT}:manager`, value: { value: '123' } }]],
  ['the extension as an object', 'User', [{ op: 'replace', value: { [ENT]: { Department: 'R', employeeNumber: '7' } } }], [{ op: 'replace', path: `${ENT}:department`, value: 'R' }, { op: 'replace', path: `${ENT}:employeeNumber`, value: '7' }]],
  ['the extension as a path', 'User', [{ op: 'add', path: ENT, value: { department: 'R' } }], [{ op: 'add', path: `${ENT}:department`, value: 'R' }]],
  ['a collection without path is replaced, not appended', 'User', [{ op: 'replace', value: { emails: [{ value: 'b@x.com', type: 'work' }] } }], [{ op: 'replace', path: 'emails', value: [{ value: 'b@x.com', type: 'work' }] }]],
  ['capitalised keys without path', 'User', [{ op: 'replace', value: { DisplayName: 'B', Name: { GivenName: 'G' } } }], [{ op: 'replace', path: 'displayName', value: 'B' }, { op: 'add', path: 'name', value: { givenName: 'G' } }]],
  ['an empty path is the resource', 'User', [{ op: 'replace', path: '', value: { title: 'T' } }], [{ op: 'replace', path: 'title', value: 'T' }]],
  // RFC 7644 §3.5.2.3: replace of a complex attribute keeps the sub-attributes not given
  ['replace of name becomes add (merge)', 'User', [{ op: 'replace', path: 'name', value: { givenName: 'G' } }], [{ op: 'add', path: 'name', value: { givenName: 'G' } }]],
  // readOnly / never stored (RFC 7643 §2.2, §4.1.1)
  ['Okta group rename: id dropped', 'Group', [{ op: 'replace', value: { id: 'g1', displayName: 'N' } }], [{ op: 'replace', path: 'displayName', value: 'N' }]],
  ['meta path dropped', 'User', [{ op: 'replace', path: 'meta.lastModified', value: '2025-01-01T00:00:00Z' }, { op: 'replace', path: 'title', value: 'T' }], [{ op: 'replace', path: 'title', value: 'T' }]],
  ['User groups dropped', 'User', [{ op: 'add', path: 'groups', value: [{ value: 'g1' }] }, { op: 'replace', path: 'title', value: 'T' }], [{ op: 'replace', path: 'title', value: 'T' }]],
  ['manager.displayName dropped', 'User', [{ op: 'add', path: `${ENT}:manager`, value: { value: 'm', displayName: 'Boss' } }], [{ op: 'add', path: `${ENT}:manager`, value: { value: 'm' } }]],
  ['password dropped', 'User', [{ op: 'replace', value: { password: 'p', title: 'T' } }], [{ op: 'replace', path: 'title', value: 'T' }]],
  ['only ignored attributes: a no-op add', 'User', [{ op: 'replace', value: { password: 'p' } }], [{ op: 'add', value: {} }]],
  // Entra's manager as a bare id; sub-attribute of an extension complex attribute
  ['manager as a bare id', 'User', [{ op: 'Add', path: `${ENT}:manager`, value: '271' }], [{ op: 'add', path: `${ENT}:manager`, value: { value: '271' } }]],
  ['manager.value path', 'User', [{ op: 'replace', path: `${ENT}:manager.value`, value: '271' }], [{ op: 'add', path: `${ENT}:manager`, value: { value: '271' } }]],
  ['manager remove stays a remove', 'User', [{ op: 'Remove', path: `${ENT}:manager` }], [{ op: 'remove', path: `${ENT}:manager` }]],
  // Entra's member removal with a value list
  ['members removal by value list', 'Group', [{ op: 'Remove', path: 'members', value: [{ value: 'a' }, { value: 'b' }, { value: 'a' }] }], [{ op: 'remove', path: 'members[value eq "a"]' }, { op: 'remove', path: 'members[value eq "b"]' }]],
  ['members removal by one object', 'Group', [{ op: 'remove', path: 'members', value: { value: 'a', $ref: null } }], [{ op: 'remove', path: 'members[value eq "a"]' }]],
  ['members removal, empty list: removes nothing', 'Group', [{ op: 'remove', path: 'members', value: [] }], [{ op: 'remove', path: 'members', value: [] }]],
  ['members removal, an id a filter cannot quote', 'Group', [{ op: 'remove', path: 'members', value: [{ value: 'a"b' }] }], [{ op: 'remove', path: 'members', value: [{ value: 'a"b' }] }]],
  ['members removal without value stays remove-all', 'Group', [{ op: 'remove', path: 'members' }], [{ op: 'remove', path: 'members' }]],
  ['members removal by filter passes', 'Group', [{ op: 'Remove', path: 'members[value eq "a"]' }], [{ op: 'remove', path: 'members[value eq "a"]' }]],
  ['member add: $ref null stripped', 'Group', [{ op: 'Add', path: 'members', value: [{ $ref: null, value: 'a' }] }], [{ op: 'add', path: 'members', value: [{ value: 'a' }] }]],
  ['member add: displayName is display, type canonical', 'Group', [{ op: 'add', path: 'members', value: [{ displayName: 'A', value: 'a', type: 'user' }] }], [{ op: 'add', path: 'members', value: [{ display: 'A', value: 'a', type: 'User' }] }]],
  ['members inside Okta rename without path', 'Group', [{ op: 'replace', value: { id: 'g', displayName: 'N', members: [{ value: 'a', $ref: null }] } }], [{ op: 'replace', path: 'displayName', value: 'N' }, { op: 'replace', path: 'members', value: [{ value: 'a' }] }]],
  // Entra's first typed value through a filter that matches nothing
  ['filtered add, no match: a new entry', 'User', [{ op: 'Add', path: 'emails[type eq "work"].value', value: 'b@x.com' }], [{ op: 'add', path: 'emails', value: [{ type: 'work', value: 'b@x.com' }] }], userWithoutEmail],
  ['filtered replace, no match: a new entry', 'User', [{ op: 'Replace', path: 'phoneNumbers[type eq "mobile"].value', value: '+1' }], [{ op: 'add', path: 'phoneNumbers', value: [{ type: 'mobile', value: '+1' }] }], userWithoutEmail],
  ['filtered add, match: unchanged', 'User', [{ op: 'Add', path: 'emails[type eq "work"].value', value: 'b@x.com' }], [{ op: 'add', path: 'emails[type eq "work"].value', value: 'b@x.com' }], userWithWorkEmail],
  ['filtered add without the current resource: unchanged', 'User', [{ op: 'Add', path: 'emails[type eq "work"].value', value: 'b@x.com' }], [{ op: 'add', path: 'emails[type eq "work"].value', value: 'b@x.com' }]],
  ['filtered add, second operation finds the new entry', 'User',
    [{ op: 'Add', path: 'addresses[type eq "work"].locality', value: 'Paris' }, { op: 'Add', path: 'addresses[type eq "work"].country', value: 'FR' }],
    [{ op: 'add', path: 'addresses', value: [{ type: 'work', locality: 'Paris' }] }, { op: 'add', path: 'addresses[type eq "work"].country', value: 'FR' }], userWithoutEmail],
  ['filtered add with two eq terms', 'User', [{ op: 'add', path: 'emails[type eq "home" and primary eq false].value', value: 'h@x.com' }], [{ op: 'add', path: 'emails', value: [{ type: 'home', primary: false, value: 'h@x.com' }] }], userWithWorkEmail],
  ['filtered add, whole entry', 'User', [{ op: 'add', path: 'emails[type eq "home"]', value: { value: 'h@x.com' } }], [{ op: 'add', path: 'emails', value: [{ value: 'h@x.com', type: 'home' }] }], userWithWorkEmail],
  ['filtered add after removing the entries', 'User', [{ op: 'remove', path: 'emails' }, { op: 'add', path: 'emails[type eq "work"].value', value: 'b@x.com' }], [{ op: 'remove', path: 'emails' }, { op: 'add', path: 'emails', value: [{ type: 'work', value: 'b@x.com' }] }], userWithWorkEmail],
  ['filtered add, collection null in the current resource', 'User', [{ op: 'Add', path: 'addresses[type eq "work"].country', value: 'US' }], [{ op: 'add', path: 'addresses', value: [{ type: 'work', country: 'US' }] }], { ...userWithoutEmail, addresses: null }],
  ['other filter operators are left for scimmy', 'User', [{ op: 'add', path: 'emails[type co "wor"].value', value: 'b@x.com' }], [{ op: 'add', path: 'emails[type co "wor"].value', value: 'b@x.com' }], userWithoutEmail],
  // prototype pollution through scimmy's path walker
  ['__proto__ in a path filter', 'Group', [{ op: 'remove', path: 'members[__proto__.polluted eq "x"]' }], [{ op: 'remove', path: FORBIDDEN_PATH }]],
  ['constructor.prototype in a path', 'User', [{ op: 'add', path: 'constructor.prototype.polluted', value: 'x' }], [{ op: 'add', path: FORBIDDEN_PATH, value: 'x' }]],
  ['forbidden keys of a value are dropped', 'Group', [{ op: 'remove', path: 'members', value: [JSON.parse('{"__proto__.polluted":"x","value":"a"}')] }], [{ op: 'remove', path: 'members[value eq "a"]' }]],
  // what is not understood is passed on for scimmy to reject
  ['not an object', 'User', [42, 'x', null], [42, 'x', null]],
  ['an unknown op', 'User', [{ op: 'move', path: 'title' }], [{ op: 'move', path: 'title' }]],
  ['a non-string path', 'User', [{ op: 'add', path: 7, value: 'x' }], [{ op: 'add', path: 7, value: 'x' }]],
  ['remove without path', 'User', [{ op: 'Remove' }], [{ op: 'remove' }]],
  ['add without path, value not an object', 'User', [{ op: 'add', value: 'x' }], [{ op: 'add', value: 'x' }]],
];

describe('normalisePatch rules', () => {
  it.each(patchRows)('%s', (rule, kind, operations, expected, current) => {
    expect(ops(kind, operations, current), rule).toEqual(expected);
  });

  it.each([
    ['missing', undefined],
    ['empty', []],
    ['in another case', [PO.toUpperCase()]],
    ['a string', PO],
    ['repeated', [PO, PO.toLowerCase()]],
  ])('schemas %s → the PatchOp URN', (label, schemas) => {
    const body = normalisePatch('User', { ...(schemas !== undefined ? { schemas } : {}), Operations: [{ op: 'add', path: 'title', value: 'x' }] }) as Obj;
    expect(body.schemas, `schemas ${label}`).toEqual([PO]);
  });

  it('leaves schemas naming something else for scimmy (400 invalidSyntax)', () => {
    expect((normalisePatch('User', { schemas: [PO, USER], Operations: [] }) as Obj).schemas, 'mixed schemas').toEqual([PO, USER]);
  });

  it('reads "operations" in any case, and prefers "Operations"', () => {
    expect((normalisePatch('User', { operations: [{ op: 'Add', path: 'title', value: 'x' }] }) as Obj).Operations, 'lower case').toEqual([{ op: 'add', path: 'title', value: 'x' }]);
    const both = normalisePatch('User', { operations: [{ op: 'add', path: 'nickName', value: 'n' }], Operations: [{ op: 'add', path: 'title', value: 'x' }] }) as Obj;
    expect(both.Operations, 'both spellings').toEqual([{ op: 'add', path: 'title', value: 'x' }]);
    expect('operations' in both, 'the other spelling is gone').toBe(false);
  });

  it('returns what it cannot read unchanged and never throws', () => {
    let deep: unknown = { title: 'x' };
    for (let i = 0; i < 50_000; i++) deep = { a: deep };
    let deepArray: unknown = [];
    for (let i = 0; i < 50_000; i++) deepArray = [deepArray];
    const odd: unknown[] = [undefined, null, 0, 'PATCH', [], [1, 2], { Operations: null }, { Operations: 'x' }, { Operations: [deep, deepArray] },
      { Operations: [{ op: 'add', value: deep }, { op: 'remove', path: 'members', value: deepArray }] }, Object.create(null)];
    for (const body of odd) {
      for (const kind of ['User', 'Group'] as const) {
        expect(() => normalisePatch(kind, body, body), `normalisePatch(${kind}, ${typeof body})`).not.toThrow();
        expect(() => normaliseResource(kind, body), `normaliseResource(${kind}, ${typeof body})`).not.toThrow();
      }
    }
    expect(normalisePatch('User', 'PATCH'), 'a string').toBe('PATCH');
    expect(normaliseResource('User', [1]), 'an array').toEqual([1]);
    expect(normalisePatch('User', { schemas: [PO] }), 'no Operations').toEqual({ schemas: [PO] });
  });

  it('does not mutate its input (deep-frozen input works)', () => {
    const freeze = (v: unknown): unknown => {
      if (v && typeof v === 'object') {
        for (const x of Object.values(v)) freeze(x);
        Object.freeze(v);
      }
      return v;
    };
    const body = freeze({ Operations: [{ op: 'Replace', value: { 'name.givenName': 'X', active: 'False', emails: [{ Value: 'a', Primary: 'True' }] } }] });
    const copy = json(body);
    expect(() => normalisePatch('User', body, freeze(json(userWithWorkEmail))), 'frozen PATCH body').not.toThrow();
    expect(body, 'PATCH body unchanged').toEqual(copy);
    const resource = freeze({ UserName: 'a', Emails: [{ Value: 'a', Primary: 'true' }], password: 'p' });
    expect(() => normaliseResource('User', resource), 'frozen resource').not.toThrow();
  });
});

// ---------------------------------------------------------------------------------------------
// normaliseResource rows
// ---------------------------------------------------------------------------------------------

type ResourceRow = [rule: string, kind: ScimKind, body: Obj, expected: Obj];
const resourceRows: ResourceRow[] = [
  ['attribute names in any case', 'User', { schemas: [USER], UserName: 'a', Emails: [{ Value: 'a@x.com', Type: 'work', Primary: true }], Name: { GivenName: 'A' } },
    { schemas: [USER], userName: 'a', emails: [{ value: 'a@x.com', type: 'work', primary: true }], name: { givenName: 'A' } }],
  ['string booleans', 'User', { schemas: [USER], userName: 'a', active: 'False', emails: [{ value: 'a@x.com', primary: 'TRUE' }] },
    { schemas: [USER], userName: 'a', active: false, emails: [{ value: 'a@x.com', primary: true }] }],
  ['readOnly and password dropped (Okta create)', 'User', { schemas: [USER], id: 'x', meta: { resourceType: 'User' }, userName: 'a', groups: [], password: 'p' },
    { schemas: [USER], userName: 'a' }],
  ['schemas in another case', 'User', { schemas: [USER.toLowerCase(), ENT.toUpperCase()], userName: 'a' }, { schemas: [USER, ENT], userName: 'a' }],
  ['schemas missing → core (+ extension with data)', 'User', { userName: 'a', [ENT]: { department: 'D' } }, { userName: 'a', [ENT]: { department: 'D' }, schemas: [USER, ENT] }],
  ['schemas that are not URNs dropped (Entra ADSCIM)', 'Group', { schemas: [GROUP, 'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group'], displayName: 'G' }, { schemas: [GROUP], displayName: 'G' }],
  ['schemas empty → core', 'Group', { schemas: [], displayName: 'G' }, { schemas: [GROUP], displayName: 'G' }],
  ['URN-qualified and dotted keys folded', 'User', { schemas: [USER], userName: 'a', [`${ENT}:department`]: 'D', [`${ENT}:manager.value`]: 'm', 'name.familyName': 'F' },
    { schemas: [USER], userName: 'a', [ENT]: { department: 'D', manager: { value: 'm' } }, name: { familyName: 'F' } }],
  ['extension keys in any case; manager.displayName dropped', 'User', { schemas: [USER, ENT], userName: 'a', [ENT.toLowerCase()]: { Department: 'D', Manager: { Value: 'm', DisplayName: 'Boss' } } },
    { schemas: [USER, ENT], userName: 'a', [ENT]: { department: 'D', manager: { value: 'm' } } }],
  ['manager as a bare id', 'User', { schemas: [USER, ENT], userName: 'a', [ENT]: { manager: 'm' } }, { schemas: [USER, ENT], userName: 'a', [ENT]: { manager: { value: 'm' } } }],
  ['Entra app roles: primary "False"', 'User', { schemas: [USER], userName: 'a', roles: [{ primary: 'False', display: 'Admin', value: 'Admin' }] }, { schemas: [USER], userName: 'a', roles: [{ primary: false, display: 'Admin', value: 'Admin' }] }],
  ['canonical values ignore case', 'User', { schemas: [USER], userName: 'a', emails: [{ value: 'a@x.com', type: 'Work' }] }, { schemas: [USER], userName: 'a', emails: [{ value: 'a@x.com', type: 'work' }] }],
  ['members: $ref null, displayName, type', 'Group', { schemas: [GROUP], displayName: 'G', members: [{ value: 'a', $ref: null, displayName: 'A', type: 'user' }] },
    { schemas: [GROUP], displayName: 'G', members: [{ value: 'a', display: 'A', type: 'User' }] }],
  ['Okta group PUT: id dropped, members kept', 'Group', { schemas: [GROUP], id: 'g', displayName: 'G', members: [{ value: 'a', display: 'A' }] },
    { schemas: [GROUP], displayName: 'G', members: [{ value: 'a', display: 'A' }] }],
  ['unknown attributes kept (scimmy ignores them)', 'User', { schemas: [USER], userName: 'a', favouriteColour: 'blue' }, { schemas: [USER], userName: 'a', favouriteColour: 'blue' }],
  ['forbidden keys dropped', 'User', JSON.parse(`{"schemas":["${USER}"],"userName":"a","${ENT}:__proto__.polluted":"x","__proto__":{"polluted":"y"}}`) as Obj, { schemas: [USER], userName: 'a' }],
];

describe('normaliseResource rules', () => {
  it.each(resourceRows)('%s', (rule, kind, body, expected) => {
    expect(normaliseResource(kind, body), rule).toEqual(expected);
  });
});

describe('memberIds', () => {
  it.each([
    ['PATCH add and legacy remove', normalisePatch('Group', { Operations: [{ op: 'Add', path: 'members', value: [{ value: 'a' }, { value: 'b' }] }, { op: 'Remove', path: 'members', value: [{ value: 'c' }] }] }), { added: ['a', 'b'], removed: ['c'] }],
    ['PATCH filter remove', normalisePatch('Group', { Operations: [{ op: 'remove', path: 'members[value eq "c"]' }] }), { added: [], removed: ['c'] }],
    ['PATCH replace of members', normalisePatch('Group', { Operations: [{ op: 'replace', path: 'members', value: [{ value: 'a' }] }] }), { added: ['a'], removed: [] }],
    ['Okta rename without path, raw body', { Operations: [{ op: 'replace', value: { id: 'g', displayName: 'N', members: [{ value: 'a' }] } }] }, { added: ['a'], removed: [] }],
    ['POST/PUT members', normaliseResource('Group', { displayName: 'G', members: [{ value: 'a' }, { value: 'a' }, { value: 'b' }] }), { added: ['a', 'b'], removed: [] }],
    ['nothing to read', 'x', { added: [], removed: [] }],
  ])('%s', (label, body, expected) => {
    expect(memberIds(body), label).toEqual(expected);
  });
});

// ---------------------------------------------------------------------------------------------
// Safety: normalised bodies never reach Object.prototype through scimmy
// ---------------------------------------------------------------------------------------------

describe('prototype pollution through scimmy', () => {
  const hostilePatches: [string, ScimKind, unknown][] = [
    ['filter in a member path', 'Group', { schemas: [PO], Operations: [{ op: 'remove', path: 'members[__proto__.polluted eq "x"]' }] }],
    ['or-branch in a filter', 'Group', { schemas: [PO], Operations: [{ op: 'remove', path: 'members[value eq "x" or constructor.prototype.polluted eq "y"]' }] }],
    ['key of a remove value', 'Group', { schemas: [PO], Operations: [{ op: 'remove', path: 'members', value: [JSON.parse('{"__proto__.polluted":"x"}')] }] }],
    ['key without path', 'User', { schemas: [PO], Operations: [{ op: 'add', value: JSON.parse(`{"${ENT}:__proto__.polluted":"x"}`) }] }],
  ];
  it.each(hostilePatches)('PATCH: %s', async (label, kind, body) => {
    const before = kind === 'User' ? { schemas: [USER], id: 'u', userName: 'a' } : { schemas: [GROUP], id: 'g', displayName: 'G', members: [{ value: 'x' }] };
    await applyPatch(kind, normalisePatch(kind, body, before), before).catch((e: unknown) => e);
    expect(Object.keys(Object.prototype), label).toEqual([]);
    expect(({} as Obj).polluted, label).toBeUndefined();
  });

  it('a forbidden path is answered 400 invalidPath by scimmy', async () => {
    const err = await rejection(applyPatch('Group', normalisePatch('Group', hostilePatches[0]![2]), { schemas: [GROUP], id: 'g', displayName: 'G' }));
    expect(scimError(err), 'scimmy error').toEqual({ status: 400, scimType: 'invalidPath' });
  });

  it('POST: URN key with __proto__', () => {
    const body = JSON.parse(`{"userName":"a","${ENT}:__proto__.polluted":"x","${ENT}":{"__proto__":{"polluted":"y"}}}`) as Obj;
    new SCIMMY.Schemas.User(normaliseResource('User', body) as Obj, 'in');
    expect(Object.keys(Object.prototype), 'Object.prototype').toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// scimmy 1.3.5 behaviours the SCIM handlers rely on (and the reasons for the rules above)
// ---------------------------------------------------------------------------------------------

describe('scimmy behaviours the caller relies on', () => {
  const user: Obj = {
    schemas: [USER, ENT], id: 'u1', userName: 'a@x.com', name: { givenName: 'A', familyName: 'B' }, active: true,
    emails: [{ value: 'a@x.com', type: 'work', primary: true }], [ENT]: { department: 'Eng', manager: { value: 'm0' } },
  };
  const group: Obj = { schemas: [GROUP], id: 'g1', displayName: 'G', members: [{ value: 'u1', display: 'A' }, { value: 'u2' }, { value: 'u3' }] };
  const patch = (Operations: unknown[]) => ({ schemas: [PO], Operations });

  it('calls the finaliser even when nothing changed, and then resolves to undefined', async () => {
    const r = await applyPatch('User', patch([{ op: 'replace', path: 'active', value: true }]), user);
    expect(r.finaliserCalls, 'finaliser calls').toBe(1);
    expect(r.returned, 'apply result').toBeUndefined();
    expect(r.finalised, 'finaliser argument').toBeDefined();
  });

  it('feeds the finaliser result back through the schema: the finaliser must return the resource', async () => {
    const Schema = SCIMMY.Schemas.User;
    const err = await rejection(new SCIMMY.Messages.PatchOp(patch([{ op: 'replace', path: 'title', value: 'T' }]) as never).apply(new Schema(user, 'out') as never, async () => undefined as never));
    expect(err, 'finaliser returning nothing').toBeInstanceOf(TypeError);
  });

  it.each([
    ['a string boolean', [{ op: 'replace', path: 'active', value: 'False' }], { status: 400, scimType: 'invalidValue' }],
    ['a filtered add matching nothing', [{ op: 'add', path: 'phoneNumbers[type eq "mobile"].value', value: '+1' }], { status: 400, scimType: 'noTarget' }],
    ['an attribute name in another case', [{ op: 'replace', path: 'UserName', value: 'b' }], { status: 400, scimType: 'invalidPath' }],
    ['an unknown attribute', [{ op: 'replace', path: 'favouriteColour', value: 'b' }], { status: 400, scimType: 'invalidPath' }],
    ['the manager as a bare id (add)', [{ op: 'add', path: `${ENT}:manager`, value: '271' }], { status: 400, scimType: 'invalidPath' }],
    ['the manager as a bare id (replace)', [{ op: 'replace', path: `${ENT}:manager`, value: '271' }], { status: 400, scimType: 'invalidValue' }],
    ['a different id', [{ op: 'replace', value: { id: 'other' } }], { status: 400, scimType: 'mutability' }],
    ['remove without path', [{ op: 'remove' }], { status: 400, scimType: 'noTarget' }],
    ['an unknown op', [{ op: 'move', path: 'title' }], { status: 400, scimType: 'invalidSyntax' }],
    ['no operations', [], { status: 400, scimType: 'invalidValue' }],
  ])('rejects %s with a SCIM error as sent', async (label, operations, expected) => {
    const err = await rejection(applyPatch('User', patch(operations), user));
    expect(err, label).toBeInstanceOf(SCIMMY.Types.Error);
    expect(scimError(err), label).toEqual(expected);
  });

  it('rejects a PatchOp URN in another case with 400 invalidSyntax', async () => {
    const err = await rejection(() => new SCIMMY.Messages.PatchOp({ schemas: [PO.toUpperCase()], Operations: [{ op: 'add', path: 'title', value: 'x' }] } as never));
    expect(scimError(err), 'upper-case URN').toEqual({ status: 400, scimType: 'invalidSyntax' });
  });

  it('answers a type error of a POST/PUT body with a plain TypeError, not a SCIM error', () => {
    const err = (() => { try { new SCIMMY.Schemas.User({ userName: 'a', active: 'true' }, 'in'); } catch (e) { return e; } })();
    expect(err, 'string boolean on create').toBeInstanceOf(TypeError);
    expect(err, 'not a SCIM error').not.toBeInstanceOf(SCIMMY.Types.Error);
    const missing = (() => { try { new SCIMMY.Schemas.User({ displayName: 'a' }, 'in'); } catch (e) { return e; } })();
    expect(missing, 'missing userName').toBeInstanceOf(TypeError);
    const schema = (() => { try { new SCIMMY.Schemas.User({ schemas: [USER.toLowerCase()], userName: 'a' }, 'in'); } catch (e) { return e; } })();
    expect(scimError(schema), 'schemas in another case').toEqual({ status: 400, scimType: 'invalidSyntax' });
  });

  it('keeps a POST password on the instance (hidden from JSON only), and drops groups and id', () => {
    const instance = new SCIMMY.Schemas.User({ userName: 'a', password: 'p', groups: [{ value: 'g' }], id: 'x' }, 'in') as unknown as Obj;
    expect(instance.password, 'password on the instance').toBe('p');
    expect(json(instance).password, 'password in JSON').toBeUndefined();
    expect(instance.groups, 'groups').toBeUndefined();
    expect(instance.id, 'id').toBeUndefined();
  });

  it('removes every member on a remove of "members" without value, leaving members absent', async () => {
    const r = await applyPatch('Group', patch([{ op: 'remove', path: 'members' }]), group);
    expect((json(r.returned) as Obj).members, 'members').toBeUndefined();
  });

  it('matches a value list on remove only when every listed sub-attribute is equal', async () => {
    const r = await applyPatch('Group', patch([{ op: 'remove', path: 'members', value: [{ value: 'u1', display: 'Someone else' }] }]), group);
    expect(r.returned, 'nothing removed').toBeUndefined();
  });

  it('appends a member that is already there (no de-duplication)', async () => {
    const r = await applyPatch('Group', patch([{ op: 'add', path: 'members', value: [{ value: 'u1' }] }]), group);
    expect(((json(r.returned) as Obj).members as Obj[]).map((m) => m.value), 'member values').toEqual(['u1', 'u2', 'u3', 'u1']);
  });

  it('clears a complex attribute on replace with a path, and appends on replace without path', async () => {
    const byPath = await applyPatch('User', patch([{ op: 'replace', path: 'name', value: { givenName: 'Q' } }]), user);
    expect((json(byPath.returned) as Obj).name, 'name after replace with path').toEqual({ givenName: 'Q' });
    const noPath = await applyPatch('User', patch([{ op: 'replace', value: { emails: [{ value: 'b@x.com', type: 'home' }] } }]), user);
    expect(((json(noPath.returned) as Obj).emails as Obj[]).length, 'emails after replace without path').toBe(2);
  });
});
