/** Applications: each belongs to one operator account and is only ever looked up within it. */
import crypto from 'node:crypto';
import type { App, Store } from '../store/types.js';

/** `logi_` + 12 lowercase hex, as in the product page. */
export function newClientId(): string {
  return `logi_${crypto.randomBytes(6).toString('hex')}`;
}

export async function createApp(store: Store, accountId: string, name: string, now: number): Promise<App> {
  return store.createApp({ clientId: newClientId(), accountId, name, now });
}

export async function updateApp(store: Store, accountId: string, clientId: string, patch: { name?: string | undefined; panopticonEnabled?: boolean | undefined }): Promise<App | null> {
  const app = await store.updateApp(accountId, clientId, patch);
  // The enabled flag is part of every node's cached PAK decision.
  if (app !== null && patch.panopticonEnabled !== undefined) await store.publish({ kind: 'keys_changed', clientId });
  return app;
}
