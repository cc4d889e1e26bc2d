/**
 * SQL that both engines run, written once in PostgreSQL's numbered-parameter form (`$1`, `$2`, …).
 * SQLite reads `$1` as a named parameter called "1", so the same text runs on better-sqlite3 with
 * its values bound by name through `numbered`; no rewriting of the statement is needed.
 */
import type { TraceQuery } from '../types/store.js';

/** better-sqlite3's binding of a statement's `$1`, `$2`, …: `{ 1: first, 2: second, … }`. */
export function numbered(params: readonly unknown[]): Record<string, unknown> {
  const bound: Record<string, unknown> = {};
  params.forEach((v, i) => (bound[i + 1] = v));
  return bound;
}

/** `$1, $2, …, $count`: the value list of an INSERT. */
export function slots(count: number): string {
  return Array.from({ length: count }, (_, i) => `$${i + 1}`).join(', ');
}

export function traceListQuery(q: TraceQuery): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const add = (v: unknown): string => {
    params.push(v);
    return `$${params.length}`;
  };
  const where = [`client_id = ${add(q.clientId)}`];
  if (q.tool !== undefined) where.push(`tool = ${add(q.tool)}`);
  if (q.status !== undefined) where.push(`status = ${add(q.status)}`);
  if (q.userSub !== undefined) where.push(`user_sub = ${add(q.userSub)}`);
  if (q.sinceUs !== undefined) where.push(`started_at_us >= ${add(q.sinceUs)}`);
  if (q.untilUs !== undefined) where.push(`started_at_us < ${add(q.untilUs)}`);
  if (q.before !== undefined) {
    const t = add(q.before.startedAtUs);
    // The first conjunct is implied by the second; it is there so the planner seeks the timeline
    // index to the cursor instead of walking every newer row (p50 220 ms before, 1 ms after, on a deep page of 900k rows).
    where.push(`started_at_us <= ${t}`);
    where.push(`(started_at_us < ${add(q.before.startedAtUs)} OR (started_at_us = ${add(q.before.startedAtUs)} AND seq < ${add(q.before.seq)}))`);
  }
  const sql = `SELECT * FROM traces WHERE ${where.join(' AND ')} ORDER BY started_at_us DESC, seq DESC LIMIT ${add(q.limit)}`;
  return { sql, params };
}

export const USAGE_SQL =
  `SELECT day, traces, errors, hitl_requests, kill_switch FROM usage_daily
   WHERE client_id = $1 AND day >= $2 AND day <= $3 ORDER BY day`;

export const USAGE_UPSERT_SQL =
  `INSERT INTO usage_daily (client_id, day, traces, errors) VALUES ($1, $2, $3, $4)
   ON CONFLICT (client_id, day) DO UPDATE SET traces = usage_daily.traces + excluded.traces,
     errors = usage_daily.errors + excluded.errors`;

/**
 * Rotation, of PAKs and of HMAC signing secrets alike: every one of the app's credentials still
 * valid at $2 now expires at $1, or earlier if it already did (a grace already running is never
 * lengthened); a grace of zero revokes them on the spot.
 */
export const EXPIRE_FOR_ROTATION_SQL = (table: 'paks' | 'app_secrets'): string =>
  `UPDATE ${table} SET
     expires_at = CASE WHEN expires_at IS NULL OR expires_at > $1 THEN $1 ELSE expires_at END,
     revoked_at = CASE WHEN $1 <= $2 THEN $2 ELSE NULL END
   WHERE client_id = $3 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)
   RETURNING *`;

export const EXPIRE_PAKS_SQL = EXPIRE_FOR_ROTATION_SQL('paks');

export const INSERT_PAK_SQL =
  `INSERT INTO paks (id, client_id, key_hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5)
   ON CONFLICT (client_id) WHERE revoked_at IS NULL AND expires_at IS NULL DO NOTHING RETURNING *`;
