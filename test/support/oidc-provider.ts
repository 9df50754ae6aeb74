import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey, type KeyObject } from 'jose';
// @ts-expect-error oidc-provider ships no type declarations; the few members used are typed below.
import OidcProviderModule from 'oidc-provider';

/**
 * OpenID providers for tests, both on loopback http with a random port:
 *
 * - `startOidcProvider`: panva's oidc-provider (a certified OP) with confidential clients
 *   (client_secret_basic), PKCE required, test users, and no browser: `authorize(url, …)`
 *   follows redirects with a cookie jar and answers the login and consent interactions itself
 *   (`provider.interactionFinished`), returning the authorization response (`code`, `state`, `iss`).
 * - `startMaliciousOp`: a hand-written OP (discovery, JWKS, token endpoint) whose token
 *   endpoint hands out crafted ID tokens (signed with jose) that oidc-provider never produces.
 */

export type TestUser = { email: string; email_verified?: boolean; name?: string; given_name?: string; family_name?: string };

export type TestClient = { clientId: string; clientSecret: string; redirectUris: string[]; authMethod?: 'client_secret_basic' | 'client_secret_post' };

export type AuthorizeResult = {
  /** Where the provider sent the browser (the redirect_uri with the response parameters). */
  url: URL;
  params: URLSearchParams;
};

export type RunningOidcProvider = {
  issuer: string;
  /** Every request the provider received, as "METHOD /path" (no query). */
  requests: string[];
  registerClient(client: TestClient): Promise<void>;
  /**
   * Plays the browser and the user: opens the authorization URL, logs in as `account` (a key of
   * `users`) and consents, or denies with `deny: true` (→ `error=access_denied`). Stops at the
   * first redirect that leaves the provider.
   */
  /** `amr` / `acr`: what the provider says about how the user authenticated (OIDC Core §2), in the ID token. */
  authorize(authorizationUrl: string, opts: { account: string; deny?: boolean; amr?: string[]; acr?: string }): Promise<AuthorizeResult>;
  close(): Promise<void>;
};

type OidcProviderInstance = {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<{
    uid: string;
    prompt: { name: string; details: Record<string, unknown> };
    params: Record<string, string | undefined>;
    session?: { accountId?: string };
    grantId?: string;
  }>;
  interactionFinished(req: IncomingMessage, res: ServerResponse, result: Record<string, unknown>, opts?: { mergeWithLastSubmission?: boolean }): Promise<void>;
  Grant: {
    new (init: { accountId: string; clientId: string }): TestGrant;
    find(id: string): Promise<TestGrant | undefined>;
  };
};
type TestGrant = {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(resource: string, scope: string): void;
  save(): Promise<string>;
};
const OidcProvider = OidcProviderModule as new (issuer: string, config: Record<string, unknown>) => OidcProviderInstance;

/** A per-provider in-memory adapter (oidc-provider's own memory adapter is process-global). */
function memoryAdapter() {
  const store = new Map<string, { payload: Record<string, unknown>; expiresAt: number }>();
  const now = () => Date.now();
  return class TestAdapter {
    constructor(private readonly model: string) {}
    private key(id: string) { return `${this.model}:${id}`; }
    static clients = new Map<string, Record<string, unknown>>();
    async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number) {
      store.set(this.key(id), { payload: { ...payload }, expiresAt: expiresIn ? now() + expiresIn * 1000 : Infinity });
    }
    async find(id: string) {
      if (this.model === 'Client') return TestAdapter.clients.get(id);
      const hit = store.get(this.key(id));
      if (!hit || hit.expiresAt <= now()) return undefined;
      return { ...hit.payload };
    }
    async findByUid(uid: string) {
      for (const [k, v] of store) if (k.startsWith(`${this.model}:`) && v.payload.uid === uid && v.expiresAt > now()) return { ...v.payload };
      return undefined;
    }
    async findByUserCode(userCode: string) {
      for (const [k, v] of store) if (k.startsWith(`${this.model}:`) && v.payload.userCode === userCode && v.expiresAt > now()) return { ...v.payload };
      return undefined;
    }
    async consume(id: string) {
      const hit = store.get(this.key(id));
      if (hit) hit.payload.consumed = Math.floor(now() / 1000);
    }
    async destroy(id: string) { store.delete(this.key(id)); }
    async revokeByGrantId(grantId: string) {
      for (const [k, v] of store) if (v.payload.grantId === grantId) store.delete(k);
    }
  };
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; origin: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, origin: `http://127.0.0.1:${port}` };
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(text);
}

