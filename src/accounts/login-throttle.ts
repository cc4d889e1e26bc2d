/**
 * A per-account limit on wrong passwords, beside the per-address rate limit of the sign-in routes.
 * The address limit alone lets an attacker with many addresses (a botnet, a cloud provider's IP
 * pool) guess one account's password at the rate of all of them; this one caps wrong guesses per
 * account whatever the address: after `maxFailures` wrong passwords for one email within
 * `windowMs`, sign-ins for that email are answered 429 until the window ends, the right password
 * included (otherwise the answer would tell the attacker when a guess is right).
 *
 * Unknown emails are counted the same way, so the throttle reveals nothing about which accounts
 * exist. Counted per node, like the address limit; memory is bounded to `maxTracked` emails.
 */
export interface LoginThrottleSettings {
  maxFailures: number;
  windowMs: number;
  maxTracked: number;
}

export const DEFAULT_LOGIN_THROTTLE: LoginThrottleSettings = { maxFailures: 10, windowMs: 15 * 60_000, maxTracked: 100_000 };

interface Failures {
  count: number;
  windowEndsAt: number;
}

export class LoginThrottle {
  private readonly failures = new Map<string, Failures>();

  constructor(
    private readonly now: () => number,
    private readonly settings: LoginThrottleSettings = DEFAULT_LOGIN_THROTTLE,
  ) {}

  /** Seconds until `email` may try again; 0 when it may now. */
  retryAfterSeconds(email: string): number {
    const entry = this.current(email);
    if (entry === undefined || entry.count < this.settings.maxFailures) return 0;
    return Math.max(1, Math.ceil((entry.windowEndsAt - this.now()) / 1000));
  }

  failed(email: string): void {
    const entry = this.current(email);
    if (entry !== undefined) {
      entry.count++;
      return;
    }
    if (this.failures.size >= this.settings.maxTracked) this.evict();
    this.failures.set(email, { count: 1, windowEndsAt: this.now() + this.settings.windowMs });
  }

  succeeded(email: string): void {
    this.failures.delete(email);
  }

  private current(email: string): Failures | undefined {
    const entry = this.failures.get(email);
    if (entry !== undefined && entry.windowEndsAt <= this.now()) {
      this.failures.delete(email);
      return undefined;
    }
    return entry;
  }

  /** Drops ended windows; if every window is still open, the oldest (Map order is insertion order). */
  private evict(): void {
    const now = this.now();
    for (const [email, entry] of this.failures) if (entry.windowEndsAt <= now) this.failures.delete(email);
    if (this.failures.size >= this.settings.maxTracked) {
      const oldest = this.failures.keys().next();
      if (oldest.done !== true) this.failures.delete(oldest.value);
    }
  }
}
