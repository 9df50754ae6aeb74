/**
 * A random but reproducible stream of changes that can flip billability, driven through the
 * admin API and SCIM over real HTTP (fetch), so that it works against an in-process service and
 * against child processes alike. Used by the drift, two-process and crash tests.
 */
const SCIM_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const SCIM_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

export type Reply = { status: number; body: any };

/** Deterministic PRNG (mulberry32): a failing seed can be replayed. */
export function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
    chance: (p: number) => next() < p,
  };
}

async function call(base: string, method: string, path: string, token: string, body?: unknown, scim = false): Promise<Reply> {
  // A connection error (a killed instance in the crash test) is thrown: the caller decides.
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'Content-Type': scim ? 'application/scim+json' : 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed };
}

type Account = { id: string; email: string; scimId?: string };
type Site = { id: string; products: string[]; enterprise: boolean };
type Group = { id: string; name: string; members: Set<string> };

export type OrgState = {
  id: string; key: string; domain: string; domainB: string; domainBVerified: boolean;
  defaultPolicyId: string; nonBillablePolicyId: string | null;
  sites: Site[]; accounts: Account[];
  dir: { id: string; token: string; groups: Group[] };
  paymentMethod: boolean;
};

const ALL_PRODUCTS = ['jira', 'jsm', 'jpd', 'confluence', 'compass', 'bitbucket', 'trello', 'statuspage'];

/**
 * Creates an org ready for the workload: a verified domain and a claimed one, a trial, two sites,
 * a non-billable policy, a SCIM directory with two group mappings.
 */
export async function setupOrg(bases: string[], operatorToken: string, name: string): Promise<OrgState> {
  const base = bases[0]!;
  const op = (m: string, p: string, b?: unknown) => call(base, m, p, operatorToken, b);
  const created = await op('POST', '/api/v1/orgs', { name });
  if (created.status !== 201) throw new Error(`create org: ${created.status} ${JSON.stringify(created.body)}`);
  const org = created.body as { id: string; adminKey: string; defaultPolicyId: string };
  const slug = name.toLowerCase().replace(/\W+/g, '-');
  const domain = `${slug}.example`;
  const domainB = `b-${slug}.example`;
  const u = (p: string) => `/api/v1/orgs/${org.id}/${p}`;
  const admin = (m: string, p: string, b?: unknown) => call(base, m, u(p), org.adminKey, b);
  const must = async (r: Promise<Reply>, what: string, ok = [200, 201]) => {
    const x = await r;
    if (!ok.includes(x.status)) throw new Error(`${what}: ${x.status} ${JSON.stringify(x.body)}`);
    return x.body;
  };
  await must(admin('POST', 'domains', { domain }), 'claim');
  await must(op('POST', u(`domains/${domain}/verify`), { override: true }), 'verify');
  await must(admin('POST', 'domains', { domain: domainB }), 'claim b');
  await must(admin('POST', 'subscription/trial', {}), 'trial');
  const s0 = await must(admin('POST', 'sites', { name: 'alpha', products: ['jira', 'jsm', 'confluence', 'jpd'] }), 'site');
  const s1 = await must(admin('POST', 'sites', { name: 'beta', products: ['confluence', 'trello', 'jira'], enterprise: false }), 'site');
  const nb = await must(admin('POST', 'policies', { name: 'Contractors (free)', nonBillable: true }), 'policy');
  const dir = await must(admin('POST', 'directories', { name: 'okta', idp: 'okta' }), 'directory');
  await must(admin('POST', `directories/${dir.id}/group-mappings`, { group: 'Jira Users', siteId: s0.id, product: 'jira' }), 'mapping');
  await must(admin('POST', `directories/${dir.id}/group-mappings`, { group: 'Wiki', siteId: s1.id, product: 'confluence' }), 'mapping');
  return {
    id: org.id, key: org.adminKey, domain, domainB, domainBVerified: false,
    defaultPolicyId: org.defaultPolicyId, nonBillablePolicyId: nb.id,
    sites: [{ id: s0.id, products: s0.products, enterprise: false }, { id: s1.id, products: s1.products, enterprise: false }],
    accounts: [], dir: { id: dir.id, token: dir.token, groups: [] }, paymentMethod: false,
  };
}

export type OpLog = { op: string; status: number };

/**
 * One random operation on one org through the service at `base`. Never throws for a refused
 * operation (4xx is part of the game: rules say no); throws on a 5xx or a network error.
 */
