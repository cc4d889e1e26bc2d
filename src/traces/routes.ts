/**
 * Trace ingestion and the activity timeline.
 *
 * POST /panopticon/trace, in stages (each stage's failure stores nothing):
 *   1. onRequest  - PAK from the Authorization header: 401 missing/malformed/unknown/revoked,
 *                   403 when Panopticon is disabled for its app (decided from a per-node cache).
 *                   When the app enforces HMAC signing, the X-Panopticon-Signature header:
 *                   401 missing/malformed/expired (src/keys/signature.ts).
 *   2. onRequest  - per-PAK rate limit: 429 with Retry-After.
 *   3. parsing    - 415 when not JSON, 413 over the body limit; then, when signing is enforced,
 *                   401 signature_mismatch against the raw body; then 400 malformed JSON.
 *   4. validation - the TraceEvent schema: 400 naming every offending field.
 *   5. handler    - 403 when client_id is not the PAK's app; attribute depth/size bounds (400);
 *                   then the group commit. 202 accepted / 200 duplicate only after the commit
 *                   returned; 503 with Retry-After when the store failed.
 * POST /panopticon/traces runs stages 1-3 on the envelope, then 4-5 per item: one bad item is
 * reported in its slot (207) and does not sink the others.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import type { ValidateFunction } from 'ajv';
import { ClientIdParams, ownedApp, requireOperator } from '../http/auth.js';
import { traceJson } from '../http/format.js';
import { ApiError, ERRORS, type ErrorCode } from '../errors.js';
import { errorResponses } from '../http/openapi.js';
import type { Services } from '../http/services.js';
import { bodyAjv, fieldErrors } from '../http/validation.js';
import type { StoredTrace, TraceRow } from '../store/types/store.js';
import { parseRfc3339Micros, prepareTrace, timestampProblem, type FieldError } from './ingest.js';
import { LIMITS, TraceAck, TraceBatch, TraceEvent, TraceStatusSchema } from './schema.js';
import { pakRouteOptions } from '../http/pak-auth.js';

const PAK_ERRORS = errorResponses(400, 401, 403, 413, 415, 429, 503);

/**
 * Sends JSON serialised by hand (the hot path skips the response serializer): Fastify sends a string
 * with a JSON content type as it is. Takes the untyped reply, since the route's typed reply only
 * accepts the schema's object.
 */
function sendJsonText(reply: FastifyReply, status: number, json: string) {
  return reply.code(status).type('application/json; charset=utf-8').send(json);
}

type ItemResult =
  | { event_id: string | null; status: 'accepted' | 'duplicate' }
  | { event_id: string | null; status: 'rejected'; error: { code: ErrorCode; message: string; fields?: FieldError[] } };

export const traceRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { writer, now } = services;
  const pakRoute = pakRouteOptions(services);

  app.post('/panopticon/trace', {
    ...pakRoute,
    bodyLimit: LIMITS.traceBodyBytes,
    schema: {
      tags: ['traces'],
      summary: 'Record one tool call. 202 once it is durably stored; 200 when this app already has the event_id.',
      security: [{ pak: [] }],
      body: TraceEvent,
      response: { 200: TraceAck, 202: TraceAck, ...PAK_ERRORS },
    },
  }, async (request, reply) => {
    const event = request.body;
    const key = request.pak!;
    if (event.client_id !== key.clientId) throw new ApiError('client_id_mismatch');
    const prepared = prepareTrace(event, key.keyId, now());
    if (!prepared.ok) throw new ApiError('validation_failed', undefined, { fields: prepared.errors });
    const [isNew] = await writer.write([prepared.row]);
    // event_id is a validated UUID, so it needs no escaping; it is echoed as stored (lower case).
    return sendJsonText(reply, isNew ? 202 : 200, `{"event_id":"${prepared.row.eventId}","status":"${isNew ? 'accepted' : 'duplicate'}"}`);
  });

  const validateItem = bodyAjv.compile(TraceEvent) as ValidateFunction<TraceEvent>;

  app.post('/panopticon/traces', {
    ...pakRoute,
    bodyLimit: LIMITS.batchBodyBytes,
    schema: {
      tags: ['traces'],
      summary: `Record up to ${LIMITS.batchItems} tool calls; a result per item, in input order. 200 when none was rejected, 207 otherwise.`,
      security: [{ pak: [] }],
      body: TraceBatch,
      response: {
        200: Type.Ref('TraceBatchResult'),
        207: Type.Ref('TraceBatchResult'),
        ...PAK_ERRORS,
      },
    },
  }, async (request, reply) => {
    const key = request.pak!;
    const items = request.body.traces;
    if (items.length > LIMITS.batchItems) throw new ApiError('batch_too_large', `A batch holds at most ${LIMITS.batchItems} traces; this one has ${items.length}`);
    const results: ItemResult[] = new Array(items.length);
    const rows: TraceRow[] = [];
    const slots: number[] = [];
    const receivedAt = now();
    items.forEach((item: Record<string, unknown>, i) => {
      const eventId = typeof item.event_id === 'string' ? item.event_id : null;
      const reject = (code: ErrorCode, fields?: FieldError[]) => {
        results[i] = { event_id: eventId, status: 'rejected', error: { code, message: ERRORS[code].message, ...(fields ? { fields } : {}) } };
      };
      if (!validateItem(item)) return reject('validation_failed', fieldErrors(validateItem.errors));
      if (item.client_id !== key.clientId) return reject('client_id_mismatch');
      const prepared = prepareTrace(item, key.keyId, receivedAt);
      if (!prepared.ok) return reject('validation_failed', prepared.errors);
      rows.push(prepared.row);
      slots.push(i);
    });
    const isNew = rows.length > 0 ? await writer.write(rows) : [];
    slots.forEach((slot, k) => {
      results[slot] = { event_id: rows[k]!.eventId, status: isNew[k] ? 'accepted' : 'duplicate' };
    });
    const counts = { accepted: 0, duplicate: 0, rejected: 0 };
    for (const r of results) counts[r.status]++;
    return reply.code(counts.rejected > 0 ? 207 : 200).send({ ...counts, results });
  });

  await app.register(timelineRoutes, { services });
};

