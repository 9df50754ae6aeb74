/**
 * Loopback hosts, as the WHATWG URL parser gives `URL.hostname` (`127.1` → `127.0.0.1`,
 * `[0::1]` → `[::1]`); a bare `::1` is accepted too. Plain http is allowed only to these
 * (test and development identity providers), never across a network.
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
