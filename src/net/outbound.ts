import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, fetch as undiciFetch, type RequestInit as UndiciRequestInit } from 'undici';
import { DestinationNotAllowed } from '../domain/errors.js';

/**
 * The one way the service requests a URL that an admin gave it (issue 12 §3): billing webhooks,
 * OIDC discovery and every endpoint discovery names, domain verification. Such a URL must never
 * reach the service's own network — its database port, its own admin API, a cloud metadata
 * address — whatever the URL spells and whatever its DNS answers.
 *
 * Why the check is made at connect time: a check of the name before the request (resolve,
 * classify, then fetch) is undone by DNS rebinding — the second lookup, made by the HTTP client,
 * may answer 127.0.0.1. So the address is classified inside the connection's own `lookup`: the
 * addresses checked are the addresses connected to. Literal IPs never reach `lookup` (net.connect
 * skips it), so they are checked before the request, after the WHATWG URL parser has normalised
 * every numeric form (`2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1` → `127.0.0.1`).
 *
 * Allowed: public unicast addresses only (ipaddr.js's `unicast` range, after an IPv4-mapped IPv6
 * address is read as the IPv4 it carries). Refused: loopback, unspecified, RFC 1918, link-local,
 * CGNAT, unique-local, multicast, broadcast, reserved, and the translation ranges (6to4, Teredo,
 * NAT64) that can embed any IPv4 address. OUTBOUND_ALLOW_HOSTS names exceptions.
 */
export type OutboundOptions = {
  /** OUTBOUND_ALLOW_HOSTS: host names (exact, case-insensitive), IP addresses and CIDR ranges. */
  allowHosts: readonly string[];
  /** Whole-request cap (connect, headers, body). */
  timeoutMs: number;
  /** Response bodies larger than this are refused. */
  maxResponseBytes: number;
  /** DNS resolution (tests inject one whose answers change between calls). */
  lookup?: typeof dnsLookup;
};

export type OutboundFetch = (url: string | URL, init?: RequestInit) => Promise<Response>;

export type Outbound = Readonly<{
  /** fetch, with the destination checked at connect time, no redirects followed, time and size capped. */
  fetch: OutboundFetch;
  /** The refusal a URL would meet (scheme, literal address, or what its name resolves to now), or null. For a good error at save time; `fetch` checks again when it connects. */
  check(url: string | URL): Promise<DestinationNotAllowed | null>;
}>;

type Allow = { names: Set<string>; ranges: [ipaddr.IPv4 | ipaddr.IPv6, number][] };

function parseAllow(entries: readonly string[]): Allow {
  const names = new Set<string>();
  const ranges: [ipaddr.IPv4 | ipaddr.IPv6, number][] = [];
  for (const raw of entries.map((e) => e.trim()).filter(Boolean)) {
    const bare = raw.replace(/^\[(.*)\]$/, '$1');
    if (bare.includes('/') && ipaddr.isValidCIDR(bare)) ranges.push(ipaddr.parseCIDR(bare));
    else if (ipaddr.isValid(bare) && isIP(bare)) {
      const a = ipaddr.process(bare);
      ranges.push([a, a.kind() === 'ipv4' ? 32 : 128]);
    } else names.add(raw.toLowerCase());
  }
  return { names, ranges };
}

/** Reads an address as the family it really is (an IPv4-mapped IPv6 address is the IPv4 it carries). */
function normalise(address: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  const bare = address.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '');
  return ipaddr.isValid(bare) ? ipaddr.process(bare) : null;
}

function allowedByList(allow: Allow, a: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  return allow.ranges.some(([net, bits]) => net.kind() === a.kind() && a.match(net, bits));
}

/** IPv6 global unicast is 2000::/3 (RFC 4291 §2.4); ipaddr.js also calls e.g. the deprecated IPv4-compatible ::7f00:1 (`[::127.0.0.1]`) unicast. */
const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3');

/** True when a connection to `address` may be made. */
export function addressAllowed(address: string, allow: Allow = parseAllow([])): boolean {
  const a = normalise(address);
  if (!a) return false;
  if (allowedByList(allow, a)) return true;
  if (a.range() !== 'unicast') return false;
  return a.kind() === 'ipv4' || a.match(GLOBAL_UNICAST_V6 as [ipaddr.IPv6, number]);
}

