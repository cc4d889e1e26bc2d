/**
 * The trace payload: one TypeBox definition gives validation (AJV), TypeScript types and the
 * OpenAPI document. Every field and the whole body are bounded; docs/api.md lists the same limits
 * (a test checks they agree).
 */
import { Type, type Static } from '@sinclair/typebox';

export const LIMITS = {
  traceBodyBytes: 64 * 1024,
  batchBodyBytes: 2 * 1024 * 1024,
  batchItems: 1000,
  toolLength: 256,
  scopeLength: 256,
  userSubLength: 256,
  sessionIdLength: 256,
  errorMessageLength: 4096,
  attributesBytes: 16 * 1024,
  attributesDepth: 8,
  attributesKeys: 64,
} as const;

export const CLIENT_ID_PATTERN = '^logi_[0-9a-f]{12}$';


export const TRACE_STATUSES = ['ok', 'error', 'denied', 'timeout'] as const;

/** A plain enum (not a union of literals) so a wrong value is reported with the allowed ones. */
export const TraceStatusSchema = Type.Unsafe<(typeof TRACE_STATUSES)[number]>({
  type: 'string',
  enum: [...TRACE_STATUSES],
  description: 'Outcome of the tool call. `error` and `timeout` count as errors in usage.',
});

export const TraceEvent = Type.Object(
  {
    event_id: Type.String({ format: 'uuid', description: 'Idempotency key, unique per application: a UUID, 8-4-4-4-12 hex digits (any case; stored lower-case).' }),
    client_id: Type.String({ pattern: CLIENT_ID_PATTERN, description: 'The application the PAK belongs to.' }),
    tool: Type.String({ minLength: 1, maxLength: LIMITS.toolLength }),
    scope_used: Type.String({ minLength: 1, maxLength: LIMITS.scopeLength }),
    status: TraceStatusSchema,
    started_at: Type.String({ format: 'date-time', maxLength: 40, description: 'RFC 3339 with an offset; stored in UTC to the microsecond.' }),
    duration_ms: Type.Integer({ minimum: 0, maximum: 2_147_483_647 }),
    user_sub: Type.Optional(Type.Union([Type.String({ maxLength: LIMITS.userSubLength }), Type.Null()])),
    error_message: Type.Optional(Type.Union([Type.String({ maxLength: LIMITS.errorMessageLength }), Type.Null()])),
    session_id: Type.Optional(Type.Union([Type.String({ maxLength: LIMITS.sessionIdLength }), Type.Null()])),
    check_id: Type.Optional(Type.Union([Type.String({ pattern: '^chk_[0-9A-Za-z]{16}$' }), Type.Null()], {
      description: 'The check_id of the guard decision that let this call run; the timeline then shows that decision and its rule.',
    })),
    attributes: Type.Optional(
      Type.Union([
        Type.Object({}, {
          additionalProperties: true,
          maxProperties: LIMITS.attributesKeys,
          description: `Free-form JSON object: at most ${LIMITS.attributesKeys} keys, nesting depth ${LIMITS.attributesDepth}, ${LIMITS.attributesBytes} bytes serialised.`,
        }),
        Type.Null(),
      ]),
    ),
  },
  { additionalProperties: false, $id: 'TraceEvent' },
);
export type TraceEvent = Static<typeof TraceEvent>;

export const TraceBatch = Type.Object(
  {
    traces: Type.Array(Type.Object({}, { additionalProperties: true }), {
      minItems: 1,
      // The count bound is enforced by the handler, which answers 413 batch_too_large.
      description: `At most ${LIMITS.batchItems} items; each is a TraceEvent, validated on its own.`,
    }),
  },
  { additionalProperties: false },
);
export type TraceBatch = Static<typeof TraceBatch>;

export const TraceAck = Type.Object({
  event_id: Type.String(),
  status: Type.Union([Type.Literal('accepted'), Type.Literal('duplicate')]),
});

/**
 * The answer of POST /panopticon/traces, shared by its 200 and 207 responses through
 * `Type.Ref('TraceBatchResult')`. Added by the server on its root instance, so the OpenAPI document
 * lists it once under components.schemas.
 */
export const TraceBatchResult = {
  $id: 'TraceBatchResult',
  type: 'object',
  properties: {
    accepted: { type: 'integer' },
    duplicate: { type: 'integer' },
    rejected: { type: 'integer' },
    results: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          event_id: { type: ['string', 'null'] },
          status: { type: 'string', enum: ['accepted', 'duplicate', 'rejected'] },
          error: {
            type: 'object',
            properties: {
              code: { type: 'string' },
              message: { type: 'string' },
              fields: { type: 'array', items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } } },
            },
          },
        },
      },
    },
  },
};
