/**
 * Traces and their daily usage. Times are integers: milliseconds since the epoch for bookkeeping
 * columns, microseconds for a trace's `started_at` (RFC 3339 allows sub-millisecond precision and
 * we keep it).
 */

export type TraceStatus = 'ok' | 'error' | 'denied' | 'timeout';

export interface TraceRow {
  clientId: string;
  eventId: string;
  tool: string;
  scopeUsed: string;
  status: TraceStatus;
  startedAtUs: number;
  /** UTC date of started_at, YYYY-MM-DD: the usage bucket. */
  day: string;
  durationMs: number;
  userSub: string | null;
  errorMessage: string | null;
  sessionId: string | null;
  /** The guard check that let this call run (`check_id` of POST /panopticon/guard/check), if any. */
  checkId: string | null;
  /** JSON text of the attributes object, or null. */
  attributes: string | null;
  keyId: string;
  receivedAt: number;
}

export interface StoredTrace extends TraceRow {
  seq: number;
}

export interface TraceQuery {
  clientId: string;
  limit: number;
  tool?: string | undefined;
  status?: TraceStatus | undefined;
  userSub?: string | undefined;
  sinceUs?: number | undefined;
  untilUs?: number | undefined;
  /** Keyset cursor: return traces strictly older than this (started_at, seq) pair. */
  before?: { startedAtUs: number; seq: number } | undefined;
}

export interface UsageRow {
  day: string;
  traces: number;
  errors: number;
  hitlRequests: number;
  killSwitch: number;
}

export interface TraceStore {
  /**
   * One durable group commit: inserts the rows that are new (per app and event_id) and adds them to
   * the daily usage in the same transaction. Returns, per input row, whether it was new. When one
   * event_id appears several times, only its first occurrence can be new.
   */
  insert(rows: readonly TraceRow[]): Promise<boolean[]>;
  /**
   * Transactions actually committed, where the engine merges several insert calls into one
   * (SQLite's commit worker); absent where each call is its own commit.
   */
  readonly commitStats?: { readonly commits: number; readonly rows: number };
  list(query: TraceQuery): Promise<StoredTrace[]>;
  count(clientId: string): Promise<number>;
  /** Traces of the app with seq > afterSeq, ascending by seq: the live stream's feed. */
  after(clientId: string, afterSeq: number, limit: number): Promise<StoredTrace[]>;
  /** The app's highest trace seq, 0 when it has none: where a live stream without history starts. */
  maxSeq(clientId: string): Promise<number>;
  usage(clientId: string, sinceDay: string, untilDay: string): Promise<UsageRow[]>;
}

/** How each status counts in the daily usage. */
export function isErrorStatus(status: TraceStatus): boolean {
  return status === 'error' || status === 'timeout';
}

/** Groups new rows into per (app, day) usage increments, sorted so concurrent writers lock in one order. */
export function usageIncrements(rows: readonly TraceRow[], isNew: readonly boolean[]): Array<{ clientId: string; day: string; traces: number; errors: number }> {
  const byKey = new Map<string, { clientId: string; day: string; traces: number; errors: number }>();
  for (let i = 0; i < rows.length; i++) {
    if (!isNew[i]) continue;
    const row = rows[i]!;
    const key = `${row.clientId}\u0000${row.day}`;
    let inc = byKey.get(key);
    if (inc === undefined) {
      inc = { clientId: row.clientId, day: row.day, traces: 0, errors: 0 };
      byKey.set(key, inc);
    }
    inc.traces++;
    if (isErrorStatus(row.status)) inc.errors++;
  }
  return [...byKey.values()].sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : a.day < b.day ? -1 : a.day > b.day ? 1 : 0));
}
