/**
 * OTLP spans → traces. Pure functions, shared by the JSON and protobuf paths: the protobuf body is
 * decoded by the official OpenTelemetry definitions (decode.ts) into the same shape the OTLP/JSON
 * encoding has, ids as hex, so one mapping serves both.
 *
 * A span is a tool execution when it carries the OpenTelemetry GenAI convention
 * `gen_ai.operation.name = execute_tool`, or the MCP convention `mcp.method.name = tools/call`.
 * Every other span is counted and ignored.
 */
import crypto from 'node:crypto';
import { LIMITS, type TraceEvent } from '../traces/schema.js';
import { EARLIEST_STARTED_AT, formatMicros, isAcceptedInstant, LATEST_STARTED_AT } from '../traces/ingest.js';

export const OTLP_DEFAULT_SCOPE = 'otel';

/** Attribute keys copied into a trace's `attributes` (besides the ids), by prefix. */
const KEPT_PREFIXES = ['gen_ai.', 'mcp.', 'panopticon.', 'rpc.', 'error.', 'server.', 'network.'];
/** Message content can be large and personal: never copied. */
const NEVER_KEPT = new Set(['gen_ai.tool.call.arguments', 'gen_ai.tool.call.result', 'gen_ai.input.messages', 'gen_ai.output.messages', 'gen_ai.system_instructions']);
const MAX_KEPT_ATTRIBUTES = 32;
const MAX_ATTRIBUTE_CHARS = 256;

/** OTLP/JSON shapes (lowerCamelCase; int64 as string or number; enums as integers). */
export interface OtlpAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  arrayValue?: { values?: OtlpAnyValue[] };
  kvlistValue?: { values?: OtlpKeyValue[] };
  bytesValue?: string;
}
export interface OtlpKeyValue {
  key: string;
  value?: OtlpAnyValue;
}
export interface OtlpSpan {
  traceId?: string;
  spanId?: string;
  name?: string;
  startTimeUnixNano?: string | number;
  endTimeUnixNano?: string | number;
  attributes?: OtlpKeyValue[];
  status?: { code?: number | string; message?: string };
}
export interface OtlpTraceRequest {
  resourceSpans?: Array<{ resource?: { attributes?: OtlpKeyValue[] }; scopeSpans?: Array<{ spans?: OtlpSpan[] }> }>;
}

export type SpanOutcome =
  | { kind: 'trace'; event: TraceEvent }
  | { kind: 'ignored' }
  | { kind: 'rejected'; reason: string };

type Scalar = string | number | boolean | null;

/** An AnyValue as a plain JSON value (arrays and maps kept shallow; bytes stay base64). */
export function plainValue(v: OtlpAnyValue | undefined, depth = 0): unknown {
  if (v === undefined || v === null || typeof v !== 'object') return null;
  if (typeof v.stringValue === 'string') return v.stringValue;
  if (typeof v.boolValue === 'boolean') return v.boolValue;
  if (v.intValue !== undefined && v.intValue !== null) {
    const n = Number(v.intValue);
    return Number.isSafeInteger(n) ? n : String(v.intValue);
  }
  if (typeof v.doubleValue === 'number') return v.doubleValue;
  if (typeof v.bytesValue === 'string') return v.bytesValue;
  if (depth >= 2) return null;
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).slice(0, 32).map((x) => plainValue(x, depth + 1));
  if (v.kvlistValue !== undefined) {
    const out: Record<string, unknown> = {};
    for (const kv of (v.kvlistValue.values ?? []).slice(0, 32)) out[kv.key] = plainValue(kv.value, depth + 1);
    return out;
  }
  return null;
}

function attributeMap(list: OtlpKeyValue[] | undefined): Map<string, unknown> {
  const map = new Map<string, unknown>();
  if (!Array.isArray(list)) return map;
  for (const kv of list) if (kv !== null && typeof kv === 'object' && typeof kv.key === 'string') map.set(kv.key, plainValue(kv.value));
  return map;
}

const text = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : null);

function firstText(attrs: Map<string, unknown>, keys: string[]): string | null {
  for (const k of keys) {
    const v = text(attrs.get(k));
    if (v !== null) return v;
  }
  return null;
}

const HEX = (n: number) => new RegExp(`^[0-9a-fA-F]{${n}}$`);
const TRACE_ID = HEX(32);
const SPAN_ID = HEX(16);

function nanos(value: string | number | undefined): bigint | null {
  if (value === undefined || value === null) return null;
  const s = typeof value === 'number' ? (Number.isSafeInteger(value) ? String(value) : '') : String(value);
  return /^\d{1,20}$/.test(s) ? BigInt(s) : null;
}

/**
 * A deterministic UUID (version 5 layout, SHA-1) of the app, trace id and span id: the same span
 * resent — by an exporter's retry or a collector replay — is the same event_id, so it is stored once.
 */
