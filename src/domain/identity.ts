import { domainToASCII } from 'node:url';
import { InvalidInput } from './errors.js';

/** RFC 1035 §2.3.1 labels (after IDNA conversion), at least two labels, ≤ 253 characters. */
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

export function normalizeDomain(raw: string): string {
  const ascii = domainToASCII(raw.trim().replace(/\.$/, '').toLowerCase());
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
  if (at < 1 || at === email.length - 1 || /\s/.test(email)) {
    throw new InvalidInput('not a valid email address', [{ path: 'email', message: `"${raw}" is not an email address` }]);
  }
  const domain = normalizeDomain(email.slice(at + 1));
  return { email, normalized: `${email.slice(0, at).toLowerCase()}@${domain}`, domain };
}
