// What third-party SCIM validators found (issue 13, defects 1, 2, 4, 5, 7; 3 and 6 are in
// patch-engine.test.ts), each test named after the defect it pins, asserting on the HTTP answer
// and, where something is written, on the stored row.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../support/app.js';
import { orgWithDirectory, PATCH_OP, scim, SCIM_GROUP, SCIM_USER, startTestApp, user, type Directory } from '../support/scim.js';

let app: TestApp;
let dir: Directory;
let entra: Directory;
beforeAll(async () => {
  app = await startTestApp();
  dir = await orgWithDirectory(app, { name: 'Validator Co', domain: 'validator.example' });
  entra = await orgWithDirectory(app, { name: 'Validator Entra Co', domain: 'validator-entra.example', idp: 'entra' });
});
afterAll(async () => app?.close());

const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';

describe('defect 1: attributes= answers keep schemas and id (RFC 7643 §3)', () => {
  let id: string;
  beforeAll(async () => {
    const body = { ...user('attrs@validator.example'), schemas: [SCIM_USER, ENT], title: 'Engineer', [ENT]: { department: 'R&D', employeeNumber: '7' } };
    id = (await scim(app, dir).post('/Users', body).expect(201)).body.id;
  });

  it('GET /Users/{id}?attributes=userName answers schemas, id and userName only (schemas was dropped)', async () => {
    const res = await scim(app, dir).get(`/Users/${id}?attributes=userName`).expect(200);
    expect(res.body).toEqual({ schemas: [SCIM_USER, ENT], id, userName: 'attrs@validator.example' });
  });

  it('sub-attributes, the core URN, meta sub-attributes and extension attributes are selectable (were 400s from scimmy)', async () => {
    const q = ['name.givenName', 'emails.value', `${SCIM_USER}:title`, 'meta.lastModified', `${ENT}:department`].join(',');
    const res = await scim(app, dir).get(`/Users/${id}?attributes=${encodeURIComponent(q)}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({
      schemas: [SCIM_USER, ENT], id, title: 'Engineer', name: { givenName: 'Given' }, emails: [{ value: 'attrs@validator.example' }],
      meta: { lastModified: expect.any(String) }, [ENT]: { department: 'R&D' },
    });
    const whole = await scim(app, dir).get(`/Users/${id}?attributes=${encodeURIComponent(ENT)}`).expect(200);
    expect(whole.body).toEqual({ schemas: [SCIM_USER, ENT], id, [ENT]: { department: 'R&D', employeeNumber: '7' } });
  });

  it('excludedAttributes never removes schemas or id, and removes sub-attributes and the extension', async () => {
    const res = await scim(app, dir).get(`/Users/${id}?excludedAttributes=${encodeURIComponent(`schemas,id,emails,name.familyName,${ENT}`)}`).expect(200);
    expect(res.body.schemas).toEqual([SCIM_USER, ENT]);
    expect(res.body.id).toBe(id);
    expect(res.body.emails).toBeUndefined();
    expect(res.body.name).toEqual({ givenName: 'Given' });
    expect(res.body[ENT]).toBeUndefined();
    expect(res.body.userName).toBe('attrs@validator.example');
  });

  it('lists and POST /.search (attributes as a JSON array, RFC 7644 §3.4.3) keep schemas in every resource', async () => {
    const s = scim(app, dir);
    const list = await s.get(`/Users?filter=${encodeURIComponent('userName eq "attrs@validator.example"')}&attributes=userName`).expect(200);
    expect(list.body.Resources).toEqual([{ schemas: [SCIM_USER, ENT], id, userName: 'attrs@validator.example' }]);
    const search = await s.post('/Users/.search', { schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'], filter: 'userName eq "attrs@validator.example"', attributes: ['userName', 'title'] }).expect(200);
    expect(search.body.Resources).toEqual([{ schemas: [SCIM_USER, ENT], id, userName: 'attrs@validator.example', title: 'Engineer' }]);
  });

  it('groups: attributes=displayName keeps schemas and id', async () => {
    const g = (await scim(app, dir).post('/Groups', { schemas: [SCIM_GROUP], displayName: 'Attr Group' }).expect(201)).body;
    const res = await scim(app, dir).get(`/Groups/${g.id}?attributes=displayName`).expect(200);
    expect(res.body).toEqual({ schemas: [SCIM_GROUP], id: g.id, displayName: 'Attr Group' });
  });
});

describe('defect 2: canonical values are suggestions (RFC 7643 §7)', () => {
  it('non-canonical types on emails, phoneNumbers, addresses, ims, photos and any x509Certificates type are kept (were 400)', async () => {
    const body = user('canon@validator.example', {
      emails: [{ value: 'canon@validator.example', type: 'work', primary: true }, { value: 'canon.alt@validator.example', type: 'internal' }],
      phoneNumbers: [{ value: '+1 555 0100', type: 'desk' }],
      addresses: [{ streetAddress: '1 Main St', type: 'office' }],
      ims: [{ value: 'canon', type: 'slack' }],
      photos: [{ value: 'https://photos.validator.example/canon.png', type: 'avatar' }],
      x509Certificates: [{ value: 'MIIBszCCAVmgAwIBAgIU', type: 'signing' }],
    });
    const res = await scim(app, dir).post('/Users', body);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.emails[1]).toEqual({ value: 'canon.alt@validator.example', type: 'internal' });
    expect(res.body.x509Certificates).toEqual([{ value: 'MIIBszCCAVmgAwIBAgIU', type: 'signing' }]);
    const row = await app.svc.db.prisma.scimUser.findUnique({ where: { id: res.body.id } });
    expect((row!.resource as { ims: unknown }).ims).toEqual([{ value: 'canon', type: 'slack' }]);
    // Still folded to the canonical spelling when it is one (the dialect normaliser).
    const folded = await scim(app, dir).post('/Users', user('folded@validator.example', { emails: [{ value: 'folded@validator.example', type: 'Work', primary: true }] })).expect(201);
    expect(folded.body.emails[0].type).toBe('work');
  });

  it('/Schemas still publishes the canonical values as suggestions', async () => {
    const res = await scim(app, dir).get(`/Schemas/${SCIM_USER}`).expect(200);
    const emails = res.body.attributes.find((a: { name: string }) => a.name === 'emails');
    const type = emails.subAttributes.find((a: { name: string }) => a.name === 'type');
    expect(type.canonicalValues).toEqual(['work', 'home', 'other']);
  });
});

describe('defect 4: PATCH with ?attributes= answers 200 with the resource (RFC 7644 §3.5.2)', () => {
  it('an Entra directory gets 200 and the selected attributes, not 204', async () => {
    const s = scim(app, entra);
    const u = (await s.post('/Users', user('patch.attrs@validator-entra.example')).expect(201)).body;
    const plainPatch = await s.patch(`/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'title', value: 'A' }] });
    expect(plainPatch.status).toBe(204);
    const res = await s.patch(`/Users/${u.id}?attributes=title`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'title', value: 'B' }] });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ schemas: [SCIM_USER], id: u.id, title: 'B' });
    const g = (await s.post('/Groups', { schemas: [SCIM_GROUP], displayName: 'Entra Attr Group' }).expect(201)).body;
    const gres = await s.patch(`/Groups/${g.id}?excludedAttributes=members`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'displayName', value: 'Renamed' }] });
    expect(gres.status).toBe(200);
    expect(gres.body.displayName).toBe('Renamed');
    expect(gres.body.members).toBeUndefined();
  });
});

