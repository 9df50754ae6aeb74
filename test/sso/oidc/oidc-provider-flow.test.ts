import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInput } from '../../../src/domain/errors.js';
import { createOidcLoginSecrets, createOidcRelyingParty, OidcRefused, type OidcConnection } from '../../../src/sso/oidc/index.js';
import { startOidcProvider, type RunningOidcProvider } from '../../support/oidc-provider.js';

/**
 * The relying party against a real OpenID provider (panva's oidc-provider) on loopback:
 * the happy path and every attack a genuine provider's answer can be bent into.
 */

// Never contacted: the test plays the browser and stops where the provider redirects to.
const REDIRECT = 'http://127.0.0.1:9/sso/conn-1/oidc/callback';
const CLIENT = { clientId: 'orgsync-test', clientSecret: 'a-client-secret-of-thirty-two-chars!!' };

let op: RunningOidcProvider;
let conn: OidcConnection;
const rp = createOidcRelyingParty({ timeoutMs: 5000 });

beforeAll(async () => {
  op = await startOidcProvider({
    users: {
      alice: { email: 'alice@acme.test', email_verified: true, name: 'Alice Liddell', given_name: 'Alice', family_name: 'Liddell' },
      bob: { email: 'bob@acme.test', email_verified: false, given_name: 'Bob', family_name: 'Builder' },
    },
    clients: [{ ...CLIENT, redirectUris: [REDIRECT] }],
  });
  conn = { id: 'conn-1', issuer: op.issuer, ...CLIENT };
});
afterAll(async () => op?.close());

async function login(account = 'alice', o: { deny?: boolean; loginHint?: string; amr?: string[]; acr?: string } = {}) {
  const secrets = createOidcLoginSecrets();
  const url = await rp.buildLoginUrl(conn, { redirectUri: REDIRECT, ...secrets, ...(o.loginHint ? { loginHint: o.loginHint } : {}) });
  const answer = await op.authorize(url, { account, deny: o.deny ?? false, ...(o.amr ? { amr: o.amr } : {}), ...(o.acr ? { acr: o.acr } : {}) });
  return { ...secrets, loginUrl: new URL(url), params: answer.params, redirectedTo: answer.url };
}

type Login = Awaited<ReturnType<typeof login>>;

function complete(l: Login, over: Partial<Parameters<typeof rp.completeCallback>[1]> = {}) {
  return rp.completeCallback(conn, {
    redirectUri: REDIRECT, params: l.params, expectedState: l.state, expectedNonce: l.nonce,
    codeVerifier: l.codeVerifier, now: new Date(), clockSkewSeconds: 60, ...over,
  });
}

async function refused(p: Promise<unknown>): Promise<OidcRefused> {
  try {
    await p;
  } catch (err) {
    expect(err, String(err)).toBeInstanceOf(OidcRefused);
    return err as OidcRefused;
  }
  throw new Error('expected a refusal, got an answer');
}

const withParams = (l: Login, edit: (p: URLSearchParams) => void): Login => {
  const params = new URLSearchParams(l.params);
  edit(params);
  return { ...l, params };
};

describe('login URL', () => {
  it('asks for code + PKCE S256, openid email profile, state, nonce and the login hint', async () => {
    const secrets = createOidcLoginSecrets();
    const url = new URL(await rp.buildLoginUrl(conn, { redirectUri: REDIRECT, ...secrets, loginHint: 'alice@acme.test' }));
    expect(url.origin + url.pathname).toBe(`${op.issuer}/auth`);
    const q = url.searchParams;
    expect(q.get('response_type')).toBe('code');
    expect(q.get('client_id')).toBe(CLIENT.clientId);
    expect(q.get('redirect_uri')).toBe(REDIRECT);
    expect(q.get('scope')).toBe('openid email profile');
    expect(q.get('state')).toBe(secrets.state);
    expect(q.get('nonce')).toBe(secrets.nonce);
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('code_challenge'), 'RFC 7636 §4.2: BASE64URL(SHA256(verifier))').toBe(createHash('sha256').update(secrets.codeVerifier).digest('base64url'));
    expect(q.get('login_hint')).toBe('alice@acme.test');
    expect(url.href, 'the verifier and the secret never leave the server').not.toContain(secrets.codeVerifier);
    expect(url.href).not.toContain(encodeURIComponent(CLIENT.clientSecret));
  });

  it('omits login_hint when none is given and refuses a malformed code verifier', async () => {
    const secrets = createOidcLoginSecrets();
    const url = new URL(await rp.buildLoginUrl(conn, { redirectUri: REDIRECT, ...secrets }));
    expect(url.searchParams.has('login_hint')).toBe(false);
    await expect(rp.buildLoginUrl(conn, { redirectUri: REDIRECT, ...secrets, codeVerifier: 'short' })).rejects.toThrow(/RFC 7636/);
  });
});

