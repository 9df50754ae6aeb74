import type { Request, RequestHandler } from 'express';
import { InvalidInput, type FieldProblem } from '../domain/errors.js';

/**
 * Text the database cannot hold, refused at the door of every surface (issue 12 §1) instead of
 * failing deep inside a statement with a 500:
 * - U+0000: PostgreSQL's text and jsonb have no NUL ("invalid byte sequence for encoding UTF8:
 *   0x00", "\u0000 cannot be converted to text");
 * - a lone UTF-16 surrogate (`\ud800` in JSON): not a Unicode scalar value, so not UTF-8;
 *   JSON.stringify writes it as the escape `\ud800`, which jsonb refuses.
 * Everything else, however odd (control characters, non-characters, RTL marks), is stored as sent.
 */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function unstorableTextReason(s: string): string | null {
  if (s.includes('\u0000')) return 'contains a NUL character (U+0000), which cannot be stored';
  if (LONE_SURROGATE.test(s)) return 'contains a lone UTF-16 surrogate (not valid Unicode), which cannot be stored';
  return null;
}

/** A parsed body bounds the walk; the cap only stops a pathological object from costing more than its parse did. */
const MAX_NODES = 200_000;

/**
 * The first string (value or key) in `value` the database cannot hold, with its path
 * (`emails[0].value`, the same dotted form the admin API's field problems use). Iterative, so
 * a deeply nested body cannot overflow the stack.
 */
export function findUnstorableText(value: unknown, root = ''): FieldProblem | null {
  const stack: [unknown, string][] = [[value, root]];
  for (let seen = 0; stack.length && seen < MAX_NODES; seen++) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      const reason = unstorableTextReason(v);
      if (reason) return { path: path || '(body)', message: reason };
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${path}[${i}]`]);
    } else if (v !== null && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) {
        const at = path ? `${path}.${k}` : k;
        const keyReason = unstorableTextReason(k);
        if (keyReason) return { path: at, message: `the attribute name ${keyReason}` };
        stack.push([child, at]);
      }
    }
  }
  return null;
}

/** The path's segments as the routers will decode them; a segment that is not valid percent-encoding is left to the router (its own 400). */
function decodedSegments(req: Request): string[] {
  const raw = (req.originalUrl ?? req.url).split('?')[0] ?? '';
  return raw.split('/').map((seg) => {
    try {
      return decodeURIComponent(seg);
    } catch {
      return '';
    }
  });
}

/** Path, query and (once parsed) body of a request; the first problem found. */
export function findUnstorableInRequest(req: Request): FieldProblem | null {
  const segments = decodedSegments(req);
  for (let i = 0; i < segments.length; i++) {
    const reason = unstorableTextReason(segments[i]!);
    if (reason) return { path: 'path', message: `segment ${i} of the request path ${reason}` };
  }
  const q = findUnstorableText(req.query);
  if (q) return { path: `query.${q.path}`, message: q.message };
  return req.body === undefined ? null : findUnstorableText(req.body);
}

/**
 * Middleware for every surface: a request carrying unstorable text is an InvalidInput naming the
 * field, mapped by the surface's own error handler (problem+json, SCIM error, HTML page), before
 * any service runs — so nothing is written. Mount it after the surface's body parser (and, where
 * routes parse their own bodies, after those parsers too).
 */
export const rejectUnstorableText: RequestHandler = (req, _res, next) => {
  const problem = findUnstorableInRequest(req);
  if (problem) return next(new InvalidInput(`${problem.path}: ${problem.message}`, [problem]));
  next();
};
