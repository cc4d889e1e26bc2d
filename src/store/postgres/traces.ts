/**
 * Traces on PostgreSQL. A group commit is one statement (one round trip, one implicit
 * transaction); several nodes commit side by side, their rows sorted so they lock in one order.
 */
import type pg from 'pg';
import { storeError } from '../errors.js';
import { COUNT_TRACES_SQL, MAX_TRACE_SEQ_SQL, toTrace, toUsage, TRACE_COLUMNS, traceListQuery, TRACES_AFTER_SQL, USAGE_SQL } from '../sql/traces.js';
import type { TraceQuery, TraceRow, TraceStore } from '../types/traces.js';
import type { WriteHealth } from '../write-health.js';
import type { PgDb } from './db.js';

type Row = Record<string, unknown>;

/** TraceRow's fields, as json_to_recordset reads them, in TRACE_COLUMNS order. */
const TRACE_RECORD_FIELDS: ReadonlyArray<readonly [keyof TraceRow, string]> = [
  ['clientId', 'text'], ['eventId', 'text'], ['tool', 'text'], ['scopeUsed', 'text'], ['status', 'text'],
  ['startedAtUs', 'bigint'], ['day', 'text'], ['durationMs', 'bigint'], ['userSub', 'text'], ['errorMessage', 'text'],
  ['sessionId', 'text'], ['attributes', 'text'], ['keyId', 'text'], ['receivedAt', 'bigint'], ['checkId', 'text'],
];

/**
 * One statement, so one round trip and one implicit transaction: insert the new rows, add them to
 * the daily usage, and report which (app, event_id) pairs were new. The rows arrive as one JSON
 * parameter (JSON.stringify of the TraceRow objects), so the statement is prepared once whatever
 * the batch size; encoding 15 arrays element by element in pg's JavaScript cost more per row than
 * the insert.
 */
const INSERT_TRACES_SQL = `
  WITH input AS (
    SELECT ${TRACE_RECORD_FIELDS.map(([field], i) => `"${field}" AS ${TRACE_COLUMNS[i]}`).join(', ')}
    FROM json_to_recordset($1::json) AS t(${TRACE_RECORD_FIELDS.map(([field, type]) => `"${field}" ${type}`).join(', ')})
  ), ins AS (
    INSERT INTO traces (${TRACE_COLUMNS.join(', ')})
    SELECT ${TRACE_COLUMNS.join(', ')} FROM input
    ON CONFLICT (client_id, event_id) DO NOTHING
    RETURNING client_id, event_id, day, status
  ), usage AS (
    INSERT INTO usage_daily (client_id, day, traces, errors)
    SELECT client_id, day, count(*), count(*) FILTER (WHERE status IN ('error', 'timeout'))
    FROM ins GROUP BY client_id, day ORDER BY client_id, day
    ON CONFLICT (client_id, day) DO UPDATE SET traces = usage_daily.traces + excluded.traces,
      errors = usage_daily.errors + excluded.errors
  )
  SELECT client_id, event_id FROM ins`;

const DEADLOCK = '40P01';

export class PostgresTraceStore implements TraceStore {
  constructor(private readonly db: PgDb, private readonly pool: pg.Pool, private readonly writeHealth: WriteHealth) {}

  async insert(rows: readonly TraceRow[]): Promise<boolean[]> {
    if (rows.length === 0) return [];
    // Sorted input makes concurrent commits (several nodes) take row locks in one order.
    const sorted = [...rows].sort(compareKey);
    const json = JSON.stringify(sorted);
    let inserted: Row[];
    for (let attempt = 1; ; attempt++) {
      try {
        inserted = (await this.pool.query({ name: 'panopticon_insert_traces', text: INSERT_TRACES_SQL, values: [json] })).rows as Row[];
        break;
      } catch (err) {
        if ((err as { code?: string }).code !== DEADLOCK || attempt >= 3) {
          this.writeHealth.failed(err);
          throw storeError(err);
        }
      }
    }
    this.writeHealth.succeeded();
    const newKeys = new Set(inserted.map((r) => `${r.client_id as string}\u0000${r.event_id as string}`));
    return rows.map((row) => newKeys.delete(`${row.clientId}\u0000${row.eventId}`));
  }

  async list(query: TraceQuery) {
    const { sql, params } = traceListQuery(query);
    return (await this.db.q(sql, params)).map(toTrace);
  }

  async count(clientId: string) {
    return Number((await this.db.q(COUNT_TRACES_SQL, [clientId]))[0]!.n);
  }

  async after(clientId: string, afterSeq: number, limit: number) {
    return (await this.db.q(TRACES_AFTER_SQL, [clientId, afterSeq, limit])).map(toTrace);
  }

  async maxSeq(clientId: string) {
    return Number((await this.db.q(MAX_TRACE_SEQ_SQL, [clientId]))[0]!.m);
  }

  async usage(clientId: string, sinceDay: string, untilDay: string) {
    return (await this.db.q(USAGE_SQL, [clientId, sinceDay, untilDay])).map(toUsage);
  }
}

function compareKey(a: TraceRow, b: TraceRow): number {
  if (a.clientId !== b.clientId) return a.clientId < b.clientId ? -1 : 1;
  return a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0;
}
