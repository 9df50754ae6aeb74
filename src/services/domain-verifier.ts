import { resolveTxt } from 'node:dns/promises';

/**
 * How a claimed domain proves it belongs to the org. Behind an interface so tests (and
 * air-gapped installs) drive it; the default checks DNS, then the HTTPS file.
 */
export type VerificationResult = { ok: true; method: 'dns' | 'https' } | { ok: false; tried: string[] };

export type DomainVerifier = {
  check(domain: string, token: string): Promise<VerificationResult>;
};

export const TXT_PREFIX = 'orgsync-verification=';
export const WELL_KNOWN_PATH = '/.well-known/orgsync-verification.txt';

export function createDnsHttpsVerifier(opts: { timeoutMs?: number; fetch?: (url: string, init?: RequestInit) => Promise<Response> } = {}): DomainVerifier {
  const timeoutMs = opts.timeoutMs ?? 5000;
  // The service passes its outbound guard: the claimed name must not lead into our own network.
  const doFetch = opts.fetch ?? ((url: string, init?: RequestInit) => fetch(url, init));
  return {
    async check(domain, token) {
      const tried: string[] = [];
      try {
        // A TXT record may be split into several strings (RFC 7208 §3.3): join them.
        const records = (await resolveTxt(domain)).map((chunks) => chunks.join(''));
        if (records.some((r) => r.trim() === `${TXT_PREFIX}${token}`)) return { ok: true, method: 'dns' };
        tried.push(`DNS TXT ${domain}: no record "${TXT_PREFIX}${token}" among ${records.length} TXT record(s)`);
      } catch (err) {
        tried.push(`DNS TXT ${domain}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      const url = `https://${domain}${WELL_KNOWN_PATH}`;
      try {
        // No redirects: the proof must come from the domain itself.
        const res = await doFetch(url, { redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
        const body = res.ok ? (await res.text()).slice(0, 4096) : '';
        if (res.ok && body.split(/\r?\n/).some((l) => l.trim() === token || l.trim() === `${TXT_PREFIX}${token}`)) {
          return { ok: true, method: 'https' };
        }
        tried.push(`${url}: ${res.ok ? 'file does not contain the token' : `HTTP ${res.status}`}`);
      } catch (err) {
        // The guard's refusal is one fixed sentence; other failures say what happened at a public address.
        tried.push(`${url}: ${(err as Error).message}`);
      }
      return { ok: false, tried };
    },
  };
}
