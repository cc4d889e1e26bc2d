/**
 * What /healthz says about writes. A read (ping) can succeed on a store that cannot take a single
 * write (a full disk, a lock held by another process, a read-only standby), so each engine records
 * the store failures its writes meet and the commits that succeed. While the last word is a
 * failure, `check` makes one probe write: the answer then reflects the store now, and recovery is
 * seen without waiting for traffic.
 */
import { isLockTimeout, isStoreUnavailable } from './errors.js';
import type { WriteState } from './types/store.js';

export class WriteHealth {
  private failure: { reason: string; since: number } | null = null;

  constructor(private readonly now: () => number = Date.now) {}

  /** A write committed. */
  succeeded(): void {
    this.failure = null;
  }

  /** A store operation failed; only the store's own failures (not bugs, not bad input) count. */
  failed(err: unknown): void {
    if (!isStoreUnavailable(err)) return;
    // Within an outage a lock timeout is mostly its symptom (the writer holds the lock while its
    // commit fails on a full disk, and the probe waits for it): it does not replace the reason
    // already recorded, which says what to fix. On its own it is the reason.
    if (this.failure !== null && isLockTimeout(err)) return;
    const reason = err instanceof Error ? err.message : String(err);
    this.failure = { reason, since: this.failure?.since ?? this.now() };
  }

  async check(probe: () => Promise<void>): Promise<WriteState> {
    if (this.failure === null) return { ok: true };
    try {
      await probe();
      this.succeeded();
      return { ok: true };
    } catch (err) {
      this.failed(err);
      const failure = this.failure ?? { reason: err instanceof Error ? err.message : String(err), since: this.now() };
      return { ok: false, ...failure };
    }
  }
}

/** The probe: one tiny upsert, so a full disk or a held lock shows at once. */
export const PROBE_SQL =
  `INSERT INTO health_probe (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at`;
