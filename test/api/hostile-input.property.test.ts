/**
 * Issue 12 §1: every route of every surface, driven through HTTP with generated hostile strings
 * (NUL, lone surrogates, broken percent-encoding, bidi and format characters, huge values),
 * encodings (corrupt gzip/br, wrong charsets and media types, truncated JSON) and shapes (wrong
 * types, deep nesting, `__proto__` / `constructor.prototype` keys). For every request:
 *   - the answer is never a 5xx;
 *   - a 4xx wrote nothing (a fingerprint of every table an admin change or an IdP push can touch);
 *   - Object.prototype and Array.prototype are unchanged (the server runs in this process).
 * The admin API's routes come from its own OpenAPI document, so a route added later is driven too.
 */
import { gzipSync, brotliCompressSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, createSamlConnection, OPERATOR_TOKEN, startTestApp, type TestApp } from '../support/app.js';
import { pctEncode, rawRequest, type RawResponse } from '../support/raw-http.js';
import { orgWithDirectory, SCIM_GROUP, SCIM_USER, PATCH_OP, type Directory } from '../support/scim.js';

const RUNS = Number(process.env.HOSTILE_RUNS ?? 6);
const ZERO = '00000000-0000-4000-8000-000000000000';

let app: TestApp;
let org: { id: string; key: string; defaultPolicyId: string };
let dir: Directory;
const ids: Record<string, string> = {};

beforeAll(async () => {
  app = await startTestApp({ SCIM_RATE_LIMIT_PER_SECOND: '100000', SCIM_RATE_LIMIT_BURST: '1000000', LOGIN_RATE_LIMIT_PER_SECOND: '100000', LOGIN_RATE_LIMIT_BURST: '1000000' });
  dir = await orgWithDirectory(app, { name: 'Hostile Inc', domain: 'hostile.example', trial: true });
  org = { id: dir.orgId, key: dir.orgKey, defaultPolicyId: dir.defaultPolicyId };
  const api = (p: string) => `/api/v1/orgs/${org.id}/${p}`;
  ids.policies = (await app.http.post(api('policies')).set(bearer(org.key)).send({ name: 'Contractors' }).expect(201)).body.id;
  ids.accounts = (await app.http.post(api('accounts')).set(bearer(org.key)).send({ email: 'ann@hostile.example', displayName: 'Ann' }).expect(201)).body.id;
  ids.sites = (await app.http.get(api('sites')).set(bearer(org.key)).expect(200)).body.items?.[0]?.id ?? ZERO;
  ids['sso-connections'] = (await createSamlConnection(app, org)).id;
  ids.directories = dir.id;
  const auth = { ...bearer(dir.token), 'Content-Type': 'application/scim+json' };
  ids.Users = (await app.http.post(`${dir.base}/Users`).set(auth).send(JSON.stringify({ schemas: [SCIM_USER], userName: 'bob@hostile.example', emails: [{ value: 'bob@hostile.example', primary: true }] })).expect(201)).body.id;
  ids.Groups = (await app.http.post(`${dir.base}/Groups`).set(auth).send(JSON.stringify({ schemas: [SCIM_GROUP], displayName: 'Eng', members: [{ value: ids.Users }] })).expect(201)).body.id;
  // A second org whose key the admin-key routes may revoke without locking this test out.
  void (await createOrg(app, 'Bystander'));
});
/** HOSTILE_TALLY=1 prints how the requests were answered (to see the property reaches past the first 400s). */
const tally: Record<number, number> = {};
afterAll(async () => {
  if (process.env.HOSTILE_TALLY) console.log('answers by status:', JSON.stringify(tally));
  await app?.close();
});

// --- what "nothing written" means ----------------------------------------------------------

