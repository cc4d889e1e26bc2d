/** The audit sub-store on PostgreSQL. Appends lock the app row, so one app's chain grows one entry at a time across nodes. */
import type pg from 'pg';
import type { AuditKey } from '../../crypto/audit-key.js';
import { auditValues, INSERT_AUDIT_SQL, nextAuditEntry, PIN_AUDIT_SQL, toAuditEntry, AUDIT_PIN_SQL } from '../sql/audit.js';
import type { AuditEntry, AuditInput, AuditStore } from '../types/audit.js';
import type { PgDb } from './db.js';

type Row = Record<string, unknown>;

/** Appends a keyed entry to the app's chain inside the caller's transaction. */
export async function appendAuditTx(client: pg.PoolClient, key: AuditKey, input: AuditInput): Promise<AuditEntry> {
  const { rows } = await client.query('SELECT audit_head, audit_count FROM apps WHERE client_id = $1 FOR NO KEY UPDATE', [input.clientId]);
  const app = rows[0] as Row | undefined;
  if (app === undefined) throw new Error(`audit: no app ${input.clientId}`);
  const entry = nextAuditEntry(key, input, { head: (app.audit_head as string | null) ?? null, count: Number(app.audit_count) });
  await client.query(INSERT_AUDIT_SQL, auditValues(entry));
  await client.query(PIN_AUDIT_SQL, [entry.hash, entry.seq, entry.clientId]);
  return entry;
}

export class PostgresAuditStore implements AuditStore {
  constructor(private readonly db: PgDb) {}

  async append(input: AuditInput): Promise<AuditEntry> {
    return this.db.tx((c) => appendAuditTx(c, this.db.auditKey, input));
  }

  async list(clientId: string, options: { afterSeq?: number | undefined; limit: number; newestFirst?: boolean }): Promise<AuditEntry[]> {
    const rows = options.newestFirst
      ? await this.db.q('SELECT * FROM audit_log WHERE client_id = $1 AND ($2::bigint IS NULL OR seq < $2) ORDER BY seq DESC LIMIT $3', [clientId, options.afterSeq ?? null, options.limit])
      : await this.db.q('SELECT * FROM audit_log WHERE client_id = $1 AND seq > $2 ORDER BY seq ASC LIMIT $3', [clientId, options.afterSeq ?? 0, options.limit]);
    return rows.map(toAuditEntry);
  }

  async pinned(clientId: string) {
    const [r] = await this.db.q(AUDIT_PIN_SQL, [clientId]);
    return { head: (r?.audit_head as string | null | undefined) ?? null, count: Number(r?.audit_count ?? 0) };
  }
}
