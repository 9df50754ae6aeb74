import type { Request, RequestHandler, Response, Router } from 'express';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { z } from 'zod';
import { InvalidInput, type FieldProblem } from '../domain/errors.js';
import type { RouteResult, RouteSpec } from '../admin/route-spec.js';
import type { Services } from '../composition.js';
import { authorize } from './auth.js';

/** zod issues → one problem per bad field; an unknown field names itself. */
export function fieldProblems(error: z.ZodError, prefix: string): FieldProblem[] {
  return error.issues.flatMap((i) => {
    const base = [prefix, ...i.path.map(String)].filter(Boolean).join('.');
    if (i.code === 'unrecognized_keys') {
      return i.keys.map((k) => ({ path: [base, k].filter(Boolean).join('.'), message: 'unknown field' }));
    }
    return [{ path: base || prefix, message: i.message }];
  });
}

function parse<T extends z.ZodType>(schema: T | undefined, value: unknown, where: string): z.infer<T> {
  if (!schema) return {} as z.infer<T>;
  const r = schema.safeParse(value);
  if (!r.success) throw new InvalidInput(`invalid ${where}`, fieldProblems(r.error, where === 'body' ? '' : where));
  return r.data;
}

const expressPath = (p: string) => p.replace(/\{(\w+)\}/g, ':$1');

/**
 * Sends a streamed body. The first chunk is awaited before anything is written, so an error
 * before it (a bad cursor, a database outage) still answers with a problem document; a failure
 * after it can only cut the response short (logged). Honours back-pressure and stops pulling
 * chunks when the client goes away.
 */
async function sendStream(req: Request, res: Response, result: RouteResult, stream: AsyncIterable<string>): Promise<void> {
  const it = stream[Symbol.asyncIterator]();
  let next = await it.next();
  for (const [k, v] of Object.entries(result.headers ?? {})) res.setHeader(k, v);
  res.status(result.status).type(result.contentType ?? 'application/octet-stream');
  let gone = false;
  res.once('close', () => { gone = true; });
  try {
    while (!next.done) {
      if (gone) {
        await it.return?.();
        return;
      }
      if (!res.write(next.value)) await new Promise<void>((resolve) => { res.once('drain', resolve); res.once('close', resolve); });
      next = await it.next();
    }
    res.end();
  } catch (err) {
    req.log?.error({ err }, 'streamed response failed after its first chunk');
    res.destroy(err instanceof Error ? err : new Error(String(err)));
  }
}

export function mountRoutes(router: Router, registry: OpenAPIRegistry, services: Services, specs: RouteSpec[]): void {
  for (const spec of specs) {
    registry.registerPath({
      method: spec.method,
      path: spec.path,
      summary: spec.summary,
      tags: [spec.tag],
      request: {
        ...(spec.params ? { params: spec.params as z.ZodObject } : {}),
        ...(spec.query ? { query: spec.query as z.ZodObject } : {}),
        ...(spec.body ? { body: { content: { 'application/json': { schema: spec.body } } } } : {}),
      },
      responses: Object.fromEntries(
        Object.entries(spec.responses).map(([status, r]) => [
          status,
          { description: r.description, ...(r.schema ? { content: { 'application/json': { schema: r.schema } } } : {}) },
        ]),
      ),
    });

    const handler: RequestHandler = async (req: Request, res: Response) => {
      const now = new Date();
      const rawParams = req.params as Record<string, string>;
      const who = await authorize(services, spec.auth, req.headers.authorization, rawParams.orgId, now);
      const params = parse(spec.params, rawParams, 'params');
      const query = parse(spec.query, { ...(req.query as object) }, 'query');
      const body = parse(spec.body, req.body ?? {}, 'body');
      const ctx = { orgId: who.orgId, actor: who.actor, requestId: String(req.id ?? ''), now };
      const result = await spec.handler({ ctx, params, query, body, accepts: (types) => req.accepts(types) });
      if (result.stream) return sendStream(req, res, result, result.stream);
      for (const [k, v] of Object.entries(result.headers ?? {})) res.setHeader(k, v);
      if (result.body === undefined) {
        res.status(result.status).end();
      } else if (result.contentType) {
        res.status(result.status).type(result.contentType).send(result.body);
      } else {
        res.status(result.status).json(result.body);
      }
    };
    router[spec.method](expressPath(spec.path), handler);
  }
}
