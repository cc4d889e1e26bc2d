/** Statements and row mapping of PAKs, shared by both engines. */
import { type Row, num, numOrNull } from './row.js';
import type { Pak, PakAuthRecord } from '../types/keys.js';

export const toPak = (r: Row): Pak => ({
  id: String(r.id),
  clientId: String(r.client_id),
  prefix: String(r.prefix),
  createdAt: num(r.created_at),
  lastUsedAt: numOrNull(r.last_used_at),
  expiresAt: numOrNull(r.expires_at),
  revokedAt: numOrNull(r.revoked_at),
});

export const toPakAuth = (r: Row): PakAuthRecord => ({
  keyId: String(r.id),
  keyHash: String(r.key_hash),
  clientId: String(r.client_id),
  panopticonEnabled: Boolean(r.panopticon_enabled),
  hmacEnabled: Number(r.hmac_enabled) === 1,
  expiresAt: numOrNull(r.expires_at),
  revokedAt: numOrNull(r.revoked_at),
});

/**
 * Rotation, of PAKs and of HMAC signing secrets alike: every one of the app's credentials still
 * valid at $2 now expires at $1, or earlier if it already did (a grace already running is never
 * lengthened); a grace of zero revokes them on the spot.
 */
export const EXPIRE_FOR_ROTATION_SQL = (table: 'paks' | 'app_secrets'): string =>
  `UPDATE ${table} SET
     expires_at = CASE WHEN expires_at IS NULL OR expires_at > $1 THEN $1 ELSE expires_at END,
     revoked_at = CASE WHEN $1 <= $2 THEN $2 ELSE NULL END
   WHERE client_id = $3 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)
   RETURNING *`;

export const EXPIRE_PAKS_SQL = EXPIRE_FOR_ROTATION_SQL('paks');

/**
 * Revocation at $1 of the app's keys still valid then (or of the one with id $3): a key whose
 * rotation grace already ran out is left expired, so the answer and the audit entry name only the
 * keys this revocation stopped.
 */
export const REVOKE_PAKS_SQL =
  `UPDATE paks SET revoked_at = $1
   WHERE client_id = $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)
     AND (CAST($3 AS TEXT) IS NULL OR id = $3)
   RETURNING *`;

export const INSERT_PAK_SQL =
  `INSERT INTO paks (id, client_id, key_hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5)
   ON CONFLICT (client_id) WHERE revoked_at IS NULL AND expires_at IS NULL DO NOTHING RETURNING *`;

export const LIST_PAKS_SQL = 'SELECT * FROM paks WHERE client_id = $1 ORDER BY created_at DESC, id';
export const ACTIVE_PAKS_SQL = 'SELECT * FROM paks WHERE client_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at DESC';
export const PAK_FOR_AUTH_SQL = `SELECT p.id, p.key_hash, p.client_id, p.expires_at, p.revoked_at, a.panopticon_enabled, a.hmac_enabled
  FROM paks p JOIN apps a ON a.client_id = p.client_id WHERE p.key_hash = $1`;
