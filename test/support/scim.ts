import { bearer, createOrg, startTestApp, verifyDomain, type TestApp } from './app.js';

export const SCIM_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const SCIM_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

export type Directory = { id: string; token: string; base: string; orgId: string; orgKey: string; defaultPolicyId: string };

/** An org with a verified domain, a trial, and one directory of the given IdP. */
export async function orgWithDirectory(app: TestApp, opts: { name?: string; domain?: string; idp?: string; trial?: boolean } = {}): Promise<Directory> {
  const org = await createOrg(app, opts.name ?? 'SCIM Org');
  if (opts.domain !== undefined) await verifyDomain(app, org, opts.domain);
  if (opts.trial) await app.http.post(`/api/v1/orgs/${org.id}/subscription/trial`).set(bearer(org.key)).send({}).expect(200);
  const res = await app.http.post(`/api/v1/orgs/${org.id}/directories`).set(bearer(org.key)).send({ name: `${opts.idp ?? 'okta'} directory`, idp: opts.idp ?? 'okta' }).expect(201);
  return { id: res.body.id, token: res.body.token, base: `/scim/v2/${res.body.id}`, orgId: org.id, orgKey: org.key, defaultPolicyId: org.defaultPolicyId };
}

export function scim(app: TestApp, dir: Directory) {
  const auth = { Authorization: `Bearer ${dir.token}`, 'Content-Type': 'application/scim+json' };
  return {
    get: (p: string) => app.http.get(`${dir.base}${p}`).set(auth),
    post: (p: string, body: unknown) => app.http.post(`${dir.base}${p}`).set(auth).send(JSON.stringify(body)),
    put: (p: string, body: unknown) => app.http.put(`${dir.base}${p}`).set(auth).send(JSON.stringify(body)),
    patch: (p: string, body: unknown) => app.http.patch(`${dir.base}${p}`).set(auth).send(JSON.stringify(body)),
    delete: (p: string) => app.http.delete(`${dir.base}${p}`).set(auth),
  };
}

export const user = (userName: string, extra: Record<string, unknown> = {}) => ({
  schemas: [SCIM_USER], userName, active: true, name: { givenName: 'Given', familyName: 'Family' },
  emails: [{ value: userName.includes('@') ? userName : `${userName}@example.com`, type: 'work', primary: true }], ...extra,
});

export { startTestApp, bearer };
