import type { Response } from 'express';
import SCIMMY from 'scimmy';
import { Conflict, DomainError, Forbidden, InvalidFilter, InvalidInput, InvalidPath, NotFound, PolicyViolation, PreconditionFailed, TooManyRequests, Unauthorized } from '../domain/errors.js';

/** RFC 7644 §3.12 error body. We build it ourselves: scimmy's ErrorResponse throws on status/scimType pairs it does not expect. */
export type ScimError = { status: number; scimType?: string; detail: string };

export const SCIM_ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

/** The one mapping of errors to SCIM errors. Anything unrecognised is a 500 — never a 404, which would make an IdP deprovision. */
export function scimErrorFor(err: unknown): ScimError {
  if (err instanceof DomainError) {
    if (err instanceof NotFound) return { status: 404, detail: `${err.resource} ${err.id ?? ''} not found`.replace(/\s+/g, ' ').trim() };
    if (err instanceof Conflict) return err.reason === 'uniqueness' ? { status: 409, scimType: 'uniqueness', detail: err.message } : { status: 409, detail: err.message };
    if (err instanceof PolicyViolation) return { status: 409, detail: `${err.message} (rule ${err.rule})` };
    if (err instanceof InvalidFilter) return { status: 400, scimType: 'invalidFilter', detail: err.message };
    if (err instanceof InvalidPath) return { status: 400, scimType: 'invalidPath', detail: err.message };
    if (err instanceof InvalidInput) {
      const fields = err.problems.map((p) => `${p.path}: ${p.message}`).join('; ');
      return { status: 400, scimType: 'invalidValue', detail: fields || err.message };
    }
    if (err instanceof PreconditionFailed) return { status: 412, detail: err.message };
    if (err instanceof Unauthorized) return { status: 401, detail: err.message };
    if (err instanceof Forbidden) return { status: 403, detail: err.message };
    if (err instanceof TooManyRequests) return { status: 429, detail: err.message };
    return { status: 500, detail: 'internal error' };
  }
  if (err instanceof SCIMMY.Types.Error) {
    const e = err as unknown as { status: number; scimType?: string; message: string };
    return { status: e.status, ...(e.scimType ? { scimType: e.scimType } : {}), detail: e.message };
  }
  // scimmy reports a body that does not fit the schema (wrong type, missing required attribute) as TypeError.
  if (err instanceof TypeError) return { status: 400, scimType: 'invalidValue', detail: err.message };
  return { status: 500, detail: 'internal error' };
}

export function sendScimError(res: Response, e: ScimError): void {
  res.status(e.status).type('application/scim+json').send(
    JSON.stringify({ schemas: [SCIM_ERROR_SCHEMA], status: String(e.status), ...(e.scimType ? { scimType: e.scimType } : {}), detail: e.detail }),
  );
}
