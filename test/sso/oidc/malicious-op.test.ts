import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createOidcLoginSecrets, createOidcRelyingParty, OidcRefused, type IdTokenProblem, type OidcConnection, type OidcRefusalReason } from '../../../src/sso/oidc/index.js';
import { startMaliciousOp, type IdTokenAttack, type RunningMaliciousOp } from '../../support/oidc-provider.js';

/**
 * ID tokens a genuine provider never issues, from a hand-written provider that cooperates with
 * the attacker (its discovery, JWKS and token endpoint are all "valid"): each must be refused
 * with its exact reason and ID-token problem (OIDC Core §3.1.3.7).
 */

const REDIRECT = 'http://127.0.0.1:9/sso/conn-evil/oidc/callback';
const CLIENT = { clientId: 'orgsync-evil-test', clientSecret: 'the-client-secret-the-attacker-knows' };

let honest: RunningMaliciousOp;
let lying: RunningMaliciousOp;
const rp = createOidcRelyingParty({ timeoutMs: 5000 });

beforeAll(async () => {
  honest = await startMaliciousOp(CLIENT);
  // This one even advertises `none` and HS256: we still accept only asymmetric algorithms.
  lying = await startMaliciousOp({ ...CLIENT, algsAdvertised: ['none', 'HS256', 'RS256'] });
});
afterEach(() => {
  honest.clear();
  lying.clear();
});
afterAll(async () => {
  await honest?.close();
  await lying?.close();
});

const connFor = (op: RunningMaliciousOp): OidcConnection => ({ id: 'conn-evil', issuer: op.issuer, ...CLIENT });

