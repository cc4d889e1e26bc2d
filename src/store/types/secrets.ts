/**
 * Storage for HMAC signing secrets (`store.secrets`): the `apps.hmac_enabled` switch and the rows
 * of `app_secrets`. Each engine implements it in `sqlite/secrets.ts` / `postgres/secrets.ts`.
 *
 * A secret is stored sealed (SecretBox, AES-256-GCM under the server key): the server has to read
 * it back to verify signatures, so it cannot be hashed like a PAK. The store never sees it in clear.
 * Every change carries an `AuditInput` appended in the same transaction.
 */
import type { AuditInput } from './guard.js';

export interface AppSecret {
  id: string;
  clientId: string;
  /** The sealed secret (`v1.<nonce>.<ciphertext>.<tag>`), opened with the app's client_id. */
  sealed: string;
  createdAt: number;
  /** Set when rotated out: valid until then. */
  expiresAt: number | null;
  revokedAt: number | null;
}

export interface NewSecret {
  id: string;
  sealed: string;
}

export interface SecretStore {
  /** Turns signing on with its first secret. Null when it was already on (nothing changed). */
  enableHmac(input: { clientId: string; secret: NewSecret; now: number; audit: AuditInput }): Promise<AppSecret | null>;
  /**
   * Turns signing off and revokes every unrevoked secret. Null when it was already off (nothing
   * changed, nothing audited); the audit entry is built from what was revoked.
   */
  disableHmac(input: { clientId: string; now: number; audit: (revoked: AppSecret[]) => AuditInput }): Promise<AppSecret[] | null>;
  /**
   * A new secret; every secret still valid at `now` expires at `expiresAt` (or keeps an earlier
   * expiry), and is revoked when `expiresAt` is not after `now`. Null when signing is off.
   */
  rotateSecret(input: { clientId: string; secret: NewSecret; now: number; expiresAt: number; audit: AuditInput }): Promise<{ secret: AppSecret; previous: AppSecret[] } | null>;
  /** Every secret the app ever had, newest first. */
  listSecrets(clientId: string): Promise<AppSecret[]>;
  /** Secrets neither revoked nor expired at `now`, newest first. */
  activeSecrets(clientId: string, now: number): Promise<AppSecret[]>;
}