export async function randomOp(base: string, operatorToken: string, org: OrgState, r: ReturnType<typeof prng>, seq: number): Promise<OpLog> {
  const u = (p: string) => `/api/v1/orgs/${org.id}/${p}`;
  const admin = (m: string, p: string, b?: unknown) => call(base, m, u(p), org.key, b);
  const scimCall = (m: string, p: string, b?: unknown) => call(base, m, `/scim/v2/${org.dir.id}${p}`, org.dir.token, b, true);
  const account = () => (org.accounts.length ? r.pick(org.accounts) : null);
  const site = () => r.pick(org.sites);

  const ops: Array<[number, string, () => Promise<Reply | null>]> = [
    [14, 'account.create', async () => {
      const where = r.pick([org.domain, org.domain, org.domainB, 'elsewhere.example']);
      const email = `u${seq}-${r.int(1e6)}@${where}`;
      const res = await admin('POST', 'accounts', { email });
      if (res.status === 201) org.accounts.push({ id: res.body.id, email });
      return res;
    }],
    [20, 'access.grant', async () => {
      const a = account();
      if (!a) return null;
      const s = site();
      const product = r.pick(s.products.length ? s.products : ['jira']);
      const role = product === 'jsm' ? r.pick(['agent', 'customer']) : 'user';
      return admin('POST', `sites/${s.id}/access`, { accountId: a.id, product, role });
    }],
    [8, 'access.revoke', async () => {
      const a = account();
      if (!a) return null;
      const s = site();
      return admin('DELETE', `sites/${s.id}/access/${a.id}/${r.pick(s.products.length ? s.products : ['jira'])}`);
    }],
    [5, 'account.disable', async () => {
      const a = account();
      return a ? admin('POST', `accounts/${a.id}/disable`, {}) : null;
    }],
    [4, 'account.enable', async () => {
      const a = account();
      return a ? admin('POST', `accounts/${a.id}/enable`, {}) : null;
    }],
    [6, 'policy.members', async () => {
      const a = account();
      if (!a) return null;
      const policy = r.chance(0.5) && org.nonBillablePolicyId ? org.nonBillablePolicyId : org.defaultPolicyId;
      return admin('POST', `policies/${policy}/members`, { accountIds: [a.id] });
    }],
    [3, 'site.enterprise', async () => {
      const s = site();
      const res = await admin('PATCH', `sites/${s.id}`, { enterprise: !s.enterprise });
      if (res.status === 200) s.enterprise = !s.enterprise;
      return res;
    }],
    [3, 'site.products', async () => {
      const s = site();
      const products = ALL_PRODUCTS.filter(() => r.chance(0.5));
      const res = await admin('PATCH', `sites/${s.id}`, { products });
      if (res.status === 200) s.products = res.body.products ?? products;
      return res;
    }],
    [2, 'subscription.plan', async () => {
      const res = await admin('POST', 'subscription/payment-method', { plan: r.pick(['standard', 'premium']) });
      if (res.status === 200) org.paymentMethod = true;
      return res;
    }],
    [1, 'subscription.cancel', async () => admin('POST', 'subscription/cancel', {})],
    [2, 'subscription.resubscribe', async () => {
      if (!org.paymentMethod) {
        const pm = await admin('POST', 'subscription/payment-method', {});
        if (pm.status === 200) org.paymentMethod = true;
      }
      return admin('POST', 'subscription/resubscribe', {});
    }],
    [1, 'domain.verify', async () => {
      if (org.domainBVerified) return null;
      const res = await call(base, 'POST', u(`domains/${org.domainB}/verify`), operatorToken, { override: true });
      if (res.status === 200) org.domainBVerified = true;
      return res;
    }],
    [10, 'scim.user.create', async () => {
      const email = `s${seq}-${r.int(1e6)}@${r.chance(0.8) ? org.domain : org.domainB}`;
      const res = await scimCall('POST', '/Users', { schemas: [SCIM_USER], userName: email, active: true, emails: [{ value: email, type: 'work', primary: true }] });
      if (res.status === 201) {
        const found = await admin('GET', `accounts?email=${encodeURIComponent(email)}`);
        const acc = found.body?.items?.[0];
        if (acc) org.accounts.push({ id: acc.id, email, scimId: res.body.id });
      }
      return res;
    }],
    [5, 'scim.user.active', async () => {
      const a = org.accounts.filter((x) => x.scimId);
      if (!a.length) return null;
      return scimCall('PATCH', `/Users/${r.pick(a).scimId}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: r.chance(0.5) }] });
    }],
    [2, 'scim.user.delete', async () => {
      const a = org.accounts.filter((x) => x.scimId);
      if (!a.length) return null;
      return scimCall('DELETE', `/Users/${r.pick(a).scimId}`);
    }],
    [10, 'scim.group.members', async () => {
      const users = org.accounts.filter((x) => x.scimId);
      if (!users.length) return null;
      let g = org.dir.groups.length && r.chance(0.8) ? r.pick(org.dir.groups) : null;
      const member = r.pick(users).scimId!;
      if (!g) {
        const name = r.pick(['Jira Users', 'Wiki', 'Unmapped']);
        const existing = org.dir.groups.find((x) => x.name === name);
        if (existing) g = existing;
        else {
          const res = await scimCall('POST', '/Groups', { schemas: [SCIM_GROUP], displayName: name, members: [{ value: member }] });
          if (res.status === 201) org.dir.groups.push({ id: res.body.id, name, members: new Set([member]) });
          return res;
        }
      }
      const remove = g.members.has(member) && r.chance(0.5);
      const res = await scimCall('PATCH', `/Groups/${g.id}`, {
        schemas: [PATCH_OP], Operations: [{ op: remove ? 'remove' : 'add', path: 'members', value: [{ value: member }] }],
      });
      if (res.status < 300) (remove ? g.members.delete(member) : g.members.add(member));
      return res;
    }],
  ];
  const total = ops.reduce((s, [w]) => s + w, 0);
  let x = r.next() * total;
  let chosen = ops[0]!;
  for (const o of ops) {
    x -= o[0];
    if (x < 0) {
      chosen = o;
      break;
    }
  }
  const res = await chosen[2]();
  if (res && res.status >= 500) throw new Error(`${chosen[1]} answered ${res.status}: ${JSON.stringify(res.body)}`);
  return { op: chosen[1], status: res?.status ?? 0 };
}
