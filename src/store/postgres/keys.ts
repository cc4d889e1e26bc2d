/** PAKs on PostgreSQL. */
import { ACTIVE_PAKS_SQL, EXPIRE_PAKS_SQL, INSERT_PAK_SQL, LIST_PAKS_SQL, PAK_FOR_AUTH_SQL, REVOKE_PAKS_SQL, toPak, toPakAuth } from '../sql/keys.js';
import type { AuditInput } from '../types/audit.js';
import type { KeyStore, NewPak, Pak } from '../types/keys.js';
import { appendAuditTx } from './audit.js';
import { type PgDb } from './db.js';

type Row = Record<string, unknown>;

export class PostgresKeyStore implements KeyStore {
  constructor(private readonly db: PgDb) {}

  async insert(input: NewPak, audit?: AuditInput) {
    return this.db.tx(async (c) => {
      const [r] = (await c.query(INSERT_PAK_SQL, [input.id, input.clientId, input.keyHash, input.prefix, input.now])).rows as Row[];
      if (r && audit) await appendAuditTx(c, this.db.auditKey, audit);
      return r ? toPak(r) : null;
    });
  }

  async rotate(input: NewPak & { expiresAt: number }, audit?: AuditInput) {
    return this.db.tx(async (c) => {
      // Serialise rotations of one app so two at once cannot both become primary.
      await c.query('SELECT 1 FROM apps WHERE client_id = $1 FOR NO KEY UPDATE', [input.clientId]);
      const previous = (await c.query(EXPIRE_PAKS_SQL, [input.expiresAt, input.now, input.clientId])).rows.map((r) => toPak(r as Row));
      const { rows } = await c.query(INSERT_PAK_SQL, [input.id, input.clientId, input.keyHash, input.prefix, input.now]);
      if (audit) await appendAuditTx(c, this.db.auditKey, audit);
      return { pak: toPak(rows[0] as Row), previous };
    });
  }

  async list(clientId: string) {
    return (await this.db.q(LIST_PAKS_SQL, [clientId])).map(toPak);
  }

  async active(clientId: string, now: number) {
    return (await this.db.q(ACTIVE_PAKS_SQL, [clientId, now])).map(toPak);
  }

  async revoke(clientId: string, now: number, keyId?: string, audit?: (revoked: Pak[]) => AuditInput) {
    return this.db.tx(async (c) => {
      const revoked = (await c.query(REVOKE_PAKS_SQL, [now, clientId, keyId ?? null])).rows.map((r) => toPak(r as Row));
      if (revoked.length > 0 && audit) await appendAuditTx(c, this.db.auditKey, audit(revoked));
      return revoked;
    });
  }

  async findForAuth(keyHash: string) {
    const [r] = await this.db.q(PAK_FOR_AUTH_SQL, [keyHash]);
    return r ? toPakAuth(r) : null;
  }

  async touch(lastUsed: ReadonlyMap<string, number>) {
    if (lastUsed.size === 0) return;
    await this.db.q(
      `UPDATE paks p SET last_used_at = GREATEST(COALESCE(p.last_used_at, 0), u.at)
       FROM unnest($1::text[], $2::bigint[]) AS u(id, at) WHERE p.id = u.id`,
      [[...lastUsed.keys()], [...lastUsed.values()]],
    );
  }
}