/** Tables a request could write; logs of the request itself (SCIM request log, refusal audit rows, sign-in flows) are left out. */
const TABLES: [string, string][] = [
  ['Org', ''], ['AdminKey', `- 'lastUsedAt'`], ['Domain', ''], ['Account', ''], ['RoleAssignment', ''], ['Site', ''], ['ProductAccess', ''],
  ['Policy', ''], ['Subscription', ''], ['SubscriptionPlanChange', ''], ['BillableDelta', ''], ['BillingWebhook', ''], ['Directory', `- 'tokenLastUsedAt'`],
  ['ScimUser', ''], ['ScimUserEmail', ''], ['ScimGroup', ''], ['ScimGroupMember', ''], ['GroupMapping', ''], ['SsoConnection', ''],
  ['UserSession', ''], ['SsoTestRun', ''],
];

async function fingerprint(): Promise<Record<string, string>> {
  const p = app.svc.db.prisma;
  const parts = await Promise.all(TABLES.map(async ([t, minus]) => {
    const rows = await p.$queryRawUnsafe<{ h: string | null; n: bigint | number }[]>(
      `SELECT md5(coalesce(string_agg(x, ',' ORDER BY x), '')) AS h, count(*) AS n FROM (SELECT md5((to_jsonb(t) ${minus})::text) AS x FROM "${t}" t) s`);
    return [t, `${rows[0]!.n}:${rows[0]!.h}`] as const;
  }));
  const audit = await p.$queryRawUnsafe<{ n: bigint | number }[]>(`SELECT count(*) AS n FROM "AuditEvent" WHERE "action" <> 'sso.login.refused'`);
  return { ...Object.fromEntries(parts), AuditEvent: String(audit[0]!.n) };
}

const protoBaseline = () => ({
  object: Object.getOwnPropertyNames(Object.prototype).sort().join(','),
  array: Object.getOwnPropertyNames(Array.prototype).sort().join(','),
  polluted: ({} as Record<string, unknown>).polluted ?? null,
});
let baseline: ReturnType<typeof protoBaseline>;
beforeAll(() => { baseline = protoBaseline(); });

type Req = { method: string; path: string; headers: Record<string, string>; body?: string | Buffer; label: string };

/** Sends one request and checks the three promises; returns the response for the property's own checks. */
async function drive(r: Req): Promise<RawResponse> {
  const before = await fingerprint();
  const res = await rawRequest(app.svc.url, r);
  tally[res.status] = (tally[res.status] ?? 0) + 1;
  const where = `${r.method} ${r.path} [${r.label}] ${typeof r.body === 'string' ? r.body.slice(0, 300) : r.body ? `<${r.body.length} bytes>` : ''}`;
  expect(res.status, `${where}\n→ ${res.status} ${res.text.slice(0, 400)}`).toBeLessThan(500);
  if (res.status >= 400) expect(await fingerprint(), `${where} answered ${res.status} but wrote`).toEqual(before);
  expect(protoBaseline(), `${where} changed a prototype`).toEqual(baseline);
  return res;
}

// --- hostile material ------------------------------------------------------------------------

