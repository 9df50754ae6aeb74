import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, startTestApp, verifyDomain, type TestApp } from '../support/app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => app?.close());

async function subscribedOrg(name: string) {
  const org = await createOrg(app, name);
  const domain = `${name.toLowerCase().replace(/\W+/g, '')}.example`;
  await verifyDomain(app, org, domain);
  await app.http.post(`/api/v1/orgs/${org.id}/subscription/trial`).set(bearer(org.key)).send({}).expect(200);
  return org;
}

describe('rules hold under concurrency', () => {
  it('20 requests racing to create the non-billable policy: exactly one wins', async () => {
    const org = await subscribedOrg('Race one');
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        app.http.post(`/api/v1/orgs/${org.id}/policies`).set(bearer(org.key)).send({ name: `Free ${i}`, nonBillable: true }),
      ),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(19);
    for (const r of results.filter((x) => x.status === 409)) expect(r.body.rule).toBe('one-non-billable-policy');
    expect(await app.svc.db.prisma.policy.count({ where: { orgId: org.id, nonBillable: true } })).toBe(1);
  });

  it('two existing policies turned non-billable at the same moment: one wins', async () => {
    const org = await subscribedOrg('Race two');
    const ids = await Promise.all(
      ['P1', 'P2', 'P3', 'P4'].map(async (name) =>
        (await app.http.post(`/api/v1/orgs/${org.id}/policies`).set(bearer(org.key)).send({ name }).expect(201)).body.id as string,
      ),
    );
    const results = await Promise.all(ids.map((id) => app.http.patch(`/api/v1/orgs/${org.id}/policies/${id}`).set(bearer(org.key)).send({ nonBillable: true })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 409, 409, 409]);
    expect(await app.svc.db.prisma.policy.count({ where: { orgId: org.id, nonBillable: true } })).toBe(1);
  });

  it('racing default-policy swaps leave exactly one default', async () => {
    const org = await subscribedOrg('Race three');
    const ids = await Promise.all(
      ['D1', 'D2', 'D3'].map(async (name) => (await app.http.post(`/api/v1/orgs/${org.id}/policies`).set(bearer(org.key)).send({ name }).expect(201)).body.id as string),
    );
    const results = await Promise.all(ids.map((id) => app.http.patch(`/api/v1/orgs/${org.id}/policies/${id}`).set(bearer(org.key)).send({ isDefault: true })));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(await app.svc.db.prisma.policy.count({ where: { orgId: org.id, isDefault: true } })).toBe(1);
  });

  it('two orgs verifying the same domain at once: one wins, the other is told why', async () => {
    const x = await createOrg(app, 'X');
    const y = await createOrg(app, 'Y');
    const tokens = await Promise.all([x, y].map(async (o) => (await app.http.post(`/api/v1/orgs/${o.id}/domains`).set(bearer(o.key)).send({ domain: 'contested.example' }).expect(201)).body.verificationToken as string));
    // Both publish their token (a DNS zone may hold both TXT records); only one org may own the domain.
    for (const t of tokens) app.verifier.publish('contested.example', t);
    const results = await Promise.all([x, y].map((o) => app.http.post(`/api/v1/orgs/${o.id}/domains/contested.example/verify`).set(bearer(o.key)).send({})));
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(results.find((r) => r.status === 409)!.body.rule).toBe('domain-verified-elsewhere');
    expect(await app.svc.db.prisma.domain.count({ where: { domain: 'contested.example', verified: true } })).toBe(1);
  });

  it('regression: concurrent changes to one account never write two deltas of the same kind in a row', async () => {
    const org = await subscribedOrg('Race deltas');
    const u = (p: string) => `/api/v1/orgs/${org.id}/${p}`;
    const acc = (await app.http.post(u('accounts')).set(bearer(org.key)).send({ email: 'toggle@racedeltas.example' }).expect(201)).body.id as string;
    const sites = await Promise.all(['s1', 's2', 's3'].map(async (name) => (await app.http.post(u('sites')).set(bearer(org.key)).send({ name, products: ['jira'] }).expect(201)).body.id as string));
    // Grants, revokes, disables and enables racing on the same account.
    const ops = Array.from({ length: 24 }, (_, i) => {
      const site = sites[i % 3]!;
      switch (i % 4) {
        case 0: return app.http.post(u(`sites/${site}/access`)).set(bearer(org.key)).send({ accountId: acc, product: 'jira' });
        case 1: return app.http.delete(u(`sites/${site}/access/${acc}/jira`)).set(bearer(org.key));
        case 2: return app.http.post(u(`accounts/${acc}/disable`)).set(bearer(org.key));
        default: return app.http.post(u(`accounts/${acc}/enable`)).set(bearer(org.key));
      }
    });
    const results = await Promise.all(ops);
    for (const r of results) expect(r.status, JSON.stringify(r.body)).toBeLessThan(500);
    const deltas = await app.svc.db.prisma.billableDelta.findMany({ where: { accountId: acc }, orderBy: { seq: 'asc' } });
    deltas.forEach((d, i) => expect(d.kind, `delta ${i} of ${deltas.map((x) => x.kind).join(',')}`).toBe(i % 2 === 0 ? 'added' : 'removed'));
    const stored = await app.svc.db.prisma.account.findUnique({ where: { id: acc } });
    expect(stored!.billable, 'the last delta agrees with the stored flag').toBe(deltas.at(-1)?.kind === 'added');
  });
});
