/** The webhook sub-store on PostgreSQL: several nodes claim from one outbox without sending a delivery twice. */
import type { AuditInput } from '../types/guard.js';
import { appendAuditTx } from './audit.js';
import { insertDeliveriesTx } from './outbox.js';
import { lockApps, type PgDb } from './db.js';
import { COMPLETE_SQL, DELIVERY_COUNTS_SQL, DUE_WHERE, endpointValues, INSERT_ENDPOINT_SQL, outcomeValues, toDelivery, toDeliveryCounts, toEndpoint, DELETE_ENDPOINT_DELIVERIES_SQL, DELETE_ENDPOINT_SQL, ENDPOINTS_SQL, ENDPOINT_SQL, RECENT_DELIVERIES_SQL } from '../sql/webhooks.js';
import type { ClaimedDelivery, DeliveryOutcome, NewDelivery, WebhookEndpoint, WebhookStore } from '../types/webhooks.js';

type Row = Record<string, unknown>;

export class PostgresWebhookStore implements WebhookStore {
  constructor(private readonly db: PgDb, private readonly outboxLimit: number) {}

  async create(endpoint: WebhookEndpoint, audit: AuditInput) {
    return this.db.tx(async (c) => {
      const r = (await c.query(INSERT_ENDPOINT_SQL, endpointValues(endpoint))).rows[0] as Row;
      await appendAuditTx(c, this.db.auditKey, audit);
      return toEndpoint(r);
    });
  }

  async list(clientId: string) {
    return (await this.db.q(ENDPOINTS_SQL, [clientId])).map(toEndpoint);
  }

  async get(clientId: string, webhookId: string) {
    const [r] = await this.db.q(ENDPOINT_SQL, [clientId, webhookId]);
    return r ? toEndpoint(r) : null;
  }

  async remove(input: { clientId: string; webhookId: string; audit: AuditInput }) {
    return this.db.tx(async (c) => {
      // The app row before the endpoint's, the order of every outbox writer (which hold the app row and then reference the endpoint).
      await lockApps(c, [input.clientId]);
      const locked = (await c.query('SELECT 1 FROM webhooks WHERE client_id = $1 AND id = $2 FOR UPDATE', [input.clientId, input.webhookId])).rows[0];
      if (locked === undefined) return null;
      await c.query(DELETE_ENDPOINT_DELIVERIES_SQL, [input.webhookId]);
      const r = (await c.query(DELETE_ENDPOINT_SQL, [input.webhookId])).rows[0] as Row;
      await appendAuditTx(c, this.db.auditKey, input.audit);
      return toEndpoint(r);
    });
  }

  async enqueue(deliveries: readonly NewDelivery[]) {
    if (deliveries.length === 0) return;
    await this.db.tx((c) => insertDeliveriesTx(c, deliveries, this.outboxLimit));
  }

  async claimDue(now: number, leaseUntil: number, limit: number): Promise<ClaimedDelivery[]> {
    // SKIP LOCKED: rows another node is claiming at this instant are left to it rather than waited for.
    const rows = await this.db.q(
      `WITH claimed AS (
         UPDATE webhook_deliveries SET lease_until = $2, attempts = attempts + 1
         WHERE id IN (SELECT id FROM webhook_deliveries WHERE ${DUE_WHERE} ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING *
       )
       SELECT to_jsonb(claimed) AS d, to_jsonb(w) AS e FROM claimed JOIN webhooks w ON w.id = claimed.webhook_id`,
      [now, leaseUntil, limit],
    );
    return rows.map((r) => ({ delivery: toDelivery(r.d as Row), endpoint: toEndpoint(r.e as Row) }));
  }

  async complete(outcome: DeliveryOutcome) {
    const [r] = await this.db.q(`${COMPLETE_SQL} RETURNING id`, outcomeValues(outcome));
    return r !== undefined;
  }

  async listDeliveries(clientId: string, webhookId: string, limit: number) {
    return (await this.db.q(RECENT_DELIVERIES_SQL, [clientId, webhookId, limit])).map(toDelivery);
  }

  async deliveryCounts(clientId: string, webhookId: string) {
    return toDeliveryCounts(await this.db.q(DELIVERY_COUNTS_SQL, [clientId, webhookId]));
  }
}
