/** What the SDK sends and receives; the wire names are those of docs/api.md. */

export type TraceStatus = 'ok' | 'error' | 'denied' | 'timeout';

/** A tool call to record. Only `tool`, `scope` and `status` are required. */
export interface TraceInput {
  tool: string;
  /** The OAuth scope the call used (`scope_used` on the wire). */
  scope: string;
  status: TraceStatus;
  /** Default: 0. */
  durationMs?: number;
  /** Default: now. */
  startedAt?: Date | string;
  /** The idempotency key (a UUID). Default: a fresh UUIDv7 (time-ordered; see uuid.ts). */
  eventId?: string;
  userSub?: string | null;
  sessionId?: string | null;
  errorMessage?: string | null;
  attributes?: Record<string, unknown> | null;
  /** The `checkId` of the guard decision that let this call run (or refused it): the timeline shows that decision. */
  checkId?: string | null;
}

/** One trace as `POST /panopticon/traces` takes it. */
export interface WireTrace {
  event_id: string;
  client_id: string;
  tool: string;
  scope_used: string;
  status: TraceStatus;
  started_at: string;
  duration_ms: number;
  user_sub?: string | null;
  session_id?: string | null;
  error_message?: string | null;
  attributes?: Record<string, unknown> | null;
  check_id?: string | null;
}

export interface CheckInput {
  tool: string;
  scope: string;
  userSub?: string | null;
  sessionId?: string | null;
  /** The call's arguments: policies can match on them; the server keeps only their hash unless told otherwise. */
  arguments?: Record<string, unknown> | null;
  /** The event_id the call will be traced with, linking the decision to the trace. */
  eventId?: string;
  /**
   * Sent as `Idempotency-Key` (1–255 visible ASCII characters, e.g. a UUID): asking again with the
   * same key and the same input within 24 h returns the first decision (same `checkId`, same
   * approval) instead of a new one. Use one per call you mean to make, and reuse it when you retry
   * after a timeout or a network error. The same key with a different input is refused
   * (`deny`, reason `idempotency_key_reused`).
   */
  idempotencyKey?: string;
}

export type Decision = 'allow' | 'deny' | 'require_approval';

export interface ApprovalRef {
  id: string;
  poll_url: string;
  expires_at: string;
}

export interface GuardDecision {
  decision: Decision;
  /**
   * The server's reason (`too_many_pending_approvals`: the app already has its cap of pending
   * approvals and none was opened, see `retryAfterSeconds`); `unreachable` or an error code when
   * the SDK decided (see `source`).
   */
  reason: string;
  message: string;
  /** `server`: the guard answered. `fail_open` / `fail_closed`: it could not be asked, and the SDK applied the fail mode. */
  source: 'server' | 'fail_open' | 'fail_closed';
  checkId: string | null;
  ruleId: string | null;
  approval: ApprovalRef | null;
  retryAfterSeconds?: number;
}

export type ApprovalOutcome = 'approved' | 'denied' | 'expired' | 'pending' | 'unreachable' | 'error';

export interface ApprovalResult {
  /**
   * `pending`: still undecided at the deadline. `unreachable`: the server could not be asked before
   * the deadline. `error`: the server refused the poll (unknown approval, revoked key); see `error`.
   */
  status: ApprovalOutcome;
  /** True only for `approved`: every other outcome means do not run the call. */
  approved: boolean;
  /** The approval object as the server last returned it. */
  approval: Record<string, unknown> | null;
  /** The server's error code, for `error` and `unreachable`. */
  error?: string;
}

export interface Stats {
  /** Traces waiting in memory (including the batch in flight). */
  buffered: number;
  /** Traces the server acknowledged (`accepted` or `duplicate`). */
  sent: number;
  /** Of `sent`, those the server already had (a resend after a lost acknowledgement, or from the spool). */
  duplicate: number;
  /** Traces sent again after a transient failure (one per trace per retry). */
  retried: number;
  /** Traces given up: the sum of the three below. */
  dropped: number;
  /** Oldest traces pushed out of the full buffer. */
  droppedOverflow: number;
  /** Traces the server refused as invalid (a 207 item `rejected`, or a 400 / 413 / 415 batch): resending cannot help. */
  droppedRejected: number;
  /** Traces still unsent when shutdown's deadline passed and no spool keeps them. */
  droppedShutdown: number;
  /** Requests that failed transiently (network, timeout, 429, 5xx, 401 / 403). */
  failedRequests: number;
}

/**
 * The pinned fields of an MCP `Tool` (an item of a `tools/list` result), with MCP's own names. Only
 * these are compared: `_meta`, `icons` and `execution` are left out.
 */
export interface ToolDefinition {
  name: string;
  title?: string;
  description?: string;
  inputSchema?: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
}

export interface ToolVerdict {
  name: string;
  /** Hex SHA-256 of the definition's canonical JSON. */
  hash: string;
  /** `approved`: show it and let calls through; `pending` (quarantined) or `rejected`: hide it, refuse its calls. */
  status: 'approved' | 'pending' | 'rejected';
  definitionId: string | null;
  /** The hash of the tool's pinned definition; null for a tool never approved (a new tool waiting for approval). */
  pinnedHash: string | null;
}

export type ToolReport =
  | { ok: true; newTools: 'allow' | 'require_approval'; tools: ToolVerdict[] }
  /**
   * No answer: `unreachable` (network, timeout, 429, 5xx: the caller applies its fail mode), or a
   * refusal that resending cannot fix (`code` is the server's error code, e.g. `pak_revoked`).
   */
  | { ok: false; unreachable: boolean; code: string; message: string };