const pieces = fc.constantFrom(
  '\u0000', '\ud800', '\udfff', '\u202e', '\u200b', '\ufeff', '\uffff', '\u0085', '\u2028', '\u001b[31m', '\r\n', '\t',
  'e\u0301', 'ß', 'İ', '𝒳', '👩‍👩‍👧', '%', '%00', '%E0%A4%A', '%zz', '../', '..\\', '"', "'", '<script>', '${x}', '{{7*7}}',
  '__proto__', 'constructor', 'prototype', '-1', '1e309', 'NaN', 'null', '[]', '{}', ' ', '',
);
const hostileString = fc.oneof(
  // What PostgreSQL cannot store, inside otherwise ordinary text: the 500s this test was written for.
  { weight: 3, arbitrary: fc.tuple(fc.string({ maxLength: 4 }), fc.constantFrom('\u0000', '\ud800', '\udfff'), fc.string({ maxLength: 4 })).map((a) => a.join('')) },
  { weight: 5, arbitrary: fc.array(fc.oneof(pieces, fc.string({ maxLength: 4 })), { minLength: 1, maxLength: 5 }).map((a) => a.join('')) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  { weight: 1, arbitrary: fc.constantFrom('x'.repeat(5_000), 'é'.repeat(2_000), `${'a'.repeat(64)}@${'b'.repeat(250)}.example`) },
);
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: hostileString },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant(Number.MAX_SAFE_INTEGER + 2)) },
  { weight: 1, arbitrary: fc.array(hostileString, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(hostileString, hostileString, { maxKeys: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom(JSON.parse(`${'['.repeat(2000)}1${']'.repeat(2000)}`), { a: { b: { c: { d: '\u0000' } } } }) },
);

/** A path segment: the real id (to reach the handler), or hostile text percent-encoded — or deliberately not valid percent-encoding. */
const hostileSegment = fc.oneof(
  hostileString.map((s) => pctEncode(s) || '%20'),
  fc.constantFrom('%E0%A4%A', '%', '%zz', '%00', '%ED%A0%80', '%C0%AF', '..', '%2e%2e', ZERO, 'not-a-uuid'),
);

/** A JSON object with these fields (some left out), maybe extra keys, maybe prototype-polluting keys, written as raw JSON. */
function jsonBody(fields: string[], extra: fc.Arbitrary<Record<string, unknown>> = fc.constant({})): fc.Arbitrary<string> {
  return fc.tuple(
    fc.subarray(fields), fc.array(hostileValue, { minLength: fields.length, maxLength: fields.length }), extra,
    fc.constantFrom('', '"__proto__":{"polluted":"yes"},', '"constructor":{"prototype":{"polluted":"yes"}},', '"__proto__":null,'),
  ).map(([keys, values, more, proto]) => {
    const obj: Record<string, unknown> = { ...more };
    keys.forEach((k, i) => { obj[k] = values[fields.indexOf(k)] ?? values[i]; });
    const text = JSON.stringify(obj);
    return proto ? `{${proto}${text.slice(1)}`.replace(',}', '}') : text;
  });
}

/** The body as sent: usually JSON of the given media type; sometimes a broken encoding, charset, media type or syntax. */
function encoded(body: fc.Arbitrary<string>, type: string): fc.Arbitrary<{ body: string | Buffer; headers: Record<string, string>; label: string }> {
  return fc.tuple(body, fc.nat({ max: 19 })).map(([text, pick]): { body: string | Buffer; headers: Record<string, string>; label: string } => {
    const corrupt = (b: Buffer) => { const c = Buffer.from(b); c[Math.floor(c.length / 2)]! ^= 0xff; return c.subarray(0, Math.max(1, c.length - 3)); };
    switch (pick) {
      case 0: return { body: corrupt(gzipSync(text)), headers: { 'Content-Type': type, 'Content-Encoding': 'gzip' }, label: 'corrupt gzip' };
      case 1: return { body: corrupt(brotliCompressSync(text)), headers: { 'Content-Type': type, 'Content-Encoding': 'br' }, label: 'corrupt br' };
      case 2: return { body: Buffer.from(text, 'utf16le'), headers: { 'Content-Type': `${type}; charset=utf-16` }, label: 'utf-16' };
      case 3: return { body: text, headers: { 'Content-Type': 'text/plain' }, label: 'text/plain' };
      case 4: return { body: text.slice(0, Math.max(1, text.length - 2)), headers: { 'Content-Type': type }, label: 'truncated' };
      case 5: return { body: Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28]), headers: { 'Content-Type': type }, label: 'invalid UTF-8' };
      default: return { body: text, headers: { 'Content-Type': type }, label: 'json' };
    }
  });
}

function formBody(fields: string[]): fc.Arbitrary<string> {
  return fc.tuple(fc.subarray(fields), fc.array(fc.oneof(hostileString, fc.constantFrom('%E0%A4%A', '%00', '%ED%A0%80')), { minLength: fields.length, maxLength: fields.length }))
    .map(([keys, values]) => keys.map((k, i) => `${k}=${/^%/.test(values[i]!) ? values[i] : pctEncode(values[i]!)}`).join('&'));
}

const query = (names: string[]) => fc.tuple(fc.subarray(names), fc.array(hostileSegment, { minLength: names.length, maxLength: names.length }), fc.constantFrom('', '__proto__=x', 'constructor%5Bprototype%5D%5Bpolluted%5D=1', '%E0%A4%A=1'))
  .map(([keys, values, extra]) => { const q = [...keys.map((k, i) => `${k}=${values[i]}`), ...(extra ? [extra] : [])].join('&'); return q ? `?${q}` : ''; });

