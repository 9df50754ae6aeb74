import { createHash } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Logger } from '../log.js';
import type { Config } from '../config.js';
import type { Database } from '../store/database.js';
import { DomainError, Unauthorized } from '../domain/errors.js';
import { carriedClientError } from '../http/problem.js';
import { rejectUnstorableText } from '../http/unstorable-text.js';
import { bearerToken } from '../http/auth.js';
import { createScimUserService, type DirectoryContext } from '../services/scim-user-service.js';
import { createScimGroupService } from '../services/scim-group-service.js';
import type { Services } from '../composition.js';
import { createDiscovery } from './discovery.js';
import { scimErrorFor, sendScimError, type ScimError } from './errors.js';
import { createIgnoredAttributes } from '../services/scim-ignored-attributes.js';
import { groupHandlers, userHandlers, type ScimRequest, type ScimResult } from './handlers.js';
import { createRateLimiter } from '../http/rate-limit.js';
import { verifyJsonDepth } from '../http/json-depth.js';

const SCIM_JSON = ['application/scim+json', 'application/json'];

type Locals = { ctx?: DirectoryContext; idp?: string; started: number; outcome?: { scimType?: string; detail?: string; resourceId?: string } };

/**
 * RFC 7644 §3.5.2: PATCH answers 200 with the resource or 204 without a body. A client may say
 * which it wants (RFC 7240 Prefer: return=minimal | return=representation). Without one, Entra ID
 * directories get 204 (what Entra's own reference service answers and its test collection checks);
 * Okta and the rest get 200 with the resource, which Okta reads back.
 */
export function patchNoContent(prefer: string | undefined, idp: string | undefined, query: Record<string, unknown> = {}): boolean {
  if (prefer && /return\s*=\s*minimal/i.test(prefer)) return true;
  if (prefer && /return\s*=\s*representation/i.test(prefer)) return false;
  // RFC 7644 §3.5.2: a PATCH with attributes / excludedAttributes answers 200 with the resource
  // (Entra directories got 204 for it; issue 13, defect 4).
  if (Object.keys(query).some((k) => /^(excluded)?attributes$/i.test(k))) return false;
  return idp === 'entra';
}

/**
 * The SCIM 2.0 surface (RFC 7644) at /scim/v2/{directoryId}. Every endpoint, discovery included,
 * needs the directory's bearer token. Each request leaves a redacted ScimEvent row.
 */
