import type { EngineMigration } from './migration.js';

/**
 * Version 6, approval floods and replays (docs/security.md):
 * - idempotency_keys: what a guard check answered, by `Idempotency-Key` header (`key:<value>`, kept
 *   24 h) or by the digest of a signed request (`sig:<hex>`, kept while the signature could be
 *   replayed), so a retry or a replay is answered the first answer and stores nothing new. The
 *   expiry index serves the sweep.
 * - webhook_deliveries_outbox: counting an endpoint's undelivered rows (the outbox bound) and
 *   finding its oldest ones reads this index instead of the app's whole history.
 */
const FLOODS_SQL = `
      CREATE TABLE idempotency_keys (
        client_id TEXT NOT NULL,
        key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        check_id TEXT NOT NULL,
        answer TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (client_id, key)
      );
      CREATE INDEX idempotency_keys_expiry ON idempotency_keys(expires_at);
      CREATE INDEX webhook_deliveries_outbox ON webhook_deliveries(webhook_id, status, created_at);
`;

export const approvalFloods: EngineMigration = {
  version: 6,
  name: 'approval floods: idempotency keys, outbox index',
  sqlite: FLOODS_SQL,
  postgres: FLOODS_SQL,
};
