/**
 * Pure steps of ingestion, between "the body matched the schema" and "the row is committed":
 * bounds the schema cannot express (attribute depth and size), time normalisation, and the row.
 */
import type { TraceRow } from '../store/types.js';
import { LIMITS, type TraceEvent } from './schema.js';

export interface FieldError {
  field: string;
  message: string;
}

export type PreparedTrace = { ok: true; row: TraceRow } | { ok: false; errors: FieldError[] };

/**
 * Microseconds since the epoch, in UTC; null when the text is not RFC 3339
 * (YYYY-MM-DD, T/t/space, hh:mm:ss, optional .fraction, Z/z or ±hh:mm). Read character by character:
 * it runs on every trace, and a regex match allocated a dozen strings per call.
 */
export function parseTimestampMicros(text: string): number | null {
  const n = text.length;
  if (n < 20) return null;
  const y = digits(text, 0, 4);
  const mo = digits(text, 5, 2);
  const d = digits(text, 8, 2);
  const h = digits(text, 11, 2);
  const mi = digits(text, 14, 2);
  const s = digits(text, 17, 2);
  if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || s < 0) return null;
  const sep = text.charCodeAt(10);
  if (text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45 || (sep !== 84 && sep !== 116 && sep !== 32)) return null; // '-', 'T' 't' ' '
  if (text.charCodeAt(13) !== 58 || text.charCodeAt(16) !== 58) return null; // ':'
  let i = 19;
  let micros = 0;
  if (text.charCodeAt(i) === 46) {
    // '.', then one or more digits; the first six are microseconds, the rest are cut.
    const start = ++i;
    while (i < n && isDigit(text.charCodeAt(i))) {
      if (i - start < 6) micros = micros * 10 + (text.charCodeAt(i) - 48);
      i++;
    }
    if (i === start) return null;
    for (let k = Math.min(i - start, 6); k < 6; k++) micros *= 10;
  }
  let offsetMinutes = 0;
  const zone = text.charCodeAt(i);
  if (zone === 90 || zone === 122) {
    // 'Z' or 'z'
    if (i + 1 !== n) return null;
  } else if (zone === 43 || zone === 45) {
    // '+hh:mm' or '-hh:mm'
    if (i + 6 !== n || text.charCodeAt(i + 3) !== 58) return null;
    const oh = digits(text, i + 1, 2);
    const om = digits(text, i + 4, 2);
    if (oh < 0 || om < 0) return null;
    offsetMinutes = (zone === 45 ? -1 : 1) * (oh * 60 + om);
  } else {
    return null;
  }
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  if (Number.isNaN(ms)) return null;
  return (ms - offsetMinutes * 60_000) * 1000 + micros;
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

/** The value of `count` decimal digits at `at`, or -1 when any is not a digit. */
function digits(text: string, at: number, count: number): number {
  let value = 0;
  for (let k = at; k < at + count; k++) {
    const code = text.charCodeAt(k);
    if (!isDigit(code)) return -1;
    value = value * 10 + (code - 48);
  }
  return value;
}

/** RFC 3339 in UTC, with microseconds only when there are any. */
export function formatMicros(us: number): string {
  const ms = Math.floor(us / 1000);
  const iso = new Date(ms).toISOString();
  const rest = us - ms * 1000;
  return rest === 0 ? iso : `${iso.slice(0, -1)}${String(rest).padStart(3, '0')}Z`;
}

const DAY_MS = 86_400_000;
// Nearly every trace of a moment falls on the same day: remember the last one instead of
// formatting a Date per row.
let cachedDayStartMs = Number.NaN;
let cachedDay = '';

export function utcDay(us: number): string {
  const ms = Math.floor(us / 1000);
  if (ms >= cachedDayStartMs && ms < cachedDayStartMs + DAY_MS) return cachedDay;
  const day = new Date(ms).toISOString().slice(0, 10);
  cachedDayStartMs = Math.floor(ms / DAY_MS) * DAY_MS;
  cachedDay = day;
  return day;
}

/** Nesting depth of objects and arrays (the value itself is level 1), counted no further than limit + 1. */
export function depthOf(value: object, limit: number, depth = 1): number {
  let max = depth;
  for (const child of Object.values(value)) {
    if (child === null || typeof child !== 'object') continue;
    max = Math.max(max, depth + 1 > limit ? depth + 1 : depthOf(child as object, limit, depth + 1));
    if (max > limit) break;
  }
  return max;
}

declare global {
  // ES2024, in Node >= 20; TypeScript's ES2022 lib does not declare them.
  interface String {
    isWellFormed(): boolean;
    toWellFormed(): string;
  }
}

/**
 * The text fields stored as columns. PostgreSQL text cannot hold U+0000: one such value would fail
 * the whole group commit it rides, and with it other requests' rows, so it is refused here, alone.
 * (Attributes are stored as JSON text, where it stays escaped.)
 */
const TEXT_FIELDS = ['tool', 'scope_used', 'user_sub', 'error_message', 'session_id'] as const;

function nulField(event: TraceEvent): string | null {
  for (const field of TEXT_FIELDS) {
    const value = event[field];
    if (typeof value === 'string' && value.includes('\u0000')) return field;
  }
  return null;
}

/**
 * A lone UTF-16 surrogate (JSON allows "\ud800") has no UTF-8 form: it is stored as U+FFFD, as
 * SQLite's driver would write it anyway, so that PostgreSQL (which refuses it) never fails a whole
 * group commit over one request's text.
 */
function wellFormed<T extends string | null | undefined>(value: T): T {
  return (typeof value === 'string' && !value.isWellFormed() ? value.toWellFormed() : value) as T;
}

export function prepareTrace(event: TraceEvent, keyId: string, receivedAt: number): PreparedTrace {
  const withNul = nulField(event);
  if (withNul !== null) return { ok: false, errors: [{ field: withNul, message: 'must not contain U+0000 (NUL)' }] };
  const startedAtUs = parseTimestampMicros(event.started_at);
  if (startedAtUs === null) return { ok: false, errors: [{ field: 'started_at', message: 'must be an RFC 3339 date-time' }] };
  let attributes: string | null = null;
  if (event.attributes !== undefined && event.attributes !== null) {
    if (depthOf(event.attributes, LIMITS.attributesDepth) > LIMITS.attributesDepth) {
      return { ok: false, errors: [{ field: 'attributes', message: `must not nest deeper than ${LIMITS.attributesDepth} levels` }] };
    }
    attributes = JSON.stringify(event.attributes);
    // A UTF-16 code unit is at most 3 bytes of UTF-8: short text cannot be over, so skip the count.
    if (attributes.length * 3 > LIMITS.attributesBytes && Buffer.byteLength(attributes) > LIMITS.attributesBytes) {
      return { ok: false, errors: [{ field: 'attributes', message: `must not exceed ${LIMITS.attributesBytes} bytes as JSON` }] };
    }
  }
  return {
    ok: true,
    row: {
      clientId: event.client_id,
      eventId: event.event_id.toLowerCase(),
      tool: wellFormed(event.tool),
      scopeUsed: wellFormed(event.scope_used),
      status: event.status,
      startedAtUs,
      day: utcDay(startedAtUs),
      durationMs: event.duration_ms,
      userSub: wellFormed(event.user_sub ?? null),
      errorMessage: wellFormed(event.error_message ?? null),
      sessionId: wellFormed(event.session_id ?? null),
      checkId: event.check_id ?? null,
      attributes,
      keyId,
      receivedAt,
    },
  };
}
