/** HMAC signing secrets on SQLite; each change is one immediate transaction with its audit entry. */
import type Database from 'better-sqlite3';
import type { AuditKey } from '../../crypto/audit-key.js';
import { numbered } from '../sql/params.js';
import { ACTIVE_SECRETS_SQL, EXPIRE_SECRETS_SQL, INSERT_SECRET_SQL, LIST_SECRETS_SQL, newestFirst, REVOKE_SECRETS_SQL, toSecret, HMAC_OFF_SQL, HMAC_ON_SQL } from '../sql/secrets.js';
import type { SecretStore } from '../types/secrets.js';
import { appendAuditSync } from './audit.js';

type Row = Record<string, unknown>;

export class SqliteSecretStore implements SecretStore {
  constructor(private readonly db: Database.Database, private readonly key: AuditKey) {}

  private hmacEnabled(clientId: string): boolean {
    const r = this.db.prepare('SELECT hmac_enabled FROM apps WHERE client_id = ?').get(clientId) as Row | undefined;
    if (r === undefined) throw new Error(`secrets: no app ${clientId}`);
    return Number(r.hmac_enabled) === 1;
  }

  private insert(clientId: string, secret: { id: string; sealed: string }, now: number) {
    return toSecret(this.db.prepare(INSERT_SECRET_SQL).get(numbered([secret.id, clientId, secret.sealed, now])) as Row);
  }

  async enableHmac(input: Parameters<SecretStore['enableHmac']>[0]) {
    return this.db.transaction(() => {
      if (this.hmacEnabled(input.clientId)) return null;
      this.db.prepare(HMAC_ON_SQL).run(numbered([input.clientId]));
      const secret = this.insert(input.clientId, input.secret, input.now);
      appendAuditSync(this.db, this.key, input.audit);
      return secret;
    }).immediate();
  }

  async disableHmac(input: Parameters<SecretStore['disableHmac']>[0]) {
    return this.db.transaction(() => {
      if (!this.hmacEnabled(input.clientId)) return null;
      this.db.prepare(HMAC_OFF_SQL).run(numbered([input.clientId]));
      const revoked = (this.db.prepare(REVOKE_SECRETS_SQL).all(numbered([input.now, input.clientId])) as Row[]).map(toSecret).sort(newestFirst);
      appendAuditSync(this.db, this.key, input.audit(revoked));
      return revoked;
    }).immediate();
  }

  async rotateSecret(input: Parameters<SecretStore['rotateSecret']>[0]) {
    return this.db.transaction(() => {
      if (!this.hmacEnabled(input.clientId)) return null;
      const previous = (this.db.prepare(EXPIRE_SECRETS_SQL).all(numbered([input.expiresAt, input.now, input.clientId])) as Row[]).map(toSecret).sort(newestFirst);
      const secret = this.insert(input.clientId, input.secret, input.now);
      appendAuditSync(this.db, this.key, input.audit);
      return { secret, previous };
    }).immediate();
  }

  async listSecrets(clientId: string) {
    return (this.db.prepare(LIST_SECRETS_SQL).all(numbered([clientId])) as Row[]).map(toSecret);
  }

  async activeSecrets(clientId: string, now: number) {
    return (this.db.prepare(ACTIVE_SECRETS_SQL).all(numbered([clientId, now])) as Row[]).map(toSecret);
  }
}
