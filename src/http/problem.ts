import type { Response } from 'express';
import { DomainError, InvalidFilter, InvalidPath, TooManyRequests, InvalidInput, NotFound, Conflict, Unauthorized, Forbidden, PreconditionFailed, PolicyViolation, VerificationFailed, DestinationNotAllowed, type FieldProblem } from '../domain/errors.js';

/** RFC 9457 problem details. `type` URIs are stable: clients match on their last segment. */
export const PROBLEM_BASE = 'https://orgsync.dev/problems';
export const RULE_BASE = 'https://orgsync.dev/rules';

export type Problem = {
  type: string; title: string; status: number; detail: string;
  errors?: FieldProblem[]; rule?: string; reason?: string; requestId?: string;
};

/** The one mapping of domain errors to the admin API's wire format. */
export function problemFor(err: DomainError): Problem {
  if (err instanceof PolicyViolation) {
    return { type: `${RULE_BASE}/${err.rule}`, title: 'Rule violated', status: 409, detail: err.message, rule: err.rule };
  }
  if (err instanceof InvalidInput) {
    return { type: `${PROBLEM_BASE}/invalid-input`, title: 'Invalid input', status: 400, detail: err.message, errors: err.problems };
  }
  if (err instanceof InvalidFilter) return { type: `${PROBLEM_BASE}/invalid-filter`, title: 'Invalid filter', status: 400, detail: err.message };
  if (err instanceof InvalidPath) return { type: `${PROBLEM_BASE}/invalid-filter`, title: 'Invalid path', status: 400, detail: err.message };
  if (err instanceof TooManyRequests) return { type: `${PROBLEM_BASE}/too-many-requests`, title: 'Too many requests', status: 429, detail: err.message };
  if (err instanceof NotFound) return { type: `${PROBLEM_BASE}/not-found`, title: 'Not found', status: 404, detail: err.message };
  if (err instanceof Conflict) {
    return { type: `${PROBLEM_BASE}/${err.reason}`, title: 'Conflict', status: 409, detail: err.message, reason: err.reason };
  }
  if (err instanceof Unauthorized) return { type: `${PROBLEM_BASE}/unauthorized`, title: 'Unauthorized', status: 401, detail: err.message };
  if (err instanceof Forbidden) return { type: `${PROBLEM_BASE}/forbidden`, title: 'Forbidden', status: 403, detail: err.message };
  if (err instanceof PreconditionFailed) return { type: `${PROBLEM_BASE}/precondition-failed`, title: 'Precondition failed', status: 412, detail: err.message };
  if (err instanceof DestinationNotAllowed) {
    return { type: `${PROBLEM_BASE}/destination-not-allowed`, title: 'Destination not allowed', status: 400, detail: err.message };
  }
  if (err instanceof VerificationFailed) {
    return { type: `${PROBLEM_BASE}/verification-failed`, title: 'Verification failed', status: 422, detail: err.message };
  }
  return internalProblem();
}

/**
 * A client error that an error already carries (issue 12 §1: "errors that already carry a 4xx
 * status keep it"): express's 400 for a path parameter that is not valid percent-encoding, the
 * body parser's 400 for a body that does not inflate (corrupt gzip/br) or decode. Null otherwise.
 */
export function carriedClientError(err: unknown): { status: number; detail: string } | null {
  const e = err as { status?: unknown; statusCode?: unknown; message?: unknown; expose?: unknown } | null;
  const status = typeof e?.status === 'number' ? e.status : typeof e?.statusCode === 'number' ? e.statusCode : null;
  if (status === null || status < 400 || status > 499) return null;
  const message = typeof e?.message === 'string' && e.message ? e.message : 'bad request';
  // URIError from decodeURIComponent says only "URI malformed": name what it was.
  const detail = err instanceof URIError || /decode param|URI malformed/i.test(message)
    ? `the request path is not valid percent-encoding (${message})` : message;
  return { status, detail };
}

export function internalProblem(): Problem {
  return { type: `${PROBLEM_BASE}/internal`, title: 'Internal error', status: 500, detail: 'The service failed; the request id in this body finds it in the log.' };
}

export function sendProblem(res: Response, p: Problem): void {
  if (p.status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="orgsync"');
  res.status(p.status).type('application/problem+json').send(JSON.stringify(p));
}
