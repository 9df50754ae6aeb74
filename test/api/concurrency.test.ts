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
});
