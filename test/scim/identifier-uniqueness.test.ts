/**
 * Issue 12 §5, regression: `José` in NFC and in NFD, and `straße` / `STRASSE`, created separate
 * users that look identical. userName is compared on identifierKey (NFC + full case folding) for
 * uniqueness and for `userName eq` filters; what was sent is stored and returned as sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../support/app.js';
import { bearer, orgWithDirectory, scim, startTestApp, user, type Directory } from '../support/scim.js';

const NFC = 'jos\u00e9@unicode.example';
const NFD = 'jose\u0301@unicode.example';
let app: TestApp;
let dir: Directory;
let s: ReturnType<typeof scim>;

beforeAll(async () => {
  app = await startTestApp();
  dir = await orgWithDirectory(app, { name: 'Unicode', domain: 'unicode.example', trial: true });
  s = scim(app, dir);
});
afterAll(async () => app?.close());

describe('userName uniqueness after normalisation and case folding', () => {
  let nfcId: string;
  it('José in NFD after José in NFC → 409 uniqueness; the stored userName is exactly what was sent', async () => {
    const created = await s.post('/Users', user(NFC)).expect(201);
    nfcId = created.body.id;
    expect(created.body.userName).toBe(NFC);
    const dup = await s.post('/Users', user(NFD, { emails: [{ value: 'other@unicode.example', type: 'work', primary: true }] }));
    expect(dup.status, JSON.stringify(dup.body)).toBe(409);
    expect(dup.body.scimType).toBe('uniqueness');
    const rows = await app.svc.db.prisma.scimUser.findMany({ where: { directoryId: dir.id }, select: { userName: true } });
    expect(rows.map((r) => r.userName)).toEqual([NFC]);
  });

  it('STRASSE after straße → 409 uniqueness', async () => {
    await s.post('/Users', user('straße@unicode.example')).expect(201);
    for (const name of ['STRASSE@unicode.example', 'Strasse@unicode.example', 'STRAẞE@unicode.example']) {
      const dup = await s.post('/Users', user(name, { emails: [{ value: 'x@unicode.example', type: 'work', primary: true }] }));
      expect(dup.status, name).toBe(409);
      expect(dup.body.scimType, name).toBe('uniqueness');
    }
  });

  it('filter userName eq "JOSE\\u0301…" finds the NFC user, returned as it was sent', async () => {
    const res = await s.get('/Users?filter=' + encodeURIComponent('userName eq "JOSE\u0301@UNICODE.EXAMPLE"')).expect(200);
    expect(res.body.totalResults).toBe(1);
    expect(res.body.Resources[0].id).toBe(nfcId);
    expect(res.body.Resources[0].userName).toBe(NFC);
    const ss = await s.get('/Users?filter=' + encodeURIComponent('userName eq "STRASSE@unicode.example"')).expect(200);
    expect(ss.body.Resources.map((u: { userName: string }) => u.userName)).toEqual(['straße@unicode.example']);
  });

  it('a PUT renaming another user to a look-alike → 409 uniqueness', async () => {
    const other = (await s.post('/Users', user('someone@unicode.example')).expect(201)).body.id as string;
    const res = await s.put(`/Users/${other}`, user(NFD.toUpperCase()));
    expect(res.status, JSON.stringify(res.body)).toBe(409);
    expect(res.body.scimType).toBe('uniqueness');
  });

  it('emails: the account of straße@ is found as STRASSE@ (admin lookup, emails.value filter); one account for both spellings', async () => {
    const org = { id: dir.orgId, key: dir.orgKey };
    const res = await app.http.get(`/api/v1/orgs/${org.id}/accounts?email=${encodeURIComponent('STRASSE@unicode.example')}`).set(bearer(org.key)).expect(200);
    const items = (res.body.items ?? res.body.data ?? res.body) as { email: string }[];
    expect(items.map((a) => a.email)).toEqual(['straße@unicode.example']);
    const byEmail = await s.get('/Users?filter=' + encodeURIComponent('emails.value eq "JOSE\u0301@unicode.example"')).expect(200);
    expect(byEmail.body.Resources.map((u: { id: string }) => u.id)).toEqual([nfcId]);
    const accounts = await app.svc.db.prisma.account.findMany({ where: { orgId: dir.orgId, email: { in: [NFC, NFD] } } });
    expect(accounts.map((a) => a.email)).toEqual([NFC]);
  });
});