async function answer(op: RunningMaliciousOp, attack: IdTokenAttack, o: { extra?: Record<string, unknown>; params?: Record<string, string> } = {}) {
  const s = createOidcLoginSecrets();
  op.next(attack, s.nonce, o.extra);
  return rp.completeCallback(connFor(op), {
    redirectUri: REDIRECT,
    params: new URLSearchParams({ code: 'code-from-the-evil-op', state: s.state, ...o.params }),
    expectedState: s.state, expectedNonce: s.nonce, codeVerifier: s.codeVerifier, now: new Date(), clockSkewSeconds: 60,
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

describe('the crafting provider itself', () => {
  it('gets an honest, well-signed token accepted (so each refusal below is about its one defect)', async () => {
    const a = await answer(honest, 'valid', { extra: { jti: 'jti-123', given_name: 'Mal', family_name: 'Lory' } });
    expect(a.profile).toEqual({ subject: 'mallory-1', email: 'mallory@acme.test', displayName: 'Mallory', givenName: 'Mal', familyName: 'Lory', emailVerified: true });
    expect(a.assertionId, 'jti is the replay key when present').toBe('jti-123');
    expect(a.checks.map((c) => c.name), 'email in the ID token: no UserInfo request').not.toContain('userinfo');
    expect(a.checks.find((c) => c.name === 'issuer-parameter')?.detail).toMatch(/does not advertise/);
  });

  it('receives the PKCE verifier and client_secret_basic authentication at its token endpoint', async () => {
    const s = createOidcLoginSecrets();
    honest.next('valid', s.nonce);
    const before = honest.tokenRequests.length;
    await rp.completeCallback(connFor(honest), {
      redirectUri: REDIRECT, params: new URLSearchParams({ code: 'c-1', state: s.state }),
      expectedState: s.state, expectedNonce: s.nonce, codeVerifier: s.codeVerifier, now: new Date(), clockSkewSeconds: 60,
    });
    const req = honest.tokenRequests[before]!;
    expect(req.body.get('grant_type')).toBe('authorization_code');
    expect(req.body.get('code')).toBe('c-1');
    expect(req.body.get('code_verifier')).toBe(s.codeVerifier);
    expect(req.body.get('redirect_uri')).toBe(REDIRECT);
    expect(req.body.has('client_secret'), 'the secret travels in the Authorization header').toBe(false);
    expect(req.authorization).toMatch(/^Basic /);
  });
});

const cases: [IdTokenAttack, OidcRefusalReason, IdTokenProblem, RegExp][] = [
  ['alg-none', 'bad-id-token', 'alg-none', /unsigned \(alg "none"\)/],
  ['hs256-client-secret', 'bad-id-token', 'symmetric-alg', /HS256.*client secret/],
  ['wrong-iss', 'bad-id-token', 'issuer-mismatch', /iss "https:\/\/idp\.attacker\.example"/],
  ['wrong-aud', 'bad-id-token', 'audience-mismatch', /aud "some-other-client"/],
  ['extra-aud-no-azp', 'bad-id-token', 'audience-mismatch', /aud/],
  ['expired', 'bad-id-token', 'expired', /expired at/],
  ['not-yet-valid', 'bad-id-token', 'not-yet-valid', /not valid before/],
  ['missing-sub', 'bad-id-token', 'missing-sub', /no sub claim/],
  ['missing-nonce', 'nonce-mismatch', 'nonce-missing', /no nonce/],
  ['wrong-nonce', 'nonce-mismatch', 'nonce-wrong', /nonce is not the one/],
  ['unknown-key', 'bad-id-token', 'bad-signature', /signature does not verify/],
  ['unknown-kid', 'bad-id-token', 'bad-signature', /no applicable keys/],
];

describe.each([
  ['a provider advertising RS256', () => honest],
  ['a provider advertising none, HS256 and RS256', () => lying],
])('crafted ID tokens from %s', (_name, op) => {
  it.each(cases)('%s → %s (%s)', async (attack, reason, problem, message) => {
    const err = await refused(answer(op(), attack));
    expect(err.reason).toBe(reason);
    expect(err.problem).toBe(problem);
    expect(err.message).toMatch(message);
    expect(err.status).toBe(401);
    const last = err.checks.at(-1)!;
    expect(last.passed).toBe(false);
    expect(last.detail).toBe(err.message);
    expect(err.checks.find((c) => c.name === 'code-exchange')?.passed, 'the code exchange itself worked').toBe(true);
  });
});

describe('callback parameters', () => {
  it('issuer-mismatch: iss from another issuer, even when the provider does not advertise RFC 9207', async () => {
    const before = honest.tokenRequests.length;
    const err = await refused(answer(honest, 'valid', { params: { iss: lying.issuer } }));
    expect(err.reason).toBe('issuer-mismatch');
    expect(honest.tokenRequests.length, 'refused before the code was sent anywhere').toBe(before);
  });

  it('issuer-mismatch: a missing iss when the provider advertises it', async () => {
    const strict = await startMaliciousOp({ ...CLIENT, issParameterSupported: true });
    try {
      const before = strict.tokenRequests.length;
      const err = await refused(answer(strict, 'valid'));
      expect(err.reason).toBe('issuer-mismatch');
      expect(strict.tokenRequests.length, 'no token request').toBe(before);
      await expect(answer(strict, 'valid', { params: { iss: strict.issuer } })).resolves.toMatchObject({ protocol: 'oidc' });
    } finally {
      await strict.close();
    }
  });

  it('idp-error: error=access_denied with its description', async () => {
    const s = createOidcLoginSecrets();
    const err = await refused(rp.completeCallback(connFor(honest), {
      redirectUri: REDIRECT,
      params: new URLSearchParams({ error: 'access_denied', error_description: 'User is not assigned to the client application.', state: s.state }),
      expectedState: s.state, expectedNonce: s.nonce, codeVerifier: s.codeVerifier, now: new Date(), clockSkewSeconds: 60,
    }));
    expect(err.reason).toBe('idp-error');
    expect(err.message).toBe('the provider answered access_denied: User is not assigned to the client application.');
  });

  it('code-exchange-failed: the token endpoint refuses with an OAuth error', async () => {
    const s = createOidcLoginSecrets(); // nothing queued: the evil OP answers invalid_grant
    const err = await refused(rp.completeCallback(connFor(honest), {
      redirectUri: REDIRECT, params: new URLSearchParams({ code: 'x', state: s.state }),
      expectedState: s.state, expectedNonce: s.nonce, codeVerifier: s.codeVerifier, now: new Date(), clockSkewSeconds: 60,
    }));
    expect(err.reason).toBe('code-exchange-failed');
    expect(err.message).toBe('the token endpoint answered HTTP 400 invalid_grant (no crafted token queued)');
  });

  it('code-exchange-failed: wrong client secret → invalid_client', async () => {
    const s = createOidcLoginSecrets();
    honest.next('valid', s.nonce);
    const err = await refused(rp.completeCallback({ ...connFor(honest), clientSecret: 'wrong' }, {
      redirectUri: REDIRECT, params: new URLSearchParams({ code: 'x', state: s.state }),
      expectedState: s.state, expectedNonce: s.nonce, codeVerifier: s.codeVerifier, now: new Date(), clockSkewSeconds: 60,
    }));
    expect(err.reason).toBe('code-exchange-failed');
    expect(err.message).toMatch(/401 invalid_client/);
  });

  it('malformed-callback: tokens in the callback (implicit answer never asked for), or no code', async () => {
    expect((await refused(answer(honest, 'valid', { params: { id_token: 'x.y.z' } }))).reason).toBe('malformed-callback');
    const s = createOidcLoginSecrets();
    const err = await refused(rp.completeCallback(connFor(honest), {
      redirectUri: REDIRECT, params: new URLSearchParams({ state: s.state }),
      expectedState: s.state, expectedNonce: s.nonce, codeVerifier: s.codeVerifier, now: new Date(), clockSkewSeconds: 60,
    }));
    expect(err.reason).toBe('malformed-callback');
  });
});

describe('discovery documents that point elsewhere', () => {
  it('refuses a loopback http issuer whose token endpoint is plain http on another host', async () => {
    const op = await startMaliciousOp({ ...CLIENT, metadata: { token_endpoint: 'http://token.attacker.example/token' } });
    try {
      const err = await refused(answer(op, 'valid'));
      expect(err.reason).toBe('discovery-failed');
      expect(err.message).toMatch(/token_endpoint http:\/\/token\.attacker\.example in the discovery document is not https/);
      await expect(rp.validateIssuer(op.issuer)).rejects.toThrow(/not https/);
    } finally {
      await op.close();
    }
  });

  it('refuses a document without a jwks_uri', async () => {
    const op = await startMaliciousOp({ ...CLIENT, metadata: { jwks_uri: undefined } });
    try {
      expect((await refused(answer(op, 'valid'))).message).toMatch(/no jwks_uri/);
    } finally {
      await op.close();
    }
  });
});
