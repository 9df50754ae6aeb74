import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, startTestApp, type TestApp } from '../support/app.js';
import { sha256Hex } from '../../src/services/secret-box.js';

/**
 * Issue 12 §4, console sessions, over HTTP:
 * - regression "signing out does not end the session: the old cookie still works";
 * - regression "the cookie carries the encrypted admin key";
 * - revoking the admin key ends its sessions (in the database, with the audit row saying so);
 * - an expired session is refused; a forged cookie is refused without a session;
 * - failed sign-ins are throttled per client address (429 + Retry-After), successes are not.
 */
const FAILURE_BURST = 4;
const SECRET_KEY = 'console-session-test-secret-key-0123456789';
let app: TestApp;
type Org = { id: string; key: string };
let org: Org;

const api = (o: Org, p: string) => `/api/v1/orgs/${o.id}/${p}`;

function csrfOf(htmlText: string): string {
  const m = /name="csrf" value="([^"]+)"/.exec(htmlText);
  if (!m) throw new Error(`no CSRF field in the page:\n${htmlText.slice(0, 500)}`);
  return m[1]!.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** Signs in with `key`; returns the agent, the session page's CSRF token and the raw cookie value. */
async function signIn(key: string, on: TestApp = app) {
  const agent = request.agent(on.svc.url);
  const form = await agent.get('/console').expect(200);
  const res = await agent.post('/console/sign-in').type('form').send({ csrf: csrfOf(form.text), adminKey: key });
  expect(res.status, res.text).toBe(303);
  const setCookie = (res.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith('orgsync_console='))!;
  const cookie = setCookie.split(';')[0]!.slice('orgsync_console='.length);
  const page = await agent.get('/console/sso').expect(200);
  return { agent, csrf: csrfOf(page.text), cookie, setCookie };
}

/** A request carrying only this cookie value (a copied cookie, not the browser's jar). */
const withCookie = (cookie: string, path = '/console/sso') => request(app.svc.url).get(path).set('Cookie', `orgsync_console=${cookie}`);

const sessionsOfKey = (keyId: string) => app.svc.db.prisma.consoleSession.findMany({ where: { adminKeyId: keyId } });
const keyIdOf = (key: string) => {
  const hex = /^osk_([0-9a-f]{32})_/.exec(key)![1]!;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};

const THROTTLE_ENV = { CONSOLE_SIGN_IN_FAILURES_BURST: String(FAILURE_BURST), CONSOLE_SIGN_IN_FAILURES_PER_MINUTE: '1' };
beforeAll(async () => {
  app = await startTestApp({ SECRET_KEY, ...THROTTLE_ENV });
  org = await createOrg(app, 'Session Co');
});
afterAll(async () => app?.close());

