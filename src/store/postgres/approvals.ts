/** The approval sub-store on PostgreSQL. Row locks make the decision compare-and-set safe across nodes. */
import type { Approval, ApprovalQuery, ApprovalStore, DecideInput, DecideResult, ExpiryEffects } from '../types/approvals.js';
import { approvalListQuery, APPS_WITH_DUE_SQL, byClientThenId, DECIDE_SQL, decideValues, grantValues, INSERT_GRANT_SQL, LIST_GRANTS_SQL, toApproval, APPROVAL_BY_ID_SQL, APPROVAL_SQL, GRANT_SQL, REVOKE_GRANT_SQL } from '../sql/approvals.js';
import type { AuditInput } from '../types/guard.js';
import { toGrant } from '../sql/guard.js';
import { appendAuditTx } from './audit.js';
import { insertDeliveriesTx } from './outbox.js';
import { lockApps, type PgDb } from './db.js';

type Row = Record<string, unknown>;

export class PostgresApprovalStore implements ApprovalStore {
  constructor(private readonly db: PgDb, private readonly outboxLimit: number) {}

  async get(approvalId: string) {
    const [r] = await this.db.q(APPROVAL_BY_ID_SQL, [approvalId]);
    return r ? toApproval(r) : null;
  }

  async list(query: ApprovalQuery) {
    const { sql, params } = approvalListQuery(query);
    return (await this.db.q(sql, params)).map(toApproval);
  }

  async decide(input: DecideInput): Promise<DecideResult> {
    return this.db.tx(async (c): Promise<DecideResult> => {
      // A concurrent decision blocks on the row lock and then re-checks status = 'pending': it finds none.
      const r = (await c.query(DECIDE_SQL, decideValues(input))).rows[0] as Row | undefined;
      if (r === undefined) {
        const current = (await c.query(APPROVAL_SQL, [input.approvalId, input.clientId])).rows[0] as Row | undefined;
        return current === undefined ? { ok: false, reason: 'not_found' } : { ok: false, reason: 'decided', approval: toApproval(current) };
      }
      const approval = toApproval(r);
      const g = input.grant === null ? null : ((await c.query(INSERT_GRANT_SQL, grantValues(input, approval))).rows[0] as Row);
      for (const a of input.audit) await appendAuditTx(c, this.db.auditKey, a);
      await insertDeliveriesTx(c, input.deliveries, this.outboxLimit);
      return { ok: true, approval, grant: g === null ? null : toGrant(g) };
    });
  }

  async expireDue(now: number, limit: number, effects: (a: Approval) => ExpiryEffects) {
    return this.db.tx(async (c) => {
      // SKIP LOCKED: another node sweeping, or an operator deciding right now, keeps its rows.
      const { rows } = await c.query(
        `UPDATE approvals SET status = 'expired', decided_at = expires_at
         WHERE id IN (SELECT id FROM approvals WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
           AND status = 'pending' RETURNING *`,
        [now, limit],
      );
      const expired = (rows as Row[]).map(toApproval).sort(byClientThenId);
      for (const a of expired) {
        const e = effects(a);
        await appendAuditTx(c, this.db.auditKey, e.audit);
        await insertDeliveriesTx(c, e.deliveries, this.outboxLimit);
      }
      return expired;
    });
  }

  async appsWithDue(now: number) {
    return (await this.db.q(APPS_WITH_DUE_SQL, [now])).map((r) => r.client_id as string);
  }

  async listGrants(clientId: string, options: { includeRevoked: boolean }) {
    return (await this.db.q(LIST_GRANTS_SQL(options.includeRevoked), [clientId])).map(toGrant);
  }

  async revokeGrant(input: { clientId: string; grantId: string; now: number; audit: AuditInput }) {
    return this.db.tx(async (c) => {
      // The app row first, as a check commit takes it before the grants it uses: no lock cycle.
      await lockApps(c, [input.clientId]);
      const updated = (await c.query(REVOKE_GRANT_SQL, [input.now, input.grantId, input.clientId])).rows[0] as Row | undefined;
      if (updated !== undefined) {
        await appendAuditTx(c, this.db.auditKey, input.audit);
        return { grant: toGrant(updated), changed: true };
      }
      const existing = (await c.query(GRANT_SQL, [input.grantId, input.clientId])).rows[0] as Row | undefined;
      return existing === undefined ? null : { grant: toGrant(existing), changed: false };
    });
  }
}