// --- the admin API, from its OpenAPI document ------------------------------------------------

type OpenApi = { paths: Record<string, Record<string, { parameters?: unknown[]; requestBody?: { content?: Record<string, { schema?: unknown }> } }>>; components: Record<string, Record<string, unknown>> };

function deref(doc: OpenApi, x: unknown): Record<string, unknown> {
  let v = x as Record<string, unknown>;
  while (v && typeof v.$ref === 'string') {
    const [, , kind, name] = (v.$ref as string).split('/');
    v = doc.components[kind!]![name!] as Record<string, unknown>;
  }
  return v ?? {};
}

function bodyFields(doc: OpenApi, schema: unknown): string[] {
  const s = deref(doc, schema);
  const variants = (s.oneOf ?? s.anyOf ?? s.allOf ?? [s]) as unknown[];
  return [...new Set(variants.flatMap((v) => Object.keys((deref(doc, v).properties ?? {}) as object)))];
}

/**
 * A value the schema accepts (as far as its JSON Schema says): the base a single hostile field is
 * put into, so the request gets past validation and the hostile value reaches the services.
 */
function sample(doc: OpenApi, schema: unknown, depth = 0): unknown {
  const s = deref(doc, schema);
  if (depth > 6) return null;
  if (Array.isArray(s.enum) && s.enum.length) return s.enum[0];
  if ('const' in s) return s.const;
  const variants = (s.oneOf ?? s.anyOf) as unknown[] | undefined;
  if (variants?.length) return sample(doc, variants[0], depth + 1);
  if (Array.isArray(s.allOf)) return Object.assign({}, ...s.allOf.map((v) => sample(doc, v, depth + 1) as object));
  const type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type;
  switch (type) {
    case 'string': {
      if (s.format === 'uuid' || /uuid|[0-9a-f]{8}-/.test(String(s.pattern ?? ''))) return org.defaultPolicyId;
      if (s.format === 'email') return 'dana@hostile.example';
      if (s.format === 'uri') return 'https://idp.hostile.example/';
      if (s.format === 'date-time') return '2026-12-07T00:00:00.000Z';
      return 'Sample'.padEnd(Number(s.minLength ?? 0), 'x');
    }
    case 'integer': case 'number': return Number(s.minimum ?? s.exclusiveMinimum ?? 0) + 1;
    case 'boolean': return false;
    case 'array': return Array.from({ length: Number(s.minItems ?? 0) }, () => sample(doc, s.items, depth + 1));
    case 'object': case undefined: {
      const props = (s.properties ?? {}) as Record<string, unknown>;
      const required = new Set((s.required ?? []) as string[]);
      return Object.fromEntries(Object.entries(props).filter(([k]) => required.has(k) || depth === 0).map(([k, v]) => [k, sample(doc, v, depth + 1)]));
    }
    default: return null;
  }
}

/** A valid-looking body with one field (top-level or one level down) replaced by a hostile value. */
function oneHostileField(base: unknown): fc.Arbitrary<string> {
  const obj = (base && typeof base === 'object' ? base : {}) as Record<string, unknown>;
  const paths: string[][] = Object.entries(obj).flatMap(([k, v]) => [[k], ...(v && typeof v === 'object' && !Array.isArray(v) ? Object.keys(v).map((c) => [k, c]) : [])]);
  if (!paths.length) return fc.constant(JSON.stringify(obj));
  return fc.tuple(fc.constantFrom(...paths), hostileValue).map(([path, value]) => {
    const copy = structuredClone(obj);
    let at = copy;
    for (const k of path.slice(0, -1)) at = at[k] as Record<string, unknown>;
    at[path.at(-1)!] = value;
    return JSON.stringify(copy);
  });
}

