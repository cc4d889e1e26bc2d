/** PAKs on SQLite; issue, rotate and revoke are each one immediate transaction with their audit entry. */
import type Database from 'better-sqlite3';
import type { AuditKey } from '../../crypto/audit-key.js';
import { ACTIVE_PAKS_SQL, EXPIRE_PAKS_SQL, INSERT_PAK_SQL, LIST_PAKS_SQL, PAK_FOR_AUTH_SQL, REVOKE_PAKS_SQL, toPak, toPakAuth } from '../sql/keys.js';
import type { AuditInput } from '../types/audit.js';
import type { KeyStore, NewPak, Pak } from '../types/keys.js';
import { appendAuditSync } from './audit.js';
import { sqliteQueries } from './queries.js';

export class SqliteKeyStore implements KeyStore {
  private readonly sql: ReturnType<typeof sqliteQueries>;

  constructor(private readonly db: Database.Database, private readonly auditKey: AuditKey) {
    this.sql = sqliteQueries(db);
  }

  private insertRow(input: NewPak) {
    return this.sql.one(INSERT_PAK_SQL, [input.id, input.clientId, input.keyHash, input.prefix, input.now]);
  }

  async insert(input: NewPak, audit?: AuditInput) {
    return this.db.transaction(() => {
      const r = this.insertRow(input);
      if (r && audit) appendAuditSync(this.db, this.auditKey, audit);
      return r ? toPak(r) : null;
    }).immediate();
  }

  async rotate(input: NewPak & { expiresAt: number }, audit?: AuditInput) {
    return this.db.transaction(() => {
      const previous = this.sql.all(EXPIRE_PAKS_SQL, [input.expiresAt, input.now, input.clientId]).map(toPak);
      const pak = toPak(this.insertRow(input)!);
      if (audit) appendAuditSync(this.db, this.auditKey, audit);
      return { pak, previous };
    }).immediate();
  }

  async list(clientId: string) {
    return this.sql.all(LIST_PAKS_SQL, [clientId]).map(toPak);
  }

  async active(clientId: string, now: number) {
    return this.sql.all(ACTIVE_PAKS_SQL, [clientId, now]).map(toPak);
  }

  async revoke(clientId: string, now: number, keyId?: string, audit?: (revoked: Pak[]) => AuditInput) {
    return this.db.transaction(() => {
      const revoked = this.sql.all(REVOKE_PAKS_SQL, [now, clientId, keyId ?? null]).map(toPak);
      if (revoked.length > 0 && audit) appendAuditSync(this.db, this.auditKey, audit(revoked));
      return revoked;
    }).immediate();
  }

  async findForAuth(keyHash: string) {
    const r = this.sql.one(PAK_FOR_AUTH_SQL, [keyHash]);
    return r ? toPakAuth(r) : null;
  }

  async touch(lastUsed: ReadonlyMap<string, number>) {
    const update = this.db.prepare('UPDATE paks SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?');
    this.db.transaction(() => {
      for (const [id, at] of lastUsed) update.run(at, id);
    })();
  }
}
