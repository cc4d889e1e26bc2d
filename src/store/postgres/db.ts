/** What every PostgreSQL sub-store is given by the engine (store.ts), and the app-row lock they share. */
import type pg from 'pg';
import type { AuditKey } from '../../crypto/audit-key.js';

type Row = Record<string, unknown>;

/**
 * What the sub-stores need of the engine: plain queries and transactions on one pooled client, and
 * the key audit entries are chained with.
 */
export interface PgDb {
  q(sql: string, params?: unknown[]): Promise<Row[]>;
  tx<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  readonly auditKey: AuditKey;
}

/** The app rows, locked in one order everywhere: every change to an app's approvals, keys or outbox holds its row. */
export async function lockApps(client: pg.PoolClient, clientIds: readonly string[]): Promise<void> {
  if (clientIds.length === 0) return;
  await client.query('SELECT 1 FROM apps WHERE client_id = ANY($1::text[]) ORDER BY client_id FOR NO KEY UPDATE', [[...new Set(clientIds)].sort()]);
}