export function spanEventId(clientId: string, traceId: string, spanId: string): string {
  const h = crypto.createHash('sha1').update(`panopticon-otlp\u0000${clientId}\u0000${traceId.toLowerCase()}\u0000${spanId.toLowerCase()}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

export function isToolSpan(attrs: Map<string, unknown>): boolean {
  return attrs.get('gen_ai.operation.name') === 'execute_tool' || attrs.get('mcp.method.name') === 'tools/call';
}

function keptAttributes(attrs: Map<string, unknown>, resource: Map<string, unknown>, span: OtlpSpan, traceId: string, spanId: string): Record<string, unknown> {
  const out: Record<string, unknown> = { 'otel.trace_id': traceId.toLowerCase(), 'otel.span_id': spanId.toLowerCase() };
  if (typeof span.name === 'string') out['otel.span_name'] = span.name.slice(0, MAX_ATTRIBUTE_CHARS);
  const service = text(resource.get('service.name'));
  if (service !== null) out['service.name'] = service.slice(0, MAX_ATTRIBUTE_CHARS);
  let budget = LIMITS.attributesBytes - Buffer.byteLength(JSON.stringify(out)) - 64;
  for (const [key, value] of attrs) {
    if (Object.keys(out).length >= MAX_KEPT_ATTRIBUTES) break;
    if (NEVER_KEPT.has(key) || !KEPT_PREFIXES.some((p) => key.startsWith(p)) || key.length > 128) continue;
    let v: Scalar;
    if (value === null || typeof value === 'number' || typeof value === 'boolean') v = value as Scalar;
    else if (typeof value === 'string') v = value.slice(0, MAX_ATTRIBUTE_CHARS);
    else v = JSON.stringify(value).slice(0, MAX_ATTRIBUTE_CHARS);
    const cost = Buffer.byteLength(JSON.stringify(key)) + Buffer.byteLength(JSON.stringify(v)) + 2;
    if (cost > budget) continue;
    budget -= cost;
    out[key] = v;
  }
  return out;
}

const STATUSES = new Set(['ok', 'error', 'denied', 'timeout']);

/** One span of a resource: a trace, or why it was ignored or rejected. */
export function mapSpan(span: OtlpSpan, resource: Map<string, unknown>, clientId: string): SpanOutcome {
  if (span === null || typeof span !== 'object') return { kind: 'rejected', reason: 'a span is not an object' };
  const attrs = attributeMap(span.attributes);
  if (!isToolSpan(attrs)) return { kind: 'ignored' };

  const traceId = typeof span.traceId === 'string' ? span.traceId : '';
  const spanId = typeof span.spanId === 'string' ? span.spanId : '';
  if (!TRACE_ID.test(traceId) || /^0+$/.test(traceId)) return { kind: 'rejected', reason: 'traceId must be 16 bytes, not all zero' };
  if (!SPAN_ID.test(spanId) || /^0+$/.test(spanId)) return { kind: 'rejected', reason: 'spanId must be 8 bytes, not all zero' };

  // Span names of these conventions are "execute_tool <tool>" and "tools/call <tool>".
  const fromName = typeof span.name === 'string' && / /.test(span.name) ? span.name.slice(span.name.indexOf(' ') + 1).trim() : '';
  const tool = firstText(attrs, ['gen_ai.tool.name', 'mcp.tool.name']) ?? (fromName === '' ? null : fromName);
  if (tool === null) return { kind: 'rejected', reason: `span ${spanId}: a tool span needs gen_ai.tool.name` };

  const start = nanos(span.startTimeUnixNano);
  const end = nanos(span.endTimeUnixNano);
  if (start === null || start === 0n) return { kind: 'rejected', reason: `span ${spanId}: startTimeUnixNano is missing or not a uint64 count of nanoseconds` };
  const startUs = start / 1000n;
  if (startUs > BigInt(Number.MAX_SAFE_INTEGER) || !isAcceptedInstant(Number(startUs))) {
    return { kind: 'rejected', reason: `span ${spanId}: startTimeUnixNano must fall between ${EARLIEST_STARTED_AT} and ${LATEST_STARTED_AT}` };
  }
  const durationNs = end !== null && end > start ? end - start : 0n;
  const durationMs = Number(durationNs / 1_000_000n);

  const code = span.status?.code;
  const failed = code === 2 || code === 'STATUS_CODE_ERROR';
  const errorType = text(attrs.get('error.type'));
  const declared = text(attrs.get('panopticon.status'));
  let status: TraceEvent['status'] = failed || errorType !== null ? 'error' : 'ok';
  if (status === 'error' && errorType !== null && /timeout/i.test(errorType)) status = 'timeout';
  if (declared !== null && STATUSES.has(declared)) status = declared as TraceEvent['status'];
  const errorMessage = status === 'ok' ? null : (text(span.status?.message) ?? errorType);

  const event: TraceEvent = {
    event_id: spanEventId(clientId, traceId, spanId),
    client_id: clientId,
    tool,
    scope_used: firstText(attrs, ['panopticon.scope', 'enduser.scope']) ?? OTLP_DEFAULT_SCOPE,
    status,
    started_at: formatMicros(Number(startUs)),
    duration_ms: Math.min(durationMs, 2_147_483_647),
    user_sub: firstText(attrs, ['enduser.id', 'user.id']),
    session_id: firstText(attrs, ['gen_ai.conversation.id', 'mcp.session.id', 'session.id']),
    error_message: errorMessage === null ? null : errorMessage.slice(0, LIMITS.errorMessageLength),
    attributes: keptAttributes(attrs, resource, span, traceId, spanId),
  };
  return { kind: 'trace', event };
}

export function resourceAttributes(resource: { attributes?: OtlpKeyValue[] } | undefined): Map<string, unknown> {
  return attributeMap(resource?.attributes);
}
