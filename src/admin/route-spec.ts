import { z } from 'zod';
import type { RequestContext } from '../services/context.js';

/**
 * A route of the admin API as data: the HTTP layer mounts it on express and registers the
 * same zod schemas in the OpenAPI document, so the published contract is what is enforced.
 */
export type RouteAuth = 'operator' | 'org';

export type RouteResult = {
  status: number; body?: unknown; contentType?: string; headers?: Record<string, string>;
  /** A body sent in chunks as they come (e.g. a CSV export); the status and headers go out once the first chunk is ready. */
  stream?: AsyncIterable<string>;
};

export type RouteSpec<
  P extends z.ZodType = z.ZodType, Q extends z.ZodType = z.ZodType, B extends z.ZodType = z.ZodType,
> = {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** OpenAPI-style path: /api/v1/orgs/{orgId}/accounts */
  path: string;
  summary: string;
  tag: string;
  auth: RouteAuth;
  params?: P;
  query?: Q;
  body?: B;
  responses: Record<number, { description: string; schema?: z.ZodType }>;
  handler: (input: {
    ctx: RequestContext; params: z.infer<P>; query: z.infer<Q>; body: z.infer<B>;
    /** Content negotiation on the Accept header: the best of `types`, or false (express's req.accepts). */
    accepts?: (types: string[]) => string | false;
  }) => Promise<RouteResult>;
};

/** Keeps each spec's parameter types tied to its schemas while collecting them in one list. */
export function route<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType>(spec: RouteSpec<P, Q, B>): RouteSpec {
  return spec as unknown as RouteSpec;
}
