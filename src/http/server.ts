/**
 * Builds the Fastify instance: one service for the trace API (/panopticon/*, PAK auth), the
 * operator API (/api/*, session cookie or operator token) and /openapi.json. Every error leaves
 * through `renderError`, so each one carries a catalogue code and the request id.
 */
import crypto from 'node:crypto';
import Fastify, { LogController, type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import cookie from '@fastify/cookie';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { ServerConfig } from '../config.js';
import { ApiError, ERRORS, errorBody, type ErrorCode } from '../errors.js';
import type { Store } from '../store/types/store.js';
import { isStoreUnavailable } from '../store/errors.js';
import { continueOnlyWhenWanted } from './expect-continue.js';
import { createServices, type BuildOptions } from './services.js';

export type { BuildOptions, Services } from './services.js';
import { cachedSerializerFactory, fieldErrors, validatorCompiler } from './validation.js';
import { operatorAuth } from './auth.js';
import { pakAuth } from './pak-auth.js';
import { accountRoutes } from '../accounts/routes.js';
import { appRoutes } from '../apps/routes.js';
import { keyRoutes } from '../keys/routes.js';
import { hmacRoutes } from '../keys/hmac-routes.js';
import { installSignatureVerification } from '../keys/signature.js';
import { traceRoutes } from '../traces/routes.js';
import { TraceBatchResult } from '../traces/schema.js';
import { otlpRoutes } from '../otlp/routes.js';
import { usageRoutes } from '../usage/routes.js';
import { guardRoutes } from '../guard/routes.js';
import { auditRoutes } from '../audit/routes.js';
import { liveRoutes } from '../live/routes.js';
import { registerConsole, type ConsoleFallback } from './console.js';
import { openApiInfo } from './openapi.js';
import { approvalRoutes } from '../approvals/routes.js';
import { webhookRoutes } from '../webhooks/routes.js';
import { toolRoutes } from '../tools/routes.js';

export const REDACTED_LOG_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-panopticon-signature"]',
  'res.headers["set-cookie"]',
  'password',
  'token',
  'pak',
];

