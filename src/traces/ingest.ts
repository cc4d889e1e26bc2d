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

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|([+-])(\d{2}):(\d{2}))$/;

/** Microseconds since the epoch, in UTC; null when the text is not RFC 3339. */
export function parseTimestampMicros(text: string): number | null {
  const m = RFC3339.exec(text);
  if (m === null) return null;
  const [, y, mo, d, h, mi, s, frac, , sign, oh, om] = m;
  let ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(ms)) return null;
  if (sign !== undefined) ms -= (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om)) * 60_000;
  const micros = frac === undefined ? 0 : Number(frac.slice(0, 6).padEnd(6, '0'));
  return ms * 1000 + micros;
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
