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

/** Halfwidth and Fullwidth Forms (U+FF00–U+FFEF): RFC 8265 §3.3.1's width mapping, by their compatibility decomposition. */
const WIDE = /[\uff00-\uffef]/g;

/**
 * The key identifiers are compared on (userName, email local parts): what a person reads as the
 * same name gives the same key. Modelled on RFC 8265 §3.3 UsernameCaseMapped — width mapping,
 * case mapping, then NFC — with full case *folding* instead of lower-casing, so `straße`,
 * `STRASSE` and `strasse` are one name, as are `José` in NFC and in NFD (RFC 8265 §3.3.3 uses
 * toLowerCase; Unicode's CaseFolding.txt F entries are what make ß = ss).
 *
 * JavaScript has no case-folding built in: `toLowerCase().toUpperCase().toLowerCase()` (the
 * locale-free, full SpecialCasing mappings; lower first so ẞ → ß) gives full case folding for
 * every character that folds (ß → SS → ss,
 * ﬁ → FI → fi, ς → Σ → σ, ſ → S → s, µ → Μ → μ, ŉ → ʼN → ʼn), and folds a little more than
 * CaseFolding.txt where uppercase has no way back (dotless ı → I → i): for a uniqueness key,
 * folding more only refuses more look-alikes. No dependency (the small case-folding packages are
 * tables of the same data, unmaintained); NFC before so combining sequences case-map as one
 * character, and after, because case mapping can decompose (ΐ → Ϊ́).
 *
 * The stored value stays exactly what was sent; only the key is folded. The migration
 * 20261207120000_identifier_keys computes the same key in SQL for existing rows.
 */
export function identifierKey(raw: string): string {
  // ς → σ: toLowerCase writes a final sigma at the end of a word (ΣΑΣ → σας); case folding has one sigma.
  return raw.normalize('NFC').replace(WIDE, (c) => c.normalize('NFKC')).toLowerCase().toUpperCase().toLowerCase().replace(/ς/g, 'σ').normalize('NFC');
}

/** Emails are matched case-insensitively (the local part too: IdPs disagree on case), on identifierKey. */
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
  return { email, normalized: `${identifierKey(email.slice(0, at))}@${domain}`, domain };
}
