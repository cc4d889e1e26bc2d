/**
 * Storage for notification endpoints and their outbox of deliveries (`store.webhooks`). A delivery
 * row is written for each (event, subscribed endpoint); workers on any node claim due rows under a
 * lease, send them, and record the outcome. Claiming is exclusive (PostgreSQL: FOR UPDATE SKIP
 * LOCKED), and an outcome is recorded only by the claim that is still current, so a slow node
 * whose lease ran out cannot overwrite the result of the node that took over.
 */
import type { AuditInput } from './audit.js';

/** The governance events a webhook endpoint can subscribe to, as stored with each endpoint and delivery. */
export type GuardEventType = 'approval.requested' | 'approval.decided' | 'approval.expired' | 'kill_switch.on' | 'kill_switch.off' | 'tool.changed';

export type WebhookFormat = 'json' | 'slack';

export interface WebhookEndpoint {
  id: string;
  clientId: string;
  url: string;
  format: WebhookFormat;
  events: GuardEventType[];
  /** The signing secret, sealed by SecretBox with the client_id as context. */
  secretEnc: string;
  enabled: boolean;
  createdAt: number;
}

/**
 * `dropped`: never sent, or given up while in flight, because its endpoint's outbox was full (see
 * `DEFAULT_WEBHOOK_OUTBOX_LIMIT`); a `dropped` row whose attempt in flight then succeeds becomes
 * `delivered`.
 */
export type DeliveryStatus = 'pending' | 'delivered' | 'failed' | 'dropped';

/**
 * Most undelivered (`pending`) deliveries one endpoint keeps (PANOPTICON_WEBHOOK_OUTBOX_LIMIT).
 * Writing a delivery past it marks that endpoint's oldest pending ones `dropped`, in the same
 * transaction, so the outbox never grows past it however long a receiver stays down.
 */
export const DEFAULT_WEBHOOK_OUTBOX_LIMIT = 1000;

export type DeliveryCounts = Record<DeliveryStatus, number>;

export interface WebhookDelivery {
  id: string;
  webhookId: string;
  clientId: string;
  event: GuardEventType;
  /** The exact body sent on every attempt. */
  payload: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: number;
  leaseUntil: number | null;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: number;
  completedAt: number | null;
}

export interface NewDelivery {
  id: string;
  webhookId: string;
  clientId: string;
  event: GuardEventType;
  payload: string;
  createdAt: number;
}

/** A claimed delivery: `attempts` already counts this attempt and identifies the claim. */
export interface ClaimedDelivery {
  delivery: WebhookDelivery;
  endpoint: WebhookEndpoint;
}

export interface DeliveryOutcome {
  id: string;
  /** The claim's attempt number; the outcome is dropped when the row was claimed again since. */
  attempts: number;
  status: DeliveryStatus;
  nextAttemptAt: number;
  statusCode: number | null;
  error: string | null;
  completedAt: number | null;
}

export interface WebhookStore {
  create(endpoint: WebhookEndpoint, audit: AuditInput): Promise<WebhookEndpoint>;
  list(clientId: string): Promise<WebhookEndpoint[]>;
  get(clientId: string, webhookId: string): Promise<WebhookEndpoint | null>;
  /** Removes the endpoint and its deliveries (pending ones are not sent); null when absent. */
  remove(input: { clientId: string; webhookId: string; audit: AuditInput }): Promise<WebhookEndpoint | null>;

  /** Writes deliveries (each endpoint's outbox bounded, as everywhere deliveries are written). */
  enqueue(deliveries: readonly NewDelivery[]): Promise<void>;
  /** Pending deliveries due at `now` whose lease (if any) has ended: leased until `leaseUntil`, attempts + 1. */
  claimDue(now: number, leaseUntil: number, limit: number): Promise<ClaimedDelivery[]>;
  /** False when the claim was no longer current (the row was re-claimed or removed). */
  complete(outcome: DeliveryOutcome): Promise<boolean>;
  listDeliveries(clientId: string, webhookId: string, limit: number): Promise<WebhookDelivery[]>;
  /** How many of the endpoint's deliveries are in each status. */
  deliveryCounts(clientId: string, webhookId: string): Promise<DeliveryCounts>;
}
