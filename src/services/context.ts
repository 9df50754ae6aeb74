/**
 * Who is acting, for which org, in which request. Passed explicitly to every service call:
 * never kept on a shared object between awaits.
 */
export type Actor =
  | { kind: 'operator' }
  | { kind: 'admin-key'; keyId: string }
  | { kind: 'directory'; directoryId: string }
  | { kind: 'system'; name: string }
  | { kind: 'sso'; connectionId: string };

export type RequestContext = Readonly<{
  orgId: string;
  actor: Actor;
  requestId: string | null;
  now: Date;
}>;

export function actorLabel(actor: Actor): string {
  switch (actor.kind) {
    case 'operator': return 'operator';
    case 'admin-key': return `admin-key:${actor.keyId}`;
    case 'directory': return `scim:${actor.directoryId}`;
    case 'system': return `system:${actor.name}`;
    case 'sso': return `sso:${actor.connectionId}`;
  }
}
