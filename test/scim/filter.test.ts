/**
 * SCIM filters (RFC7644§3.4.2.2), sorting (§3.4.2.3) and attribute lists (§3.4.2.5):
 * (1) the where each filter compiles to, and every refused filter with its message;
 * (2) filters run against a real database (PGlite, or PostgreSQL when DATABASE_URL is set)
 *     beside a second org's directory that must never match;
 * (3) prototype-pollution attempts leave Object.prototype alone; deep / wide filters are refused
 *     or compiled quickly (scimmy's parser expands nested ORs exponentially);
 * (4) compileSort and parseAttributeList.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Prisma } from '../../src/generated/prisma/client.js';
import { InvalidFilter } from '../../src/domain/errors.js';
import { compileFilter, compileSort, FILTER_LIMITS, parseAttributeList, type ScimKind, type ScimWhere } from '../../src/scim/filter.js';
import type { PrismaClient } from '../../src/store/database.js';
import { migrate } from '../../src/store/migrator.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const CORE = 'urn:ietf:params:scim:schemas:core:2.0:User';
const UUID_A = '6f1a4a2e-8f5e-4c3e-9d6b-2a1e5c7d9b01';

function filterError(kind: ScimKind, expr: string): InvalidFilter {
  try {
    compileFilter(kind, expr);
  } catch (err) {
    if (err instanceof InvalidFilter) return err;
    throw new Error(`${JSON.stringify(expr)} threw ${String(err)} instead of InvalidFilter`);
  }
  throw new Error(`${JSON.stringify(expr)} compiled, but should have been refused`);
}

function thrown(fn: () => unknown): InvalidFilter {
  try {
    fn();
  } catch (err) {
    if (err instanceof InvalidFilter) return err;
    throw new Error(`threw ${String(err)} instead of InvalidFilter`);
  }
  throw new Error('did not throw');
}

// ---------------------------------------------------------------------------------------------
describe('compileFilter: the where a filter becomes', () => {
  const ci = (v: string) => ({ equals: v, mode: 'insensitive' });
  const cases: Array<[string, ScimKind, unknown]> = [
    ['userName eq "BJensen"', 'User', { userNameNormalized: 'bjensen' }],
    ['USERNAME EQ "x"', 'User', { userNameNormalized: 'x' }],
    ['userName sw O', 'User', { userNameNormalized: { startsWith: 'o' } }],
    ['userName eq Test_User_abc', 'User', { userNameNormalized: 'test_user_abc' }],
    ['userName co "@Example.com"', 'User', { userNameNormalized: { contains: '@example.com' } }],
    ['userName ew ".org"', 'User', { userNameNormalized: { endsWith: '.org' } }],
    ['userName gt "m"', 'User', { userNameNormalized: { gt: 'm' } }],
    ['userName pr', 'User', { userNameNormalized: { not: '' } }],
    ['externalId eq "Ext-1"', 'User', { externalId: 'Ext-1' }],
    ['displayName eq "Babs"', 'User', { displayName: ci('Babs') }],
    ['name.GivenName sw "Ba"', 'User', { givenName: { startsWith: 'Ba', mode: 'insensitive' } }],
    ['title le "M"', 'User', { title: { lte: 'M', mode: 'insensitive' } }],
    ['active eq true', 'User', { active: true }],
    ['active eq "False"', 'User', { active: false }],
    ['active ne true', 'User', { NOT: { active: true } }],
    ['active pr', 'User', {}],
    ['title ne "x"', 'User', { OR: [{ title: null }, { NOT: { title: ci('x') } }] }],
    ['not (title eq "x")', 'User', { OR: [{ title: null }, { NOT: { title: ci('x') } }] }],
    ['title pr', 'User', { AND: [{ title: { not: null } }, { title: { not: '' } }] }],
    ['not(title pr)', 'User', { OR: [{ title: null }, { title: '' }] }],
    ['not (userName pr)', 'User', { userNameNormalized: '' }],
    ['not (active pr)', 'User', { active: { in: [] } }],
    ['title eq null', 'User', { title: null }],
    ['title ne null', 'User', { title: { not: null } }],
    ['userName ne null', 'User', {}],
    ['userName eq null', 'User', { userNameNormalized: { in: [] } }],
    ['id eq "6F1A4A2E-8F5E-4C3E-9D6B-2A1E5C7D9B01"', 'User', { id: UUID_A }],
    ['id eq "not-a-uuid"', 'User', { id: { in: [] } }],
    ['not (id eq "not-a-uuid")', 'User', {}],
    ['meta.created gt "2024-01-05T00:00:00Z"', 'User', { createdAt: { gt: new Date('2024-01-05T00:00:00Z') } }],
    ['meta.lastModified le 2024-01-05T10:00:00', 'User', { updatedAt: { lte: new Date('2024-01-05T10:00:00Z') } }],
    ['meta.created ge "2024-01-05"', 'User', { createdAt: { gte: new Date('2024-01-05T00:00:00Z') } }],
    [`${CORE}:userName eq "a"`, 'User', { userNameNormalized: 'a' }],
    [`${ENT}:employeeNumber eq 701984`, 'User', { employeeNumber: ci('701984') }],
    [`${ENT.toUpperCase()}:DEPARTMENT co "ops"`, 'User', { department: { contains: 'ops', mode: 'insensitive' } }],
    ['emails eq "A@X.com"', 'User', { emails: { some: { valueNormalized: 'a@x.com' } } }],
    ['emails.value co "@x"', 'User', { emails: { some: { valueNormalized: { contains: '@x' } } } }],
    ['emails pr', 'User', { emails: { some: {} } }],
    ['not (emails pr)', 'User', { emails: { none: {} } }],
    ['emails.type pr', 'User', { emails: { some: { AND: [{ type: { not: null } }, { type: { not: '' } }] } } }],
    ['emails.value ne "a@x"', 'User', { emails: { some: { NOT: { valueNormalized: 'a@x' } } } }],
    ['not (emails.value eq "a@x")', 'User', { emails: { none: { valueNormalized: 'a@x' } } }],
    ['emails[type eq "work"]', 'User', { emails: { some: { type: ci('work') } } }],
    [
      'emails[type eq "work" and value co "@example.com"]',
      'User',
      { emails: { some: { AND: [{ type: ci('work') }, { valueNormalized: { contains: '@example.com' } }] } } },
    ],
    [
      'emails[type eq "work"].value co "Example"',
      'User',
      { emails: { some: { AND: [{ type: ci('work') }, { valueNormalized: { contains: 'example' } }] } } },
    ],
    ['emails[primary eq true]', 'User', { emails: { some: { primary: true } } }],
    ['emails[not (type eq "work")]', 'User', { emails: { some: { OR: [{ type: null }, { NOT: { type: ci('work') } }] } } }],
    ['groups eq "not-a-uuid"', 'User', { id: { in: [] } }],
    [`groups[value eq "${UUID_A}"]`, 'User', { groups: { some: { groupId: UUID_A } } }],
    ['name[givenName sw "a" and familyName eq "b"]', 'User', { AND: [{ givenName: { startsWith: 'a', mode: 'insensitive' } }, { familyName: ci('b') }] }],
    [
      'userName eq "a" or userName eq "b" and active eq true',
      'User',
      { OR: [{ userNameNormalized: 'a' }, { AND: [{ userNameNormalized: 'b' }, { active: true }] }] },
    ],
    [
      '(userName eq "a" or userName eq "b") and active eq true',
      'User',
      { AND: [{ OR: [{ userNameNormalized: 'a' }, { userNameNormalized: 'b' }] }, { active: true }] },
    ],
    [
      'not (userName eq "a" or active eq false)',
      'User',
      { AND: [{ NOT: { userNameNormalized: 'a' } }, { NOT: { active: false } }] },
    ],
    ['userName eq "a\\"b\\u00e9"', 'User', { userNameNormalized: 'a"bé' }],
    // LIKE / ILIKE wildcards in values are escaped where Prisma renders a pattern (not for plain = or >).
    ['userName co "50%_\\\\"', 'User', { userNameNormalized: { contains: '50\\%\\_\\\\' } }],
    ['userName eq "a_b%"', 'User', { userNameNormalized: 'a_b%' }],
    ['displayName eq "a_b%"', 'User', { displayName: ci('a\\_b\\%') }],
    ['displayName sw "_"', 'User', { displayName: { startsWith: '\\_', mode: 'insensitive' } }],
    ['displayName gt "_"', 'User', { displayName: { gt: '_', mode: 'insensitive' } }],
    ['userName eq 12.5', 'User', { userNameNormalized: '12.5' }],
    ['  userName   eq\t"x"  ', 'User', { userNameNormalized: 'x' }],
    ['displayName eq "Admins"', 'Group', { displayNameNormalized: 'admins' }],
    ['DisplayName sw admin', 'Group', { displayNameNormalized: { startsWith: 'admin' } }],
    ['externalId eq "g-1"', 'Group', { externalId: 'g-1' }],
    [`members eq "${UUID_A}"`, 'Group', { members: { some: { userId: UUID_A } } }],
    [`members[value eq "${UUID_A.toUpperCase()}"]`, 'Group', { members: { some: { userId: UUID_A } } }],
    ['members.value eq "nope"', 'Group', { id: { in: [] } }],
    ['not (members eq "nope")', 'Group', {}],
    ['members pr', 'Group', { members: { some: {} } }],
    ['urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "X"', 'Group', { displayNameNormalized: 'x' }],
    ['meta.created lt "2024-02-01T00:00:00+01:00"', 'Group', { createdAt: { lt: new Date('2024-01-31T23:00:00Z') } }],
  ];
  it.each(cases)('%s (%s)', (expr, kind, expected) => {
    expect(compileFilter(kind, expr), expr).toEqual(expected);
  });

  it('never names the tenant scope columns, so a spread cannot override them', () => {
    for (const [expr, kind] of cases) {
      const json = JSON.stringify(compileFilter(kind, expr));
      expect(json, expr).not.toMatch(/"(directoryId|orgId|deletedAt)"/);
    }
  });

  it('returns a fresh object each time (callers may extend it)', () => {
    const a = compileFilter('User', 'active pr');
    (a as Record<string, unknown>).x = 1;
    expect(compileFilter('User', 'active pr')).toEqual({});
  });
});

describe('compileFilter: refused filters say what is wrong', () => {
  const ops51 = Array.from({ length: 26 }, (_, i) => `userName eq "u${i}"`).join(' or ');
  const deep9 = '('.repeat(9) + 'userName eq "a"' + ')'.repeat(9);
  const cases: Array<[string, ScimKind, RegExp]> = [
    ['', 'User', /empty/],
    ['   ', 'User', /empty/],
    ['userName eq', 'User', /'eq' needs a value .*position 12/],
    ['userName eq   ', 'User', /needs a value/],
    ['(userName eq)', 'User', /needs a value .*found '\)'/],
    ['userName eq and active eq true', 'User', /needs a value .*operator 'and'/],
    ['userName', 'User', /expected an operator .* after 'userName'/],
    ['userName xx "a"', 'User', /unknown operator 'xx' at position 10/],
    ['userName eq "x" and', 'User', /expected an attribute name/],
    ['userName eq "x" active eq true', 'User', /unexpected 'active' at position 17/],
    ['(userName eq "x"', 'User', /expected '\)' to close/],
    ['userName eq "x")', 'User', /unexpected '\)'/],
    ['userName eq "unterminated', 'User', /unterminated string starting at position 13/],
    ['userName eq "bad \\q escape"', 'User', /invalid string/],
    ['userName pr "x"', 'User', /unexpected the string "x"/],
    ['not userName eq "x"', 'User', /operator 'not'.*not \(…\)/],
    ['emails[type eq "work"', 'User', /expected '\]' to close the value filter/],
    ['emails[type eq "work"] .value eq "x"', 'User', /unexpected '\.value'/],
    ['emails[value[type eq "x"] eq "y"]', 'User', /cannot be nested/],
    ['emails[nickName eq "x"]', 'User', /'nickName' inside 'emails\[…\]' is not supported; filterable sub-attributes of emails: value, type, primary/],
    ['emails[type eq "work"].display eq "x"', 'User', /'display' inside 'emails\[…\]'/],
    ['nickName eq "x"', 'User', /^filtering on 'nickName' is not supported; filterable attributes: id, externalId, userName, .*emails\.value/],
    ['name.middleName eq "x"', 'User', /filtering on 'name\.middleName' is not supported/],
    ['emails.display eq "x"', 'User', /filtering on 'emails\.display' is not supported/],
    ['name eq "x"', 'User', /'name' is a complex attribute; .*name\.givenName/],
    ['meta pr', 'User', /complex attribute/],
    ['userName.x eq "x"', 'User', /'userName' has no sub-attributes/],
    ['userName[value eq "x"]', 'User', /value filter applies to a complex attribute/],
    ['a.b.c eq 1', 'User', /at most one sub-attribute/],
    ['user name eq "x"', 'User', /unknown operator 'name'/],
    ['1userName eq "x"', 'User', /not a valid attribute path/],
    ['active gt true', 'User', /operator 'gt' cannot be used with 'active', which is a boolean; use eq, ne, pr/],
    ['active co "t"', 'User', /operator 'co' cannot be used/],
    ['active eq "yes"', 'User', /'active' is a boolean/],
    ['active eq 1', 'User', /'active' is a boolean/],
    ['emails[primary sw "t"]', 'User', /operator 'sw' cannot be used with 'emails\.primary'/],
    ['meta.created gt "yesterday"', 'User', /'meta\.created' is a dateTime/],
    ['meta.created gt "2024-13-45T00:00:00Z"', 'User', /dateTime/],
    ['meta.created co "2024"', 'User', /operator 'co' cannot be used with 'meta\.created'/],
    ['meta.created gt "0000-01-01T00:00:00Z"', 'User', /'meta\.created' is a dateTime/],
    ['userName eq "a\\u0000b"', 'User', /string starting at position 13 contains a NUL character/],
    ['userName eq "a\u0000b"', 'User', /the filter contains a NUL character at position 15/],
    ['userName eq a\u0000b', 'User', /NUL character/],
    ['id sw "6f1a"', 'User', /operator 'sw' cannot be used with 'id'/],
    ['userName gt null', 'User', /only eq and ne accept null/],
    ['userName co null', 'User', /only eq and ne accept null/],
    [`urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "x"`, 'User', /not a schema of Users/],
    [`urn:example:custom:nickName eq "x"`, 'User', /'urn:example:custom' is not a schema of Users/],
    [`${CORE}: eq "x"`, 'User', /attribute name missing after the schema URN/],
    [`${CORE}:employeeNumber eq "x"`, 'User', /filtering on .*employeeNumber' is not supported/],
    [`${ENT}:manager.value eq "x"`, 'User', /filtering on .*manager\.value' is not supported/],
    ['userName eq "x"', 'Group', /^filtering on 'userName' is not supported; filterable attributes: id, externalId, displayName, members, members\.value, meta\.created, meta\.lastModified$/],
    ['members[display eq "x"]', 'Group', /filterable sub-attributes of members: value/],
    ['members co "6f1a"', 'Group', /operator 'co' cannot be used with 'members'/],
    ['x'.repeat(FILTER_LIMITS.maxLength + 1), 'User', /1001 characters long; the limit is 1000/],
    [ops51, 'User', /more than 50 operators/],
    [deep9, 'User', /nests deeper than 8 levels/],
    ['__proto__.polluted eq "x"', 'User', /'__proto__' is not allowed in an attribute path/],
    ['constructor.prototype.x eq 1', 'User', /'constructor' is not allowed/],
    ['name.constructor eq 1', 'User', /'constructor' is not allowed/],
    ['PROTOTYPE eq 1', 'User', /'PROTOTYPE' is not allowed/],
    ['emails[__proto__ eq "x"]', 'User', /'__proto__' is not allowed/],
    ['emails[type eq "work"].__proto__ eq "x"', 'User', /'__proto__' is not allowed/],
    [`${CORE}:__proto__ eq "x"`, 'User', /'__proto__' is not allowed/],
    ['urn:__proto__:x:userName eq "x"', 'User', /'__proto__' is not allowed/],
    ['members[__proto__ eq "x"]', 'Group', /'__proto__' is not allowed/],
  ];
  it.each(cases)('%s (%s)', (expr, kind, message) => {
    const err = filterError(kind, expr);
    expect(err.code).toBe('ERR_INVALID_FILTER');
    expect(err.message, `message for ${JSON.stringify(expr)}`).toMatch(message);
  });

  it('accepts a filter exactly at the limits', () => {
    // 25 comparisons, 24 or, 1 not = 50 operators.
    const ops50 = `not (${Array.from({ length: 25 }, (_, i) => `userName eq "u${i}"`).join(' or ')})`;
    expect(() => compileFilter('User', ops50)).not.toThrow();
    const deep8 = '('.repeat(8) + 'userName eq "a"' + ')'.repeat(8);
    expect(compileFilter('User', deep8)).toEqual({ userNameNormalized: 'a' });
    const long = `userName eq "${'a'.repeat(FILTER_LIMITS.maxLength - 14)}"`;
    expect(long.length).toBe(FILTER_LIMITS.maxLength);
    expect(() => compileFilter('User', long)).not.toThrow();
  });

  it('publishes its limits', () => {
    expect(FILTER_LIMITS).toEqual({ maxLength: 1000, maxOperators: 50, maxDepth: 8, maxResults: 200 });
    expect(Object.isFrozen(FILTER_LIMITS)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
describe('prototype pollution and expensive filters', () => {
  it('leaves Object.prototype unchanged', () => {
    const before = Object.getOwnPropertyNames(Object.prototype).sort();
    const attempts = [
      '__proto__.polluted eq "x"',
      'constructor.prototype.polluted eq 1',
      '__proto__ pr',
      'emails[__proto__ eq "x"]',
      'userName eq "x" or __proto__.polluted eq "y"',
      'prototype.polluted eq true',
    ];
    for (const f of attempts) {
      expect(() => compileFilter('User', f), f).toThrow(InvalidFilter);
      expect(() => compileFilter('Group', f), f).toThrow(InvalidFilter);
    }
    for (const a of ['__proto__', '__proto__.polluted', 'constructor.prototype', 'name,prototype', `${CORE}:__proto__`]) {
      expect(() => parseAttributeList(a), a).toThrow(InvalidFilter);
    }
    expect(() => compileSort('User', '__proto__')).toThrow(InvalidFilter);
    expect(() => compileSort('User', 'constructor')).toThrow(InvalidFilter);
    // A value is only a value: "__proto__" as a string is a legitimate userName to look for.
    expect(compileFilter('User', 'userName eq "__proto__"')).toEqual({ userNameNormalized: '__proto__' });
    expect(compileFilter('User', 'userName eq constructor')).toEqual({ userNameNormalized: 'constructor' });
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(before);
    expect(({} as Record<string, unknown>).polluted, 'Object.prototype.polluted').toBeUndefined();
    expect(Object.prototype.constructor).toBe(Object);
  });

  it('refuses a 20-level nested OR quickly', () => {
    let nested = 'userName eq "u0"';
    for (let i = 1; i <= 20; i++) nested = `(userName eq "u${i}" or ${nested})`;
    const started = performance.now();
    const err = filterError('User', nested);
    expect(performance.now() - started).toBeLessThan(100);
    expect(err.message).toMatch(/nests deeper than 8|more than 50 operators/);
  });

  it('refuses 18 OR groups (scimmy overflows its stack on these) quickly', () => {
    const groups = Array.from({ length: 18 }, (_, i) => `(userName eq "a${i}" or userName eq "b${i}")`).join(' and ');
    const started = performance.now();
    expect(filterError('User', groups).message).toMatch(/more than 50 operators/);
    expect(performance.now() - started).toBeLessThan(100);
  });

  it('compiles 12 OR groups ANDed (4096 terms once expanded) linearly, in well under 100 ms', () => {
    const groups = Array.from({ length: 12 }, (_, i) => `(userName eq "a${i}" or displayName eq "b${i}")`).join(' and ');
    const started = performance.now();
    const where = compileFilter('User', groups) as { AND: unknown[] };
    expect(performance.now() - started).toBeLessThan(100);
    expect(where.AND).toHaveLength(12);
    expect(JSON.stringify(where).length).toBeLessThan(2000);
  });
});

// ---------------------------------------------------------------------------------------------
describe('compileSort', () => {
  const tail = [{ createdAt: 'asc' }, { id: 'asc' }];
  const cases: Array<[ScimKind, string | undefined, string | undefined, unknown]> = [
    ['User', undefined, undefined, tail],
    ['User', '', '', tail],
    ['User', undefined, 'descending', tail],
    ['User', 'userName', undefined, [{ userNameNormalized: 'asc' }, ...tail]],
    ['User', 'USERNAME', 'Descending', [{ userNameNormalized: 'desc' }, ...tail]],
    ['User', 'userName', 'ascending', [{ userNameNormalized: 'asc' }, ...tail]],
    ['User', 'name.familyName', 'descending', [{ familyName: 'desc' }, ...tail]],
    ['User', 'displayName', undefined, [{ displayName: 'asc' }, ...tail]],
    ['User', 'active', undefined, [{ active: 'asc' }, ...tail]],
    ['User', 'meta.created', 'descending', [{ createdAt: 'desc' }, { id: 'asc' }]],
    ['User', 'meta.lastModified', undefined, [{ updatedAt: 'asc' }, ...tail]],
    ['User', 'id', 'descending', [{ id: 'desc' }, { createdAt: 'asc' }]],
    ['User', `${ENT}:department`, undefined, [{ department: 'asc' }, ...tail]],
    ['User', `${CORE}:name.givenName`, undefined, [{ givenName: 'asc' }, ...tail]],
    ['Group', 'displayName', 'descending', [{ displayNameNormalized: 'desc' }, ...tail]],
    ['Group', 'externalId', undefined, [{ externalId: 'asc' }, ...tail]],
  ];
  it.each(cases)('%s sortBy=%s sortOrder=%s', (kind, by, order, expected) => {
    expect(compileSort(kind, by, order)).toEqual(expected);
  });

  const errors: Array<[ScimKind, string | undefined, string | undefined, RegExp]> = [
    ['User', 'emails', undefined, /sorting on 'emails' is not supported; sortable attributes: id, externalId, userName/],
    ['User', 'emails.value', undefined, /sorting on 'emails\.value' is not supported/],
    ['User', 'nickName', undefined, /sorting on 'nickName' is not supported/],
    ['User', 'name', undefined, /sorting on 'name' is not supported/],
    ['User', 'userName', 'up', /sortOrder must be "ascending" or "descending"/],
    ['User', 'userName desc', undefined, /one attribute path/],
    ['User', '__proto__', undefined, /'__proto__' is not allowed/],
    ['Group', 'members', undefined, /sorting on 'members' is not supported; sortable attributes: id, externalId, displayName, meta\.created, meta\.lastModified$/],
    ['Group', 'userName', undefined, /sorting on 'userName' is not supported/],
  ];
  it.each(errors)('%s sortBy=%s sortOrder=%s is refused', (kind, by, order, message) => {
    expect(thrown(() => compileSort(kind, by, order)).message).toMatch(message);
  });

  it('fits Prisma orderBy types', () => {
    const users: Prisma.ScimUserOrderByWithRelationInput[] = compileSort('User', 'userName');
    const groups: Prisma.ScimGroupOrderByWithRelationInput[] = compileSort('Group', 'displayName');
    expect(users.length + groups.length).toBe(6);
  });
});

describe('parseAttributeList', () => {
  const cases: Array<[string | undefined, string[]]> = [
    [undefined, []],
    ['', []],
    [' , ', []],
    ['userName', ['userName']],
    ['userName, emails.value ,name.givenName', ['userName', 'emails.value', 'name.givenName']],
    ['a,,b,', ['a', 'b']],
    [`${ENT}:employeeNumber`, [`${ENT}:employeeNumber`]],
    [ENT, [ENT]],
    [`${CORE}:name.familyName,meta.lastModified`, [`${CORE}:name.familyName`, 'meta.lastModified']],
    ['members.$ref', ['members.$ref']],
  ];
  it.each(cases)('%s', (value, expected) => {
    expect(parseAttributeList(value)).toEqual(expected);
  });

  const errors: Array<[string, RegExp]> = [
    ['__proto__', /'__proto__' is not allowed/],
    ['name.__proto__', /'__proto__' is not allowed/],
    ['userName,constructor', /'constructor' is not allowed/],
    ['prototype', /'prototype' is not allowed/],
    [`${CORE}:__proto__`, /'__proto__' is not allowed/],
    ['a'.repeat(FILTER_LIMITS.maxLength + 1), /the limit is 1000/],
    ['user name', /not a valid attribute path/],
    ['emails[type eq "work"]', /not a valid attribute path/],
    ['a.b.c', /at most one sub-attribute/],
    ['1abc', /not a valid attribute path/],
  ];
  it.each(errors)('%s is refused', (value, message) => {
    expect(thrown(() => parseAttributeList(value)).message).toMatch(message);
  });
});

// ---------------------------------------------------------------------------------------------
describe('filters against a real database', () => {
  let tdb: TestDatabase;
  let prisma: PrismaClient;
  const orgId = randomUUID();
  const otherOrgId = randomUUID();
  const dirId = randomUUID();
  const otherDirId = randomUUID();
  const ids: Record<string, string> = {};

  type Seed = {
    userName: string; displayName?: string; givenName?: string; familyName?: string; title?: string; userType?: string;
    active?: boolean; externalId?: string; employeeNumber?: string; department?: string; deleted?: boolean;
    emails?: Array<{ value: string; type?: string; primary?: boolean }>;
  };
  const users: Seed[] = [
    {
      userName: 'bjensen@example.com', displayName: 'Barbara Jensen', givenName: 'Barbara', familyName: 'Jensen', title: 'Tour Guide',
      userType: 'Employee', externalId: 'ext-1', employeeNumber: '701984', department: 'Tour Operations',
      emails: [{ value: 'bjensen@example.com', type: 'work', primary: true }, { value: 'babs@jensen.org', type: 'home' }],
    },
    { userName: 'OJohnson', displayName: 'Olivia Johnson', givenName: 'Olivia', familyName: 'Johnson', userType: 'Contractor', emails: [{ value: 'olivia@Example.COM', type: 'work' }] },
    { userName: 'oscar.wilde@writers.org', givenName: 'Oscar', familyName: 'Wilde', active: false, emails: [{ value: 'oscar@writers.org', type: 'home' }] },
    { userName: 'Test_User_abc' },
    { userName: 'TestXUserXabc', displayName: 'Wildcard Decoy' },
    { userName: '100%pure', displayName: '100% Pure' },
    {
      userName: 'Mike.Smith@example.com', givenName: 'Mike', familyName: 'Smith', title: 'Engineer', department: 'R&D', employeeNumber: '42',
      emails: [{ value: 'mike.smith@example.com', type: 'work' }, { value: 'MIKE@personal.net' }],
    },
    { userName: 'nadia@example.net', displayName: 'Nadia Empty', title: '', emails: [{ value: 'nadia@example.net', type: 'work' }] },
    { userName: 'zed@example.com', active: false, title: 'engineer', emails: [{ value: 'zed@example.com', type: 'Work' }] },
    { userName: 'ghost@example.com', deleted: true, title: 'Engineer', emails: [{ value: 'ghost@example.com', type: 'work' }] },
  ];
  // The other org's directory holds look-alikes: any filter reaching across would return duplicates.
  const others: Seed[] = [
    { userName: 'bjensen@example.com', displayName: 'Barbara Jensen', title: 'Tour Guide', externalId: 'ext-1', employeeNumber: '701984', emails: [{ value: 'bjensen@example.com', type: 'work', primary: true }] },
    { userName: 'OJohnson', givenName: 'Olivia', userType: 'Contractor', emails: [{ value: 'olivia@example.com', type: 'work' }] },
    { userName: 'zed@example.com', active: false, title: 'Engineer', emails: [{ value: 'zed@example.com', type: 'work' }] },
    { userName: 'outsider@other.org', title: 'Engineer', emails: [{ value: 'outsider@other.org', type: 'work' }] },
  ];
  const live = users.filter((u) => !u.deleted).map((u) => u.userName);
  const created = (i: number) => new Date(Date.UTC(2024, 0, i + 1, 12));

  async function seedUsers(org: string, dir: string, list: Seed[], prefix: string) {
    for (const [i, u] of list.entries()) {
      const email = u.emails?.[0]?.value ?? `${prefix}${i}@seed.example`;
      const account = await prisma.account.create({
        data: {
          orgId: org, email: `${prefix}${i}-${email}`, emailNormalized: `${prefix}${i}-${email}`.toLowerCase(), emailDomain: email.split('@')[1]!.toLowerCase(),
          managed: false, source: 'scim', directoryId: dir,
        },
      });
      const row = await prisma.scimUser.create({
        data: {
          orgId: org, directoryId: dir, accountId: account.id, userName: u.userName, userNameNormalized: u.userName.toLowerCase(),
          externalId: u.externalId ?? null, active: u.active ?? true, displayName: u.displayName ?? null, givenName: u.givenName ?? null,
          familyName: u.familyName ?? null, title: u.title ?? null, userType: u.userType ?? null, employeeNumber: u.employeeNumber ?? null,
          department: u.department ?? null, resource: { userName: u.userName }, createdAt: created(i), updatedAt: created(i),
          deletedAt: u.deleted ? created(20) : null,
        },
      });
      ids[`${prefix}${u.userName}`] = row.id;
      if (u.emails?.length) {
        await prisma.scimUserEmail.createMany({
          data: u.emails.map((e) => ({
            orgId: org, directoryId: dir, userId: row.id, value: e.value, valueNormalized: e.value.toLowerCase(), type: e.type ?? null, primary: e.primary ?? false,
          })),
        });
      }
    }
  }

  async function seedGroup(org: string, dir: string, name: string, members: string[], i: number, externalId?: string) {
    const g = await prisma.scimGroup.create({
      data: {
        orgId: org, directoryId: dir, displayName: name, displayNameNormalized: name.toLowerCase(), externalId: externalId ?? null,
        resource: { displayName: name }, createdAt: created(i), updatedAt: created(i),
      },
    });
    for (const userId of members) await prisma.scimGroupMember.create({ data: { orgId: org, directoryId: dir, groupId: g.id, userId } });
    return g.id;
  }

  beforeAll(async () => {
    tdb = await createTestDatabase();
    await migrate(tdb.db);
    prisma = tdb.db.prisma;
    for (const id of [orgId, otherOrgId]) await prisma.org.create({ data: { id, orgId: id, name: `org ${id.slice(0, 8)}` } });
    await prisma.directory.create({ data: { id: dirId, orgId, name: 'okta', idp: 'okta', tokenHash: 'a'.repeat(64) } });
    await prisma.directory.create({ data: { id: otherDirId, orgId: otherOrgId, name: 'entra', idp: 'entra', tokenHash: 'b'.repeat(64) } });
    await seedUsers(orgId, dirId, users, '');
    await seedUsers(otherOrgId, otherDirId, others, 'other:');
    ids.admins = await seedGroup(orgId, dirId, 'Admins', [ids['bjensen@example.com']!, ids['Mike.Smith@example.com']!], 0, 'grp-1');
    ids.engineering = await seedGroup(orgId, dirId, 'Engineering', [ids['Mike.Smith@example.com']!, ids['zed@example.com']!], 1);
    ids.empty = await seedGroup(orgId, dirId, 'Empty Group', [], 2);
    ids.otherAdmins = await seedGroup(otherOrgId, otherDirId, 'Admins', [ids['other:bjensen@example.com']!], 0, 'grp-1');
  });
  afterAll(async () => tdb?.drop());

  const fill = (f: string) => f.replace(/\{(\w[\w.@:%-]*)\}/g, (_, k: string) => ids[k] ?? `missing-${k}`);
  const sorted = (xs: string[]) => [...xs].sort();

  async function userNames(filter: string): Promise<string[]> {
    const where: Prisma.ScimUserWhereInput = { AND: [{ directoryId: dirId, deletedAt: null }, compileFilter('User', fill(filter))] };
    const rows = await prisma.scimUser.findMany({ where, select: { userName: true, directoryId: true } });
    for (const r of rows) expect(r.directoryId, `${filter} reached another directory`).toBe(dirId);
    return sorted(rows.map((r) => r.userName));
  }

  async function groupNames(filter: string): Promise<string[]> {
    const rows = await prisma.scimGroup.findMany({
      where: { AND: [{ directoryId: dirId }, compileFilter('Group', fill(filter))] },
      select: { displayName: true, directoryId: true },
    });
    for (const r of rows) expect(r.directoryId, `${filter} reached another directory`).toBe(dirId);
    return sorted(rows.map((r) => r.displayName));
  }

  const allBut = (...names: string[]) => live.filter((n) => !names.includes(n));
  const userCases: Array<[string, string[]]> = [
    ['userName eq "BJENSEN@example.com"', ['bjensen@example.com']],
    ['USERNAME eq "ojohnson"', ['OJohnson']],
    ['UserName Eq "ojohnson"', ['OJohnson']],
    ['userName sw "o"', ['OJohnson', 'oscar.wilde@writers.org']],
    ['userName sw O', ['OJohnson', 'oscar.wilde@writers.org']],
    ['userName eq Test_User_abc', ['Test_User_abc']],
    ['userName ew "@EXAMPLE.com"', ['Mike.Smith@example.com', 'bjensen@example.com', 'zed@example.com']],
    ['userName co "Smith"', ['Mike.Smith@example.com']],
    ['userName co "_user_"', ['Test_User_abc']],
    ['userName co "%"', ['100%pure']],
    ['userName sw "%"', []],
    ['displayName co "% p"', ['100%pure']],
    ['displayName eq "_ildcard decoy"', []],
    ['displayName eq "100% PURE"', ['100%pure']],
    ['displayName ew "%"', []],
    ['title eq "%"', []],
    ['emails.type eq "_ork"', []],
    ['userName ew "\\\\"', []],
    ['displayName eq "barbara JENSEN"', ['bjensen@example.com']],
    ['displayName sw "barb" and not (displayName ew "x")', ['bjensen@example.com']],
    ['name.GivenName sw "o"', ['OJohnson', 'oscar.wilde@writers.org']],
    ['NAME.familyname eq "WILDE"', ['oscar.wilde@writers.org']],
    ['name[givenName sw "o" and familyName co "JOHN"]', ['OJohnson']],
    ['emails[type eq "work"].value co "example.com"', ['Mike.Smith@example.com', 'OJohnson', 'bjensen@example.com', 'zed@example.com']],
    ['emails[type eq "work" and value co "@example.com"]', ['Mike.Smith@example.com', 'OJohnson', 'bjensen@example.com', 'zed@example.com']],
    ['emails[type eq "home" and value co "@example.com"]', []],
    ['emails co "jensen.org"', ['bjensen@example.com']],
    ['emails.value eq "MIKE@PERSONAL.NET"', ['Mike.Smith@example.com']],
    ['emails[type eq "home"]', ['bjensen@example.com', 'oscar.wilde@writers.org']],
    ['emails[primary eq true]', ['bjensen@example.com']],
    ['emails.type eq "WORK"', ['Mike.Smith@example.com', 'OJohnson', 'bjensen@example.com', 'nadia@example.net', 'zed@example.com']],
    ['emails pr', ['Mike.Smith@example.com', 'OJohnson', 'bjensen@example.com', 'nadia@example.net', 'oscar.wilde@writers.org', 'zed@example.com']],
    ['not (emails pr)', ['100%pure', 'TestXUserXabc', 'Test_User_abc']],
    ['emails.value ne "mike.smith@example.com"', ['Mike.Smith@example.com', 'OJohnson', 'bjensen@example.com', 'nadia@example.net', 'oscar.wilde@writers.org', 'zed@example.com']],
    ['not (emails.value eq "mike.smith@example.com")', allBut('Mike.Smith@example.com')],
    ['emails[not (type eq "work")]', ['Mike.Smith@example.com', 'bjensen@example.com', 'oscar.wilde@writers.org']],
    ['title pr', ['Mike.Smith@example.com', 'bjensen@example.com', 'zed@example.com']],
    ['not (title pr)', allBut('Mike.Smith@example.com', 'bjensen@example.com', 'zed@example.com')],
    ['title eq null', ['100%pure', 'OJohnson', 'TestXUserXabc', 'Test_User_abc', 'oscar.wilde@writers.org']],
    ['title ne null', ['Mike.Smith@example.com', 'bjensen@example.com', 'nadia@example.net', 'zed@example.com']],
    ['title eq "ENGINEER"', ['Mike.Smith@example.com', 'zed@example.com']],
    ['title ne "Engineer"', allBut('Mike.Smith@example.com', 'zed@example.com')],
    ['not (title eq "Engineer")', allBut('Mike.Smith@example.com', 'zed@example.com')],
    ['title gt "F"', ['bjensen@example.com']],
    ['title lt "f"', ['Mike.Smith@example.com', 'nadia@example.net', 'zed@example.com']],
    ['active eq false', ['oscar.wilde@writers.org', 'zed@example.com']],
    ['active ne true', ['oscar.wilde@writers.org', 'zed@example.com']],
    ['active eq True', allBut('oscar.wilde@writers.org', 'zed@example.com')],
    ['userType eq "employee" or userType eq "CONTRACTOR"', ['OJohnson', 'bjensen@example.com']],
    // and binds tighter than or: sw "o" or (sw "z" and active) — zed is inactive.
    ['userName sw "o" or userName sw "z" and active eq true', ['OJohnson', 'oscar.wilde@writers.org']],
    ['(userName sw "o" or userName sw "z") and active eq true', ['OJohnson']],
    ['(userName sw "o" or userName sw "z") and active eq false', ['oscar.wilde@writers.org', 'zed@example.com']],
    ['not (userName sw "o") and active eq false', ['zed@example.com']],
    ['not (userName sw "o" or active eq true)', ['zed@example.com']],
    ['meta.created gt "2024-01-05T00:00:00Z"', ['100%pure', 'Mike.Smith@example.com', 'TestXUserXabc', 'nadia@example.net', 'zed@example.com']],
    ['meta.created ge "2024-01-05T12:00:00Z" and meta.created lt 2024-01-07', ['100%pure', 'TestXUserXabc']],
    ['meta.created eq "2024-01-01T12:00:00.000Z"', ['bjensen@example.com']],
    ['meta.lastModified le "2024-01-02T12:00:00+00:00"', ['OJohnson', 'bjensen@example.com']],
    ['meta.created lt "2020-01-01"', []],
    ['meta.created lt "0001-01-01T00:00:00Z"', []],
    ['meta.created lt "9999-12-31T23:59:59.999Z"', live],
    // Values that are odd for a database but must not make it fail.
    ['userName eq "\\ud800"', []],
    ['displayName co "é\\u2028🙂"', []],
    [`userName co "${'x'.repeat(900)}"`, []],
    ["userName eq \"'; DROP TABLE \\\"ScimUser\\\"; --\"", []],
    [`${CORE}:userName eq "zed@example.com"`, ['zed@example.com']],
    [`${CORE}:name.givenName eq "mike"`, ['Mike.Smith@example.com']],
    [`${ENT}:employeeNumber eq "701984"`, ['bjensen@example.com']],
    [`${ENT}:employeeNumber eq 42`, ['Mike.Smith@example.com']],
    [`${ENT}:department eq "r&d"`, ['Mike.Smith@example.com']],
    ['department co "operations"', ['bjensen@example.com']],
    ['externalId eq "ext-1"', ['bjensen@example.com']],
    ['externalId eq "EXT-1"', []],
    ['id eq "{bjensen@example.com}"', ['bjensen@example.com']],
    ['id eq "{other:bjensen@example.com}"', []],
    ['id eq "{ghost@example.com}"', []],
    ['id eq "not-a-uuid"', []],
    ['id ne "not-a-uuid"', live],
    ['id pr', live],
    ['userName pr', live],
    ['groups eq "{admins}"', ['Mike.Smith@example.com', 'bjensen@example.com']],
    ['groups[value eq "{engineering}"] and active eq true', ['Mike.Smith@example.com']],
    ['groups eq "{otherAdmins}"', []],
    ['userName eq "nobody"', []],
    ['userName eq "ghost@example.com"', []],
    ['userName eq "outsider@other.org"', []],
  ];

  it.each(userCases)('Users %s', async (filter, expected) => {
    expect(await userNames(filter), filter).toEqual(sorted(expected));
  });

  const groupCases: Array<[string, string[]]> = [
    ['displayName eq "admins"', ['Admins']],
    ['DISPLAYNAME sw "E"', ['Empty Group', 'Engineering']],
    ['displayName co "group"', ['Empty Group']],
    ['externalId eq "grp-1"', ['Admins']],
    ['members[value eq "{Mike.Smith@example.com}"]', ['Admins', 'Engineering']],
    ['members eq "{zed@example.com}"', ['Engineering']],
    ['members.value eq "{other:bjensen@example.com}"', []],
    ['members eq "not-a-uuid"', []],
    ['not (members eq "not-a-uuid")', ['Admins', 'Empty Group', 'Engineering']],
    ['members pr', ['Admins', 'Engineering']],
    ['not (members pr)', ['Empty Group']],
    ['members eq "{bjensen@example.com}" or displayName sw "emp"', ['Admins', 'Empty Group']],
    ['meta.created gt "2024-01-01T12:00:00Z"', ['Empty Group', 'Engineering']],
    ['id eq "{engineering}"', ['Engineering']],
    ['id eq "{otherAdmins}"', []],
  ];
  it.each(groupCases)('Groups %s', async (filter, expected) => {
    expect(await groupNames(filter), filter).toEqual(sorted(expected));
  });

  it('sorts with compileSort in the database', async () => {
    const list = async (by?: string, order?: string) =>
      (await prisma.scimUser.findMany({ where: { directoryId: dirId, deletedAt: null }, orderBy: compileSort('User', by, order), select: { userName: true } })).map((r) => r.userName);
    expect(await list()).toEqual(live);
    expect(await list('userName', 'descending')).toEqual([...live].sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? 1 : -1)));
    expect(await list('meta.created', 'descending')).toEqual([...live].reverse());
    const activeFirst = await list('active', 'descending');
    expect(activeFirst.slice(-2).sort()).toEqual(['oscar.wilde@writers.org', 'zed@example.com']);
    const groups = await prisma.scimGroup.findMany({ where: { directoryId: dirId }, orderBy: compileSort('Group', 'displayName', 'descending'), select: { displayName: true } });
    expect(groups.map((g) => g.displayName)).toEqual(['Engineering', 'Empty Group', 'Admins']);
  });
});

describe('types', () => {
  it('a generic helper keeps the where type of its kind', () => {
    const wrap = <K extends ScimKind>(kind: K, f: string): ScimWhere<K> => compileFilter(kind, f);
    const users: Prisma.ScimUserWhereInput = wrap('User', 'userName eq "a"');
    const groups: Prisma.ScimGroupWhereInput = wrap('Group', 'displayName eq "a"');
    expect([users, groups]).toEqual([{ userNameNormalized: 'a' }, { displayNameNormalized: 'a' }]);
  });
});
