// The PATCH engine (src/scim/patch-engine.ts) against scimmy's PatchOp, which it replaces on the
// common path: on every recorded Okta/Entra PATCH of a user and on generated operations, where
// both apply the operations, they store the same resource; every recorded PATCH is applied by the
// engine itself (no fall-back to scimmy).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import SCIMMY from 'scimmy';
import { scimFixtures } from '../support/scim-fixtures.js';
import { coercedUserInput, declareResources, renderUser, userInput } from '../../src/scim/resources.js';
import { normalisePatch, normaliseResource } from '../../src/scim/dialect.js';
import { applyPatchOperations, type PatchOutcome } from '../../src/scim/patch-engine.js';
import { applyPatch } from '../../src/scim/scimmy-patch.js';
import { boundPatchPaths } from '../../src/scim/patch-path.js';
import type { ScimUserRow } from '../../src/store/scim-user-store.js';

declareResources();

type Obj = Record<string, unknown>;
const BASE = 'https://orgsync.example.test/scim/v2/d';
const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

function row(resource: Obj): ScimUserRow {
  return {
    id: '6f1c2d3e-4a5b-4c6d-8e7f-000000000001', orgId: 'o', directoryId: 'd', accountId: null, resource, version: 3, deletedAt: null,
    createdAt: new Date(1_700_000_000_000), updatedAt: new Date(1_700_000_500_000), userName: String(resource.userName ?? ''), userNameNormalized: '',
    externalId: null, active: true, displayName: null, givenName: null, familyName: null, title: null, userType: null, employeeNumber: null, department: null,
  } as ScimUserRow;
}

/** What the stored resource becomes by the engine: the outcome, and the stored resource when changed. */
function byEngine(stored: Obj, body: unknown): { outcome: PatchOutcome; resource?: Obj | null } {
  boundPatchPaths(body, { forScimmy: true });
  const normalised = normalisePatch('User', body, stored) as { Operations?: unknown };
  const outcome = applyPatchOperations('User', stored, normalised.Operations);
  if (outcome.kind === 'unchanged') return { outcome, resource: null };
  if (outcome.kind === 'bail') return { outcome };
  const input = coercedUserInput(outcome.resource);
  return { outcome, resource: input ? input.resource : undefined };
}

/** What scimmy made of it (the path every PATCH took before the engine): null = unchanged, undefined = refused. */
async function byScimmy(stored: Obj, body: unknown): Promise<Obj | null | undefined> {
  try {
    const full = renderUser(row(stored), BASE);
    const result = await applyPatch(full, normalisePatch('User', body, full), SCIMMY.Schemas.User);
    return result ? userInput(result).resource : null;
  } catch {
    return undefined;
  }
}

/**
 * Key order and the order of `schemas` carry no meaning (jsonb reorders keys). Identical entries
 * of a list count once: scimmy 1.3.5 appends a value an add already finds there, where RFC 7644
 * §3.5.2.1 says no change should be made (the engine's behaviour).
 */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) {
    const seen = new Set<string>();
    return v.map(canonical).filter((x) => {
      const k = JSON.stringify(x);
      return seen.has(k) ? false : (seen.add(k), true);
    });
  }
  if (v === null || typeof v !== 'object') return v;
  const o = v as Obj;
  // RFC 7643 §2.5: an empty complex value or list is unassigned (scimmy keeps `name: {}`).
  const empty = (x: unknown) => x === null || (Array.isArray(x) && !x.length) || (typeof x === 'object' && x !== null && !Object.keys(x).length);
  return Object.fromEntries(Object.keys(o).sort().map((k) => [k, k === 'schemas' && Array.isArray(o[k]) ? [...(o[k] as string[])].sort() : canonical(o[k])] as const).filter(([, x]) => !empty(x)));
}

/** RFC 7643 §2.4: "primary" true at most once per attribute; scimmy keeps a second one, the engine demotes the older. */
const twoPrimaries = (r: Obj) => Object.values(r).some((v) => Array.isArray(v) && v.filter((e) => (e as Obj)?.primary === true).length > 1);

const storedUser = (body: Obj): Obj => userInput(normaliseResource('User', body)).resource;

describe('PATCH engine on the recorded IdP requests', () => {
  const patches = scimFixtures().filter((f) => f.method === 'PATCH' && f.resource === 'Users' && f.before);
  it('has recorded user PATCHes to run', () => {
    expect(patches.length).toBeGreaterThan(5);
  });
  for (const f of patches) {
    it(`${f.file}: applied by the engine, same stored resource as scimmy`, async () => {
      const stored = storedUser(f.before!);
      const engine = byEngine(stored, f.request);
      expect(engine.outcome.kind, JSON.stringify(engine.outcome)).not.toBe('bail');
      const scimmy = await byScimmy(stored, f.request);
      expect(canonical(engine.resource)).toEqual(canonical(scimmy));
    });
  }
});

const value = fc.constantFrom('a', 'B', 'work', 'home', 'x@y.example', 'Ada', '');
const emailEntry = fc.record({ value: fc.constantFrom('a@x.example', 'b@x.example', 'c@x.example'), type: fc.constantFrom('work', 'home', 'other'), primary: fc.boolean() }, { requiredKeys: ['value'] });
const phoneEntry = fc.record({ value: fc.constantFrom('+1 555', '+44 20'), type: fc.constantFrom('work', 'mobile') });