describe('console sessions live on the server (issue 12 §4)', () => {
  it('regression: after sign-out the old cookie is refused (401, the sign-in page), and the row is ended', async () => {
    const { agent, csrf, cookie } = await signIn(org.key);
    await withCookie(cookie).expect(200);
    await agent.post('/console/sign-out').type('form').send({ csrf }).expect(303);

    const replay = await withCookie(cookie);
    expect(replay.status).toBe(401);
    expect(replay.text).toContain('Your console session has ended (you signed out)');
    expect(replay.text).toContain('name="adminKey"');
    expect(String(replay.headers['set-cookie'])).toMatch(/orgsync_console=;.*Max-Age=0/);
    // A POST with the old cookie and its old CSRF token changes nothing either.
    const post = await request(app.svc.url).post('/console/policies/members').set('Cookie', `orgsync_console=${cookie}`).type('form').send({ csrf, policyId: '', emails: 'x@y.example' });
    expect(post.status).toBe(401);

    const [row] = (await sessionsOfKey(keyIdOf(org.key))).filter((r) => r.tokenHash === sha256Hex(app.svc.services.box.verify(decodeURIComponent(cookie))!));
    expect(row!.revokedAt, 'ended in the database').toBeInstanceOf(Date);
  });

  it('regression: the cookie holds no key material — a random token, signed; not the key, not sealed, the same length for every key', async () => {
    const second = await app.http.post(api(org, 'admin-keys')).set(bearer(org.key)).send({ name: 'other' }).expect(201);
    const a = await signIn(org.key);
    const b = await signIn(second.body.key);
    for (const { cookie, setCookie } of [a, b]) {
      const value = decodeURIComponent(cookie);
      expect(value).toMatch(/^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}$/);
      for (const key of [org.key, second.body.key as string]) {
        expect(value).not.toContain(key.slice(4, 36)); // key id
        expect(value).not.toContain(key.slice(-43)); // secret part
      }
      expect(() => app.svc.services.box.decrypt(value), 'nothing sealed in it').toThrow();
      expect(setCookie).toMatch(/HttpOnly/i);
      expect(setCookie).toMatch(/SameSite=Strict/i);
      expect(setCookie).toMatch(/Path=\/console/);
      expect(setCookie).toMatch(/Max-Age=28800/);
    }
    expect(a.cookie).not.toBe(b.cookie);
    expect(a.cookie.length).toBe(b.cookie.length);
  });

  it('the database holds only the sha256 of the token, and nothing of the admin key', async () => {
    const { cookie } = await signIn(org.key);
    const token = app.svc.services.box.verify(decodeURIComponent(cookie))!;
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const rows = await app.svc.db.prisma.consoleSession.findMany({ where: { tokenHash: sha256Hex(token) } });
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(row).toMatchObject({ orgId: org.id, adminKeyId: keyIdOf(org.key), revokedAt: null });
    expect(row.expiresAt.getTime() - row.createdAt.getTime()).toBe(480 * 60_000);
    const everything = JSON.stringify(await app.svc.db.prisma.$queryRawUnsafe('SELECT * FROM "ConsoleSession"'));
    expect(everything).not.toContain(token);
    expect(everything).not.toContain(decodeURIComponent(cookie));
    expect(everything).not.toContain(org.key.slice(-43));
  });

  it('revoking the admin key ends its sessions: rows revoked in the same transaction, old cookie refused, audit row counts them', async () => {
    const created = await app.http.post(api(org, 'admin-keys')).set(bearer(org.key)).send({ name: 'to revoke' }).expect(201);
    const one = await signIn(created.body.key);
    const two = await signIn(created.body.key);
    const other = await signIn(org.key);
    await app.http.delete(api(org, `admin-keys/${created.body.id}`)).set(bearer(org.key)).expect(200);

    for (const s of [one, two]) {
      const res = await withCookie(s.cookie);
      expect(res.status).toBe(401);
      expect(res.text).toContain('its admin key is no longer valid');
    }
    await withCookie(other.cookie).expect(200); // another key's session is untouched
    const rows = await sessionsOfKey(created.body.id);
    expect(rows).toHaveLength(2);
    expect(rows.every((r) => r.revokedAt !== null)).toBe(true);
    const audit = await app.svc.db.prisma.auditEvent.findFirstOrThrow({ where: { orgId: org.id, action: 'admin-key.revoke', targetId: created.body.id } });
    expect(audit.after).toMatchObject({ consoleSessionsEnded: 2 });
    // And the revoked key cannot open a new one.
    const agent = request.agent(app.svc.url);
    const form = await agent.get('/console').expect(200);
    await agent.post('/console/sign-in').type('form').send({ csrf: csrfOf(form.text), adminKey: created.body.key }).expect(401);
  });

  it('an expired session is refused (and its row purged by the retention job)', async () => {
    const { cookie } = await signIn(org.key);
    const tokenHash = sha256Hex(app.svc.services.box.verify(decodeURIComponent(cookie))!);
    await app.svc.db.prisma.consoleSession.update({ where: { tokenHash }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const res = await withCookie(cookie);
    expect(res.status).toBe(401);
    expect(res.text).toContain('Your console session has expired');
    await app.svc.scheduler.runJobOnce('retention-purge');
    expect(await app.svc.db.prisma.consoleSession.count({ where: { tokenHash } })).toBe(0);
  });

  it('a forged, tampered or unsigned cookie opens nothing', async () => {
    const { cookie } = await signIn(org.key);
    const value = decodeURIComponent(cookie);
    const token = value.split('.')[0]!;
    for (const forged of [token, `${token}.${'A'.repeat(43)}`, value.slice(0, -1) + (value.endsWith('A') ? 'B' : 'A'), 'x'.repeat(5000), '%00']) {
      const res = await withCookie(encodeURIComponent(forged));
      expect(res.status, forged.slice(0, 40)).toBe(401);
      expect(res.text).toContain('could not be read');
    }
  });

  it('the session cookie is Secure when PUBLIC_URL is https', async () => {
    const secure = await startTestApp({ PUBLIC_URL: 'https://console.example' });
    try {
      const o = await createOrg(secure, 'Secure Co');
      const agent = request.agent(secure.svc.url);
      const form = await agent.get('/console').expect(200);
      const loginCookie = (form.headers['set-cookie'] as unknown as string[])[0]!.split(';')[0]!;
      const res = await request(secure.svc.url).post('/console/sign-in').set('Cookie', loginCookie).type('form').send({ csrf: csrfOf(form.text), adminKey: o.key }).expect(303);
      const set = (res.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith('orgsync_console='))!;
      expect(set).toMatch(/;\s*Secure/i);
    } finally {
      await secure.close();
    }
  });
});

describe('console sign-in throttling (issue 12 §4)', () => {
  it(`after ${FAILURE_BURST} failed sign-ins from one address: 429 with Retry-After, even for the right key; successes never count`, async () => {
    // Its own service: the limiter is per process, and the tests above spent some of its attempts.
    const own = await startTestApp(THROTTLE_ENV);
    try {
      const o = await createOrg(own, 'Throttle Co');
      // Successful sign-ins spend nothing.
      for (let i = 0; i < FAILURE_BURST + 2; i++) await signIn(o.key, own);

      const agent = request.agent(own.svc.url);
      const csrf = csrfOf((await agent.get('/console').expect(200)).text);
      for (let i = 0; i < FAILURE_BURST; i++) {
        const res = await agent.post('/console/sign-in').type('form').send({ csrf, adminKey: `osk_${'0'.repeat(32)}_${'A'.repeat(43)}` });
        expect(res.status, `attempt ${i + 1}`).toBe(401);
      }
      const refused = await agent.post('/console/sign-in').type('form').send({ csrf, adminKey: 'osk_guess' });
      expect(refused.status).toBe(429);
      const retryAfter = Number(refused.headers['retry-after']);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60); // one attempt a minute refills
      expect(refused.text).toContain('Too many failed sign-ins from your address');
      expect(refused.text).toContain(`Wait ${retryAfter} second`);
      expect(String(refused.headers['set-cookie'] ?? '')).not.toContain('orgsync_console=');

      // Checked before the key: the right key from this address is refused too (no oracle), and no session is made.
      const before = await own.svc.db.prisma.consoleSession.count();
      const right = await agent.post('/console/sign-in').type('form').send({ csrf, adminKey: o.key });
      expect(right.status).toBe(429);
      expect(await own.svc.db.prisma.consoleSession.count()).toBe(before);
      // A hostile form body is refused the same way, before it is parsed.
      const junk = await agent.post('/console/sign-in').type('form').send('adminKey=%00%ZZ&csrf=' + 'x'.repeat(2000));
      expect(junk.status).toBe(429);
    } finally {
      await own.close();
    }
  });
});
