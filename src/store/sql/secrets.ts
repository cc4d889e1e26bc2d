/** SQL and row mapping of `app_secrets`, shared by both engines' secret stores. */
import { type Row, numOrNull } from './row.js';
import { EXPIRE_FOR_ROTATION_SQL } from './keys.js';
import type { AppSecret } from '../types/secrets.js';

export const toSecret = (r: Row): AppSecret => ({
  id: String(r.id),
  clientId: String(r.client_id),
  sealed: String(r.secret_enc),
  createdAt: Number(r.created_at),
  expiresAt: numOrNull(r.expires_at),
  revokedAt: numOrNull(r.revoked_at),
});

export const INSERT_SECRET_SQL =
  `INSERT INTO app_secrets (id, client_id, secret_enc, created_at) VALUES ($1, $2, $3, $4) RETURNING *`;

export const EXPIRE_SECRETS_SQL = EXPIRE_FOR_ROTATION_SQL('app_secrets');

/** Disabling cuts off what still works; secrets whose grace already ended stay as they were. */
export const REVOKE_SECRETS_SQL =
  `UPDATE app_secrets SET revoked_at = $1
   WHERE client_id = $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)
   RETURNING *`;

export const ACTIVE_SECRETS_SQL =
  `SELECT * FROM app_secrets WHERE client_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)
   ORDER BY created_at DESC, id`;

export const LIST_SECRETS_SQL =
  `SELECT * FROM app_secrets WHERE client_id = $1 ORDER BY created_at DESC, id`;

export const newestFirst = (a: AppSecret, b: AppSecret): number => b.createdAt - a.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export const HMAC_OFF_SQL = 'UPDATE apps SET hmac_enabled = 0 WHERE client_id = $1';
export const HMAC_ON_SQL = 'UPDATE apps SET hmac_enabled = 1 WHERE client_id = $1';
