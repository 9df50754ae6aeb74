import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminRoutes } from '../src/admin/index.js';
import { createServices } from '../src/composition.js';
import { startTestApp, type TestApp } from './support/app.js';

const BIN = new URL('../bin/orgsync.js', import.meta.url).pathname;
const OP = 'server-test-operator-token';

/** Starts `orgsync serve` as a real process on a free port, in-memory PGlite. */
async function spawnService(): Promise<{ child: ChildProcess; port: number; logs: () => string }> {
  let out = '';
  const child = spawn(process.execPath, [BIN, 'serve'], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATA_DIR: 'memory', DATABASE_URL: '', ORGSYNC_OPERATOR_TOKEN: OP, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const m = /"port":(\d+).*"msg":"orgsync serving"/.exec(out);
    if (m) return { child, port: Number(m[1]), logs: () => out };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`service did not start:\n${out}`);
}

describe('orgsync command line', () => {
  it('--help describes the commands and exits 0', () => {
    const r = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('orgsync serve');
    expect(r.stdout).toContain('orgsync migrate');
  });

  it('an unknown command exits 2 with the help text', () => {
    const r = spawnSync(process.execPath, [BIN, 'frobnicate'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('unknown command "frobnicate"');
  });

  it('bad configuration names every bad variable and exits 2', () => {
    const r = spawnSync(process.execPath, [BIN, 'serve'], { encoding: 'utf8', env: { ...process.env, PORT: 'abc', DATABASE_URL: 'mysql://x', ORGSYNC_OPERATOR_TOKEN: 'short' } });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/PORT/);
    expect(r.stderr).toMatch(/DATABASE_URL: must be a postgresql:\/\/ URL/);
    expect(r.stderr).toMatch(/ORGSYNC_OPERATOR_TOKEN/);
  });

  it('migrate applies the migrations and exits 0', () => {
    const r = spawnSync(process.execPath, [BIN, 'migrate'], { encoding: 'utf8', env: { ...process.env, DATA_DIR: 'memory', DATABASE_URL: '' } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('20261126000000_init');
  });
});

describe('graceful shutdown', () => {
  it('SIGTERM lets an in-flight request finish, then closes and exits 0', async () => {
    const { child, port, logs } = await spawnService();
    // Open a request whose body is still arriving when the signal lands.
    const body = JSON.stringify({ name: 'Inflight Org' });
    const sock = connect(port, '127.0.0.1');
    await once(sock, 'connect');
    let response = '';
    sock.on('data', (d) => (response += d));
    sock.write(`POST /api/v1/orgs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${OP}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, 5)}`);
    await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    expect(child.exitCode, 'still draining while a request is in flight').toBeNull();
    sock.write(body.slice(5));
    await once(sock, 'close');
    const [code] = await once(child, 'exit');
    expect(response).toMatch(/^HTTP\/1\.1 201/);
    expect(response).toContain('Inflight Org');
    expect(code).toBe(0);
    expect(logs()).toContain('"msg":"shutting down"');
    expect(logs()).toContain('"msg":"orgsync stopped"');
  });
});

describe('HTTP basics', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => app?.close());

  it('/healthz and /readyz answer', async () => {
    expect((await app.http.get('/healthz').expect(200)).body).toEqual({ status: 'ok' });
    expect((await app.http.get('/readyz').expect(200)).body).toEqual({ status: 'ready' });
  });

  it('security headers are set and x-powered-by is not', async () => {
    const res = await app.http.get('/healthz');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toBeDefined();
    expect(res.headers['x-powered-by']).toBeUndefined();
  });

  it('a sane X-Request-Id is echoed; an unsafe one is replaced', async () => {
    expect((await app.http.get('/healthz').set('X-Request-Id', 'abc-123')).headers['x-request-id']).toBe('abc-123');
    const replaced = (await app.http.get('/healthz').set('X-Request-Id', 'bad id\twith spaces')).headers['x-request-id'];
    expect(replaced).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('/openapi.json documents every admin route from the validating schemas', async () => {
    const doc = (await app.http.get('/openapi.json').expect(200)).body;
    expect(doc.openapi).toBe('3.1.0');
    const specs = adminRoutes(createServices({ db: null as never, operatorToken: undefined }));
    for (const s of specs) {
      expect(doc.paths[s.path]?.[s.method], `${s.method} ${s.path} documented`).toBeDefined();
    }
    const createPolicy = doc.paths['/api/v1/orgs/{orgId}/policies'].post.requestBody.content['application/json'].schema;
    const ref = createPolicy.$ref ? doc.components.schemas[createPolicy.$ref.split('/').pop()] : createPolicy;
    expect(ref.additionalProperties, 'unknown fields are refused, and the document says so').toBe(false);
    expect(Object.keys(ref.properties)).toEqual(expect.arrayContaining(['name', 'nonBillable', 'enforceSso', 'passwordPolicy', 'sessionDurationMinutes']));
  });
});
