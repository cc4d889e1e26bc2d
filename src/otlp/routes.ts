/**
 * OTLP/HTTP trace ingest: `POST /v1/traces`, so an application already instrumented with
 * OpenTelemetry (GenAI or MCP semantic conventions) can point its OTLP exporter at Panopticon with
 * the PAK as a header, and its tool-execution spans become traces.
 *
 * Same guards as every agent-facing route (pakRouteOptions: PAK, HMAC signature when the app
 * enforces it, per-PAK rate limit). Bodies: `application/json` (OTLP/JSON, through the JSON parser
 * that also checks the signature) or `application/x-protobuf` (the parser below, scoped to this
 * route, checks the signature against the raw bytes, then decodes with the official definitions).
 *
 * The answer is an ExportTraceServiceResponse in the request's encoding: 200, with `partialSuccess`
 * when spans were rejected (rejectedSpans) or ignored (a warning in errorMessage only, since
 * ignoring non-tool spans is the contract, not a failure). Tool spans are written in one group
 * commit; their event_ids derive from the span ids, so an exporter's retry stores nothing twice.
 * Errors are Panopticon's JSON error bodies with the usual codes; OTLP exporters act on the status.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import type { ValidateFunction } from 'ajv';
import { ApiError } from '../errors.js';
import { errorResponses } from '../http/openapi.js';
import type { Services } from '../http/services.js';
import { bodyAjv } from '../http/validation.js';
import { pakRouteOptions } from '../http/pak-auth.js';
import { verifyRawBody } from '../keys/signature.js';
import type { TraceRow } from '../store/types/store.js';
import { prepareTrace } from '../traces/ingest.js';
import { LIMITS, TraceEvent } from '../traces/schema.js';
import { decodeTraceRequest, encodeTraceResponse } from './decode.js';
import { mapSpan, resourceAttributes, type OtlpTraceRequest } from './mapping.js';

export const OTLP_LIMITS = {
  bodyBytes: LIMITS.batchBodyBytes,
  /** Spans of any kind in one request. */
  spans: 10_000,
} as const;

const PROTOBUF = 'application/x-protobuf';
const Loose = Type.Object({}, { additionalProperties: true });

/** The envelope; spans are judged one by one, so a bad span does not sink its request. */
const ExportTraceServiceRequestJson = Type.Object({
  resourceSpans: Type.Optional(Type.Array(Type.Object({
    resource: Type.Optional(Loose),
    scopeSpans: Type.Optional(Type.Array(Type.Object({
      scope: Type.Optional(Loose),
      spans: Type.Optional(Type.Array(Loose)),
    }, { additionalProperties: true }))),
  }, { additionalProperties: true }))),
}, { additionalProperties: true });

const ExportTraceServiceResponseJson = Type.Object({
  partialSuccess: Type.Optional(Type.Object({
    rejectedSpans: Type.String({ description: 'int64, as a decimal string (OTLP/JSON)' }),
    errorMessage: Type.String(),
  })),
});

export interface OtlpCounts {
  accepted: number;
  duplicate: number;
  ignored: number;
  rejected: number;
}

export const otlpRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const validateEvent = bodyAjv.compile(TraceEvent) as ValidateFunction<TraceEvent>;

  // Scoped to this plugin: no other route accepts protobuf.
  app.addContentTypeParser(PROTOBUF, { parseAs: 'buffer', bodyLimit: OTLP_LIMITS.bodyBytes }, (request, body, done) => {
    const refused = verifyRawBody(request, body as Buffer);
    if (refused !== null) return done(refused, undefined);
    try {
      done(null, decodeTraceRequest(body as Buffer));
    } catch (err) {
      done(new ApiError('malformed_protobuf', `The request body is not an OTLP ExportTraceServiceRequest: ${(err as Error).message}`), undefined);
    }
  });

  app.post('/v1/traces', {
    ...pakRouteOptions(services),
    bodyLimit: OTLP_LIMITS.bodyBytes,
    schema: {
      tags: ['traces'],
      summary: 'OTLP/HTTP trace export (JSON or protobuf): tool-execution spans become traces; other spans are counted and ignored',
      security: [{ pak: [] }],
      consumes: ['application/json', PROTOBUF],
      body: ExportTraceServiceRequestJson,
      response: { 200: ExportTraceServiceResponseJson, ...errorResponses(400, 401, 403, 413, 415, 429, 503) },
    },
  }, async (request, reply) => {
    const key = request.pak!;
    const body: OtlpTraceRequest = request.body;
    const counts: OtlpCounts = { accepted: 0, duplicate: 0, ignored: 0, rejected: 0 };
    const reasons: string[] = [];
    const rows: TraceRow[] = [];
    const receivedAt = services.now();
    let spans = 0;
    for (const rs of body.resourceSpans ?? []) {
      const resource = resourceAttributes(rs.resource);
      for (const ss of rs.scopeSpans ?? []) {
        for (const span of ss.spans ?? []) {
          if (++spans > OTLP_LIMITS.spans) throw new ApiError('batch_too_large', `An OTLP request holds at most ${OTLP_LIMITS.spans} spans`);
          const outcome = mapSpan(span, resource, key.clientId);
          if (outcome.kind === 'ignored') {
            counts.ignored++;
            continue;
          }
          let reason: string | null = outcome.kind === 'rejected' ? outcome.reason : null;
          if (outcome.kind === 'trace') {
            const tool = outcome.event.tool;
            if (!validateEvent(outcome.event)) {
              reason = `span for tool ${JSON.stringify(tool.slice(0, 64))}: ${(validateEvent.errors ?? []).map((e) => `${e.instancePath.slice(1) || '(event)'} ${e.message}`).join('; ')}`;
            } else {
              const prepared = prepareTrace(outcome.event, key.keyId, receivedAt);
              if (prepared.ok) rows.push(prepared.row);
              else reason = prepared.errors.map((e) => `${e.field} ${e.message}`).join('; ');
            }
          }
          if (reason !== null) {
            counts.rejected++;
            if (reasons.length < 5) reasons.push(reason);
          }
        }
      }
    }
    if (rows.length > LIMITS.batchItems) throw new ApiError('batch_too_large', `An OTLP request holds at most ${LIMITS.batchItems} tool spans; this one has ${rows.length}`);
    const isNew = rows.length > 0 ? await services.writer.write(rows) : [];
    for (const n of isNew) counts[n ? 'accepted' : 'duplicate']++;
    return answer(reply, request.headers['content-type'], counts, reasons);
  });
};

function answer(reply: FastifyReply, contentType: string | undefined, counts: OtlpCounts, reasons: string[]) {
  const notes: string[] = [];
  if (counts.rejected > 0) notes.push(`${counts.rejected} tool span(s) rejected: ${reasons.join(' | ')}`);
  if (counts.ignored > 0) notes.push(`${counts.ignored} span(s) ignored: not tool executions (gen_ai.operation.name=execute_tool or mcp.method.name=tools/call)`);
  const partial = notes.length === 0 ? null : { rejectedSpans: counts.rejected, errorMessage: notes.join('; ') };
  reply.header('x-panopticon-spans', `accepted=${counts.accepted}, duplicate=${counts.duplicate}, ignored=${counts.ignored}, rejected=${counts.rejected}`);
  if (contentType !== undefined && contentType.toLowerCase().startsWith(PROTOBUF)) {
    return reply.code(200).type(PROTOBUF).send(encodeTraceResponse(partial));
  }
  return reply.code(200).send(partial === null ? {} : { partialSuccess: { rejectedSpans: String(partial.rejectedSpans), errorMessage: partial.errorMessage } });
}