/** The real id a path parameter names, when there is one the request may touch without locking the test out. */
function realParam(path: string, method: string, name: string): string | null {
  if (name === 'orgId') return org.id;
  if (name === 'domain') return 'hostile.example';
  if (method === 'delete' || path.endsWith('/token') || path.includes('/admin-keys/')) return null;
  if (name === 'id') {
    const resource = /\/([a-z-]+)\/\{id\}/.exec(path)?.[1] ?? '';
    return ids[resource] ?? null;
  }
  if (name === 'accountId') return ids.accounts!;
  return null;
}

describe('every route of every surface, hostile input: no 5xx, nothing written on a 4xx, prototypes intact', () => {
  it('the admin API (every operation of /openapi.json)', async () => {
    const doc = (await app.http.get('/openapi.json').expect(200)).body as OpenApi;
    let ops = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        ops++;
        const params = (op.parameters ?? []).map((p) => deref(doc, p) as { name: string; in: string });
        const pathParams = params.filter((p) => p.in === 'path').map((p) => p.name);
        const queryParams = params.filter((p) => p.in === 'query').map((p) => p.name);
        const bodySchema = op.requestBody?.content?.['application/json']?.schema;
        const fields = bodySchema ? bodyFields(doc, bodySchema) : [];
        const segments = fc.tuple(...pathParams.map((n) => {
          const real = realParam(path, method, n);
          return real ? fc.oneof({ weight: 3, arbitrary: fc.constant(real) }, { weight: 1, arbitrary: hostileSegment }) : hostileSegment;
        }));
        const bodyText = fc.oneof(jsonBody(fields), oneHostileField(bodySchema ? sample(doc, bodySchema) : {}));
        const body = bodySchema || ['post', 'put', 'patch'].includes(method) ? encoded(bodyText, 'application/json').map((b) => b as typeof b | null) : fc.constant(null);
        const token = fc.oneof({ weight: 9, arbitrary: fc.constant(path.includes('{orgId}') ? org.key : OPERATOR_TOKEN) }, { weight: 1, arbitrary: fc.constantFrom('osk_%00', 'x'.repeat(5000)) });
        await fc.assert(fc.asyncProperty(segments, query(queryParams), body, token, async (segs, q, b, tok) => {
          let url = path;
          pathParams.forEach((n, i) => { url = url.replace(`{${n}}`, segs[i]!); });
          await drive({ method: method.toUpperCase(), path: url + q, headers: { ...bearer(tok), Accept: 'application/json', ...(b?.headers ?? {}) }, ...(b ? { body: b.body } : {}), label: b?.label ?? 'no body' });
        }), { numRuns: RUNS, endOnFailure: true });
      }
    }
    expect(ops).toBeGreaterThan(50);
  }, 300_000);

  it('SCIM (Users, Groups, .search, discovery)', async () => {
    const userFields = ['schemas', 'userName', 'displayName', 'title', 'active', 'externalId', 'name', 'emails', 'phoneNumbers', 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'];
    const groupFields = ['schemas', 'displayName', 'members', 'externalId'];
    const patchBody = fc.tuple(fc.constantFrom('add', 'replace', 'remove', 'Add', 'bogus'), fc.oneof(hostileString, fc.constantFrom('emails[type eq "work"].value', 'members', 'name.givenName', 'members[value eq "x"]', 'emails[(type eq "a" or type eq "b") and (type eq "c" or type eq "d")].value')), hostileValue)
      .map(([op, path, value]) => JSON.stringify({ schemas: [PATCH_OP], Operations: [{ op, path, value }] }));
    const shaped = (fields: string[], schema: string) => fc.oneof(
      jsonBody(fields, fc.constant({ schemas: [schema], userName: 'carol@hostile.example', displayName: 'Carol' })),
      jsonBody(fields),
      fc.jsonValue().map((v) => JSON.stringify(v)),
    );
    const routes: [string, string, fc.Arbitrary<string> | null, string[]][] = [
      ['GET', '/Users', null, ['filter', 'startIndex', 'count', 'attributes', 'excludedAttributes', 'sortBy']],
      ['POST', '/Users', shaped(userFields, SCIM_USER), []],
      ['POST', '/Users/.search', jsonBody(['filter', 'startIndex', 'count', 'attributes', 'excludedAttributes']), []],
      ['GET', '/Users/{Users}', null, ['attributes']],
      ['PUT', '/Users/{Users}', shaped(userFields, SCIM_USER), []],
      ['PATCH', '/Users/{Users}', fc.oneof(patchBody, shaped(['schemas', 'Operations'], PATCH_OP)), []],
      ['DELETE', '/Users/{none}', null, []],
      ['GET', '/Groups', null, ['filter', 'startIndex', 'count', 'excludedAttributes']],
      ['POST', '/Groups', shaped(groupFields, SCIM_GROUP), []],
      ['GET', '/Groups/{Groups}', null, ['excludedAttributes']],
      ['PUT', '/Groups/{Groups}', shaped(groupFields, SCIM_GROUP), []],
      ['PATCH', '/Groups/{Groups}', fc.oneof(patchBody, shaped(['schemas', 'Operations'], PATCH_OP)), []],
      ['DELETE', '/Groups/{none}', null, []],
      ['GET', '/ServiceProviderConfig', null, []], ['GET', '/Schemas/{none}', null, []], ['GET', '/ResourceTypes/{none}', null, []],
    ];
    for (const [method, path, bodyArb, q] of routes) {
      const m = /\{(\w+)\}/.exec(path);
      const seg = m ? (ids[m[1]!] ? fc.oneof({ weight: 3, arbitrary: fc.constant(ids[m[1]!]!) }, { weight: 1, arbitrary: hostileSegment }) : hostileSegment) : fc.constant('');
      const body = bodyArb ? encoded(bodyArb, 'application/scim+json').map((b) => b as typeof b | null) : fc.constant(null);
      // Headers a client controls (printable only: Node refuses control characters in headers on both sides).
      const extraHeaders = fc.oneof(fc.constant({}), fc.record({
        'If-Match': fc.constantFrom('*', 'W/"x"', '"', 'W/', '""', `W/"${'a'.repeat(4000)}"`, '%00', 'W/"1", W/"2"'),
        Prefer: fc.constantFrom('return=minimal', 'return=representation', 'return=', ';;;', 'x'.repeat(2000)),
      }, { requiredKeys: [] }));
      await fc.assert(fc.asyncProperty(seg, query(q), body, fc.constantFrom(dir.id, dir.id, dir.id, '%00', '%E0%A4%A'), extraHeaders, async (s, qs, b, dirId, hs) => {
        const url = `/scim/v2/${dirId}${m ? path.replace(m[0], s) : path}${qs}`;
        await drive({ method, path: url, headers: { ...bearer(dir.token), ...hs, ...(b?.headers ?? {}) }, ...(b ? { body: b.body } : {}), label: b?.label ?? 'no body' });
      }), { numRuns: RUNS * 2, endOnFailure: true });
    }
  }, 300_000);

  it('sign-in (/login, /me, /logout, SAML SP, OIDC RP, rollout test link)', async () => {
    const conn = ids['sso-connections']!;
    const connSeg = fc.oneof({ weight: 3, arbitrary: fc.constant(conn) }, { weight: 1, arbitrary: hostileSegment });
    const routes: [string, string, 'json' | 'form' | null, string[], string[]][] = [
      ['POST', '/login', 'json', ['email'], []],
      ['POST', '/login', 'form', ['email'], []],
      ['GET', '/me', null, [], []], ['POST', '/logout', null, [], []],
      ['GET', '/sso/{c}/saml/metadata', null, [], []],
      ['GET', '/sso/{c}/saml/login', null, [], ['login_hint', 'RelayState']],
      ['POST', '/sso/{c}/saml/acs', 'form', ['SAMLResponse', 'RelayState'], []],
      ['GET', '/sso/{c}/oidc/login', null, [], ['login_hint']],
      ['GET', '/sso/{c}/oidc/callback', null, [], ['code', 'state', 'error', 'error_description']],
      ['POST', '/sso/{c}/oidc/callback', 'form', ['code', 'state', 'error'], []],
      ['GET', '/sso/test/{c}', null, [], []],
    ];
    for (const [method, path, kind, fields, q] of routes) {
      const body = kind === 'json' ? encoded(jsonBody(fields), 'application/json').map((b) => b as typeof b | null)
        : kind === 'form' ? encoded(formBody(fields), 'application/x-www-form-urlencoded').map((b) => b as typeof b | null) : fc.constant(null);
      await fc.assert(fc.asyncProperty(connSeg, query(q), body, fc.constantFrom('', `orgsync_session=${pctEncode('\u0000x')}`, 'orgsync_flow=%E0%A4%A', `orgsync_session=${'a'.repeat(4000)}`), async (c, qs, b, cookie) => {
        await drive({ method, path: path.replace('{c}', c) + qs, headers: { Accept: 'text/html', ...(cookie ? { Cookie: cookie } : {}), ...(b?.headers ?? {}) }, ...(b ? { body: b.body } : {}), label: b?.label ?? 'no body' });
      }), { numRuns: RUNS * 2, endOnFailure: true });
    }
  }, 300_000);

  it('the console (sign-in, sign-out, SSO and policy pages and forms)', async () => {
    // A real console session, so the forms behind the sign-in are reached too.
    const page = await rawRequest(app.svc.url, { method: 'GET', path: '/console' });
    const loginCsrf = /name="csrf" value="([^"]+)"/.exec(page.text)![1]!.replace(/&amp;/g, '&');
    const setCookie = (res: RawResponse) => [res.headers['set-cookie'] ?? []].flat().map((c) => c.split(';')[0]).join('; ');
    const signIn = await rawRequest(app.svc.url, { method: 'POST', path: '/console/sign-in', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: setCookie(page) }, body: `csrf=${encodeURIComponent(loginCsrf)}&adminKey=${encodeURIComponent(org.key)}` });
    expect(signIn.status, signIn.text).toBe(303);
    const cookie = [setCookie(page), setCookie(signIn)].filter(Boolean).join('; ');
    const ssoPage = await rawRequest(app.svc.url, { method: 'GET', path: '/console/sso', headers: { Cookie: cookie } });
    const csrf = /name="csrf" value="([^"]+)"/.exec(ssoPage.text)![1]!.replace(/&amp;/g, '&');
    const conn = ids['sso-connections']!;
    const routes: [string, string, string[] | null][] = [
      ['GET', '/console', null], ['GET', '/console/sso', null], ['GET', '/console/sso/{c}', null], ['GET', '/console/policies', null],
      ['POST', '/console/sign-in', ['adminKey']],
      ['POST', '/console/sso', ['name', 'type', 'metadataXml', 'entityId', 'ssoUrl', 'certificate', 'issuer', 'clientId', 'clientSecret']],
      ['POST', '/console/sso/{c}/test', ['emails']],
      ['POST', '/console/policies/members', ['policyId', 'emails']],
      ['POST', '/console/sign-out', []],
    ];
    for (const [method, path, fields] of routes) {
      const body = fields ? encoded(formBody(fields).map((f) => `csrf=${encodeURIComponent(path === '/console/sign-in' ? loginCsrf : csrf)}${f ? `&${f}` : ''}`), 'application/x-www-form-urlencoded').map((b) => b as typeof b | null) : fc.constant(null);
      const connSeg = fc.oneof({ weight: 3, arbitrary: fc.constant(conn) }, { weight: 1, arbitrary: hostileSegment });
      await fc.assert(fc.asyncProperty(connSeg, query(['page', 'after', 'q']), body, async (c, qs, b) => {
        // Signing out would end the session the later forms need: its body is driven, its effect checked once at the end.
        const isSignOut = path === '/console/sign-out';
        await drive({ method, path: path.replace('{c}', c) + qs, headers: { Accept: 'text/html', Cookie: isSignOut ? setCookie(page) : cookie, ...(b?.headers ?? {}) }, ...(b ? { body: b.body } : {}), label: b?.label ?? 'no body' });
      }), { numRuns: RUNS * 2, endOnFailure: true });
    }
  }, 300_000);
});
