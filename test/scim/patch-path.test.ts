/**
 * PATCH paths go through the bounded filter parser before scimmy (issue 12 §2): what identity
 * providers send passes unchanged, what scimmy would expand or misread is refused with
 * invalidPath / invalidFilter naming the problem.
 */
import { describe, expect, it } from 'vitest';
import { InvalidFilter, InvalidInput, InvalidPath } from '../../src/domain/errors.js';
import { boundPatchPath, boundPatchPaths, dnfBranches, PATCH_PATH_LIMITS } from '../../src/scim/patch-path.js';
import { parseFilter } from '../../src/scim/filter-parser.js';

const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const PO = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

describe('paths identity providers send pass unchanged', () => {
  it.each([
    'emails[type eq "work"].value', 'phoneNumbers[type eq "mobile"].value', 'addresses[type eq "work"].locality',
    'members[value eq "89bb1940-b905-4575-9e7f-6f887cfb368e"]', `members[value eq "7f4bc1a3-285e-48ae-8202-5accb43efb0e"].display`,
    `${ENT}:manager`, `${ENT}:manager.value`, `${ENT}:employeeNumber`, ENT, 'name.givenName', 'UserName', 'active', 'members',
    'emails[type co "wor"].value', 'emails[type eq "work" and primary eq true]', 'forbiddenPathSegment',
  ])('%s', (path) => {
    expect(boundPatchPath(path, 0).path).toBe(path);
  });
});

describe('paths re-written so scimmy reads them as parsed', () => {
  it.each([
    ['emails[value eq abc]', 'emails[value eq "abc"]'],
    ['emails[type eq "a" or type eq "b"]', 'emails[type eq "a" or type eq "b"]'],
    ['emails[(type eq "a" or type eq "b") and primary eq true].value', 'emails[(type eq "a" or type eq "b") and primary eq true].value'],
    ['emails[value eq or-x]', 'emails[value eq "or-x"]'],
    ['emails[not (type eq "home")]', 'emails[not (type eq "home")]'],
    // Precedence (and before or) needs no parentheses: scimmy splits on the top-level or first.
    ['emails[((type eq "a" or type eq "b") and value eq "x") or type eq "c"]', 'emails[(type eq "a" or type eq "b") and value eq "x" or type eq "c"]'],
  ])('%s → %s', (path, expected) => {
    expect(boundPatchPath(path, 0).path).toBe(expected);
  });
});

describe('refused', () => {
  const groups = (n: number) => Array.from({ length: n }, (_, i) => `(type eq "a${i}" or type eq "b${i}")`).join(' and ');
  it.each([
    [`emails[${groups(16)}].value`, InvalidFilter, /more than 50 operators/],
    [`emails[${groups(6)}].value`, InvalidFilter, /expands to 64 alternatives .* the limit is 32/],
    ['emails[((type eq "a" or type eq "b") and value eq "x" or type eq "c") and primary eq true]', InvalidFilter, /parentheses in a PATCH path filter may not be nested/],
    ['emails[not (type eq "a" or type eq "b")]', InvalidFilter, /'not \(…\)' may only wrap one comparison/],
    ['emails[value eq "a\\"b"]', InvalidFilter, /contains "\\""/],
    ['emails[value eq "a)b"]', InvalidFilter, /contains "\)"/],
    ['emails[type eq "work"]x', InvalidPath, /only '\.subAttribute' may follow/],
    ['emails[type eq "work"', InvalidFilter, /expected '\]' to close the value filter/],
    ['emails [type eq "work"]', InvalidPath, /a path is an attribute name/],
    ['members[__proto__.polluted eq "x"]', InvalidFilter, /'__proto__' is not allowed/],
    ['constructor.prototype.polluted', InvalidPath, /'constructor' is not allowed/],
    ['a.b.c', InvalidPath, /at most one sub-attribute/],
    ['x'.repeat(1001), InvalidPath, /1001 characters long; the limit is 1000/],
  ] as const)('%s', (path, type, detail) => {
    let err: unknown;
    try {
      boundPatchPath(path, 2);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(type);
    expect((err as Error).message).toMatch(/^operation 3 path: /);
    expect((err as Error).message).toMatch(detail);
  });

  it('the work handed to scimmy is bounded across operations', () => {
    const ops = (n: number) => ({ schemas: [PO], Operations: Array.from({ length: n }, () => ({ op: 'remove', path: 'emails[type eq "x"]' })) });
    expect(() => boundPatchPaths(ops(PATCH_PATH_LIMITS.maxScimmyWork), { forScimmy: true })).not.toThrow();
    expect(() => boundPatchPaths(ops(PATCH_PATH_LIMITS.maxScimmyWork + 1), { forScimmy: true })).toThrow(InvalidInput);
    expect(() => boundPatchPaths(ops(1000))).not.toThrow(); // member operations become rows, not scimmy work
  });

  it('dnfBranches: OR adds, AND multiplies, not swaps them', () => {
    expect(dnfBranches(parseFilter('(a eq 1 or b eq 1) and (c eq 1 or d eq 1 or e eq 1)'))).toBe(6);
    expect(dnfBranches(parseFilter('not ((a eq 1 and b eq 1) or c eq 1)'))).toBe(2);
  });

  it('member names of the operation in any case (hand-written bodies)', () => {
    const out = boundPatchPaths({ schemas: [PO], operations: [{ Op: 'remove', Path: 'emails[value eq abc]' }] }) as { operations: { Path: string }[] };
    expect(out.operations[0]!.Path).toBe('emails[value eq "abc"]');
  });
});
