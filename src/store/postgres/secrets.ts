/**
 * HMAC signing secrets on PostgreSQL. Each change locks the app row first, so concurrent
 * enable/rotate/disable of one app (from any node) apply one after the other.
 */
import type pg from 'pg';
import { appendAuditTx } from './audit.js';
import { type PgDb } from './db.js';
import { ACTIVE_SECRETS_SQL, EXPIRE_SECRETS_SQL, INSERT_SECRET_SQL, LIST_SECRETS_SQL, newestFirst, REVOKE_SECRETS_SQL, toSecret, HMAC_OFF_SQL, HMAC_ON_SQL } from '../sql/secrets.js';
import type { SecretStore } from '../types/secrets.js';

type Row = Record<string, unknown>;

async function lockedHmacEnabled(c: pg.PoolClient, clientId: string): Promise<boolean> {
  const r = (await c.query('SELECT hmac_enabled FROM apps WHERE client_id = $1 FOR NO KEY UPDATE', [clientId])).rows[0] as Row | undefined;
  if (r === undefined) throw new Error(`secrets: no app ${clientId}`);
  return Number(r.hmac_enabled) === 1;
}

async function insert(c: pg.PoolClient, clientId: string, secret: { id: string; sealed: string }, now: number) {
  return toSecret((await c.query(INSERT_SECRET_SQL, [secret.id, clientId, secret.sealed, now])).rows[0] as Row);
}

export class PostgresSecretStore implements SecretStore {
  constructor(private readonly db: PgDb) {}

  async enableHmac(input: Parameters<SecretStore['enableHmac']>[0]) {
    return this.db.tx(async (c) => {
      if (await lockedHmacEnabled(c, input.clientId)) return null;
      // The column is INTEGER on both engines: 1/0, never a boolean.
      await c.query(HMAC_ON_SQL, [input.clientId]);
      const secret = await insert(c, input.clientId, input.secret, input.now);
      await appendAuditTx(c, this.db.auditKey, input.audit);
      return secret;
    });
  }

  async disableHmac(input: Parameters<SecretStore['disableHmac']>[0]) {
    return this.db.tx(async (c) => {
      if (!(await lockedHmacEnabled(c, input.clientId))) return null;
      await c.query(HMAC_OFF_SQL, [input.clientId]);
      const revoked = (await c.query(REVOKE_SECRETS_SQL, [input.now, input.clientId])).rows.map((r) => toSecret(r as Row)).sort(newestFirst);
      await appendAuditTx(c, this.db.auditKey, input.audit(revoked));
      return revoked;
    });
  }

  async rotateSecret(input: Parameters<SecretStore['rotateSecret']>[0]) {
    return this.db.tx(async (c) => {
      if (!(await lockedHmacEnabled(c, input.clientId))) return null;
      const previous = (await c.query(EXPIRE_SECRETS_SQL, [input.expiresAt, input.now, input.clientId])).rows.map((r) => toSecret(r as Row)).sort(newestFirst);
      const secret = await insert(c, input.clientId, input.secret, input.now);
      await appendAuditTx(c, this.db.auditKey, input.audit);
      return { secret, previous };
    });
  }

  async listSecrets(clientId: string) {
    return (await this.db.q(LIST_SECRETS_SQL, [clientId])).map(toSecret);
  }

  async activeSecrets(clientId: string, now: number) {
    return (await this.db.q(ACTIVE_SECRETS_SQL, [clientId, now])).map(toSecret);
  }
}
