import SCIMMY from 'scimmy';
import { boundPatchPaths } from './patch-path.js';

/**
 * Applies a PatchOp (RFC 7644 §3.5.2) to the full current resource with scimmy. Returns the
 * patched resource, or undefined when the operations changed nothing (scimmy's apply() says so
 * by returning undefined) — then nothing is written and the version stays, so IdP retries and
 * Okta's password-only PATCH are no-ops.
 */
export const applyPatch = async (current: Record<string, unknown>, body: unknown, schema: typeof SCIMMY.Schemas.User | typeof SCIMMY.Schemas.Group) => {
  const instance = new schema(current, 'out');
  // Every path scimmy applies went through our bounded parser and is re-written from its tree
  // (patch-path.ts): scimmy's own filter rewrite is exponential (issue 12 §2).
  const bounded = boundPatchPaths(body, { forScimmy: true });
  // No `finalise` callback: scimmy would build the resource once more from what it returns.
  const result: unknown = await new SCIMMY.Messages.PatchOp(bounded as never).apply(instance as never);
  return result === undefined ? undefined : (JSON.parse(JSON.stringify(result)) as Record<string, unknown>);
};

