/**
 * The one catalogue of error codes that leave the API. Each code has one HTTP status and a default
 * message; docs/api.md and the OpenAPI document are checked against this list by a test, so a code
 * cannot be added here without being documented.
 *
 * Body shape: {"error":{"code","message","request_id", ...details}}.
 */
export const ERRORS = {
  // Trace API authentication (PAK)
  pak_missing: { status: 401, message: 'Authorization header with a Bearer PAK is required' },
  pak_malformed: { status: 401, message: 'The Authorization header is not a well-formed Panopticon PAK' },
  pak_invalid: { status: 401, message: 'The PAK is not recognised' },
  pak_revoked: { status: 401, message: 'The PAK has been revoked or its rotation grace period has ended' },
  panopticon_disabled: { status: 403, message: 'Panopticon is disabled for this application' },
  client_id_mismatch: { status: 403, message: 'client_id does not belong to the application of this PAK' },

  // HMAC request signing (when the app enforces it)
  signature_missing: { status: 401, message: 'This application requires an X-Panopticon-Signature header' },
  signature_malformed: { status: 401, message: 'X-Panopticon-Signature must be t=<unix seconds>,v1=<hex HMAC-SHA256>' },
  signature_expired: { status: 401, message: 'The signature timestamp is outside the 300 s tolerance' },
  signature_mismatch: { status: 401, message: 'No v1 signature matches the request' },

  // Request shape
  unsupported_media_type: { status: 415, message: 'Content-Type must be application/json' },
  payload_too_large: { status: 413, message: 'The request body is larger than allowed' },
  malformed_json: { status: 400, message: 'The request body is not valid JSON' },
  malformed_protobuf: { status: 400, message: 'The request body is not a valid OTLP protobuf message' },
  validation_failed: { status: 400, message: 'The request does not match the schema' },
  malformed_http: { status: 400, message: 'The request is not well-formed HTTP (request line, headers, Content-Length or chunking)' },
  headers_too_large: { status: 431, message: 'The request headers are larger than allowed' },
  batch_too_large: { status: 413, message: 'The batch holds more traces than allowed' },

  // Limits and availability
  rate_limited: { status: 429, message: 'Too many requests; retry after the time in Retry-After' },
  store_unavailable: { status: 503, message: 'The store is unavailable; nothing was stored, retry after Retry-After' },

  // Console / operator API
  unauthenticated: { status: 401, message: 'Sign in, or send an operator token as a Bearer token' },
  invalid_credentials: { status: 401, message: 'Email or password is wrong' },
  csrf_rejected: { status: 403, message: 'Cross-site request refused' },
  signup_closed: { status: 403, message: 'Sign-up is closed on this installation' },
  email_taken: { status: 409, message: 'An account with this email already exists' },
  app_not_found: { status: 404, message: 'No such application' },
  pak_not_found: { status: 404, message: 'No such PAK' },
  pak_exists: { status: 409, message: 'The application already has an active PAK; rotate it instead' },
  invalid_cursor: { status: 400, message: 'The cursor is not one this server issued' },

  // AI Guard
  rule_not_found: { status: 404, message: 'No such rule in this application\'s policy' },
  policy_conflict: { status: 409, message: 'The policy changed while this change was being applied; reload and retry' },
  policy_too_large: { status: 400, message: 'The policy would hold more rules than allowed' },
  kill_switch_not_found: { status: 404, message: 'That kill switch is not on' },
  approval_not_found: { status: 404, message: 'No such approval request' },
  approval_decided: { status: 409, message: 'The approval request was already decided or has expired' },
  grant_not_found: { status: 404, message: 'No such grant' },
  webhook_not_found: { status: 404, message: 'No such webhook endpoint' },
  hmac_not_enabled: { status: 409, message: 'HMAC signing is not enabled for this application' },
  hmac_already_enabled: { status: 409, message: 'HMAC signing is already enabled for this application; rotate the secret instead' },
  tool_definition_not_found: { status: 404, message: 'No such tool definition in this application' },
  tool_definition_decided: { status: 409, message: 'The tool definition was already decided: only a pending (or, to approve, a rejected) definition can be decided' },
  idempotency_key_reused: { status: 422, message: 'This Idempotency-Key was already used with a different request; use a new key for a new request' },

  // Audit log
  audit_head_invalid: { status: 400, message: 'The signed audit head was not issued by this server for this application' },
  audit_chain_broken: { status: 409, message: 'The audit log does not verify; its head cannot be signed' },
  route_not_found: { status: 404, message: 'No such route' },
  internal_error: { status: 500, message: 'Internal error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/**
 * An expected failure that ends the request: thrown from hooks/handlers and rendered once by the
 * error handler. Domain functions return result values instead; routes turn those into ApiErrors.
 */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>, headers?: Record<string, string>) {
    super(message ?? ERRORS[code].message);
    this.code = code;
    this.details = details;
    this.headers = headers;
  }

  get statusCode(): number {
    return ERRORS[this.code].status;
  }
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; request_id: string } & Record<string, unknown>;
}

export function errorBody(code: ErrorCode, message: string, requestId: string, details?: Record<string, unknown>): ErrorBody {
  return { error: { code, message, request_id: requestId, ...details } };
}