export function createScimRouter(deps: { db: Database; services: Services; config: Pick<Config, 'scim' | 'http'>; logger: Logger }): Router {
  const { db, services, config, logger } = deps;
  const ignoredAttributes = createIgnoredAttributes(db);
  const users = userHandlers(createScimUserService(db), ignoredAttributes);
  const groups = groupHandlers(createScimGroupService(db), ignoredAttributes);
  const discovery = createDiscovery({ bodyLimitBytes: config.scim.bodyLimitBytes, documentationUri: `${config.http.publicUrl}/docs/scim` });
  const limiter = createRateLimiter({ perSecond: config.scim.ratePerSecond, burst: config.scim.rateBurst });
  const router = express.Router({ mergeParams: true });
  const base = (req: Request) => `${config.http.publicUrl}/scim/v2/${req.params.directoryId}`;
  const locals = (res: Response) => res.locals as Locals;

  router.use((req, res, next) => {
    locals(res).started = performance.now();
    res.on('finish', () => recordEvent(req, res));
    next();
  });

  router.use(rejectUnstorableText);
  router.use(async (req, res, next) => {
    const token = bearerToken(req.headers.authorization);
    const dir = token ? await services.directories.authenticate(String(req.params.directoryId), token, new Date()) : null;
    if (!dir) throw new Unauthorized(token ? 'the bearer token is not valid for this directory' : 'send Authorization: Bearer <directory token>');
    limiter.take(createHash('sha256').update(token!).digest('hex'));
    locals(res).idp = dir.idp;
    locals(res).ctx = {
      orgId: dir.orgId, directoryId: dir.directoryId, actor: { kind: 'directory', directoryId: dir.directoryId },
      requestId: String(req.id ?? ''), now: new Date(),
    };
    next();
  });

  // RFC 7644 §3.1: bodies are application/scim+json; plain JSON is accepted as IdPs send it.
  router.use((req, _res, next) => {
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (hasBody && !req.is(SCIM_JSON)) return next(Object.assign(new Error('unsupported media type'), { type: 'scim.media', contentType: req.headers['content-type'] }));
    next();
  });
  router.use(express.json({ limit: config.scim.bodyLimitBytes, type: SCIM_JSON, strict: true, verify: verifyJsonDepth }));
  router.use(rejectUnstorableText);

  const run = (fn: (r: ScimRequest) => Promise<ScimResult>, withId = false) => async (req: Request, res: Response) => {
    const ctx = { ...locals(res).ctx!, now: new Date() };
    const result = await fn({
      ctx, base: base(req), query: req.query as Record<string, unknown>, body: req.body, ifMatch: req.header('if-match'),
      patchNoContent: patchNoContent(req.header('prefer'), locals(res).idp, req.query as Record<string, unknown>),
      ...(withId ? { id: String(req.params.id) } : {}),
    });
    if (result.resourceId) locals(res).outcome = { resourceId: result.resourceId, ...(result.note ? { detail: result.note } : {}) };
    for (const [k, v] of Object.entries(result.headers ?? {})) res.setHeader(k, v);
    if (result.body === undefined) res.status(result.status).end();
    else res.status(result.status).type('application/scim+json').send(JSON.stringify(result.body));
  };
  const json = (fn: (req: Request) => Promise<unknown>) => async (req: Request, res: Response) => {
    res.type('application/scim+json').send(JSON.stringify(await fn(req)));
  };

  router.get('/ServiceProviderConfig', json((req) => discovery.serviceProviderConfig(base(req))));
  router.get('/ResourceTypes', json((req) => discovery.resourceTypes(base(req))));
  router.get('/ResourceTypes/:name', json((req) => discovery.resourceTypes(base(req), String(req.params.name))));
  router.get('/Schemas', json((req) => discovery.schemas(base(req))));
  router.get('/Schemas/:id', json((req) => discovery.schemas(base(req), String(req.params.id))));

  for (const [path, h] of [['/Users', users], ['/Groups', groups]] as const) {
    router.get(path, run(h.list));
    // RFC 7644 §3.4.3: the same query in a POST body, for filters too long for a URL.
    router.post(`${path}/.search`, run((r) => h.list({ ...r, query: (r.body ?? {}) as Record<string, unknown> })));
    router.post(path, run(h.create));
    router.get(`${path}/:id`, run(h.get, true));
    router.put(`${path}/:id`, run(h.replace, true));
    router.patch(`${path}/:id`, run(h.patch, true));
    router.delete(`${path}/:id`, run(h.delete, true));
  }

  router.use((req, res) => sendScimError(res, { status: 404, detail: `no SCIM endpoint ${req.method} ${req.path}` }));

  router.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    // An error the mappers do not know but that carries a 4xx (a path that is not valid
    // percent-encoding, a body that does not inflate) keeps its status.
    const mapped = bodyError(err) ?? scimErrorFor(err);
    const carried = mapped.status >= 500 && !(err instanceof DomainError) ? carriedClientError(err) : null;
    const e: ScimError = carried ? { status: carried.status, scimType: 'invalidSyntax', detail: carried.detail } : mapped;
    if (e.status >= 500) (req.log ?? logger).error({ err }, 'SCIM request failed');
    if (e.status === 429) res.setHeader('Retry-After', String((err as { retryAfterSeconds: number }).retryAfterSeconds));
    if (e.status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="orgsync-scim"');
    locals(res).outcome = { ...(e.scimType ? { scimType: e.scimType } : {}), detail: e.detail };
    sendScimError(res, e);
  });

  /**
   * The redacted request log an admin reads at GET directories/{id}/events: method, path, outcome —
   * never bodies or tokens. Buffered by the directory service and written in batches (one INSERT
   * per ~100 ms instead of one per request); flushed before the events are read and at shutdown.
   */
  function recordEvent(req: Request, res: Response): void {
    const l = locals(res);
    if (!l.ctx) return; // unauthenticated requests are not attributed to a directory
    services.directories.recordEvent(l.ctx.orgId, {
      directoryId: l.ctx.directoryId, method: req.method, path: req.path.slice(0, 200), status: res.statusCode,
      scimType: l.outcome?.scimType ?? null, detail: l.outcome?.detail?.slice(0, 500) ?? null, resourceId: l.outcome?.resourceId ?? null,
      durationMs: Math.round(performance.now() - l.started), requestId: l.ctx.requestId,
    }, onEventError);
  }
  function onEventError(err: unknown): void {
    logger.warn({ err }, 'could not record SCIM event');
  }

  return router;
}

/** body-parser and media-type failures in SCIM's words (RFC 7644 §3.12). */
function bodyError(err: unknown): ScimError | null {
  const e = err as { type?: string; limit?: number; message?: string; contentType?: string };
  switch (e?.type) {
    case 'scim.media': return { status: 415, detail: `send application/scim+json or application/json (got ${e.contentType ?? 'no content type'})` };
    case 'entity.parse.failed': return { status: 400, scimType: 'invalidSyntax', detail: `the body is not valid JSON: ${e.message}` };
    case 'json.too.deep': return { status: 400, scimType: 'invalidSyntax', detail: e.message ?? 'the body nests too deeply' };
    case 'entity.too.large': return { status: 413, detail: `the body is larger than ${e.limit} bytes` };
    case 'encoding.unsupported':
    case 'charset.unsupported': return { status: 415, detail: e.message ?? 'unsupported encoding' };
    case 'request.aborted':
    case 'request.size.invalid': return { status: 400, scimType: 'invalidSyntax', detail: e.message ?? 'bad request body' };
    default: return null;
  }
}
