/**
 * Webhook endpoints and their delivery.
 *
 * Every governance event is written to the outbox, one row per subscribed endpoint, in the same
 * transaction as the change it describes (webhookDeliveries, called by the approval, check and
 * kill-switch paths), so a crash can never keep the change and lose its notification. A worker on
 * every node claims due rows under a lease, POSTs them signed, and records the outcome: 2xx
 * delivered, anything else retried with exponential backoff and jitter until `maxAttempts`, then
 * failed. The in-process event (services.events) only wakes the worker, so rows go out at once
 * instead of at its next poll.
 */
import { postWebhook, PrivateAddressError, privateUrlProblem } from './address.js';
import { GUARD_EVENT_TYPES, type GuardEvent, type GuardEvents, type GuardEventType } from '../guard/events.js';
import type { SecretBox } from '../crypto/secret-box.js';
import { newId, randomBase62 } from '../keys/tokens.js';
import type { Store } from '../store/types/store.js';
import type { ClaimedDelivery, NewDelivery, WebhookEndpoint, WebhookFormat } from '../store/types/webhooks.js';
import { deliveryBody, signatureHeader } from './format.js';

export const WEBHOOK_SECRET_PREFIX = 'whsec_';
export const MAX_WEBHOOKS_PER_APP = 20;

export interface WebhookSettings {
  maxAttempts: number;
  /** Delay before the second attempt; doubled each time, capped at maxDelayMs, then jittered down by up to half. */
  baseDelayMs: number;
  maxDelayMs: number;
  timeoutMs: number;
  /** How often the worker looks for due deliveries it was not told about (other nodes' retries, restarts). */
  pollIntervalMs: number;
  /** A claim is exclusive this long; longer than timeoutMs, so a live sender never loses its row. */
  leaseMs: number;
  batch: number;
  /** Let deliveries reach loopback, private and link-local addresses (PANOPTICON_WEBHOOK_ALLOW_PRIVATE). */
  allowPrivateAddresses: boolean;
}

export const DEFAULT_WEBHOOK_SETTINGS: WebhookSettings = {
  maxAttempts: 8,
  baseDelayMs: 10_000,
  maxDelayMs: 3_600_000,
  timeoutMs: 5_000,
  pollIntervalMs: 1_000,
  leaseMs: 30_000,
  batch: 20,
  allowPrivateAddresses: false,
};

export function backoffMs(attempts: number, s: Pick<WebhookSettings, 'baseDelayMs' | 'maxDelayMs'>, random: () => number = Math.random): number {
  const ceiling = Math.min(s.maxDelayMs, s.baseDelayMs * 2 ** Math.max(0, attempts - 1));
  // Jitter spreads the retries of many endpoints that failed together (a receiver outage).
  return Math.round(ceiling * (0.5 + random() * 0.5));
}

export type CreateResult = { ok: true; endpoint: WebhookEndpoint; secret: string } | { ok: false; fields: Array<{ field: string; message: string }> };

/** One delivery per enabled endpoint that subscribes to the event's type; `endpoints` are the event's app's. */
export function deliveriesTo(endpoints: readonly WebhookEndpoint[], event: GuardEvent, now: number): NewDelivery[] {
  return endpoints
    .filter((e) => e.enabled && e.clientId === event.clientId && e.events.includes(event.type))
    .map((e) => ({ id: newId('whd'), webhookId: e.id, clientId: e.clientId, event: event.type, payload: deliveryBody(event, e.format, now), createdAt: now }));
}

/** The outbox rows of an event, for the caller to write in the transaction of the change the event describes. */
export async function webhookDeliveries(store: Store, event: GuardEvent, now: number): Promise<NewDelivery[]> {
  return deliveriesTo(await store.webhooks.list(event.clientId), event, now);
}

export class WebhookService {
  private readonly unsubscribe: () => void;
  private timer: NodeJS.Timeout | undefined;
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;

  constructor(
    private readonly store: Store,
    events: GuardEvents,
    private readonly secrets: SecretBox,
    private readonly now: () => number,
    private readonly settings: WebhookSettings,
    private readonly onError: (err: unknown) => void,
  ) {
    // The event's deliveries committed with it: send them now rather than at the next poll.
    this.unsubscribe = events.subscribe(() => this.kick());
  }

