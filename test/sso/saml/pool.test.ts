/**
 * The SAML verifier pool (src/sso/saml/pool.ts): real workers (tsx-loaded, as under `npm start`)
 * answer exactly what the in-thread verifier answers, refusals included; stub workers show the
 * failure handling — budget overruns, crashes, a full queue, a worker that cannot warm.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SsoRefused, TooManyRequests } from '../../../src/domain/errors.js';
import {
  GRACE_MS, SamlVerifierPool, startSamlVerifierPool, stopSamlVerifierPool, verifySamlResponse as verifyViaPool,
} from '../../../src/sso/saml/pool.js';
import { warmSamlValidator } from '../../../src/sso/saml/schema-validator.js';
import { verifySamlResponse, type SamlVerifyOptions } from '../../../src/sso/saml/verify.js';
import { idpResponse, SAML_KEYS, TEST_PUBLIC_URL, testConnection } from '../../support/saml-idp.js';

const NOW = new Date('2030-06-01T12:00:00.000Z');
const conn = testConnection();
const opts: SamlVerifyOptions = { publicUrl: TEST_PUBLIC_URL, clockSkewSeconds: 60, allowSha1: false, verifyTimeoutMs: 10_000, now: NOW };
const STUB = new URL('./fixtures/stub-verify-worker.mjs', import.meta.url);

async function settled<T>(p: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  try {
    return { value: await p };
  } catch (error) {
    return { error };
  }
}

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('real workers', () => {
  let pool: SamlVerifierPool;
  beforeAll(async () => {
    await warmSamlValidator();
    pool = new SamlVerifierPool({ size: 2 });
    await pool.start();
  });
  afterAll(async () => pool?.close());

  it('starts warm', () => {
    expect(pool.threads).toBe(2);
  });

  it('answers what the in-thread verifier answers', async () => {
    const r = await idpResponse(conn, {
      now: NOW, sign: 'both',
      // JSON.parse: an object literal's `__proto__:` would set the prototype, not a key.
      attributes: JSON.parse('{"__proto__": "x", "constructor": "y", "groups": ["a", "b"], "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname": "Alice"}'),
    });
    const here = await verifySamlResponse(conn, r.base64, opts);
    const there = await pool.verify(conn, r.base64, opts);
    expect(there).toEqual(here);
    expect(Object.hasOwn(here.attributes, '__proto__')).toBe(true);
    expect(there.assertionExpiresAt).toBeInstanceOf(Date);
    expect(Object.getPrototypeOf(there.attributes)).toBe(Object.prototype);
    expect(Object.hasOwn(there.attributes, '__proto__')).toBe(true);
    expect(there.attributes.groups).toEqual(['a', 'b']);
  });

  it.each([
    ['audience-mismatch', { audience: 'https://other-sp.example/metadata' }, {}, undefined],
    ['bad-signature', { key: 'attacker' as const, keyInfoCert: 'idp' as const }, {}, undefined],
    ['weak-algorithm', { sha1: true }, {}, undefined],
    ['timeout', {}, { verifyTimeoutMs: 0 }, undefined],
    ['bad-signature', {}, {}, testConnection({ certificates: [SAML_KEYS.attacker.certificate] })],
  ] as const)('refuses as in-thread: %s', async (reason, responseOpts, optOverrides, c) => {
    const r = await idpResponse(conn, { now: NOW, ...responseOpts });
    const o = { ...opts, ...optOverrides };
    const here = await settled(verifySamlResponse(c ?? conn, r.base64, o));
    const there = await settled(pool.verify(c ?? conn, r.base64, o));
    expect(here.error).toBeInstanceOf(SsoRefused);
    expect(there.error).toBeInstanceOf(SsoRefused);
    const a = here.error as SsoRefused;
    const b = there.error as SsoRefused;
    expect(b.reason).toBe(reason);
    expect({ reason: b.reason, message: b.message, status: b.status, code: b.code, name: b.name }).toEqual({ reason: a.reason, message: a.message, status: a.status, code: a.code, name: a.name });
    if (reason !== 'timeout') expect(b.checks).toEqual(a.checks);
    expect(b.checks.at(-1)?.passed).toBe(false);
  });

  it('verifies many at once', async () => {
    const rs = await Promise.all(Array.from({ length: 12 }, (_, i) => idpResponse(conn, { now: NOW, nameId: `user${i}@example.com` })));
    const answers = await Promise.all(rs.map((r) => pool.verify(conn, r.base64, opts)));
    expect(answers.map((a) => a.profile.subject)).toEqual(rs.map((_, i) => `user${i}@example.com`));
    expect(pool.waiting).toBe(0);
  });
});

describe('the process pool the ACS uses', () => {
  afterEach(async () => {
    for (let i = 0; i < 3; i++) await stopSamlVerifierPool();
  });

  it('verifies in-thread until started, on the pool once started, shared and counted', async () => {
    const r = await idpResponse(conn, { now: NOW });
    expect((await verifyViaPool(conn, r.base64, opts)).assertionId).toBe(r.assertionId);
    const [a, b] = await Promise.all([startSamlVerifierPool({ size: 1, workerUrl: STUB }), startSamlVerifierPool({ size: 1, workerUrl: STUB })]);
    expect(a).toBe(b);
    // The stub answers with the response text as the assertion id: proof it went to the pool.
    expect((await verifyViaPool(conn, 'pooled', opts)).assertionId).toBe('pooled');
    await stopSamlVerifierPool();
    expect((await verifyViaPool(conn, 'still pooled', opts)).assertionId).toBe('still pooled');
    await stopSamlVerifierPool();
    expect(a!.threads).toBe(0);
    expect((await verifyViaPool(conn, r.base64, opts)).assertionId).toBe(r.assertionId);
  });

  it('stays in-thread, and says so, when the workers cannot start', async () => {
    const errors: string[] = [];
    const logger = { warn: () => {}, error: (_o: object, msg: string) => void errors.push(msg) };
    const pool = await startSamlVerifierPool({ size: 1, workerUrl: new URL('./fixtures/stub-failing-worker.mjs', import.meta.url), logger });
    expect(pool).toBeNull();
    expect(errors).toEqual(['SAML verification workers could not start; verifying on the main thread']);
    const r = await idpResponse(conn, { now: NOW });
    expect((await verifyViaPool(conn, r.base64, opts)).assertionId).toBe(r.assertionId);
  });
});

describe('failure handling (stub workers)', () => {
  const pools: SamlVerifierPool[] = [];
  const stubPool = async (o: { size?: number; maxQueue?: number } = {}) => {
    const p = new SamlVerifierPool({ size: 1, workerUrl: STUB, ...o });
    pools.push(p);
    await p.start();
    return p;
  };
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
  });

  it('refuses with timeout when a worker overruns its budget, and replaces the worker', async () => {
    const pool = await stubPool();
    const t0 = Date.now();
    const { error } = await settled(pool.verify(conn, 'hang', { ...opts, verifyTimeoutMs: 200 }));
    const took = Date.now() - t0;
    expect(error).toBeInstanceOf(SsoRefused);
    expect(error).toMatchObject({ reason: 'timeout', status: 400, message: 'verification took longer than 200 ms' });
    expect((error as SsoRefused).checks).toEqual([{ name: 'time-budget', passed: false, detail: 'verification took longer than 200 ms' }]);
    expect(took).toBeGreaterThanOrEqual(200);
    expect(took).toBeLessThan(200 + GRACE_MS + 2000);
    await until('a replacement worker', () => pool.threads === 1);
    expect((await pool.verify(conn, 'after', opts)).assertionId).toBe('after');
  });

  it('waiting for a worker counts against the budget', async () => {
    const pool = await stubPool();
    const slow = pool.verify(conn, 'slow:600', opts);
    const { error } = await settled(pool.verify(conn, 'queued', { ...opts, verifyTimeoutMs: 100 }));
    expect(error).toMatchObject({ reason: 'timeout' });
    expect((await slow).assertionId).toBe('slow:600');
    expect(pool.threads).toBe(1); // the worker was not the one late: not replaced
  });

  it.each(['crash', 'throw'])('rejects with a plain Error when the worker dies (%s), and replaces it', async (how) => {
    const pool = await stubPool();
    const { error } = await settled(pool.verify(conn, how, opts));
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(SsoRefused);
    await until('a replacement worker', () => pool.threads === 1);
    expect((await pool.verify(conn, 'after', opts)).assertionId).toBe('after');
  });

  it('bounds the queue: beyond it, TooManyRequests at once', async () => {
    const pool = await stubPool({ maxQueue: 1 });
    const running = settled(pool.verify(conn, 'slow:500', opts));
    const queued = settled(pool.verify(conn, 'queued', opts));
    const { error } = await settled(pool.verify(conn, 'one too many', opts));
    expect(error).toBeInstanceOf(TooManyRequests);
    expect((await running).value?.assertionId).toBe('slow:500');
    expect((await queued).value?.assertionId).toBe('queued');
  });

  it('close() rejects what is running and waiting', async () => {
    const pool = await stubPool();
    const running = settled(pool.verify(conn, 'hang', opts));
    const queued = settled(pool.verify(conn, 'queued', opts));
    await pool.close();
    expect((await running).error).toMatchObject({ message: 'the SAML verifier pool is closed' });
    expect((await queued).error).toMatchObject({ message: 'the SAML verifier pool is closed' });
    expect((await settled(pool.verify(conn, 'later', opts))).error).toMatchObject({ message: 'the SAML verifier pool is closed' });
  });

  it('start() fails when a worker cannot warm', async () => {
    const pool = new SamlVerifierPool({ size: 2, workerUrl: new URL('./fixtures/stub-failing-worker.mjs', import.meta.url) });
    pools.push(pool);
    await expect(pool.start()).rejects.toThrow(/could not start: schemas did not compile/);
    expect(pool.threads).toBe(0);
  });
});
