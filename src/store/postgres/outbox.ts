/** The webhook outbox on PostgreSQL, written inside the transaction of the event it notifies. */
import type pg from 'pg';
import { deliveryValues, DROP_OLDEST_SQL, droppedReason, endpointsOf, OUTBOX_SIZE_SQL } from '../sql/webhooks.js';
import type { NewDelivery } from '../types/webhooks.js';
import { lockApps } from './db.js';

const INSERT_DELIVERIES_SQL = `
  INSERT INTO webhook_deliveries (id, webhook_id, client_id, event, payload, status, attempts, next_attempt_at, created_at)
  SELECT id, webhook_id, client_id, event, payload, 'pending', 0, created_at, created_at
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[]) AS d(id, webhook_id, client_id, event, payload, created_at)`;

/**
 * Webhook outbox rows written inside the caller's transaction, so the event and its notification
 * commit together; then each endpoint that got one keeps at most `outboxLimit` undelivered rows,
 * its oldest dropped. Every writer of an app's outbox holds the app row (taken here, if the caller
 * has not already), so two nodes cannot both count below the limit and both insert.
 */
export async function insertDeliveriesTx(client: pg.PoolClient, deliveries: readonly NewDelivery[], outboxLimit: number): Promise<void> {
  if (deliveries.length === 0) return;
  await lockApps(client, deliveries.map((d) => d.clientId));
  const columns: unknown[][] = [[], [], [], [], [], []];
  for (const d of deliveries) deliveryValues(d).forEach((v, i) => columns[i]!.push(v));
  await client.query(INSERT_DELIVERIES_SQL, columns);
  const at = Math.max(...deliveries.map((d) => d.createdAt));
  for (const webhookId of endpointsOf(deliveries)) {
    const size = Number((await client.query(OUTBOX_SIZE_SQL, [webhookId])).rows[0]!.n);
    if (size > outboxLimit) await client.query(DROP_OLDEST_SQL, [webhookId, size - outboxLimit, at, droppedReason(outboxLimit)]);
  }
}