const TraceJson = Type.Object({
  event_id: Type.String(),
  client_id: Type.String(),
  tool: Type.String(),
  scope_used: Type.String(),
  status: TraceStatusSchema,
  started_at: Type.String(),
  duration_ms: Type.Integer(),
  user_sub: Type.Union([Type.String(), Type.Null()]),
  error_message: Type.Union([Type.String(), Type.Null()]),
  session_id: Type.Union([Type.String(), Type.Null()]),
  attributes: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()]),
  received_at: Type.String(),
  key_id: Type.String(),
  check_id: Type.Union([Type.String(), Type.Null()]),
  guard: Type.Optional(Type.Union([
    Type.Object({ decision: Type.String(), reason: Type.String(), rule_id: Type.Union([Type.String(), Type.Null()]), policy_version: Type.Integer(), approval_id: Type.Union([Type.String(), Type.Null()]), grant_id: Type.Union([Type.String(), Type.Null()]) }),
    Type.Null(),
  ], { description: 'The guard decision named by check_id (null when there is none or it is not this app\'s).' })),
});

function encodeCursor(t: StoredTrace): string {
  return Buffer.from(`${t.startedAtUs}.${t.seq}`).toString('base64url');
}

function decodeCursor(cursor: string): { startedAtUs: number; seq: number } {
  const m = /^(-?\d{1,17})\.(\d{1,17})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (m === null) throw new ApiError('invalid_cursor');
  return { startedAtUs: Number(m[1]), seq: Number(m[2]) };
}

/** The operator's timeline, a plugin of its own inside the trace routes' (registered after ingestion). */
const timelineRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const authenticated = requireOperator(services);
  app.get('/api/apps/:client_id/traces', {
    onRequest: authenticated,
    schema: {
      tags: ['traces'],
      summary: 'Traces of an application, newest first (by started_at), with keyset pagination',
      params: ClientIdParams,
      querystring: Type.Object({
        limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
        tool: Type.Optional(Type.String({ maxLength: LIMITS.toolLength })),
        status: Type.Optional(TraceStatusSchema),
        user_sub: Type.Optional(Type.String({ maxLength: LIMITS.userSubLength })),
        since: Type.Optional(Type.String({ format: 'date-time', description: 'started_at >= since' })),
        until: Type.Optional(Type.String({ format: 'date-time', description: 'started_at < until' })),
        cursor: Type.Optional(Type.String({ maxLength: 64, description: 'next_cursor of the previous page' })),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ traces: Type.Array(TraceJson), next_cursor: Type.Union([Type.String(), Type.Null()]) }), ...errorResponses(400, 401, 404) },
    },
  }, async (request) => {
    const target = await ownedApp(services, request);
    const q = request.query;
    const bound = (field: 'since' | 'until', value: string | undefined) => {
      if (value === undefined) return undefined;
      const us = parseRfc3339Micros(value);
      if (us === null) throw new ApiError('validation_failed', undefined, { fields: [{ field, message: timestampProblem(value) }] });
      return us;
    };
    const sinceUs = bound('since', q.since);
    const untilUs = bound('until', q.until);
    const traces = await services.store.traces.list({
      clientId: target.clientId,
      limit: q.limit + 1,
      tool: q.tool,
      status: q.status,
      userSub: q.user_sub,
      sinceUs,
      untilUs,
      before: q.cursor === undefined ? undefined : decodeCursor(q.cursor),
    });
    const page = traces.slice(0, q.limit);
    const checkIds = [...new Set(page.flatMap((t) => (t.checkId === null ? [] : [t.checkId])))];
    const checks = await services.store.guard.checksByIds(target.clientId, checkIds);
    const guard = new Map(checks.map((c) => [c.id, { decision: c.decision, reason: c.reason, rule_id: c.ruleId, policy_version: c.policyVersion, approval_id: c.approvalId, grant_id: c.grantId }]));
    return { traces: page.map((t) => traceJson(t, guard)), next_cursor: traces.length > q.limit ? encodeCursor(page[page.length - 1]!) : null };
  });
};
