/**
 * Builds the Fastify instance: one service for the trace API (/panopticon/*, PAK auth), the
 * operator API (/api/*, session cookie or operator token) and /openapi.json. Every error leaves
 * through `renderError`, so each one carries a catalogue code and the request id.
 */
import crypto from 'node:crypto';
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import cookie from '@fastify/cookie';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { ServerConfig } from '../config.js';
import { ApiError, ERRORS, errorBody, type ErrorCode } from '../errors.js';
import type { Store } from '../store/types.js';
import { PakAuthenticator } from '../keys/authenticator.js';
import { TraceWriter, StoreUnavailableError } from '../traces/writer.js';
import { fieldErrors, validatorCompiler } from './validation.js';
import { registerAccountRoutes } from '../accounts/routes.js';
import { registerAppRoutes } from '../apps/routes.js';
import { registerKeyRoutes } from '../keys/routes.js';
import { registerTraceRoutes } from '../traces/routes.js';
import { registerUsageRoutes } from '../usage/routes.js';
import { openApiInfo } from './openapi.js';

export interface Services {
  config: ServerConfig;
  store: Store;
  writer: TraceWriter;
  paks: PakAuthenticator;
  now: () => number;
}

export type App = FastifyInstance & { withTypeProvider(): FastifyInstance };

export const REDACTED_LOG_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-panopticon-signature"]',
  'res.headers["set-cookie"]',
  'password',
  'token',
  'pak',
];

export interface BuildOptions {
  now?: () => number;
  /** The benchmark's naive baseline; never used in production. */
  ingestMode?: 'group-commit' | 'per-request';
}

export async function buildServer(config: ServerConfig, store: Store, options: BuildOptions = {}) {
  const now = options.now ?? Date.now;
  const services: Services = {
    config,
    store,
    writer: new TraceWriter(store, config.commitBatchSize, store.engine === 'postgres' ? 2 : 1, 100_000, options.ingestMode),
    paks: new PakAuthenticator(store, now),
    now,
  };

  const app = Fastify({
    logger: {
      level: config.logLevel,
      redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' },
    },
    // Per-request access lines would cost more than the hot path itself; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: newRequestId,
    bodyLimit: 1024 * 1024,
    trustProxy: false,
    return503OnClosing: true,
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  // Every body we accept is JSON; anything else is a 415, not a string for the schema to reject.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler((err: FastifyError, request, reply) => renderError(err, request, reply));
  app.setNotFoundHandler((request, reply) => {
    sendError(reply, request, 'route_not_found', `No route ${request.method} ${request.url.split('?')[0]}`);
  });

  app.decorateRequest('operator', null);
  await app.register(cookie);
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (request, context) =>
      new ApiError('rate_limited', `Rate limit of ${context.max} requests per ${context.after} exceeded`, { retry_after_seconds: Math.ceil(context.ttl / 1000) }),
  });
  await app.register(swagger, {
    openapi: openApiInfo(),
    hideUntagged: false,
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/healthz', { schema: { hide: true } }, async (_request, reply) => {
    try {
      await store.ping();
      return { status: 'ok', engine: store.engine };
    } catch {
      return reply.code(503).header('retry-after', '5').send(errorBody('store_unavailable', ERRORS.store_unavailable.message, _request.id));
    }
  });

  registerAccountRoutes(app, services);
  registerAppRoutes(app, services);
  registerKeyRoutes(app, services);
  registerTraceRoutes(app, services);
  registerUsageRoutes(app, services);

  app.addHook('onClose', async () => {
    await services.writer.close();
    await services.paks.close();
  });

  return { app, services };
}

// Request ids: 20 random hex characters, cut from a pool of random bytes refilled once per 512
// ids rather than formatting (and regex-stripping) a UUID per request.
const REQUEST_ID_BYTES = 10;
const requestIdPool = Buffer.alloc(REQUEST_ID_BYTES * 512);
let requestIdOffset = requestIdPool.length;

function newRequestId(): string {
  if (requestIdOffset >= requestIdPool.length) {
    crypto.randomFillSync(requestIdPool);
    requestIdOffset = 0;
  }
  const id = `req_${requestIdPool.toString('hex', requestIdOffset, requestIdOffset + REQUEST_ID_BYTES)}`;
  requestIdOffset += REQUEST_ID_BYTES;
  return id;
}

export function sendError(reply: FastifyReply, request: FastifyRequest, code: ErrorCode, message?: string, details?: Record<string, unknown>) {
  return reply
    .code(ERRORS[code].status)
    .header('x-request-id', request.id)
    .type('application/json; charset=utf-8')
    .send(errorBody(code, message ?? ERRORS[code].message, request.id, details));
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'malformed_json',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'malformed_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed_json',
};

function renderError(err: FastifyError | ApiError | Error, request: FastifyRequest, reply: FastifyReply) {
  if (err instanceof ApiError) {
    if (err.code === 'rate_limited' || err.code === 'store_unavailable') {
      const retry = err.details?.retry_after_seconds;
      reply.header('retry-after', String(typeof retry === 'number' ? retry : 1));
    }
    for (const [k, v] of Object.entries(err.headers ?? {})) reply.header(k, v);
    return sendError(reply, request, err.code, err.message, err.details);
  }
  if (err instanceof StoreUnavailableError) {
    request.log.error({ err }, 'store unavailable');
    reply.header('retry-after', '1');
    return sendError(reply, request, 'store_unavailable');
  }
  const fe = err as FastifyError;
  if (fe.validation) {
    const context = fe.validationContext as string | undefined;
    const prefix = context === undefined || context === 'body' ? '' : context;
    return sendError(reply, request, 'validation_failed', undefined, { fields: fieldErrors(fe.validation as never, prefix) });
  }
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return sendError(reply, request, mapped);
  if (err instanceof SyntaxError) return sendError(reply, request, 'malformed_json');
  if (fe.statusCode === 429) {
    reply.header('retry-after', '1');
    return sendError(reply, request, 'rate_limited');
  }
  request.log.error({ err }, 'unhandled error');
  return sendError(reply, request, 'internal_error');
}
