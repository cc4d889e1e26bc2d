/**
 * Store failures that are the database's state, not a bug: the server is down or restarting, a
 * connection broke, a lock was held past the lock timeout, the disk is full or failing. Each engine
 * turns its driver's errors of that kind into StoreUnavailableError at the seam, so every route
 * answers them the same way (`503 store_unavailable` with `Retry-After`, nothing stored) and a
 * constraint violation or a bad query still surfaces as the bug it is.
 */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
}

/**
 * SQLite result codes (better-sqlite3's `code`, extended codes included) that say the database
 * cannot be written or read right now. Busy and locked are handled by the caller's retry first.
 */
const SQLITE_UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|READONLY|PROTOCOL|NOMEM|NOLFS)(_|$)/;

/**
 * PostgreSQL SQLSTATE classes and codes for the same: 08 connection exception, 53 insufficient
 * resources (disk full, too many connections), 57P01-57P05 shutdown/cannot connect now/idle
 * timeouts, 58 system (I/O) errors, 55P03 lock_not_available (lock_timeout), 40P01 deadlock and
 * 40001 serialization failure (retrying is the remedy), 25006 read-only transaction (a standby).
 */
const PG_UNAVAILABLE = /^(08|53|57P0|58)|^(55P03|40P01|40001|25006)$/;

/** Node socket errors the pg driver passes through when the server is unreachable. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);

/**
 * Messages of the pg driver's own errors (no code): the connection ended, the pool could not hand
 * out a client in time, a query was sent to a client whose connection had failed.
 */
const PG_DRIVER_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|not queryable|Connection ended|terminating connection/i;

export function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/** Whether `err` or one of the errors it wraps (its `cause`, up to five deep) passes `test`. */
function anyCause(err: unknown, test: (e: unknown) => boolean): boolean {
  for (let e: unknown = err, depth = 0; e != null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (test(e)) return true;
  }
  return false;
}

/** Whether `err` (or an error it wraps) is a lock held past the lock timeout, on either engine. */
export function isLockTimeout(err: unknown): boolean {
  return anyCause(err, (e) => isBusy(e) || (e as { code?: unknown }).code === '55P03');
}

/** Whether `err` (or an error it wraps) is the store being unavailable rather than a bug. */
export function isStoreUnavailable(err: unknown): boolean {
  return anyCause(err, (e) => {
    if (e instanceof StoreUnavailableError) return true;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (SQLITE_UNAVAILABLE.test(code) || PG_UNAVAILABLE.test(code) || NETWORK_CODES.has(code))) return true;
    return e instanceof Error && code === undefined && PG_DRIVER_MESSAGES.test(e.message);
  });
}

/** `err` as a StoreUnavailableError when it is one, else unchanged: what the store seams rethrow. */
export function storeError(err: unknown): unknown {
  if (err instanceof StoreUnavailableError || !isStoreUnavailable(err)) return err;
  return new StoreUnavailableError(err instanceof Error ? err.message : String(err), { cause: err });
}
