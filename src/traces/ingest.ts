/**
 * Pure steps of ingestion, between "the body matched the schema" and "the row is committed":
 * bounds the schema cannot express (attribute depth and size), time normalisation, and the row.
 */
import type { TraceRow } from '../store/types/store.js';
import { LIMITS, type TraceEvent } from './schema.js';

export interface FieldError {
  field: string;
  message: string;
}

export type PreparedTrace = { ok: true; row: TraceRow } | { ok: false; errors: FieldError[] };

/**
 * The instants a trace may carry: 1970-01-01T00:00:00Z through 2199-12-31T23:59:59.999999Z (UTC).
 * Microseconds since the epoch are exact in a JavaScript number only below 2^53 (mid-2255), and
 * a tool call before 1970 or after 2199 is a broken clock, not a record: refused, never adjusted.
 */
export const EARLIEST_STARTED_AT = '1970-01-01T00:00:00Z';
export const LATEST_STARTED_AT = '2199-12-31T23:59:59.999999Z';
const MAX_STARTED_AT_US = 7_258_118_399_999_999;

/**
 * Microseconds since the epoch, in UTC; null when the text is not an RFC 3339 date-time
 * (YYYY-MM-DD, T/t/space, hh:mm:ss, optional .fraction, Z/z or ±hh:mm) naming a real instant of the
 * accepted range. Digits past the sixth of a fraction are dropped (documented); nothing else is
 * changed: no year is reinterpreted, no day or second rolls over into the next (Feb 30, 24:00,
 * leap second 60 are refused). Read character by character with integer calendar arithmetic: it
 * runs on every trace, and a regex match or a Date allocated per call.
 */
export function parseTimestampMicros(text: string): number | null {
  const us = parseRfc3339Micros(text);
  return us === null || us < 0 || us > MAX_STARTED_AT_US ? null : us;
}

/** Why `text` is refused as a trace's started_at (called only once it was refused). */
export function timestampProblem(text: string): string {
  return parseRfc3339Micros(text) === null
    ? 'must be an RFC 3339 date-time: YYYY-MM-DDThh:mm:ss[.fraction] then Z or ±hh:mm, a real calendar date, seconds 00-59'
    : `must be between ${EARLIEST_STARTED_AT} and ${LATEST_STARTED_AT} (UTC)`;
}

/** Whether `us` is an instant a trace may carry. */
export function isAcceptedInstant(us: number): boolean {
  return Number.isSafeInteger(us) && us >= 0 && us <= MAX_STARTED_AT_US;
}

/** Like parseTimestampMicros without the range (query bounds may lie anywhere); exact for years 0000-9999. */
export function parseRfc3339Micros(text: string): number | null {
  const n = text.length;
  if (n < 20) return null;
  const y = digits(text, 0, 4);
  const mo = digits(text, 5, 2);
  const d = digits(text, 8, 2);
  const h = digits(text, 11, 2);
  const mi = digits(text, 14, 2);
  const s = digits(text, 17, 2);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59) return null;
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
    if (oh < 0 || oh > 23 || om < 0 || om > 59) return null;
    offsetMinutes = (zone === 45 ? -1 : 1) * (oh * 60 + om);
  } else {
    return null;
  }
  const seconds = daysFromCivil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offsetMinutes * 60;
  return seconds * 1_000_000 + micros;
}

function isLeapYear(y: number): boolean {
  return y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
}

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(y: number, mo: number): number {
  return mo === 2 && isLeapYear(y) ? 29 : MONTH_DAYS[mo - 1]!;
}

/** Days from 1970-01-01 to the proleptic Gregorian date (H. Hinnant's days_from_civil), any year. */
export function daysFromCivil(y: number, mo: number, d: number): number {
  const yy = mo <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
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
  if (startedAtUs === null) return { ok: false, errors: [{ field: 'started_at', message: timestampProblem(event.started_at) }] };
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
