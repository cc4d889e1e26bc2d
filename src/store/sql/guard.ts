/** SQL and row mapping the guard sub-stores of both engines share. */
import { type Row, num, strOrNull } from './row.js';
import { slots } from './params.js';
import type { CheckRecord, Grant, KillSwitch, StoredAnswer, StoredCheck, StoredPolicy } from '../types/guard.js';
import type { AnswerRow, CheckWrite, PendingApproval } from '../check-plan.js';

export const CHECK_COLUMNS = [
  'id', 'client_id', 'created_at', 'tool', 'scope', 'user_sub', 'session_id', 'event_id', 'arguments_hash', 'arguments',
  'decision', 'reason', 'rule_id', 'policy_version', 'approval_id', 'grant_id', 'key_id',
] as const;

export function checkValues(w: CheckWrite): unknown[] {
  const c = w.record;
  return [
    c.id, c.clientId, c.createdAt, c.tool, c.scope, c.userSub, c.sessionId, c.eventId, c.argumentsHash, c.arguments,
    c.decision, c.reason, c.ruleId, c.policyVersion, w.approvalId, c.grantId, c.keyId,
  ];
}

/** A record written as it is: what it opens, it opens (no cap or coalescing applies). */
export const asWritten = (r: CheckRecord): CheckWrite => ({ record: r, approvalId: r.approval?.id ?? null, opens: r.approval !== null });

export const INSERT_APPROVAL_SQL =
  `INSERT INTO approvals (id, client_id, check_id, rule_id, tool, scope, user_sub, session_id, arguments_hash, reason, status, created_at, expires_at)
   VALUES (${slots(10)}, 'pending', $11, $12)`;

export function approvalValues(c: CheckRecord): unknown[] {
  const a = c.approval!;
  return [a.id, c.clientId, c.id, a.ruleId, c.tool, c.scope, c.userSub, c.sessionId, c.argumentsHash, a.reason, c.createdAt, a.expiresAt];
}

export const GUARD_USAGE_SQL =
  `INSERT INTO usage_daily (client_id, day, hitl_requests, kill_switch) VALUES ($1, $2, $3, $4)
   ON CONFLICT (client_id, day) DO UPDATE SET hitl_requests = usage_daily.hitl_requests + excluded.hitl_requests,
     kill_switch = usage_daily.kill_switch + excluded.kill_switch`;

/** Per (app, UTC day) increments of the HITL (approvals opened) and kill-switch counters, sorted for a stable lock order. */
export function guardUsageIncrements(writes: readonly CheckWrite[]): Array<[string, string, number, number]> {
  const byKey = new Map<string, [string, string, number, number]>();
  for (const { record: r, opens } of writes) {
    if (!opens && !r.killed) continue;
    const day = new Date(r.createdAt).toISOString().slice(0, 10);
    const key = `${r.clientId}\u0000${day}`;
    const inc = byKey.get(key) ?? [r.clientId, day, 0, 0];
    if (opens) inc[2]++;
    if (r.killed) inc[3]++;
    byKey.set(key, inc);
  }
  return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
}

export const HIT_RATE_SQL =
  `INSERT INTO rate_counters (bucket, window_start, count, expires_at) VALUES ($1, $2, 1, $3)
   ON CONFLICT (bucket, window_start) DO UPDATE SET count = rate_counters.count + 1 RETURNING count`;

export const toPolicy = (r: Row): StoredPolicy => ({
  clientId: String(r.client_id),
  version: num(r.version),
  document: String(r.document),
  updatedAt: num(r.updated_at),
  updatedBy: String(r.updated_by),
});

export const toKillSwitch = (r: Row): KillSwitch => ({
  clientId: String(r.client_id),
  tool: String(r.tool),
  reason: String(r.reason),
  createdBy: String(r.created_by),
  createdAt: num(r.created_at),
});

export const toCheck = (r: Row): StoredCheck => ({
  id: String(r.id),
  clientId: String(r.client_id),
  createdAt: num(r.created_at),
  tool: String(r.tool),
  scope: String(r.scope),
  userSub: strOrNull(r.user_sub),
  sessionId: strOrNull(r.session_id),
  eventId: strOrNull(r.event_id),
  argumentsHash: String(r.arguments_hash),
  arguments: strOrNull(r.arguments),
  decision: String(r.decision) as StoredCheck['decision'],
  reason: String(r.reason),
  ruleId: strOrNull(r.rule_id),
  policyVersion: num(r.policy_version),
  approvalId: strOrNull(r.approval_id),
  grantId: strOrNull(r.grant_id),
  keyId: String(r.key_id),
});