describe('defect 5: a value of the wrong shape is 400 invalidValue', () => {
  it.each([
    ['emails as nested arrays', { emails: [[[]]] }, 'emails[0]'],
    ['a null entry of emails', { emails: [null] }, 'emails[0]'],
    ['phoneNumbers entry as an array', { phoneNumbers: [[{ value: '1' }]] }, 'phoneNumbers[0]'],
    ['entitlements entry as a string array', { entitlements: [['admin']] }, 'entitlements[0]'],
  ])('%s (was 201) → 400 naming the entry, nothing stored', async (_name, extra, path) => {
    const userName = `shape.${path.replace(/\W/g, '')}.${Math.random().toString(36).slice(2, 8)}@validator.example`;
    const res = await scim(app, dir).post('/Users', { ...user(userName), ...extra });
    expect(res.status).toBe(400);
    expect(res.body.scimType).toBe('invalidValue');
    expect(res.body.detail).toContain(path);
    expect(await app.svc.db.prisma.scimUser.count({ where: { userName } })).toBe(0);
  });

  it('group members as nested arrays → 400 (were silently dropped)', async () => {
    const res = await scim(app, dir).post('/Groups', { schemas: [SCIM_GROUP], displayName: 'Nested Members', members: [[{ value: 'x' }]] });
    expect(res.status).toBe(400);
    expect(res.body.detail).toContain('members[0]');
  });

  it('a PATCH adding a nested array → 400, the user unchanged', async () => {
    const s = scim(app, dir);
    const u = (await s.post('/Users', user('shape.patch@validator.example')).expect(201)).body;
    const res = await s.patch(`/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'emails', value: [[{ value: 'x@validator.example' }]] }] });
    expect(res.status).toBe(400);
    expect(res.body.scimType).toBe('invalidValue');
    const after = await s.get(`/Users/${u.id}`).expect(200);
    expect(after.body.meta.version).toBe(u.meta.version);
  });
});

describe('defect 7: itemsPerPage is the number returned; documentationUri is a real page', () => {
  it('/ResourceTypes and /Schemas say itemsPerPage = Resources.length (said 20)', async () => {
    for (const path of ['/ResourceTypes', '/Schemas']) {
      const res = await scim(app, dir).get(path);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.schemas).toEqual([LIST]);
      expect(res.body.itemsPerPage).toBe(res.body.Resources.length);
      expect(res.body.totalResults).toBe(res.body.Resources.length);
    }
  });

  it('/Users lists say itemsPerPage = the resources on the page', async () => {
    const res = await scim(app, dir).get('/Users?count=2').expect(200);
    expect(res.body.Resources).toHaveLength(2);
    expect(res.body.itemsPerPage).toBe(2);
  });

  it('ServiceProviderConfig documentationUri answers 200 with the SCIM page (was 404)', async () => {
    const spc = await scim(app, dir).get('/ServiceProviderConfig').expect(200);
    const uri = new URL(spc.body.documentationUri);
    const res = await app.http.get(uri.pathname).expect(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.text).toContain('SCIM 2.0 provisioning');
    expect(res.text).toContain('/scim/v2/{directoryId}');
  });
});