  async create(input: { clientId: string; url: string; format: WebhookFormat; events: GuardEventType[]; actor: string }): Promise<CreateResult> {
    let parsed: URL;
    try {
      parsed = new URL(input.url);
    } catch {
      return { ok: false, fields: [{ field: 'url', message: 'must be an absolute http or https URL' }] };
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return { ok: false, fields: [{ field: 'url', message: 'must be an absolute http or https URL' }] };
    const privateProblem = this.settings.allowPrivateAddresses ? null : privateUrlProblem(parsed);
    if (privateProblem !== null) return { ok: false, fields: [{ field: 'url', message: privateProblem }] };
    if ((await this.store.webhooks.list(input.clientId)).length >= MAX_WEBHOOKS_PER_APP) {
      return { ok: false, fields: [{ field: 'url', message: `an application has at most ${MAX_WEBHOOKS_PER_APP} webhook endpoints; remove one first` }] };
    }
    const secret = WEBHOOK_SECRET_PREFIX + randomBase62(32);
    const now = this.now();
    const events = GUARD_EVENT_TYPES.filter((t) => input.events.includes(t));
    const endpoint: WebhookEndpoint = {
      id: newId('whk'), clientId: input.clientId, url: parsed.toString(), format: input.format, events,
      secretEnc: this.secrets.seal(secret, input.clientId), enabled: true, createdAt: now,
    };
    const created = await this.store.webhooks.create(endpoint, {
      clientId: input.clientId, at: now, actor: input.actor, action: 'webhook.create', target: endpoint.id, before: null,
      after: { url: endpoint.url, format: endpoint.format, events },
    });
    return { ok: true, endpoint: created, secret };
  }

  async remove(clientId: string, webhookId: string, actor: string): Promise<WebhookEndpoint | null> {
    const now = this.now();
    return this.store.webhooks.remove({
      clientId, webhookId,
      audit: { clientId, at: now, actor, action: 'webhook.remove', target: webhookId, before: null, after: null },
    });
  }

  start(): void {
    this.timer = setInterval(() => this.kick(), this.settings.pollIntervalMs);
    this.timer.unref();
  }

  /** Runs the worker now, or once more right after the run in progress. */
  kick(): void {
    if (this.closed) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .catch(this.onError)
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async drain(): Promise<void> {
    for (;;) {
      const now = this.now();
      const claimed = await this.store.webhooks.claimDue(now, now + this.settings.leaseMs, this.settings.batch);
      await Promise.all(claimed.map((c) => this.send(c)));
      if (claimed.length < this.settings.batch || this.closed) return;
    }
  }

  private async send({ delivery, endpoint }: ClaimedDelivery): Promise<void> {
    let statusCode: number | null = null;
    let error: string | null = null;
    try {
      const secret = this.secrets.open(endpoint.secretEnc, endpoint.clientId);
      const t = Math.floor(this.now() / 1000);
      statusCode = await postWebhook(
        endpoint.url,
        {
          'content-type': 'application/json',
          'user-agent': 'Panopticon-Webhooks/0.1',
          'x-panopticon-event': delivery.event,
          'x-panopticon-delivery': delivery.id,
          'x-panopticon-signature': signatureHeader(secret, t, endpoint.url, delivery.payload),
        },
        delivery.payload,
        { timeoutMs: this.settings.timeoutMs, allowPrivate: this.settings.allowPrivateAddresses },
      );
      if (statusCode < 200 || statusCode >= 300) error = `HTTP ${statusCode}`;
    } catch (err) {
      const e = err as Error & { code?: string };
      error = e.name === 'TimeoutError' ? `timeout after ${this.settings.timeoutMs} ms` : e instanceof PrivateAddressError ? e.message : (e.code ?? e.message);
      error = error.slice(0, 500);
    }
    const now = this.now();
    const delivered = error === null;
    const giveUp = !delivered && delivery.attempts >= this.settings.maxAttempts;
    const next = delivered || giveUp ? now : now + backoffMs(delivery.attempts, this.settings);
    await this.store.webhooks.complete({
      id: delivery.id, attempts: delivery.attempts, status: delivered ? 'delivered' : giveUp ? 'failed' : 'pending',
      nextAttemptAt: next, statusCode, error, completedAt: delivered || giveUp ? now : null,
    });
    if (!delivered && !giveUp && !this.closed) {
      const timer = setTimeout(() => {
        this.retryTimers.delete(timer);
        this.kick();
      }, next - now);
      timer.unref();
      this.retryTimers.add(timer);
    }
  }

  async close(): Promise<void> {
    this.unsubscribe();
    this.closed = true;
    clearInterval(this.timer);
    for (const t of this.retryTimers) clearTimeout(t);
    await this.running;
  }
}
