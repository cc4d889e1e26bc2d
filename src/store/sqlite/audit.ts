/** The audit sub-store on SQLite, and the append every governance change runs inside its own transaction. */
import type Database from 'better-sqlite3';
import type { AuditKey } from '../../crypto/audit-key.js';
import { auditValues, INSERT_AUDIT_SQL, nextAuditEntry, PIN_AUDIT_SQL, toAuditEntry, AUDIT_PIN_SQL } from '../sql/audit.js';
import { numbered } from '../sql/params.js';
import type { AuditEntry, AuditInput, AuditStore } from '../types/audit.js';

type Row = Record<string, unknown>;

/** Appends a keyed entry to the app's chain; the caller holds the (immediate) transaction. */
export function appendAuditSync(db: Database.Database, key: AuditKey, input: AuditInput): AuditEntry {
  const app = db.prepare(AUDIT_PIN_SQL).get(numbered([input.clientId])) as Row | undefined;
  if (app === undefined) throw new Error(`audit: no app ${input.clientId}`);
  const entry = nextAuditEntry(key, input, { head: (app.audit_head as string | null) ?? null, count: Number(app.audit_count) });
  db.prepare(INSERT_AUDIT_SQL).run(numbered(auditValues(entry)));
  db.prepare(PIN_AUDIT_SQL).run(numbered([entry.hash, entry.seq, entry.clientId]));
  return entry;
}

export class SqliteAuditStore implements AuditStore {
  constructor(private readonly db: Database.Database, private readonly key: AuditKey) {}

  async append(input: AuditInput): Promise<AuditEntry> {
    return this.db.transaction(() => appendAuditSync(this.db, this.key, input)).immediate();
  }

  async list(clientId: string, options: { afterSeq?: number | undefined; limit: number; newestFirst?: boolean }): Promise<AuditEntry[]> {
    const order = options.newestFirst ? 'DESC' : 'ASC';
    const rows = options.newestFirst
      ? this.db.prepare(`SELECT * FROM audit_log WHERE client_id = ? AND (? IS NULL OR seq < ?) ORDER BY seq ${order} LIMIT ?`)
          .all(clientId, options.afterSeq ?? null, options.afterSeq ?? null, options.limit)
      : this.db.prepare(`SELECT * FROM audit_log WHERE client_id = ? AND seq > ? ORDER BY seq ${order} LIMIT ?`)
          .all(clientId, options.afterSeq ?? 0, options.limit);
    return (rows as Row[]).map(toAuditEntry);
  }

  async pinned(clientId: string) {
    const r = this.db.prepare(AUDIT_PIN_SQL).get(numbered([clientId])) as Row | undefined;
    return { head: (r?.audit_head as string | null | undefined) ?? null, count: Number(r?.audit_count ?? 0) };
  }
}