/** A minimal cookie jar: one origin, paths ignored (a login is one short flow). */
export class CookieJar {
  private readonly cookies = new Map<string, string>();
  store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a))
        || attrs.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split('=')[1] ?? '') <= Date.now());
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

export async function startOidcProvider(opts: {
  users: Record<string, TestUser>;
  clients?: TestClient[];
  /** oidc-provider default true: scope claims (email, name) only in UserInfo, not in the ID token. */
  conformIdTokenClaims?: boolean;
}): Promise<RunningOidcProvider> {
  const Adapter = memoryAdapter();
  const requests: string[] = [];
  let provider: OidcProviderInstance | undefined;
  let providerCallback: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;

  const interactions = async (req: IncomingMessage, res: ServerResponse, uid: string, action: string | undefined) => {
    const p = provider!;
    const details = await p.interactionDetails(req, res);
    if (details.uid !== uid) return sendJson(res, 400, { error: 'interaction uid mismatch' });
    if (req.method === 'GET' && !action) {
      return sendJson(res, 200, { uid: details.uid, prompt: details.prompt.name, params: details.params });
    }
    const form = await readForm(req);
    if (action === 'abort') {
      return p.interactionFinished(req, res, { error: 'access_denied', error_description: 'End-User aborted interaction' }, { mergeWithLastSubmission: false });
    }
    if (action === 'login') {
      const account = form.get('account') ?? '';
      if (!Object.hasOwn(opts.users, account)) return sendJson(res, 400, { error: `no test user ${account}` });
      const amr = form.get('amr');
      const acr = form.get('acr');
      const login = { accountId: account, ...(amr ? { amr: amr.split(' ') } : {}), ...(acr ? { acr } : {}) };
      return p.interactionFinished(req, res, { login }, { mergeWithLastSubmission: false });
    }
    if (action === 'consent') {
      const { prompt: { details: missing }, params, session, grantId } = details;
      const grant = (grantId ? await p.Grant.find(grantId) : undefined) ?? new p.Grant({ accountId: session!.accountId!, clientId: params.client_id! });
      if (Array.isArray(missing.missingOIDCScope)) grant.addOIDCScope((missing.missingOIDCScope as string[]).join(' '));
      if (Array.isArray(missing.missingOIDCClaims)) grant.addOIDCClaims(missing.missingOIDCClaims as string[]);
      const resources = (missing.missingResourceScopes ?? {}) as Record<string, string[]>;
      for (const [resource, scopes] of Object.entries(resources)) grant.addResourceScope(resource, scopes.join(' '));
      const saved = await grant.save();
      return p.interactionFinished(req, res, grantId ? {} : { consent: { grantId: saved } }, { mergeWithLastSubmission: true });
    }
    return sendJson(res, 404, { error: `unknown interaction action ${action}` });
  };

  const { server, origin } = await listen((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    requests.push(`${req.method} ${url.pathname}`);
    const m = /^\/interaction\/([\w-]+)(?:\/(\w+))?$/.exec(url.pathname);
    if (m) {
      interactions(req, res, m[1]!, m[2]).catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { error: String(err) });
      });
      return;
    }
    providerCallback!(req, res);
  });

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: `k-${randomUUID().slice(0, 8)}`, alg: 'RS256', use: 'sig' };

  provider = new OidcProvider(origin, {
    adapter: Adapter,
    findAccount: async (_ctx: unknown, sub: string) => {
      const user = Object.hasOwn(opts.users, sub) ? opts.users[sub] : undefined;
      if (!user) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...user }) };
    },
    // amr and acr with the openid scope: Entra ID and Okta put them in every ID token (issue 14 §2 reads them).
    claims: { openid: ['sub', 'acr', 'amr'], email: ['email', 'email_verified'], profile: ['name', 'given_name', 'family_name'] },
    conformIdTokenClaims: opts.conformIdTokenClaims ?? true,
    cookies: { keys: [randomBytes(32).toString('hex')] },
    jwks: { keys: [signingKey] },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    pkce: { required: () => true },
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 3600, Interaction: 600, Session: 3600, Grant: 3600 },
    renderError: async (ctx: { type: string; body: unknown; status: number }, out: Record<string, unknown>) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  });
  providerCallback = provider.callback();

  const registerClient = async (c: TestClient) => {
    Adapter.clients.set(c.clientId, {
      client_id: c.clientId,
      client_secret: c.clientSecret,
      redirect_uris: c.redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: c.authMethod ?? 'client_secret_basic',
    });
  };
  for (const c of opts.clients ?? []) await registerClient(c);

  const authorize = async (authorizationUrl: string, o: { account: string; deny?: boolean; amr?: string[]; acr?: string }): Promise<AuthorizeResult> => {
    const jar = new CookieJar();
    let url = new URL(authorizationUrl);
    let init: RequestInit = { method: 'GET' };
    for (let hop = 0; hop < 20; hop++) {
      const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string> | undefined), cookie: jar.header() } });
      jar.store(res);
      if (res.status >= 300 && res.status < 400) {
        const next = new URL(res.headers.get('location') ?? '', url);
        await res.arrayBuffer();
        if (next.origin !== origin) return { url: next, params: new URLSearchParams(next.search) };
        url = next;
        init = { method: 'GET' };
        continue;
      }
      const body = await res.text();
      if (res.status === 200 && url.pathname.startsWith('/interaction/')) {
        const { uid, prompt } = JSON.parse(body) as { uid: string; prompt: string };
        const action = o.deny ? 'abort' : prompt;
        url = new URL(`/interaction/${uid}/${action}`, origin);
        init = { method: 'POST', body: new URLSearchParams({ account: o.account, ...(o.amr ? { amr: o.amr.join(' ') } : {}), ...(o.acr ? { acr: o.acr } : {}) }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
        continue;
      }
      throw new Error(`test OP: unexpected HTTP ${res.status} at ${url.pathname}: ${body.slice(0, 500)}`);
    }
    throw new Error('test OP: too many redirects');
  };

  return { issuer: origin, requests, registerClient, authorize, close: () => closeServer(server) };
}

