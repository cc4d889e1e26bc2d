/**
 * Idempotency of the guard check (docs/api.md, "Idempotency"; docs/security.md, "Approval floods
 * and replays"). A check's answer is stored under up to two keys of its app, in the transaction
 * that records it:
 *
 *   - `sig:<digest>` for a signed request (HMAC mode): the SHA-256 of its signed text, which a
 *     replay repeats byte for byte and nothing else does. Kept while the signature could be
 *     replayed: until `t` + 300 s, plus a minute for clock differences between nodes. Checked
 *     first, whatever else the request carries, because the Idempotency-Key header is not signed:
 *     a replayer could change it.
 *   - `key:<Idempotency-Key>` when the client sends that header (Stripe-style), kept 24 hours.
 *
 * A request whose key holds an answer for the same request (same canonical body) is answered
 * that answer and stores nothing; the same Idempotency-Key with another body is
 * `422 idempotency_key_reused`.
 */
import crypto from 'node:crypto';
import type { IdempotencyKey } from '../store/types/guard.js';
import type { Store } from '../store/types/store.js';
import type { SignedRequest } from '../keys/signature.js';
import { SIGNATURE_TOLERANCE_SECONDS } from '../keys/signature.js';
import { canonicalJson } from './evaluate.js';

/** Visible ASCII, no spaces: what a UUID, a ULID or any token a client makes fits in. */
export const IDEMPOTENCY_KEY_PATTERN = '^[\\x21-\\x7E]+$';
export const IDEMPOTENCY_KEY_MAX_LENGTH = 255;
export const IDEMPOTENCY_KEY_TTL_MS = 24 * 3600_000;
/** Margin over the signature tolerance: another node's clock may be this far ahead when it sweeps. */
const NODE_CLOCK_MARGIN_MS = 60_000;

export interface IdempotencyInput {
  /** The Idempotency-Key header, already validated by the route's schema. */
  idempotencyKey: string | null;
  /** The request's matched signature, in HMAC mode. */
  signed: SignedRequest | null;
}

/** The keys a check's answer is stored under, the signature's first. */
export function idempotencyKeys(input: IdempotencyInput, now: number): IdempotencyKey[] {
  const keys: IdempotencyKey[] = [];
  if (input.signed !== null) {
    keys.push({ key: `sig:${input.signed.digest()}`, expiresAt: (input.signed.timestamp + SIGNATURE_TOLERANCE_SECONDS + 1) * 1000 + NODE_CLOCK_MARGIN_MS });
  }
  if (input.idempotencyKey !== null) keys.push({ key: `key:${input.idempotencyKey}`, expiresAt: now + IDEMPOTENCY_KEY_TTL_MS });
  return keys;
}

/** What "the same request" means: the body's canonical JSON (object keys sorted), so key order and spacing do not matter. */
export function requestHash(body: unknown): string {
  return crypto.createHash('sha256').update(canonicalJson(body)).digest('hex');
}

export interface SweepSettings {
  intervalMs: number;
  batch: number;
}

export const DEFAULT_IDEMPOTENCY_SWEEP: SweepSettings = { intervalMs: 60_000, batch: 1000 };

/**
 * Deletes expired answers every `intervalMs`, a batch at a time. Lookups ignore expired answers
 * anyway, so the sweep only returns their space; several nodes may sweep at once.
 */
export class IdempotencySweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    private readonly now: () => number,
    private readonly settings: SweepSettings,
    private readonly onError: (err: unknown) => void,
  ) {}

  async sweep(): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = await this.store.guard.deleteExpiredAnswers(this.now(), this.settings.batch);
      total += deleted;
      if (deleted < this.settings.batch) return total;
    }
  }

  start(): void {
    this.timer = setInterval(() => {
      if (this.running !== undefined) return;
      this.running = this.sweep()
        .then(() => undefined, this.onError)
        .finally(() => (this.running = undefined));
    }, this.settings.intervalMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