const operation: fc.Arbitrary<Obj> = fc.oneof(
  fc.record({ op: fc.constantFrom('add', 'replace', 'Replace'), path: fc.constantFrom('displayName', 'title', 'nickName', 'name.givenName', 'name.familyName', 'userType', `${ENT}:department`, `${ENT}:employeeNumber`, `${ENT}:manager.value`, 'preferredLanguage'), value }),
  fc.record({ op: fc.constantFrom('replace', 'add'), path: fc.constant('active'), value: fc.constantFrom(true, false, 'True', 'false') }),
  fc.record({ op: fc.constant('remove'), path: fc.constantFrom('displayName', 'title', 'name.givenName', 'name', 'emails', 'phoneNumbers', `${ENT}:department`, ENT, 'emails[type eq "work"]', 'emails[type eq "home"].primary', 'phoneNumbers[type eq "mobile"]') }),
  fc.record({ op: fc.constantFrom('add', 'replace'), path: fc.constantFrom('emails[type eq "work"].value', 'emails[type eq "home"].value', 'phoneNumbers[type eq "mobile"].value', 'emails[type eq "work" or type eq "home"].display', 'emails[not (type eq "other")].display'), value }),
  fc.record({ op: fc.constant('replace'), path: fc.constant('emails'), value: fc.array(emailEntry, { maxLength: 3 }) }),
  // An added primary entry demotes the others (RFC 7643 §2.4), which scimmy does not: patch-engine.test.ts has it.
  fc.record({ op: fc.constant('add'), path: fc.constant('emails'), value: fc.array(emailEntry.map((e) => ({ ...e, primary: false })), { maxLength: 3 }) }),
  fc.record({ op: fc.constantFrom('add', 'replace'), path: fc.constant('phoneNumbers'), value: fc.array(phoneEntry, { minLength: 1, maxLength: 2 }) }),
  fc.record({ op: fc.constantFrom('add', 'replace'), value: fc.record({ displayName: value, title: value, 'name.givenName': value, [`${ENT}:department`]: value }, { requiredKeys: [] }) }),
  fc.record({ op: fc.constant('add'), path: fc.constant('name'), value: fc.record({ givenName: value, familyName: value }, { requiredKeys: [] }) }),
);

const baseUser = fc.record({
  userName: fc.constant('ada@x.example'),
  displayName: fc.option(fc.constant('Ada'), { nil: undefined }),
  name: fc.option(fc.record({ givenName: fc.constant('Ada'), familyName: fc.constant('King') }), { nil: undefined }),
  // At most one primary (RFC 7643 §2.4), as a resource the service stored.
  emails: fc.option(fc.uniqueArray(emailEntry, { maxLength: 3, selector: (e) => e.type }).map((l) => l.map((e, i) => ({ ...e, primary: i === 0 && e.primary }))), { nil: undefined }),
  phoneNumbers: fc.option(fc.array(phoneEntry, { maxLength: 2 }), { nil: undefined }),
  [ENT]: fc.option(fc.record({ department: fc.constant('R&D'), manager: fc.record({ value: fc.constant('m1') }) }, { requiredKeys: [] }), { nil: undefined }),
}, { requiredKeys: ['userName'] });

describe('PATCH engine against scimmy on generated operations', () => {
  it('same stored resource wherever both apply the operations', async () => {
    const tally = { same: 0, bail: 0, scimmyRefused: 0, scimmyWrong: 0 };
    await fc.assert(
      fc.asyncProperty(baseUser, fc.array(operation, { minLength: 1, maxLength: 4 }), async (user, ops) => {
        const stored = storedUser({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', ...(user[ENT] ? [ENT] : [])], ...user });
        const body = { schemas: [PATCH_OP], Operations: ops };
        let engine: ReturnType<typeof byEngine>;
        try {
          engine = byEngine(stored, body);
        } catch {
          return; // a 400 before any application (bounded paths): the same for both
        }
        if (engine.outcome.kind === 'bail' || engine.resource === undefined) {
          tally.bail++;
          return;
        }
        const scimmy = await byScimmy(stored, body);
        if (scimmy === undefined) {
          tally.scimmyRefused++;
          if (process.env.PATCH_ENGINE_TALLY === '1' && tally.scimmyRefused < 12) console.log('[scimmy refused]', JSON.stringify(ops));
          return;
        }
        if (scimmy && twoPrimaries(scimmy)) {
          tally.scimmyWrong++;
          return;
        }
        expect(canonical(engine.resource ?? stored)).toEqual(canonical(scimmy ?? stored));
        tally.same++;
      }),
      { numRuns: Number(process.env.PATCH_ENGINE_RUNS ?? 400) },
    );
    if (process.env.PATCH_ENGINE_TALLY === '1') console.log('[patch-engine]', tally);
    // Most generated operations are applied by the engine itself.
    expect(tally.same).toBeGreaterThan(tally.bail);
  }, 120_000);
});
