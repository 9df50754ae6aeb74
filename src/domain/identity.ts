import { domainToASCII } from 'node:url';
import { InvalidInput } from './errors.js';

/** RFC 1035 §2.3.1 labels (after IDNA conversion), at least two labels, ≤ 253 characters. */
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

export function normalizeDomain(raw: string): string {
  const cleaned = raw.trim().replace(/\.$/, '').toLowerCase();
  // domainToASCII parses a URL host: it would stop at '/', '?', '#' or '\\' and percent-decode,
  // turning "evil.com/.example.org" into "evil.com". Such characters are never part of a domain.
  const ascii = /[/?#\\%@:\s]/.test(cleaned) ? '' : domainToASCII(cleaned);
  const labels = ascii.split('.');
  if (!ascii || ascii.length > 253 || labels.length < 2 || !labels.every((l) => LABEL.test(l)) || /^\d+$/.test(labels.at(-1)!)) {
    throw new InvalidInput('not a valid domain name', [{ path: 'domain', message: `"${raw}" is not a domain name like example.com` }]);
  }
  return ascii;
}

/** Emails are matched case-insensitively (the local part too: IdPs disagree on case). */
export function parseEmail(raw: string): { email: string; normalized: string; domain: string } {
  const email = raw.trim();
  const at = email.lastIndexOf('@');
  if (at < 1 || at === email.length - 1 || /\s/.test(email) || email.indexOf('@') !== at) {
    throw new InvalidInput('not a valid email address', [{ path: 'email', message: `"${raw}" is not an email address` }]);
  }
  let domain: string;
  try {
    domain = normalizeDomain(email.slice(at + 1));
  } catch (err) {
    if (!(err instanceof InvalidInput)) throw err;
    throw new InvalidInput('not a valid email address', [{ path: 'email', message: `"${raw}" does not end in a domain name like example.com` }]);
  }
  return { email, normalized: `${email.slice(0, at).toLowerCase()}@${domain}`, domain };
}
