import { NotFound, Unauthorized, Forbidden } from '../domain/errors.js';
import type { Services } from '../composition.js';
import type { Actor } from '../services/context.js';
import type { RouteAuth } from '../admin/route-spec.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** RFC 6750 §2.1: `Authorization: Bearer <token>`; the scheme is case-insensitive. */
export function bearerToken(header: string | undefined): string | null {
  const m = /^Bearer +([\x21-\x7e]+) *$/i.exec(header ?? '');
  return m ? m[1]! : null;
}

/**
 * Resolves who calls and for which org. An admin key of another org gets the same 404 as an
 * org that does not exist: a key never learns which org ids are real.
 */
export async function authorize(
  services: Services, auth: RouteAuth, header: string | undefined, orgIdParam: string | undefined, now: Date,
): Promise<{ actor: Actor; orgId: string }> {
  const token = bearerToken(header);
  if (!token) throw new Unauthorized('send Authorization: Bearer <admin key or operator token>');

  if (services.orgs.isOperatorToken(token)) {
    if (auth === 'operator') return { actor: { kind: 'operator' }, orgId: '' };
    if (!orgIdParam || !UUID.test(orgIdParam) || !(await services.orgs.orgExists(orgIdParam.toLowerCase()))) throw new NotFound('org', orgIdParam);
    return { actor: { kind: 'operator' }, orgId: orgIdParam.toLowerCase() };
  }

  const key = await services.orgs.authenticateAdminKey(token, now);
  if (!key) throw new Unauthorized('the bearer token is not a valid admin key or operator token');
  if (auth === 'operator') throw new Forbidden('this call needs the operator token; an org admin key cannot make it');
  if (!orgIdParam || orgIdParam.toLowerCase() !== key.orgId) throw new NotFound('org', orgIdParam);
  return { actor: { kind: 'admin-key', keyId: key.keyId }, orgId: key.orgId };
}
