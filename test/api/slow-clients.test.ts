import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg, startTestApp, type TestApp } from '../support/app.js';

/**
 * Issue 12 §5, regression "a body trickled slowly is held open for 24 s and more": with short
 * limits set in the config, a real socket that sends its headers and then the body a byte at a
 * time gets 408 (a problem body, Connection: close) and the connection is closed within the
 * limit plus a little slack; nothing is written.
 */
const HEADERS_MS = 300;
const REQUEST_MS = 600;
const KEEP_ALIVE_MS = 400;
/** Node checks the limits every 60 ms here (a tenth of the shorter, see src/http/http-server.ts), plus scheduling on a busy machine. */
const SLACK_MS = 400;

let app: TestApp;
let port: number;
let org: { id: string; key: string };

beforeAll(async () => {
  app = await startTestApp({ HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_MS), HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_MS), HTTP_KEEP_ALIVE_TIMEOUT_MS: String(KEEP_ALIVE_MS) });
  port = Number(new URL(app.svc.url).port);
  org = await createOrg(app, 'Slow Co');
});
afterAll(async () => app?.close());

type Outcome = { text: string; closedAfterMs: number };

/** Opens a socket, writes `head`, then one byte of `body` every `everyMs` until the server closes the connection. */
function trickle(head: string, body: string, everyMs: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let t0 = 0;
    let timer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => { socket.destroy(); reject(new Error('the server held the connection for 10 s')); }, 10_000);
    socket.on('connect', () => {
      t0 = performance.now();
      socket.write(head);
      let i = 0;
      if (body) timer = setInterval(() => { if (i < body.length && socket.writable) socket.write(body[i++]!); }, everyMs);
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {}); // a reset after the answer is expected
    socket.on('close', () => {
      clearInterval(timer);
      clearTimeout(guard);
      resolve({ text: Buffer.concat(chunks).toString('utf8'), closedAfterMs: performance.now() - t0 });
    });
  });
}

const accountCount = () => app.svc.db.prisma.account.count({ where: { orgId: org.id } });

describe('slow clients (issue 12 §5)', () => {
  it('a JSON body trickled slower than HTTP_REQUEST_TIMEOUT_MS gets 408 and the connection closes in time; nothing is written', async () => {
    const before = await accountCount();
    const body = JSON.stringify({ email: 'slow@slow.example' });
    const head = `POST /api/v1/orgs/${org.id}/accounts HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${bearer(org.key).Authorization}\r\n`
      + `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const out = await trickle(head, body, 100); // would take 3.5 s
    expect(out.text).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(out.text).toMatch(/\r\nConnection: close\r\n/i);
    expect(out.text).toMatch(/\r\nContent-Type: application\/problem\+json\r\n/i);
    const problem = JSON.parse(out.text.slice(out.text.indexOf('\r\n\r\n') + 4));
    expect(problem).toMatchObject({ type: 'https://orgsync.dev/problems/request-timeout', status: 408 });
    expect(problem.detail).toContain(`within ${REQUEST_MS} ms`);
    expect(out.closedAfterMs).toBeGreaterThanOrEqual(REQUEST_MS - 50);
    expect(out.closedAfterMs).toBeLessThan(REQUEST_MS + SLACK_MS);
    expect(await accountCount()).toBe(before);
  });

  it('the same on the console sign-in form (every surface shares the server)', async () => {
    const body = 'adminKey=osk_x&csrf=y';
    const out = await trickle(`POST /console/sign-in HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n`, body, 100);
    expect(out.text).toMatch(/^HTTP\/1\.1 408 /);
    expect(out.closedAfterMs).toBeLessThan(REQUEST_MS + SLACK_MS);
  });

  it('SCIM answers 401 before reading the body of an unauthenticated request, and the trickle still does not hold the connection', async () => {
    const body = JSON.stringify({ userName: 'slow' });
    const out = await trickle(`POST /scim/v2/00000000-0000-0000-0000-000000000000/Users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/scim+json\r\nContent-Length: ${body.length}\r\n\r\n`, body, 100);
    expect(out.text).toMatch(/^HTTP\/1\.1 401 /);
    expect(out.closedAfterMs).toBeLessThan(REQUEST_MS + SLACK_MS);
  });

  it('headers trickled slower than HTTP_HEADERS_TIMEOUT_MS get 408 too', async () => {
    const out = await trickle('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n', 'X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 50);
    expect(out.text).toMatch(/^HTTP\/1\.1 408 /);
    expect(out.closedAfterMs).toBeLessThan(HEADERS_MS + SLACK_MS);
  });

  it('an idle keep-alive connection is closed after HTTP_KEEP_ALIVE_TIMEOUT_MS (+ Node\'s 1 s buffer)', async () => {
    const out = await trickle('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', '', 0);
    expect(out.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(out.text).toContain(`Keep-Alive: timeout=${Math.floor(KEEP_ALIVE_MS / 1000)}`);
    expect(out.closedAfterMs).toBeGreaterThanOrEqual(KEEP_ALIVE_MS - 50);
    // Node keeps the socket 1 s longer than the Keep-Alive header says, so that the client closes first.
    expect(out.closedAfterMs).toBeLessThan(KEEP_ALIVE_MS + 1000 + SLACK_MS);
  });

  it('a request that arrives in time is served as before (the limits bound receiving, not handling)', async () => {
    const res = await app.http.post(`/api/v1/orgs/${org.id}/accounts`).set(bearer(org.key)).send({ email: 'quick@slow.example' });
    expect(res.status, res.text).toBe(201);
  });
});
