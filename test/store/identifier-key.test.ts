/**
 * Issue 12 §5: identifiers that look identical (José in NFC and NFD, straße / STRASSE) have one
 * key. identifierKey is what the service computes; the migration 20261207120000_identifier_keys
 * computes the same key in SQL for rows written before it, and re-keys them.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identifierKey, parseEmail } from '../../src/domain/identity.js';
import type { TestApp } from '../support/app.js';
import { orgWithDirectory, scim, startTestApp, user } from '../support/scim.js';

const MIGRATION = readFileSync(new URL('../../prisma/migrations/20261207120000_identifier_keys/migration.sql', import.meta.url), 'utf8');
const NFC = 'Jos\u00e9';
const NFD = 'Jose\u0301';

describe('identifierKey', () => {
  it.each([
    ['NFC and NFD', [NFC, NFD, 'JOSE\u0301', 'JOS\u00c9'], 'jos\u00e9'],
    ['ß folds to ss (full case folding, not toLowerCase)', ['straße', 'STRASSE', 'strasse', 'STRAẞE', 'Strasse'], 'strasse'],
    ['final sigma', ['ΣΑΣ', 'σας', 'σασ'], 'σασ'],
    ['ligatures', ['ﬁle', 'FILE'], 'file'],
    ['long s', ['ſtop', 'STOP'], 'stop'],
    ['fullwidth forms (RFC 8265 width mapping)', ['ＡＢＣ', 'abc'], 'abc'],
  ])('%s', (_label, inputs, key) => {
    for (const s of inputs) expect(identifierKey(s), s).toBe(key.normalize('NFC'));
  });

  it('keeps different names different', () => {
    expect(identifierKey('jose')).not.toBe(identifierKey(NFC));
    expect(identifierKey('strase')).not.toBe(identifierKey('straße'));
  });

  it('keys the local part of an email; the domain stays IDNA lower case', () => {
    expect(parseEmail('STRASSE@Example.COM').normalized).toBe('strasse@example.com');
    expect(parseEmail('straße@example.com').normalized).toBe('strasse@example.com');
    expect(parseEmail(`${NFD}@example.com`).normalized).toBe(parseEmail(`${NFC}@example.com`).normalized);
    expect(parseEmail(`${NFD}@example.com`).email).toBe(`${NFD}@example.com`);
  });
});

describe('the migration (both databases)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => app?.close());

  it('its SQL key agrees with identifierKey', async () => {
    const fn = /CREATE OR REPLACE FUNCTION orgsync_identifier_key[\s\S]*?\$\$;/.exec(MIGRATION)![0].replace('orgsync_identifier_key', 'pg_temp.h12_key');
    const samples = [NFC, NFD, 'JOSE\u0301', 'straße', 'STRASSE', 'STRAẞE', 'ΣΑΣ', 'σας', 'ﬁle', 'ſile', 'µ', 'ŉ', 'İstanbul', 'ıi', 'Ørsted', 'Ǆemal', 'Ελληνικά', 'Кириллица', 'user@Example.com', 'plain'];
    const got = await app.svc.db.withSession(async (s) => {
      await s.exec(fn);
      return s.query<{ k: string }>(`SELECT pg_temp.h12_key(x) AS k FROM unnest($1::text[]) WITH ORDINALITY AS t(x, n) ORDER BY n`, [samples]);
    });
    expect(got.map((r) => r.k)).toEqual(samples.map(identifierKey));
  });

  it('re-keys rows written before it: NFD and ß users get the new key, the younger of two that now collide gets #duplicate:<id>', async () => {
    const dir = await orgWithDirectory(app, { name: 'Legacy keys' });
    const s = scim(app, dir);
    const older = (await s.post('/Users', user('straße', { emails: [] })).expect(201)).body.id as string;
    const younger = (await s.post('/Users', user('placeholder', { emails: [] })).expect(201)).body.id as string;
    const nfd = (await s.post('/Users', user(NFD, { emails: [] })).expect(201)).body.id as string;
    // What the rows held before: lower(userName), under which straße and STRASSE were two users.
    await app.svc.db.withSession(async (q) => {
      await q.query(`UPDATE "ScimUser" SET "userNameNormalized" = lower("userName") WHERE "id" IN ($1::uuid, $2::uuid)`, [older, nfd]);
      await q.query(`UPDATE "ScimUser" SET "userName" = 'STRASSE', "userNameNormalized" = 'strasse' WHERE "id" = $1::uuid`, [younger]);
      await q.exec(`BEGIN; ${MIGRATION} COMMIT;`);
    });
    const rows = await app.svc.db.prisma.scimUser.findMany({ where: { id: { in: [older, younger, nfd] } }, select: { id: true, userName: true, userNameNormalized: true } });
    const by = new Map(rows.map((r) => [r.id, r]));
    expect(by.get(older)).toMatchObject({ userName: 'straße', userNameNormalized: 'strasse' });
    expect(by.get(younger)).toMatchObject({ userName: 'STRASSE', userNameNormalized: `strasse#duplicate:${younger}` });
    expect(by.get(nfd)).toMatchObject({ userName: NFD, userNameNormalized: identifierKey(NFD) });
    // Run again: nothing left to change.
    await app.svc.db.withSession((q) => q.exec(`BEGIN; ${MIGRATION} COMMIT;`));
    const again = await app.svc.db.prisma.scimUser.findMany({ where: { id: { in: [older, younger, nfd] } }, select: { id: true, userNameNormalized: true } });
    expect(new Map(again.map((r) => [r.id, r.userNameNormalized]))).toEqual(new Map(rows.map((r) => [r.id, r.userNameNormalized])));
  });
});
