/**
 * HMAC signing lifecycle: enable (issues the first pak_secret), rotate (with a grace period),
 * disable. The secret leaves only in the return value of enable and rotate; it is stored sealed
 * and never written to the audit log, which records ids only.
 */
import type { SecretBox } from '../crypto/secret-box.js';
import type { AppSecret } from '../store/types/secrets.js';
import type { Store } from '../store/types/store.js';
import { generateToken, newId, SECRET_PREFIX } from './tokens.js';

export const DEFAULT_SECRET_GRACE_MS = 24 * 3600_000;

export interface IssuedSecret {
  /** The full pano_sec_… value: shown once. */
  secret: string;
  record: AppSecret;
}

function newSecret(box: SecretBox, clientId: string) {
  const secret = generateToken(SECRET_PREFIX);
  return { secret, input: { id: newId('sec'), sealed: box.seal(secret, clientId) } };
}

export async function enableHmac(store: Store, box: SecretBox, clientId: string, now: number, actor: string): Promise<({ ok: true } & IssuedSecret) | { ok: false; code: 'hmac_already_enabled' }> {
  const { secret, input } = newSecret(box, clientId);
  const record = await store.secrets.enableHmac({
    clientId, secret: input, now,
    audit: { clientId, at: now, actor, action: 'hmac.enable', target: input.id, before: { hmac_enabled: false }, after: { hmac_enabled: true, secret_id: input.id } },
  });
  if (record === null) return { ok: false, code: 'hmac_already_enabled' };
  await store.publish({ kind: 'keys_changed', clientId });
  return { ok: true, secret, record };
}

export async function rotateSecret(store: Store, box: SecretBox, clientId: string, graceMs: number, now: number, actor: string): Promise<({ ok: true; previous: AppSecret[] } & IssuedSecret) | { ok: false; code: 'hmac_not_enabled' }> {
  const { secret, input } = newSecret(box, clientId);
  const result = await store.secrets.rotateSecret({
    clientId, secret: input, now, expiresAt: now + graceMs,
    audit: { clientId, at: now, actor, action: 'hmac.rotate', target: input.id, before: null, after: { secret_id: input.id, grace_seconds: Math.round(graceMs / 1000) } },
  });
  if (result === null) return { ok: false, code: 'hmac_not_enabled' };
  await store.publish({ kind: 'keys_changed', clientId });
  return { ok: true, secret, record: result.secret, previous: result.previous };
}

export async function disableHmac(store: Store, clientId: string, now: number, actor: string): Promise<{ ok: true; revoked: AppSecret[] } | { ok: false; code: 'hmac_not_enabled' }> {
  const revoked = await store.secrets.disableHmac({
    clientId, now,
    audit: (secrets) => ({
      clientId, at: now, actor, action: 'hmac.disable', target: null,
      before: { hmac_enabled: true }, after: { hmac_enabled: false, revoked_secret_ids: secrets.map((s) => s.id) },
    }),
  });
  if (revoked === null) return { ok: false, code: 'hmac_not_enabled' };
  await store.publish({ kind: 'keys_changed', clientId });
  return { ok: true, revoked };
}