export const toGrant = (r: Row): Grant => ({
  id: String(r.id),
  clientId: String(r.client_id),
  kind: String(r.kind) as Grant['kind'],
  tool: String(r.tool),
  userSub: strOrNull(r.user_sub),
  sessionId: strOrNull(r.session_id),
  argumentsHash: String(r.arguments_hash),
  approvalId: String(r.approval_id),
  createdBy: String(r.created_by),
  createdAt: num(r.created_at),
  expiresAt: r.expires_at === null || r.expires_at === undefined ? null : num(r.expires_at),
  revokedAt: r.revoked_at === null || r.revoked_at === undefined ? null : num(r.revoked_at),
  uses: num(r.uses),
});

export const ACTIVE_GRANTS_SQL =
  `SELECT * FROM grants WHERE client_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at`;

/** The app's pending approvals unexpired at `$2`: what a commit's cap and coalescing decide on. */
export const PENDING_APPROVALS_SQL =
  `SELECT id, client_id, tool, scope, user_sub, session_id, arguments_hash, created_at, expires_at FROM approvals
   WHERE client_id = $1 AND status = 'pending' AND expires_at > $2`;

export const toPendingApproval = (r: Row): PendingApproval => ({
  id: String(r.id),
  clientId: String(r.client_id),
  tool: String(r.tool),
  scope: String(r.scope),
  userSub: strOrNull(r.user_sub),
  sessionId: strOrNull(r.session_id),
  argumentsHash: String(r.arguments_hash),
  createdAt: num(r.created_at),
  expiresAt: num(r.expires_at),
});

export const toStoredAnswer = (r: Row): StoredAnswer & { clientId: string } => ({
  clientId: String(r.client_id),
  key: String(r.key),
  requestHash: String(r.request_hash),
  checkId: String(r.check_id),
  answer: String(r.answer),
  expiresAt: num(r.expires_at),
});

/** Writes an answer under a key unless an unexpired one is there (an expired one is replaced). */
export const UPSERT_ANSWER_SQL =
  `INSERT INTO idempotency_keys (client_id, key, request_hash, check_id, answer, created_at, expires_at)
   VALUES (${slots(7)})
   ON CONFLICT (client_id, key) DO UPDATE SET request_hash = excluded.request_hash, check_id = excluded.check_id,
     answer = excluded.answer, created_at = excluded.created_at, expires_at = excluded.expires_at
   WHERE idempotency_keys.expires_at <= excluded.created_at`;

export const answerValues = (a: AnswerRow): unknown[] => [a.clientId, a.key, a.requestHash, a.checkId, a.answer, a.createdAt, a.expiresAt];

/** One lock order for key rows everywhere (commits and replays), so two writers never wait on each other in a cycle. */
export const byAppThenKey = (a: { clientId: string; key: string }, b: { clientId: string; key: string }): number =>
  a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0;

export const CHECK_SQL = 'SELECT * FROM guard_checks WHERE client_id = $1 AND id = $2';
export const DELETE_KILL_SWITCH_SQL = 'DELETE FROM kill_switches WHERE client_id = $1 AND tool = $2 RETURNING *';
export const KEEP_ARGUMENTS_SQL = 'SELECT keep_arguments FROM apps WHERE client_id = $1';
export const KILL_SWITCHES_SQL = 'SELECT * FROM kill_switches WHERE client_id = $1 ORDER BY tool';
export const KILL_SWITCH_SQL = 'SELECT * FROM kill_switches WHERE client_id = $1 AND tool = $2';
export const POLICY_SQL = 'SELECT * FROM policies WHERE client_id = $1';
export const POLICY_VERSION_SQL = 'SELECT version FROM policies WHERE client_id = $1';
export const PRUNE_RATE_COUNTERS_SQL = 'DELETE FROM rate_counters WHERE expires_at < $1';
export const RECENT_CHECKS_SQL = 'SELECT * FROM guard_checks WHERE client_id = $1 AND created_at >= $2 ORDER BY created_at DESC LIMIT $3';
export const SET_KEEP_ARGUMENTS_SQL = 'UPDATE apps SET keep_arguments = $1 WHERE client_id = $2';
export const UPSERT_KILL_SWITCH_SQL = `INSERT INTO kill_switches (client_id, tool, reason, created_by, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (client_id, tool) DO UPDATE SET reason = excluded.reason, created_by = excluded.created_by, created_at = excluded.created_at`;
export const UPSERT_POLICY_SQL = `INSERT INTO policies (client_id, version, document, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (client_id) DO UPDATE SET version = excluded.version, document = excluded.document,
           updated_at = excluded.updated_at, updated_by = excluded.updated_by RETURNING *`;
