/** PAK lifecycle: issue (once), rotate with a grace period, revoke. The full key leaves only here. */
import type { Pak, Store } from '../store/types.js';
import { displayPrefix, generateToken, hashSecret, newId, PAK_PREFIX } from './tokens.js';

export const DEFAULT_ROTATION_GRACE_MS = 24 * 3600_000;

export type IssueResult = { ok: true; pak: string; key: Pak } | { ok: false; code: 'pak_exists' };

function newPak(clientId: string, now: number) {
  const pak = generateToken(PAK_PREFIX);
  return { pak, input: { id: newId('pak'), clientId, keyHash: hashSecret(pak), prefix: displayPrefix(PAK_PREFIX, pak), now } };
}

export async function issuePak(store: Store, clientId: string, now: number): Promise<IssueResult> {
  const { pak, input } = newPak(clientId, now);
  const key = await store.insertPak(input);
  if (key === null) return { ok: false, code: 'pak_exists' };
  await store.publish({ kind: 'keys_changed', clientId });
  return { ok: true, pak, key };
}

export async function rotatePak(store: Store, clientId: string, graceMs: number, now: number) {
  const { pak, input } = newPak(clientId, now);
  const { pak: key, previous } = await store.rotatePak({ ...input, expiresAt: now + graceMs });
  await store.publish({ kind: 'keys_changed', clientId });
  return { pak, key, previous };
}

export async function revokePaks(store: Store, clientId: string, now: number, keyId?: string): Promise<Pak[]> {
  const revoked = await store.revokePaks(clientId, now, keyId);
  await store.publish({ kind: 'keys_changed', clientId });
  return revoked;
}
