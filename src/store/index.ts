import type { StoreLocation } from '../config.js';
import type { AuditKey } from '../crypto/audit-key.js';
import { SqliteStore } from './sqlite/store.js';
import type { Store } from './types/store.js';
import type { ListenerOptions } from './postgres/listener.js';

export type { Store } from './types/store.js';

/** Opens the engine the location names and brings its schema up to date. */
export interface OpenStoreOptions {
  /** What audit entries are chained with: AuditKey.fromServerKey of the server key. */
  auditKey: AuditKey;
  pgPoolSize?: number;
  lockTimeoutMs?: number;
  /** PostgreSQL's cross-node listener: how it proves itself and backs off (tests stretch the backoff). */
  listener?: Partial<ListenerOptions>;
  /** Most undelivered deliveries one webhook endpoint keeps (PANOPTICON_WEBHOOK_OUTBOX_LIMIT); default 1000. */
  webhookOutboxLimit?: number;
  /** PANOPTICON_COMMIT_BATCH: the most rows SQLite's commit worker merges into one transaction; default 512. */
  commitBatch?: number;
}

export async function openStore(location: StoreLocation, options: OpenStoreOptions): Promise<Store> {
  // pg and its driver code load only for PostgreSQL: an embedded (SQLite) install never pays their memory.
  const store =
    location.engine === 'sqlite'
      ? new SqliteStore(location.file, options.auditKey, options.lockTimeoutMs, options.webhookOutboxLimit, options.commitBatch)
      : new (await import('./postgres/store.js')).PostgresStore(location.url, location.schema, options.pgPoolSize ?? 10, options.auditKey, options.lockTimeoutMs, options.listener, options.webhookOutboxLimit);
  try {
    await store.migrate();
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  return store;
}
