/**
 * The SSO rollout, end to end in headless Chromium (Debian's `chromium`, driven by
 * playwright-core): an admin signs into the console with the admin key, presses Test on the
 * SAML connection, goes through a real (in-process, loopback) SAML IdP and lands on the result
 * page; then a person in the rollout policy signs in through the same IdP and lands on /me.
 */
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { bearer, createOrg, createSamlConnection, startTestApp, verifyDomain, type TestApp } from '../support/app.js';
import { startSamlIdpServer, type SamlIdpServer } from '../support/saml-idp-server.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`[sso-rollout] SKIPPED: ${CHROMIUM} is missing (apt-get install chromium to run the browser test)`);

const USER = 'rita@rollout.example';

/** A free loopback port: the service's PUBLIC_URL must name its real address (Audience, ACS, Destination). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe.skipIf(!hasChromium)(`SSO rollout in a browser${hasChromium ? '' : ` (skipped: ${CHROMIUM} is missing)`}`, () => {
  let app: TestApp;
  let idp: SamlIdpServer;
  let browser: Browser;
  let base: string;
  let org: { id: string; key: string; defaultPolicyId: string };
  let connId: string;
  let rolloutId: string;

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    app = await startTestApp({ PORT: String(port), PUBLIC_URL: base });
    expect(app.svc.url).toBe(base);
    idp = await startSamlIdpServer({ publicUrl: base, user: USER, response: { attributes: { displayName: 'Rita Rollout', groups: ['pilot', 'eng'] } } });

    org = await createOrg(app, 'Rollout Ltd');
    await verifyDomain(app, org, 'rollout.example');
    connId = (await createSamlConnection(app, org, { name: 'Pilot IdP', entityId: idp.entityId, ssoUrl: idp.ssoUrl })).id;
    const api = (p: string) => `/api/v1/orgs/${org.id}/${p}`;
    rolloutId = (await app.http.post(api('policies')).set(bearer(org.key)).send({ name: 'SSO pilot', enforceSso: true, ssoConnectionId: connId, sessionDurationMinutes: 60 }).expect(201)).body.id;
    const account = (await app.http.post(api('accounts')).set(bearer(org.key)).send({ email: USER, displayName: 'Rita Rollout' }).expect(201)).body.id;
    await app.http.post(api(`policies/${rolloutId}/members`)).set(bearer(org.key)).send({ accountIds: [account] }).expect(200);

    const { chromium } = await import('playwright-core');
    // launch() runs on a fresh, temporary user data dir (removed on close); each scenario gets its own context (cookie jar).
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await idp?.close();
    await app?.close();
  });

  it('an admin runs the rollout test from the console and sees the result', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/console`);
    await expect.poll(() => page.title()).toContain('Sign in to the console');
    await page.getByLabel('Admin key').fill(org.key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${base}/console/sso`);
    expect(await page.locator('h1').textContent()).toBe('SSO connections');
    expect(await page.locator(`#connection-${connId}`).textContent()).toContain('Pilot IdP');

    // Test → /sso/test/{token} → the IdP → its auto-submitted form → our ACS → the result page.
    await page.getByRole('button', { name: 'Test Pilot IdP' }).click();
    await page.waitForURL(`${base}/sso/${connId}/saml/acs`, { timeout: 30_000 });
    const verdict = page.locator('#verdict');
    await expect.poll(() => verdict.textContent()).toContain('A real sign-in would succeed.');
    const checks = page.getByRole('table', { name: 'Checks' });
    const checkNames = await checks.locator('tbody tr td:first-child').allTextContents();
    expect(checkNames).toEqual(expect.arrayContaining(['request', 'replay', 'email', 'domain', 'account', 'policy']));
    const results = await checks.locator('tbody tr td:nth-child(2)').allTextContents();
    expect(results.every((r) => r === 'passed'), `checks: ${checkNames.map((n, i) => `${n}=${results[i]}`).join(', ')}`).toBe(true);
    expect(await page.locator('main').textContent()).toContain(USER);
    const shot = join(tmpdir(), `orgsync-sso-rollout-result-${process.pid}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    console.info(`[sso-rollout] result page screenshot: ${shot}`);
    expect(existsSync(shot)).toBe(true);
    expect(idp.requests.at(-1)?.relayState, 'the test names its run in RelayState').toMatch(/^test\./);

    // No session came out of the test.
    const cookies = await context.cookies(base);
    expect(cookies.map((c) => c.name)).not.toContain('orgsync_session');

    // Back in the console: the same result with names, and the run listed under the connection.
    await page.getByRole('link', { name: 'Back to the console' }).click();
    await page.waitForURL(new RegExp(`/console/sso/${connId}/tests/[0-9a-f-]{36}$`));
    await expect.poll(() => page.locator('#verdict').textContent()).toContain('A real sign-in would succeed.');
    const facts = await page.locator('main').textContent();
    expect(facts).toContain(USER);
    expect(facts).toContain('SSO pilot');
    expect(facts).toContain('groups');
    await page.goto(`${base}/console/sso`);
    expect(await page.getByRole('table', { name: 'Recent rollout tests of Pilot IdP' }).textContent()).toContain('would succeed');
    await context.close();
  });

  it('a person in the rollout policy signs in through SAML and lands on /me', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/sso/${connId}/saml/login?email=${encodeURIComponent(USER)}`);
    await page.waitForURL(`${base}/me`, { timeout: 30_000 });
    await expect.poll(() => page.locator('#me-email').textContent()).toContain(USER);
    expect(await page.locator('main').textContent()).toContain('SSO pilot');
    const session = (await context.cookies(base)).find((c) => c.name === 'orgsync_session');
    expect(session?.httpOnly).toBe(true);
    expect(idp.requests.at(-1)?.loginHint).toBe(USER);
    await context.close();
  });
});
