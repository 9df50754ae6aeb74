import { randomUUID } from 'node:crypto';
import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Database } from '../store/database.js';
import type { Services } from '../composition.js';
import { DomainError } from '../domain/errors.js';
import { adminRoutes } from '../admin/index.js';
import { scimDocumentationPage } from '../scim/documentation-page.js';
import { createScimRouter } from '../scim/router.js';
import { createSsoRouter } from '../sso/router.js';
import { createConsoleRouter } from '../admin/console/router.js';
import { buildDocument, createRegistry } from './openapi.js';
import { mountRoutes } from './mount.js';
import { rejectUnstorableText } from './unstorable-text.js';
import { PROBLEM_BASE, carriedClientError, internalProblem, problemFor, sendProblem } from './problem.js';
import { verifyJsonDepth } from './json-depth.js';

export type AppDeps = {
  config: Pick<Config, 'http' | 'scim' | 'sso'>;
  db: Database;
  services: Services;
  logger: Logger;
  /** Flipped by graceful shutdown so load balancers stop routing here before we close. */
  isDraining?: () => boolean;
};

const REQUEST_ID = /^[\w.:-]{1,128}$/;
const JSON_TYPES = ['application/json', 'application/*+json'];

/** A body in another format is refused up front (415), not half-parsed into `{}`. */
const requireJsonBody: RequestHandler = (req, res, next) => {
  const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if (hasBody && !req.is(JSON_TYPES)) {
    sendProblem(res, {
      type: `${PROBLEM_BASE}/unsupported-media-type`, title: 'Unsupported media type', status: 415,
      detail: `send the body as application/json (got ${req.headers['content-type'] ?? 'no content type'})`,
    });
    return;
  }
  next();
};

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  app.use(pinoHttp({
    logger: deps.logger,
    genReqId: (req, res) => {
      const given = req.headers['x-request-id'];
      const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
      res.setHeader('X-Request-Id', id);
      return id;
    },
    customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : 'info'),
    // Bodies are never logged; only method, path and outcome.
    serializers: {
      req: (r: { id: unknown; method: string; url: string }) => ({ id: r.id, method: r.method, url: r.url.split('?')[0] }),
      res: (r: { statusCode: number }) => ({ statusCode: r.statusCode }),
    },
  }));
  app.use(helmet());

  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  app.get('/readyz', async (_req, res) => {
    if (deps.isDraining?.()) return void res.status(503).json({ status: 'draining' });
    try {
      await deps.db.ping();
      res.json({ status: 'ready' });
    } catch {
      res.status(503).json({ status: 'database unavailable' });
    }
  });

  // What ServiceProviderConfig's documentationUri names (RFC 7643 §5).
  const scimDocs = scimDocumentationPage(deps.config.http.publicUrl, deps.config.scim.bodyLimitBytes);
  app.get('/docs/scim', (_req, res) => void res.type('html').send(scimDocs));

  // SCIM has its own auth, media types, body cap and error format (RFC 7644 §3.12).
  app.use('/scim/v2/:directoryId', createScimRouter({ db: deps.db, services: deps.services, config: deps.config, logger: deps.logger }));

  // Browser-facing sign-in: POST /login, /me, /logout, /sso/… (their own body parsers and error pages).
  app.use(createSsoRouter({ services: deps.services, config: deps.config, logger: deps.logger }));
  app.use(createConsoleRouter({ services: deps.services, config: deps.config, logger: deps.logger }));

  const registry = createRegistry();
  const api = express.Router();
  api.use(requireJsonBody);
  api.use(express.json({ limit: deps.config.http.bodyLimitBytes, type: JSON_TYPES, strict: true, verify: verifyJsonDepth }));
  api.use(rejectUnstorableText);
  mountRoutes(api, registry, deps.services, adminRoutes(deps.services));
  app.use(api);

  const document = buildDocument(registry, deps.config.http.publicUrl);
  app.get('/openapi.json', (_req, res) => void res.json(document));

  app.use((req, res) => {
    sendProblem(res, { type: `${PROBLEM_BASE}/not-found`, title: 'Not found', status: 404, detail: `no route ${req.method} ${req.path}` });
  });
  app.use(errorHandler(deps.logger));
  return app;
}

type BodyParserError = Error & { type?: string; status?: number; limit?: number };

function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const requestId = String(req.id ?? '');
    if (err instanceof DomainError) {
      const p = problemFor(err);
      if (p.status >= 500) (req.log ?? logger).error({ err }, 'request failed');
      return sendProblem(res, { ...p, requestId });
    }
    const bp = err as BodyParserError;
    if (bp?.type === 'entity.parse.failed') {
      return sendProblem(res, { type: `${PROBLEM_BASE}/malformed-json`, title: 'Malformed JSON', status: 400, detail: `the body is not valid JSON: ${bp.message}`, requestId });
    }
    if (bp?.type === 'entity.too.large') {
      return sendProblem(res, { type: `${PROBLEM_BASE}/body-too-large`, title: 'Body too large', status: 413, detail: `the body is larger than ${bp.limit} bytes`, requestId });
    }
    if (bp?.type === 'encoding.unsupported' || bp?.type === 'charset.unsupported') {
      return sendProblem(res, { type: `${PROBLEM_BASE}/unsupported-media-type`, title: 'Unsupported media type', status: 415, detail: bp.message, requestId });
    }
    if (bp?.type === 'request.aborted' || bp?.type === 'request.size.invalid') {
      return sendProblem(res, { type: `${PROBLEM_BASE}/bad-request`, title: 'Bad request', status: 400, detail: bp.message, requestId });
    }
    const carried = carriedClientError(err);
    if (carried) return sendProblem(res, { type: `${PROBLEM_BASE}/bad-request`, title: 'Bad request', status: carried.status, detail: carried.detail, requestId });
    (req.log ?? logger).error({ err }, 'unhandled error');
    sendProblem(res, { ...internalProblem(), requestId });
  };
}
