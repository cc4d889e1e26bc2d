/** PAK lifecycle: issue (once), rotate with a grace period, revoke. The full key leaves only here. */
import type { Pak, Store } from '../store/types/store.js';
import { displayPrefix, generateToken, hashSecret, newId, PAK_PREFIX } from './tokens.js';

export const DEFAULT_ROTATION_GRACE_MS = 24 * 3600_000;

export type IssueResult = { ok: true; pak: string; key: Pak } | { ok: false; code: 'pak_exists' };

function newPak(clientId: string, now: number) {
  const pak = generateToken(PAK_PREFIX);
  return { pak, input: { id: newId('pak'), clientId, keyHash: hashSecret(pak), prefix: displayPrefix(PAK_PREFIX, pak), now } };
}

/** What the audit log keeps of a key: never the key or its hash. */
const keyView = (p: Pak) => ({ id: p.id, prefix: p.prefix, expires_at: p.expiresAt, revoked_at: p.revokedAt });

export async function issuePak(store: Store, clientId: string, now: number, actor: string): Promise<IssueResult> {
  const { pak, input } = newPak(clientId, now);
  const key = await store.keys.insert(input, {
    clientId, at: now, actor, action: 'pak.issue', target: input.id, before: null, after: { id: input.id, prefix: input.prefix },
  });
  if (key === null) return { ok: false, code: 'pak_exists' };
  await store.publish({ kind: 'keys_changed', clientId });
  return { ok: true, pak, key };
}

export async function rotatePak(store: Store, clientId: string, graceMs: number, now: number, actor: string) {
  const { pak, input } = newPak(clientId, now);
  const { pak: key, previous } = await store.keys.rotate({ ...input, expiresAt: now + graceMs }, {
    clientId, at: now, actor, action: 'pak.rotate', target: input.id, before: null,
    after: { id: input.id, prefix: input.prefix, grace_seconds: Math.round(graceMs / 1000) },
  });
  await store.publish({ kind: 'keys_changed', clientId });
  return { pak, key, previous };
}

export async function revokePaks(store: Store, clientId: string, now: number, actor: string, keyId?: string): Promise<Pak[]> {
  const revoked = await store.keys.revoke(clientId, now, keyId, (keys) => ({
    clientId, at: now, actor, action: 'pak.revoke', target: keyId ?? null, before: null, after: keys.map(keyView),
  }));
  await store.publish({ kind: 'keys_changed', clientId });
  return revoked;
}
