/**
 * better-sqlite3 waits for a lock by blocking its thread (busy_timeout). On the main thread that
 * froze every request, /healthz included, while another process held the write lock. So the main
 * connection waits for no lock (busy_timeout = 0): a statement that finds the database locked
 * fails at once with SQLITE_BUSY, and the method is tried again after a short asynchronous pause
 * until the lock timeout has passed, when it fails with StoreUnavailableError (a 503). Meanwhile
 * the event loop keeps answering everything else.
 *
 * Retrying a whole method is safe because every method of the SQLite stores is one statement or
 * one transaction run synchronously: a failed attempt has changed nothing.
 */
import { isBusy, StoreUnavailableError, storeError } from '../errors.js';
import type { WriteHealth } from '../write-health.js';

const FIRST_PAUSE_MS = 1;
const LONGEST_PAUSE_MS = 25;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs `attempt` until it does not find the database locked, or `lockTimeoutMs` has passed. */
export async function retryWhileLocked<T>(attempt: () => Promise<T>, lockTimeoutMs: number, health?: WriteHealth, now: () => number = Date.now): Promise<T> {
  let deadline: number | undefined;
  for (let pause = FIRST_PAUSE_MS; ; pause = Math.min(pause * 2, LONGEST_PAUSE_MS)) {
    try {
      return await attempt();
    } catch (err) {
      let failure: unknown;
      if (!isBusy(err)) failure = storeError(err);
      else {
        deadline ??= now() + lockTimeoutMs;
        const left = deadline - now();
        if (left > 0) {
          await sleep(Math.min(pause, left));
          continue;
        }
        failure = new StoreUnavailableError(`the database stayed locked for ${lockTimeoutMs} ms`, { cause: err });
      }
      health?.failed(failure);
      throw failure;
    }
  }
}

/**
 * Makes every async method of `store` (its prototype's, minus `except`) go through
 * retryWhileLocked, reporting store failures to `health`. Applied once per store object when the engine is opened, so no method can be
 * added that blocks the event loop on a lock by forgetting to wrap it.
 */
export function withoutLockWaits<T extends object>(store: T, lockTimeoutMs: number, except: ReadonlyArray<string> = [], health?: WriteHealth): T {
  const methods = store as unknown as Record<string, unknown>;
  for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(store))) {
    const method = methods[name];
    if (name === 'constructor' || except.includes(name) || typeof method !== 'function') continue;
    if (method.constructor.name !== 'AsyncFunction') continue;
    const original = method as (...args: unknown[]) => Promise<unknown>;
    Object.defineProperty(store, name, {
      value: (...args: unknown[]) => retryWhileLocked(() => original.apply(store, args), lockTimeoutMs, health),
      writable: true,
      configurable: true,
    });
  }
  return store;
}
