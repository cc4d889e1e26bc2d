/** The webhook sub-store on SQLite. One process owns the file, so claiming needs no SKIP LOCKED. */
import type Database from 'better-sqlite3';
import type { AuditKey } from '../../crypto/audit-key.js';
import type { AuditInput } from '../types/guard.js';
import { numbered } from '../sql/params.js';
import { appendAuditSync } from './audit.js';
import { insertDeliveriesSync } from './outbox.js';
import { COMPLETE_SQL, DELIVERY_COUNTS_SQL, DUE_WHERE, endpointValues, INSERT_ENDPOINT_SQL, outcomeValues, toDelivery, toDeliveryCounts, toEndpoint, DELETE_ENDPOINT_DELIVERIES_SQL, DELETE_ENDPOINT_SQL, ENDPOINTS_SQL, ENDPOINT_SQL, RECENT_DELIVERIES_SQL } from '../sql/webhooks.js';
import type { ClaimedDelivery, DeliveryOutcome, NewDelivery, WebhookEndpoint, WebhookStore } from '../types/webhooks.js';

type Row = Record<string, unknown>;

export class SqliteWebhookStore implements WebhookStore {
  constructor(private readonly db: Database.Database, private readonly key: AuditKey, private readonly outboxLimit: number) {}

  async create(endpoint: WebhookEndpoint, audit: AuditInput) {
    return this.db.transaction(() => {
      const r = this.db.prepare(INSERT_ENDPOINT_SQL).get(numbered(endpointValues(endpoint))) as Row;
      appendAuditSync(this.db, this.key, audit);
      return toEndpoint(r);
    }).immediate();
  }

  async list(clientId: string) {
    return (this.db.prepare(ENDPOINTS_SQL).all(numbered([clientId])) as Row[]).map(toEndpoint);
  }

  async get(clientId: string, webhookId: string) {
    const r = this.db.prepare(ENDPOINT_SQL).get(numbered([clientId, webhookId])) as Row | undefined;
    return r ? toEndpoint(r) : null;
  }

  async remove(input: { clientId: string; webhookId: string; audit: AuditInput }) {
    return this.db.transaction(() => {
      const exists = this.db.prepare('SELECT 1 FROM webhooks WHERE client_id = ? AND id = ?').get(input.clientId, input.webhookId);
      if (exists === undefined) return null;
      this.db.prepare(DELETE_ENDPOINT_DELIVERIES_SQL).run(numbered([input.webhookId]));
      const r = this.db.prepare(DELETE_ENDPOINT_SQL).get(numbered([input.webhookId])) as Row;
      appendAuditSync(this.db, this.key, input.audit);
      return toEndpoint(r);
    }).immediate();
  }

  async enqueue(deliveries: readonly NewDelivery[]) {
    if (deliveries.length === 0) return;
    this.db.transaction(() => insertDeliveriesSync(this.db, deliveries, this.outboxLimit)).immediate();
  }

  async claimDue(now: number, leaseUntil: number, limit: number): Promise<ClaimedDelivery[]> {
    return this.db.transaction(() => {
      const rows = this.db.prepare(
        `UPDATE webhook_deliveries SET lease_until = $2, attempts = attempts + 1
         WHERE id IN (SELECT id FROM webhook_deliveries WHERE ${DUE_WHERE} ORDER BY next_attempt_at LIMIT $3) RETURNING *`,
      ).all(numbered([now, leaseUntil, limit])) as Row[];
      const endpoint = this.db.prepare('SELECT * FROM webhooks WHERE id = ?');
      return rows.map((r) => ({ delivery: toDelivery(r), endpoint: toEndpoint(endpoint.get(r.webhook_id) as Row) }));
    }).immediate();
  }

  async complete(outcome: DeliveryOutcome) {
    return this.db.prepare(COMPLETE_SQL).run(numbered(outcomeValues(outcome))).changes > 0;
  }

  async listDeliveries(clientId: string, webhookId: string, limit: number) {
    return (this.db.prepare(RECENT_DELIVERIES_SQL)
      .all(numbered([clientId, webhookId, limit])) as Row[]).map(toDelivery);
  }

  async deliveryCounts(clientId: string, webhookId: string) {
    return toDeliveryCounts(this.db.prepare(DELIVERY_COUNTS_SQL).all(numbered([clientId, webhookId])) as Row[]);
  }
}
