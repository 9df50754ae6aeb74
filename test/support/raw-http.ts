import http from 'node:http';

export type RawResponse = { status: number; headers: http.IncomingHttpHeaders; text: string };

/**
 * One HTTP request exactly as given: the path is sent as is (already percent-encoded, or
 * deliberately not), the body as the bytes given. supertest would re-encode or refuse some of
 * these; a hostile client does not.
 */
export function rawRequest(baseUrl: string, opts: { method: string; path: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<RawResponse> {
  const url = new URL(baseUrl);
  const body = opts.body === undefined ? undefined : typeof opts.body === 'string' ? Buffer.from(opts.body, 'utf8') : opts.body;
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname, port: url.port, method: opts.method, path: opts.path, agent: false,
      headers: { ...(body ? { 'Content-Length': String(body.length) } : {}), ...opts.headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Percent-encodes every code unit, including a lone surrogate, which encodeURIComponent refuses:
 * it becomes the UTF-8-style bytes of the surrogate (%ED%A0%80), which no decoder accepts — the
 * closest a URL can come to carrying one.
 */
export function pctEncode(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff) {
      out += encodeURIComponent(s.slice(i, i + 2));
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      out += [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
    } else {
      out += encodeURIComponent(s[i]!);
    }
  }
  return out;
}