const refusal = (host: string, what = 'resolves to a private address') => new DestinationNotAllowed(`destination not allowed: ${host} ${what}`);

export function createOutbound(opts: OutboundOptions): Outbound {
  const allow = parseAllow(opts.allowHosts);
  const resolve = opts.lookup ?? dnsLookup;
  const nameAllowed = (host: string) => allow.names.has(host.toLowerCase().replace(/\.$/, ''));

  /** net.connect's lookup (Node calls it with `all: true` when it tries several addresses). Every answer is checked; one refused address refuses the name. */
  const guardedLookup = (hostname: string, options: { all?: boolean; family?: number }, callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void) => {
    resolve(hostname, { all: true, family: options.family ?? 0 }, (err, addresses) => {
      if (err) return callback(err, []);
      const list = addresses as LookupAddress[];
      if (!list.length) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), []);
      if (!nameAllowed(hostname) && list.some((a) => !addressAllowed(a.address, allow))) return callback(refusal(hostname), []);
      if (options.all) return callback(null, list);
      return callback(null, list[0]!.address, list[0]!.family);
    });
  };

  const agent = new Agent({
    connect: { lookup: guardedLookup as never, timeout: opts.timeoutMs },
    headersTimeout: opts.timeoutMs, bodyTimeout: opts.timeoutMs,
  });

  /** Scheme and literal address, before any connection. */
  function precheck(input: string | URL): URL | DestinationNotAllowed {
    let url: URL;
    try {
      url = new URL(String(input));
    } catch {
      return new DestinationNotAllowed(`destination not allowed: ${JSON.stringify(String(input).slice(0, 200))} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return new DestinationNotAllowed(`destination not allowed: ${url.protocol} URLs are not requested (http and https only)`);
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (isIP(host) && !nameAllowed(url.hostname) && !addressAllowed(host, allow)) return refusal(url.hostname, 'is a private address');
    return url;
  }

  async function check(input: string | URL): Promise<DestinationNotAllowed | null> {
    const url = precheck(input);
    if (url instanceof DestinationNotAllowed) return url;
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (isIP(host) || nameAllowed(host)) return null;
    return new Promise((done) => {
      resolve(host, { all: true }, (err, addresses) => {
        // A name that does not resolve now is not refused here: the request will say so itself.
        if (err) return done(null);
        done((addresses as LookupAddress[]).some((a) => !addressAllowed(a.address, allow)) ? refusal(host) : null);
      });
    });
  }

  async function guardedFetch(input: string | URL, init: RequestInit = {}): Promise<Response> {
    const url = precheck(input);
    if (url instanceof DestinationNotAllowed) throw url;
    const signal = init.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(opts.timeoutMs)]) : AbortSignal.timeout(opts.timeoutMs);
    let res: Awaited<ReturnType<typeof undiciFetch>>;
    try {
      // No redirects: each hop would be a new destination; callers treat a 3xx as the answer.
      res = await undiciFetch(url, { ...(init as UndiciRequestInit), redirect: 'manual', signal, dispatcher: agent });
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause;
      if (cause instanceof DestinationNotAllowed) throw cause;
      throw err;
    }
    const body = NULL_BODY_STATUS.has(res.status) ? null : await readCapped(res.body as unknown as ReadableStream<Uint8Array> | null, opts.maxResponseBytes, url.host);
    return new Response(body as BodyInit | null, { status: res.status, statusText: res.statusText, headers: res.headers as unknown as HeadersInit });
  }

  return Object.freeze({ fetch: guardedFetch, check });
}

/** The refusal somewhere in an error's cause chain (libraries wrap what fetch threw), or null. */
export function destinationRefusal(err: unknown): DestinationNotAllowed | null {
  let cur: unknown = err;
  for (let depth = 0; cur && typeof cur === 'object' && depth < 8; depth++) {
    if (cur instanceof DestinationNotAllowed) return cur;
    cur = (cur as { cause?: unknown }).cause;
  }
  return null;
}

const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);

/** Reads a response body up to `max` bytes; a longer one is refused (and its stream cancelled). */
async function readCapped(body: ReadableStream<Uint8Array> | null, max: number, host: string): Promise<Uint8Array | null> {
  if (!body) return null;
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      throw Object.assign(new Error(`the answer from ${host} is larger than ${max} bytes`), { code: 'ERR_OUTBOUND_TOO_LARGE' });
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.byteLength; }
  return out;
}