export async function buildServer(config: ServerConfig, store: Store, options: BuildOptions = {}) {
  // Background work has no request to report to; the server log is assigned once Fastify exists.
  let logError: (err: unknown, what: string) => void = () => {};
  const services = createServices(config, store, options, (err, what) => logError(err, what));
  const { events } = services;

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
    // During shutdown a request that reaches us on an open connection is still served (the writer
    // stays open until every connection has ended); Fastify's own 503 would bypass the error
    // catalogue and turn away work we can finish.
    return503OnClosing: false,
    clientErrorHandler: answerMalformedHttp,
    schemaController: { compilersFactory: { buildSerializer: cachedSerializerFactory } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  continueOnlyWhenWanted(app);
  logError = (err, what) => app.log.error({ err }, what);
  // The check that opened an approval ran on this node; inboxes open on other nodes hear of it
  // through this signal. Failing to send it must not fail the check, which has already committed.
  events.subscribe((event) => {
    if (event.type !== 'approval.requested') return;
    store.publish({ kind: 'approval_requested', clientId: event.clientId, approvalId: event.approvalId }).catch((err: unknown) => {
      logError(err, 'could not publish approval_requested');
    });
  });
  app.setValidatorCompiler(validatorCompiler);
  // Every body we accept is JSON; anything else is a 415, not a string for the schema to reject.
  app.removeContentTypeParser('text/plain');
  // Replaces the JSON parser (same parsing) so signed routes can check the raw body; before any route.
  installSignatureVerification(app);
  app.setErrorHandler((err: FastifyError, request, reply) => renderError(err, request, reply));
  let consoleFallback: ConsoleFallback | null = null;
  app.setNotFoundHandler((request, reply) => {
    if (consoleFallback?.(request, reply)) return;
    sendError(reply, request, 'route_not_found', `No route ${request.method} ${request.url.split('?')[0]}`);
  });

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
  // Before any route: every request starts with `operator: null` and `pak: null`, whichever route
  // plugin serves it, and a schema referenced by name is the root's (so /openapi.json lists it).
  await app.register(operatorAuth);
  await app.register(pakAuth);
  app.addSchema(TraceBatchResult);

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  // Liveness: the process answers. It never touches the store, so an orchestrator does not
  // restart a node for an outage of the database that a restart cannot fix.
  app.get('/livez', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  // Readiness: the store can be read and written; a 503 names what failed.
  // `signals` is the cross-node listener: while it is down the node stays correct (its caches read
  // the store instead) but slower, so it says `degraded` rather than leaving the load balancer.
  app.get('/healthz', { schema: { hide: true } }, async (request, reply) => {
    let reason: string;
    try {
      await store.ping();
      const write = await store.writable();
      const signals = store.signalHealth();
      const signalsJson = {
        state: signals.mode === 'in_process' ? 'in_process' : signals.live ? 'listening' : 'reconnecting',
        since: new Date(signals.since).toISOString(),
        reconnects: signals.reconnects,
        ...(signals.live ? {} : { last_error: signals.lastError }),
      };
      if (write.ok) return { status: signals.live ? 'ok' : 'degraded', engine: store.engine, signals: signalsJson };
      reason = `writes fail since ${new Date(write.since).toISOString()}: ${write.reason}`;
    } catch (err) {
      reason = `reads fail: ${err instanceof Error ? err.message : String(err)}`;
    }
    reply.header('retry-after', '5');
    return sendError(reply, request, 'store_unavailable', undefined, { reason });
  });

  // Each route module is an encapsulated plugin: what it adds (hooks, the OTLP body parser) stays
  // with its routes; what every route needs was set up above, on the root.
  await app.register(accountRoutes, { services });
  await app.register(appRoutes, { services });
  await app.register(keyRoutes, { services });
  await app.register(hmacRoutes, { services });
  await app.register(traceRoutes, { services });
  await app.register(otlpRoutes, { services });
  await app.register(usageRoutes, { services });
  await app.register(guardRoutes, { services });
  await app.register(auditRoutes, { services });
  await app.register(liveRoutes, { services });
  await app.register(toolRoutes, { services });
  consoleFallback = await registerConsole(app, options.consoleDir);

  // A response finished after close() began would otherwise leave its keep-alive socket open until
  // keepAliveTimeout (72 s), holding the process past SIGTERM; `Connection: close` tells the client
  // not to reuse it and lets Node end the socket as soon as the response is out.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
  await app.register(approvalRoutes, { services });
  await app.register(webhookRoutes, { services });

  services.approvals.start();
  services.webhooks.start();
  services.idempotency.start();

  // Long polls answer with the current state now, rather than holding the shutdown for up to 30 s.
  app.addHook('preClose', async () => {
    await services.approvals.close();
  });
  app.addHook('onClose', async () => {
    services.live.close();
    await services.writer.close();
    services.commitSignals.flush();
    await services.checks.drain();
    await services.webhooks.close();
    await services.idempotency.close();
    await services.paks.close();
    services.guard.close();
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

function clientWentAway(request: FastifyRequest): boolean {
  return request.raw.readableAborted || (request.raw.destroyed && !request.raw.complete);
}

/**
 * What Node's HTTP parser refuses before a request exists (a negative or doubled Content-Length,
 * broken chunking, a bad header byte, headers over the size limit): answered with the catalogue's
 * body, as any other error, rather than Fastify's default `{"error":"Bad Request",…}`; then the
 * connection closes, since its framing can no longer be trusted.
 */
function answerMalformedHttp(err: Error & { code?: string }, socket: import('node:net').Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const code: ErrorCode = err.code === 'HPE_HEADER_OVERFLOW' ? 'headers_too_large' : 'malformed_http';
  const requestId = newRequestId();
  const body = JSON.stringify(errorBody(code, ERRORS[code].message, requestId));
  const status = ERRORS[code].status;
  socket.end(
    `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    `X-Request-Id: ${requestId}\r\n` +
    'Connection: close\r\n\r\n' + body,
  );
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'malformed_json',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'malformed_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed_json',
};

function renderError(err: FastifyError | ApiError | Error, request: FastifyRequest, reply: FastifyReply) {
  if (clientWentAway(request)) {
    // The client closed the connection mid-upload: nobody to answer, nothing wrong with the server.
    request.log.info({ code: (err as NodeJS.ErrnoException).code }, 'client closed the connection before the request was read');
    return reply.send();
  }
  if (err instanceof ApiError) {
    if (err.code === 'rate_limited' || err.code === 'store_unavailable') {
      const retry = err.details?.retry_after_seconds;
      reply.header('retry-after', String(typeof retry === 'number' ? retry : 1));
    }
    for (const [k, v] of Object.entries(err.headers ?? {})) reply.header(k, v);
    return sendError(reply, request, err.code, err.message, err.details);
  }
  if (isStoreUnavailable(err)) {
    request.log.warn({ err }, 'store unavailable');
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
