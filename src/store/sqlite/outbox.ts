/** The webhook outbox on SQLite, written inside the transaction of the event it notifies. */
import type Database from 'better-sqlite3';
import { numbered } from '../sql/params.js';
import { deliveryValues, DROP_OLDEST_SQL, droppedReason, endpointsOf, INSERT_DELIVERY_SQL, OUTBOX_SIZE_SQL } from '../sql/webhooks.js';
import type { NewDelivery } from '../types/webhooks.js';

/**
 * Webhook outbox rows written inside the caller's transaction, so the event and its notification
 * commit together; then each endpoint that got one keeps at most `outboxLimit` undelivered rows,
 * its oldest dropped (the transaction is the only writer, so the count cannot race).
 */
export function insertDeliveriesSync(db: Database.Database, deliveries: readonly NewDelivery[], outboxLimit: number): void {
  if (deliveries.length === 0) return;
  const insert = db.prepare(INSERT_DELIVERY_SQL);
  for (const d of deliveries) insert.run(numbered(deliveryValues(d)));
  const at = Math.max(...deliveries.map((d) => d.createdAt));
  for (const webhookId of endpointsOf(deliveries)) {
    const size = Number(db.prepare(OUTBOX_SIZE_SQL).pluck().get(numbered([webhookId])));
    if (size > outboxLimit) db.prepare(DROP_OLDEST_SQL).run(numbered([webhookId, size - outboxLimit, at, droppedReason(outboxLimit)]));
  }
}
