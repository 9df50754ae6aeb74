/**
 * Issue 12 §3: the outbound-request guard. Real HTTP servers on loopback play the service's own
 * network (an "internal" port that must never be reached); the guard is driven the way the
 * webhook sender, the OIDC relying party and the domain verifier drive it.
 */
import { createServer, type Server } from 'node:http';
import type { LookupAddress } from 'node:dns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOutbound, type OutboundOptions } from '../../src/net/outbound.js';
import { DestinationNotAllowed } from '../../src/domain/errors.js';

let internal: Server;
let port: number;
let hits = 0;
let closedPort: number;

function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port })));
}

beforeAll(async () => {
  ({ server: internal, port } = await listen((req, res) => {
    hits++;
    if (req.url === '/redirect') return void res.writeHead(302, { Location: `http://127.0.0.1:${port}/secret` }).end();
    if (req.url === '/big') return void res.end(Buffer.alloc(2 * 1024 * 1024, 0x61));
    if (req.url === '/slow') return; // never answers
    res.end('internal');
  }));
  const spare = await listen(() => {});
  closedPort = spare.port;
  await new Promise((r) => spare.server.close(r));
});
afterAll(async () => { internal.closeAllConnections(); await new Promise((r) => internal.close(r)); });

const guard = (o: Partial<OutboundOptions> = {}) => createOutbound({ allowHosts: [], timeoutMs: 2000, maxResponseBytes: 64 * 1024, ...o });

/** A resolver that answers from a script, one answer per call (the last one repeats). */
function scriptedLookup(answers: string[][]) {
  let call = 0;
  const lookup = ((_host: string, _opts: unknown, cb: (err: Error | null, a: LookupAddress[]) => void) => {
    const list = answers[Math.min(call++, answers.length - 1)]!;
    queueMicrotask(() => cb(null, list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))));
  }) as unknown as OutboundOptions['lookup'];
  return { lookup, calls: () => call };
}

async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err, 'the request was refused').toBeInstanceOf(DestinationNotAllowed);
  return (err as Error).message;
}

describe('with the allow-list empty, every address form of our own network is refused before anything is sent', () => {
  const forms = () => [
    `http://127.0.0.1:${port}/`, `http://127.0.0.1:5432/`, `http://0.0.0.0:${port}/`, `http://[::ffff:127.0.0.1]:${port}/`,
    `http://2130706433:${port}/`, `http://0177.0.0.1:${port}/`, `http://0x7f.1:${port}/`, `http://127.1:${port}/`, `http://[::1]:${port}/`,
    `http://[::]:${port}/`, `http://localhost:${port}/api/v1/orgs`, 'http://10.0.0.1/', 'http://172.16.5.4/', 'http://192.168.1.1/',
    'http://169.254.169.254/latest/meta-data/', 'http://100.64.0.1/', 'http://[fc00::1]/', 'http://[fd12:3456::1]/', 'http://[fe80::1]/',
    'http://224.0.0.1/', 'http://255.255.255.255/', 'http://[ff02::1]/', 'http://[64:ff9b::7f00:1]/', 'http://[2002:7f00:1::]/',
    'http://[::ffff:10.0.0.1]/', 'http://192.0.2.1/', `http://[::127.0.0.1]:${port}/`, 'http://[::10.0.0.1]/',
  ];
  it('each form: refused with one sentence that names the host, and nothing reached the internal server', async () => {
    const before = hits;
    const g = guard();
    for (const url of forms()) {
      const message = await refusal(g.fetch(url, { method: 'POST', body: 'x' }));
      expect(message, url).toMatch(/^destination not allowed: \S+ (is|resolves to) a private address$/);
      expect(await g.check(url), url).toBeInstanceOf(DestinationNotAllowed);
    }
    expect(hits - before).toBe(0);
  });

  it('an open port and a closed port are refused in the same words (no port scan through the error)', async () => {
    const g = guard();
    expect(await refusal(g.fetch(`http://127.0.0.1:${port}/`))).toBe(await refusal(g.fetch(`http://127.0.0.1:${closedPort}/`)));
    expect(await refusal(g.fetch(`http://localhost:${port}/`))).toBe(await refusal(g.fetch(`http://localhost:${closedPort}/`)));
  });

  it('other schemes are refused', async () => {
    const g = guard();
    for (const url of ['file:///etc/passwd', 'ftp://example.com/', 'gopher://127.0.0.1:5432/', 'data:text/plain,x']) {
      expect(await refusal(g.fetch(url))).toMatch(/^destination not allowed: \S+ URLs are not requested/);
    }
  });
});

describe('OUTBOUND_ALLOW_HOSTS names exceptions', () => {
  it.each([['an IP', ['127.0.0.1']], ['a CIDR', ['127.0.0.0/8']], ['the host name', ['localhost']]])('%s: the request goes through', async (_n, allowHosts) => {
    const host = allowHosts[0] === 'localhost' ? 'localhost' : '127.0.0.1';
    const res = await guard({ allowHosts }).fetch(`http://${host}:${port}/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('internal');
  });

  it('an allowed IP does not open its neighbours', async () => {
    const g = guard({ allowHosts: ['127.0.0.2'] });
    await refusal(g.fetch(`http://127.0.0.1:${port}/`));
  });
});

describe('the address is checked at connect time', () => {
  it('DNS rebinding: a name that answers a public address to the check and 127.0.0.1 to the connection is refused', async () => {
    const dns = scriptedLookup([['93.184.216.34'], ['127.0.0.1']]);
    const g = guard({ lookup: dns.lookup });
    const before = hits;
    expect(await g.check(`http://rebind.test:${port}/`), 'the check at save time saw a public address').toBeNull();
    expect(await refusal(g.fetch(`http://rebind.test:${port}/`))).toBe('destination not allowed: rebind.test resolves to a private address');
    expect(dns.calls(), 'the connection made its own lookup').toBe(2);
    expect(hits - before).toBe(0);
  });

  it('one private address among the answers refuses the name', async () => {
    const g = guard({ lookup: scriptedLookup([['93.184.216.34', '127.0.0.1']]).lookup });
    await refusal(g.fetch(`http://mixed.test:${port}/`));
  });
});

describe('redirects, time and size', () => {
  it('a redirect is not followed: the 302 is the answer, its target is never requested', async () => {
    const g = guard({ allowHosts: ['127.0.0.1'] });
    const before = hits;
    const res = await g.fetch(`http://127.0.0.1:${port}/redirect`);
    expect(res.status).toBe(302);
    expect(hits - before).toBe(1);
  });

  it('an answer larger than the cap is refused', async () => {
    const err = await guard({ allowHosts: ['127.0.0.1'] }).fetch(`http://127.0.0.1:${port}/big`).then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/larger than 65536 bytes/);
  });

  it('a server that never answers is given up on at the time cap', async () => {
    const t0 = Date.now();
    const err = await guard({ allowHosts: ['127.0.0.1'], timeoutMs: 300 }).fetch(`http://127.0.0.1:${port}/slow`).then(() => null, (e: Error) => e);
    expect(err).toBeTruthy();
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});
