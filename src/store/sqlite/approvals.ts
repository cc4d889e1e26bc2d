/** The approval sub-store on SQLite: one immediate transaction per change, so a decision cannot interleave with another. */
import type Database from 'better-sqlite3';
import type { AuditKey } from '../../crypto/audit-key.js';
import type { Approval, ApprovalQuery, ApprovalStore, DecideInput, DecideResult, ExpiryEffects } from '../types/approvals.js';
import { approvalListQuery, APPS_WITH_DUE_SQL, byClientThenId, DECIDE_SQL, decideValues, grantValues, INSERT_GRANT_SQL, LIST_GRANTS_SQL, toApproval, APPROVAL_BY_ID_SQL, APPROVAL_SQL, GRANT_SQL, REVOKE_GRANT_SQL } from '../sql/approvals.js';
import type { AuditInput } from '../types/guard.js';
import { toGrant } from '../sql/guard.js';
import { numbered } from '../sql/params.js';
import { appendAuditSync } from './audit.js';
import { insertDeliveriesSync } from './outbox.js';

type Row = Record<string, unknown>;

export class SqliteApprovalStore implements ApprovalStore {
  constructor(private readonly db: Database.Database, private readonly key: AuditKey, private readonly outboxLimit: number) {}

  async get(approvalId: string) {
    const r = this.db.prepare(APPROVAL_BY_ID_SQL).get(numbered([approvalId])) as Row | undefined;
    return r ? toApproval(r) : null;
  }

  async list(query: ApprovalQuery) {
    const { sql, params } = approvalListQuery(query);
    return (this.db.prepare(sql).all(numbered(params)) as Row[]).map(toApproval);
  }

  async decide(input: DecideInput): Promise<DecideResult> {
    return this.db.transaction((): DecideResult => {
      const r = this.db.prepare(DECIDE_SQL).get(numbered(decideValues(input))) as Row | undefined;
      if (r === undefined) {
        const current = this.db.prepare(APPROVAL_SQL).get(numbered([input.approvalId, input.clientId])) as Row | undefined;
        return current === undefined ? { ok: false, reason: 'not_found' } : { ok: false, reason: 'decided', approval: toApproval(current) };
      }
      const approval = toApproval(r);
      const g = input.grant === null ? null : (this.db.prepare(INSERT_GRANT_SQL).get(numbered(grantValues(input, approval))) as Row);
      for (const a of input.audit) appendAuditSync(this.db, this.key, a);
      insertDeliveriesSync(this.db, input.deliveries, this.outboxLimit);
      return { ok: true, approval, grant: g === null ? null : toGrant(g) };
    }).immediate();
  }

  async expireDue(now: number, limit: number, effects: (a: Approval) => ExpiryEffects) {
    return this.db.transaction(() => {
      const rows = this.db.prepare(
        `UPDATE approvals SET status = 'expired', decided_at = expires_at
         WHERE id IN (SELECT id FROM approvals WHERE status = 'pending' AND expires_at <= ? ORDER BY expires_at LIMIT ?) RETURNING *`,
      ).all(now, limit) as Row[];
      const expired = rows.map(toApproval).sort(byClientThenId);
      for (const a of expired) {
        const e = effects(a);
        appendAuditSync(this.db, this.key, e.audit);
        insertDeliveriesSync(this.db, e.deliveries, this.outboxLimit);
      }
      return expired;
    }).immediate();
  }

  async appsWithDue(now: number) {
    return (this.db.prepare(APPS_WITH_DUE_SQL).all(numbered([now])) as Array<{ client_id: string }>).map((r) => r.client_id);
  }

  async listGrants(clientId: string, options: { includeRevoked: boolean }) {
    return (this.db.prepare(LIST_GRANTS_SQL(options.includeRevoked)).all(numbered([clientId])) as Row[]).map(toGrant);
  }

  async revokeGrant(input: { clientId: string; grantId: string; now: number; audit: AuditInput }) {
    return this.db.transaction(() => {
      const updated = this.db.prepare(REVOKE_GRANT_SQL)
        .get(numbered([input.now, input.grantId, input.clientId])) as Row | undefined;
      if (updated !== undefined) {
        appendAuditSync(this.db, this.key, input.audit);
        return { grant: toGrant(updated), changed: true };
      }
      const existing = this.db.prepare(GRANT_SQL).get(numbered([input.grantId, input.clientId])) as Row | undefined;
      return existing === undefined ? null : { grant: toGrant(existing), changed: false };
    }).immediate();
  }
}
