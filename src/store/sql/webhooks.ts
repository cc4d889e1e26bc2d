/** SQL and row mapping the webhook sub-stores of both engines share. */
import { type Row, num, numOrNull } from './row.js';
import { slots } from './params.js';
import type { GuardEventType } from '../types/webhooks.js';
import type { DeliveryCounts, DeliveryOutcome, NewDelivery, WebhookDelivery, WebhookEndpoint } from '../types/webhooks.js';

export const toEndpoint = (r: Row): WebhookEndpoint => ({
  id: String(r.id),
  clientId: String(r.client_id),
  url: String(r.url),
  format: String(r.format) as WebhookEndpoint['format'],
  events: JSON.parse(String(r.events)) as GuardEventType[],
  secretEnc: String(r.secret_enc),
  enabled: Boolean(num(r.enabled)),
  createdAt: num(r.created_at),
});

export const toDelivery = (r: Row): WebhookDelivery => ({
  id: String(r.id),
  webhookId: String(r.webhook_id),
  clientId: String(r.client_id),
  event: String(r.event) as GuardEventType,
  payload: String(r.payload),
  status: String(r.status) as WebhookDelivery['status'],
  attempts: num(r.attempts),
  nextAttemptAt: num(r.next_attempt_at),
  leaseUntil: numOrNull(r.lease_until),
  lastStatusCode: numOrNull(r.last_status_code),
  lastError: r.last_error === null || r.last_error === undefined ? null : String(r.last_error),
  createdAt: num(r.created_at),
  completedAt: numOrNull(r.completed_at),
});

export const INSERT_ENDPOINT_SQL =
  `INSERT INTO webhooks (id, client_id, url, format, events, secret_enc, enabled, created_at)
   VALUES (${slots(8)}) RETURNING *`;

export const endpointValues = (e: WebhookEndpoint): unknown[] =>
  [e.id, e.clientId, e.url, e.format, JSON.stringify(e.events), e.secretEnc, e.enabled ? 1 : 0, e.createdAt];

export const INSERT_DELIVERY_SQL =
  `INSERT INTO webhook_deliveries (id, webhook_id, client_id, event, payload, status, attempts, next_attempt_at, created_at)
   VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)`;

export const deliveryValues = (d: NewDelivery): unknown[] => [d.id, d.webhookId, d.clientId, d.event, d.payload, d.createdAt];

/** Due: pending, its next attempt time reached, and no live lease (a crashed sender's lease runs out). */
export const DUE_WHERE =
  `status = 'pending' AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1)`;

/**
 * Only the current claim (same attempt number, still pending) records its outcome; a row dropped
 * from a full outbox while this attempt was in flight records it only if it was delivered.
 */
export const COMPLETE_SQL =
  `UPDATE webhook_deliveries SET status = $1, next_attempt_at = $2, last_status_code = $3, last_error = $4,
     completed_at = $5, lease_until = NULL
   WHERE id = $6 AND attempts = $7 AND (status = 'pending' OR (status = 'dropped' AND $1 = 'delivered'))`;

/** An endpoint's undelivered rows: its outbox. */
export const OUTBOX_SIZE_SQL =
  `SELECT count(*) AS n FROM webhook_deliveries WHERE webhook_id = $1 AND status = 'pending'`;

/** Drops an endpoint's `$2` oldest undelivered rows, to keep its outbox at the limit. */
export const DROP_OLDEST_SQL =
  `UPDATE webhook_deliveries SET status = 'dropped', completed_at = $3, lease_until = NULL, last_error = $4
   WHERE id IN (SELECT id FROM webhook_deliveries WHERE webhook_id = $1 AND status = 'pending' ORDER BY created_at, id LIMIT $2)`;

export const droppedReason = (limit: number): string =>
  `dropped: the endpoint had ${limit} undelivered deliveries (the outbox limit, PANOPTICON_WEBHOOK_OUTBOX_LIMIT); the oldest make way for newer events`;

/** The endpoints that just got deliveries, once each, in a stable order. */
export const endpointsOf = (deliveries: readonly NewDelivery[]): string[] => [...new Set(deliveries.map((d) => d.webhookId))].sort();

export const DELIVERY_COUNTS_SQL =
  `SELECT status, count(*) AS n FROM webhook_deliveries WHERE client_id = $1 AND webhook_id = $2 GROUP BY status`;

export function toDeliveryCounts(rows: readonly Row[]): DeliveryCounts {
  const counts: DeliveryCounts = { pending: 0, delivered: 0, failed: 0, dropped: 0 };
  for (const r of rows) if (String(r.status) in counts) counts[String(r.status) as keyof DeliveryCounts] = num(r.n);
  return counts;
}

export const outcomeValues = (o: DeliveryOutcome): unknown[] =>
  [o.status, o.nextAttemptAt, o.statusCode, o.error, o.completedAt, o.id, o.attempts];

export const DELETE_ENDPOINT_DELIVERIES_SQL = 'DELETE FROM webhook_deliveries WHERE webhook_id = $1';
export const DELETE_ENDPOINT_SQL = 'DELETE FROM webhooks WHERE id = $1 RETURNING *';
export const ENDPOINTS_SQL = 'SELECT * FROM webhooks WHERE client_id = $1 ORDER BY created_at, id';
export const ENDPOINT_SQL = 'SELECT * FROM webhooks WHERE client_id = $1 AND id = $2';
export const RECENT_DELIVERIES_SQL = 'SELECT * FROM webhook_deliveries WHERE client_id = $1 AND webhook_id = $2 ORDER BY created_at DESC, id DESC LIMIT $3';