// ---------------------------------------------------------------------------------------------

/** The crafted ID tokens a malicious (or broken) provider can hand out. */
export type IdTokenAttack =
  | 'valid'
  | 'alg-none'
  | 'hs256-client-secret'
  | 'wrong-iss'
  | 'wrong-aud'
  | 'extra-aud-no-azp'
  | 'expired'
  | 'not-yet-valid'
  | 'missing-sub'
  | 'missing-nonce'
  | 'wrong-nonce'
  | 'unknown-key'
  | 'unknown-kid';

export type RunningMaliciousOp = {
  issuer: string;
  clientId: string;
  clientSecret: string;
  requests: string[];
  /** The bodies of the token requests received (to check the PKCE verifier and client auth). */
  tokenRequests: { authorization: string | undefined; body: URLSearchParams }[];
  /** The next token response carries an ID token crafted for `attack`, with `nonce` unless the attack removes it. */
  next(attack: IdTokenAttack, nonce: string, extraClaims?: Record<string, unknown>): void;
  /** Drops a queued token (a refused callback never reached the token endpoint). */
  clear(): void;
  close(): Promise<void>;
};

export async function startMaliciousOp(opts: {
  clientId: string;
  clientSecret: string;
  /** `id_token_signing_alg_values_supported` it advertises (a lying OP may list none and HS256). */
  algsAdvertised?: string[];
  issParameterSupported?: boolean;
  /** Extra or replaced discovery document members. */
  metadata?: Record<string, unknown>;
}): Promise<RunningMaliciousOp> {
  const requests: string[] = [];
  const tokenRequests: RunningMaliciousOp['tokenRequests'] = [];
  const kid = 'evil-1';
  const signing = await generateKeyPair('RS256');
  const other = await generateKeyPair('RS256');
  const publicJwk = { ...(await exportJWK(signing.publicKey)), kid, alg: 'RS256', use: 'sig' };
  let pending: { attack: IdTokenAttack; nonce: string; extra: Record<string, unknown> } | undefined;
  let issuer = '';

  const craft = async (attack: IdTokenAttack, nonce: string, extra: Record<string, unknown>): Promise<string> => {
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = {
      iss: issuer, aud: opts.clientId, sub: 'mallory-1', nonce, iat: now, exp: now + 300,
      email: 'mallory@acme.test', email_verified: true, name: 'Mallory', ...extra,
    };
    if (attack === 'wrong-iss') claims.iss = 'https://idp.attacker.example';
    if (attack === 'wrong-aud') claims.aud = 'some-other-client';
    if (attack === 'extra-aud-no-azp') claims.aud = [opts.clientId, 'some-other-client'];
    if (attack === 'expired') { claims.iat = now - 7200; claims.exp = now - 3600; }
    if (attack === 'not-yet-valid') claims.nbf = now + 3600;
    if (attack === 'missing-sub') delete claims.sub;
    if (attack === 'missing-nonce') delete claims.nonce;
    if (attack === 'wrong-nonce') claims.nonce = 'a-nonce-from-another-login';
    if (attack === 'alg-none') return new UnsecuredJWT(claims).encode();
    if (attack === 'hs256-client-secret') {
      return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(opts.clientSecret));
    }
    let key: CryptoKey | KeyObject | Uint8Array = signing.privateKey;
    let headerKid = kid;
    if (attack === 'unknown-key') key = other.privateKey;
    if (attack === 'unknown-kid') { key = other.privateKey; headerKid = 'evil-2'; }
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: headerKid, typ: 'JWT' }).sign(key);
  };

  const { server, origin } = await listen((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    requests.push(`${req.method} ${url.pathname}`);
    void (async () => {
      if (req.method === 'GET' && url.pathname === '/.well-known/openid-configuration') {
        return sendJson(res, 200, {
          issuer,
          authorization_endpoint: `${issuer}/authorize`,
          token_endpoint: `${issuer}/token`,
          jwks_uri: `${issuer}/jwks`,
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: opts.algsAdvertised ?? ['RS256'],
          token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
          code_challenge_methods_supported: ['S256'],
          scopes_supported: ['openid', 'email', 'profile'],
          ...(opts.issParameterSupported ? { authorization_response_iss_parameter_supported: true } : {}),
          ...opts.metadata,
        });
      }
      if (req.method === 'GET' && url.pathname === '/jwks') return sendJson(res, 200, { keys: [publicJwk] });
      if (req.method === 'POST' && url.pathname === '/token') {
        const body = await readForm(req);
        const authorization = req.headers.authorization;
        tokenRequests.push({ authorization, body });
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before the Basic encoding.
        const basic = /^Basic (.+)$/.exec(authorization ?? '')?.[1];
        const [id, secret] = basic
          ? Buffer.from(basic, 'base64').toString('utf8').split(':').map((v) => decodeURIComponent(v.replace(/\+/g, ' ')))
          : [body.get('client_id'), body.get('client_secret')];
        if (id !== opts.clientId || secret !== opts.clientSecret) return sendJson(res, 401, { error: 'invalid_client' });
        if (!pending) return sendJson(res, 400, { error: 'invalid_grant', error_description: 'no crafted token queued' });
        const { attack, nonce, extra } = pending;
        pending = undefined;
        return sendJson(res, 200, { access_token: randomUUID(), token_type: 'Bearer', expires_in: 300, id_token: await craft(attack, nonce, extra) });
      }
      return sendJson(res, 404, { error: 'not_found' });
    })().catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: String(err) });
    });
  });
  issuer = origin;

  return {
    issuer, clientId: opts.clientId, clientSecret: opts.clientSecret, requests, tokenRequests,
    next: (attack, nonce, extra = {}) => { pending = { attack, nonce, extra }; },
    clear: () => { pending = undefined; },
    close: () => closeServer(server),
  };
}
