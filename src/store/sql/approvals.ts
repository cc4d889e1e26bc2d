/** SQL and row mapping the approval sub-stores of both engines share. */
import { type Row, num, numOrNull, strOrNull } from './row.js';
import { slots } from './params.js';
import type { Approval, ApprovalQuery, DecideInput } from '../types/approvals.js';

export const toApproval = (r: Row): Approval => ({
  id: String(r.id),
  clientId: String(r.client_id),
  checkId: String(r.check_id),
  ruleId: strOrNull(r.rule_id),
  tool: String(r.tool),
  scope: String(r.scope),
  userSub: strOrNull(r.user_sub),
  sessionId: strOrNull(r.session_id),
  argumentsHash: String(r.arguments_hash),
  reason: String(r.reason),
  status: String(r.status) as Approval['status'],
  createdAt: num(r.created_at),
  expiresAt: num(r.expires_at),
  decidedAt: numOrNull(r.decided_at),
  decidedBy: strOrNull(r.decided_by),
  comment: strOrNull(r.comment),
  remember: strOrNull(r.remember) as Approval['remember'],
  grantId: strOrNull(r.grant_id),
});

/**
 * The compare-and-set of a decision: only a pending approval that has not expired at the decision
 * time changes; zero rows back means someone else decided first, or it expired.
 */
export const DECIDE_SQL =
  `UPDATE approvals SET status = $1, decided_at = $2, decided_by = $3, comment = $4, remember = $5, grant_id = $6
   WHERE id = $7 AND client_id = $8 AND status = 'pending' AND expires_at > $2 RETURNING *`;

/** The apps a sweep at this time may touch: their pending approvals are due. */
export const APPS_WITH_DUE_SQL =
  `SELECT DISTINCT client_id FROM approvals WHERE status = 'pending' AND expires_at <= $1`;

export const decideValues = (d: DecideInput): unknown[] =>
  [d.status, d.now, d.decidedBy, d.comment, d.remember, d.grant?.id ?? null, d.approvalId, d.clientId];

export const INSERT_GRANT_SQL =
  `INSERT INTO grants (id, client_id, kind, tool, user_sub, session_id, arguments_hash, approval_id, created_by, created_at, expires_at, uses)
   VALUES (${slots(11)}, 0) RETURNING *`;

/** A `session` grant is bound to the approval's session; an `always` grant to no session. */
export function grantValues(d: DecideInput, a: Approval): unknown[] {
  const g = d.grant!;
  return [g.id, a.clientId, g.kind, a.tool, a.userSub, g.kind === 'session' ? a.sessionId : null, a.argumentsHash, a.id, d.decidedBy, d.now, g.expiresAt];
}

export function approvalListQuery(q: ApprovalQuery): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const add = (v: unknown): string => {
    params.push(v);
    return `$${params.length}`;
  };
  const where = [`client_id = ${add(q.clientId)}`];
  if (q.status === 'pending') where.push(`status = 'pending' AND expires_at > ${add(q.now)}`);
  else if (q.status === 'expired') where.push(`(status = 'expired' OR (status = 'pending' AND expires_at <= ${add(q.now)}))`);
  else if (q.status !== undefined) where.push(`status = ${add(q.status)}`);
  if (q.before !== undefined) {
    where.push(`(created_at < ${add(q.before.createdAt)} OR (created_at = ${add(q.before.createdAt)} AND id < ${add(q.before.id)}))`);
  }
  return { sql: `SELECT * FROM approvals WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id DESC LIMIT ${add(q.limit)}`, params };
}

export const LIST_GRANTS_SQL = (includeRevoked: boolean): string =>
  `SELECT * FROM grants WHERE client_id = $1${includeRevoked ? '' : ' AND revoked_at IS NULL'} ORDER BY created_at DESC, id DESC`;

/** Audit appends lock app rows (on PostgreSQL); one order everywhere keeps concurrent sweeps from deadlocking. */
export const byClientThenId = (a: Approval, b: Approval): number =>
  a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;

export const APPROVAL_BY_ID_SQL = 'SELECT * FROM approvals WHERE id = $1';
export const APPROVAL_SQL = 'SELECT * FROM approvals WHERE id = $1 AND client_id = $2';
export const GRANT_SQL = 'SELECT * FROM grants WHERE id = $1 AND client_id = $2';
export const REVOKE_GRANT_SQL = 'UPDATE grants SET revoked_at = $1 WHERE id = $2 AND client_id = $3 AND revoked_at IS NULL RETURNING *';