describe('happy path', () => {
  it('logs in through the real provider and maps the claims', async () => {
    const l = await login('alice', { loginHint: 'alice@acme.test' });
    expect(l.redirectedTo.origin + l.redirectedTo.pathname).toBe(REDIRECT);
    expect(l.params.get('iss'), 'oidc-provider sends RFC 9207 iss').toBe(op.issuer);
    const answer = await complete(l);
    expect(answer.protocol).toBe('oidc');
    expect(answer.profile).toEqual({ subject: 'alice', email: 'alice@acme.test', displayName: 'Alice Liddell', givenName: 'Alice', familyName: 'Liddell', emailVerified: true });
    expect(answer.inResponseTo).toBe(l.state);
    expect(answer.attributes).toMatchObject({ sub: 'alice', iss: op.issuer, aud: CLIENT.clientId, nonce: l.nonce, email: 'alice@acme.test', email_verified: true });
    expect(answer.assertionId).toMatch(/^[0-9a-f]{64}$|.+/);
    expect(answer.assertionExpiresAt.getTime()).toBeGreaterThan(Date.now());
    expect(answer.assertionExpiresAt.getTime()).toBe((answer.attributes.exp as number) * 1000);
    expect(answer.checks.filter((c) => !c.passed), 'every check passed').toEqual([]);
    const names = answer.checks.map((c) => c.name);
    for (const n of ['discovery', 'issuer-parameter', 'state', 'authorization-response', 'code-exchange', 'id-token-algorithm',
      'id-token-signature', 'id-token-issuer', 'id-token-audience', 'id-token-expiry', 'id-token-subject', 'id-token-nonce', 'userinfo', 'email-verified']) {
      expect(names, `check ${n}`).toContain(n);
    }
    expect(answer.checks.find((c) => c.name === 'userinfo')?.detail, 'oidc-provider puts scope claims in UserInfo only').toMatch(/email/);
    expect(answer.checks.find((c) => c.name === 'email-verified')?.detail).toMatch(/email_verified is true/);
  });

  it('says when email_verified is false and composes the display name', async () => {
    const answer = await complete(await login('bob'));
    expect(answer.profile).toMatchObject({ email: 'bob@acme.test', displayName: 'Bob Builder' });
    expect(answer.checks.find((c) => c.name === 'email-verified')).toEqual({ name: 'email-verified', passed: false, detail: 'email_verified is false for bob@acme.test' });
  });

  it('reads how the provider says the user authenticated: the ID token\'s amr and acr (issue 14 §2)', async () => {
    const answer = await complete(await login('alice', { amr: ['pwd', 'mfa'], acr: 'urn:okta:loa:2fa:any' }));
    expect(answer.attributes).toMatchObject({ amr: ['pwd', 'mfa'], acr: 'urn:okta:loa:2fa:any' });
    expect(answer.authnEvidence).toEqual([{ source: 'amr', value: 'pwd' }, { source: 'amr', value: 'mfa' }, { source: 'acr', value: 'urn:okta:loa:2fa:any' }]);
    expect((await complete(await login('alice'))).authnEvidence.filter((e) => e.source === 'amr')).toEqual([]);
  });

  it('uses the ID token hash as the assertion id when there is no jti', async () => {
    const answer = await complete(await login());
    if (typeof answer.attributes.jti === 'string') expect(answer.assertionId).toBe(answer.attributes.jti);
    else expect(answer.assertionId).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('attacks on a genuine answer', () => {
  it('missing-state: no state in the callback', async () => {
    const l = await login();
    const err = await refused(complete(withParams(l, (p) => p.delete('state'))));
    expect(err.reason).toBe('missing-state');
    expect(err.status).toBe(400);
    expect(err.checks.at(-1)).toMatchObject({ name: 'state', passed: false });
  });

  it('state-mismatch: a state from another login', async () => {
    const l = await login();
    const err = await refused(complete(l, { expectedState: createOidcLoginSecrets().state }));
    expect(err.reason).toBe('state-mismatch');
    expect(err.checks.map((c) => [c.name, c.passed])).toEqual([['discovery', true], ['issuer-parameter', true], ['state', false]]);
  });

  it('state-mismatch: an empty expected state never matches', async () => {
    const l = await login();
    expect((await refused(complete(l, { expectedState: '' }))).reason).toBe('state-mismatch');
  });

  it('nonce-mismatch: the ID token carries another login\'s nonce', async () => {
    const l = await login();
    const err = await refused(complete(l, { expectedNonce: createOidcLoginSecrets().nonce }));
    expect(err.reason).toBe('nonce-mismatch');
    expect(err.problem).toBe('nonce-wrong');
    expect(err.checks.find((c) => c.name === 'code-exchange')?.passed).toBe(true);
  });

  it('code-exchange-failed: wrong PKCE verifier', async () => {
    const l = await login();
    const err = await refused(complete(l, { codeVerifier: createOidcLoginSecrets().codeVerifier }));
    expect(err.reason).toBe('code-exchange-failed');
    expect(err.message).toMatch(/invalid_grant/);
    expect(err.checks.at(-1)).toMatchObject({ name: 'code-exchange', passed: false });
  });

  it('code-exchange-failed: the code is replayed', async () => {
    const l = await login();
    await complete(l);
    const err = await refused(complete(l));
    expect(err.reason).toBe('code-exchange-failed');
    expect(err.message).toMatch(/invalid_grant/);
  });

  it('issuer-mismatch: iss from another issuer (RFC 9207 mix-up)', async () => {
    const l = await login();
    const err = await refused(complete(withParams(l, (p) => p.set('iss', 'https://idp.attacker.example'))));
    expect(err.reason).toBe('issuer-mismatch');
    expect(err.message).toMatch(/idp\.attacker\.example/);
  });

  it('issuer-mismatch: iss removed although the provider advertises it', async () => {
    const l = await login();
    const err = await refused(complete(withParams(l, (p) => p.delete('iss'))));
    expect(err.reason).toBe('issuer-mismatch');
    expect(err.message).toMatch(/authorization_response_iss_parameter_supported/);
  });

  it('issuer-mismatch is checked before the code is spent', async () => {
    const l = await login();
    await refused(complete(withParams(l, (p) => p.set('iss', 'https://idp.attacker.example'))));
    expect((await complete(l)).profile.email, 'the code was not redeemed by the refused callback').toBe('alice@acme.test');
  });

  it('malformed-callback: a duplicated parameter', async () => {
    const l = await login();
    const err = await refused(complete(withParams(l, (p) => p.append('code', 'another'))));
    expect(err.reason).toBe('malformed-callback');
  });

  it('idp-error: the user denies (error=access_denied)', async () => {
    const l = await login('alice', { deny: true });
    expect(l.params.get('error')).toBe('access_denied');
    const err = await refused(complete(l));
    expect(err.reason).toBe('idp-error');
    expect(err.status).toBe(403);
    expect(err.message).toBe('the provider answered access_denied: End-User aborted interaction');
  });

  it('bad-id-token (expired): the clock says the token is past exp + skew', async () => {
    const l = await login();
    const err = await refused(complete(l, { now: new Date(Date.now() + 3 * 3600_000), clockSkewSeconds: 60 }));
    expect(err.reason).toBe('bad-id-token');
    expect(err.problem).toBe('expired');
  });
});

describe('discovery cache', () => {
  const discoveries = (o: { requests: string[] }) => o.requests.filter((r) => r === 'GET /.well-known/openid-configuration').length;

  it('a second login URL does not fetch the discovery document again', async () => {
    const fresh = createOidcRelyingParty();
    const before = discoveries(op);
    await fresh.buildLoginUrl(conn, { redirectUri: REDIRECT, ...createOidcLoginSecrets() });
    await fresh.buildLoginUrl(conn, { redirectUri: REDIRECT, ...createOidcLoginSecrets() });
    await Promise.all([1, 2, 3].map(() => fresh.buildLoginUrl(conn, { redirectUri: REDIRECT, ...createOidcLoginSecrets() })));
    expect(discoveries(op) - before).toBe(1);
  });

  it('is per (issuer, client id), expires, and can be forgotten', async () => {
    const short = createOidcRelyingParty({ discoveryTtlMs: 30 });
    const before = discoveries(op);
    await short.buildLoginUrl(conn, { redirectUri: REDIRECT, ...createOidcLoginSecrets() });
    await short.buildLoginUrl({ ...conn, clientId: 'another-client' }, { redirectUri: REDIRECT, ...createOidcLoginSecrets() });
    expect(discoveries(op) - before, 'another client id is another entry').toBe(2);
    await new Promise((r) => setTimeout(r, 50));
    await short.buildLoginUrl(conn, { redirectUri: REDIRECT, ...createOidcLoginSecrets() });
    expect(discoveries(op) - before, 'expired entry refetched').toBe(3);
    short.forget(op.issuer);
    await short.buildLoginUrl(conn, { redirectUri: REDIRECT, ...createOidcLoginSecrets() });
    expect(discoveries(op) - before).toBe(4);
  });

  it('remembers a failed discovery only briefly', async () => {
    let calls = 0;
    let origin = '';
    const flaky = createServer((req, res) => {
      calls++;
      if (calls === 1) { res.writeHead(503).end(); return; }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
        issuer: origin, authorization_endpoint: `${origin}/auth`, token_endpoint: `${origin}/token`, jwks_uri: `${origin}/jwks`,
        response_types_supported: ['code'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'],
      }));
    });
    await new Promise<void>((r) => flaky.listen(0, '127.0.0.1', r));
    origin = `http://127.0.0.1:${(flaky.address() as AddressInfo).port}`;
    try {
      const rp2 = createOidcRelyingParty({ discoveryFailureTtlMs: 100 });
      const c = { ...conn, issuer: origin };
      const first = await refused(rp2.buildLoginUrl(c, { redirectUri: REDIRECT, ...createOidcLoginSecrets() }));
      expect(first.reason).toBe('discovery-failed');
      expect(first.message).toMatch(/HTTP 503/);
      await refused(rp2.buildLoginUrl(c, { redirectUri: REDIRECT, ...createOidcLoginSecrets() }));
      expect(calls, 'the failure is remembered for a moment').toBe(1);
      await new Promise((r) => setTimeout(r, 150));
      const url = await rp2.buildLoginUrl(c, { redirectUri: REDIRECT, ...createOidcLoginSecrets() });
      expect(url.startsWith(`${origin}/auth?`)).toBe(true);
      expect(calls).toBe(2);
    } finally {
      flaky.closeAllConnections();
      await new Promise((r) => flaky.close(r));
    }
  });
});

describe('issuer validation (admin saves a connection)', () => {
  it('accepts a working issuer', async () => {
    await expect(rp.validateIssuer(op.issuer)).resolves.toBeUndefined();
  });

  it.each([
    ['http://idp.example.com', /plain http/],
    ['http://10.0.0.1:8080', /plain http/],
    ['ftp://idp.example.com', /not supported/],
    ['not a url', /not a URL/],
    ['https://idp.example.com/?tenant=1', /no query or fragment/],
  ])('refuses %s without a request', async (issuer, message) => {
    const err = await rp.validateIssuer(issuer).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidInput);
    expect((err as InvalidInput).problems[0]?.path).toBe('issuer');
    expect((err as InvalidInput).message).toMatch(message);
  });

  it('refuses an issuer whose document names another issuer', async () => {
    const other = op.issuer.replace('127.0.0.1', 'localhost');
    const err = await rp.validateIssuer(other).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidInput);
    expect((err as Error).message).toMatch(/names issuer "http:\/\/127\.0\.0\.1:\d+", not "http:\/\/localhost:\d+"/);
  });

  it('refuses an issuer without a discovery document, and one that does not answer', async () => {
    await expect(rp.validateIssuer(`${op.issuer}/nowhere`)).rejects.toThrow(/HTTP 404/);
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await expect(rp.validateIssuer(`http://127.0.0.1:${port}`)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('gives up on a provider that never answers (timeout)', async () => {
    const silent = createServer(() => { /* never answers */ });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const quick = createOidcRelyingParty({ timeoutMs: 200 });
      const started = Date.now();
      await expect(quick.validateIssuer(`http://127.0.0.1:${(silent.address() as AddressInfo).port}`)).rejects.toThrow(/no answer within 0.2 s/);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      silent.closeAllConnections();
      await new Promise((r) => silent.close(r));
    }
  });

  it('login and callback refuse a plain-http issuer on a non-loopback host', async () => {
    const c = { ...conn, issuer: 'http://idp.example.com' };
    const err = await refused(rp.buildLoginUrl(c, { redirectUri: REDIRECT, ...createOidcLoginSecrets() }));
    expect(err.reason).toBe('insecure-issuer');
    const l = await login();
    expect((await refused(rp.completeCallback(c, {
      redirectUri: REDIRECT, params: l.params, expectedState: l.state, expectedNonce: l.nonce,
      codeVerifier: l.codeVerifier, now: new Date(), clockSkewSeconds: 60,
    }))).reason).toBe('insecure-issuer');
  });
});
