/** Applications: each belongs to one operator account and is only ever looked up within it. */
import crypto from 'node:crypto';
import type { AuditInput } from '../store/types/guard.js';
import type { App, Store } from '../store/types/store.js';

/** `logi_` + 12 lowercase hex, as in the product page. */
export function newClientId(): string {
  return `logi_${crypto.randomBytes(6).toString('hex')}`;
}

/** Creates the app; its audit log starts with `app.create`, written in the same transaction. */
export async function createApp(store: Store, accountId: string, name: string, now: number, actor: string): Promise<App> {
  const clientId = newClientId();
  return store.apps.create(
    { clientId, accountId, name, now },
    { clientId, at: now, actor, action: 'app.create', target: clientId, before: null, after: { name, panopticon_enabled: false } },
  );
}

/**
 * The audit entries of an app change, one per field that actually changed: `app.enable` /
 * `app.disable` (every PAK request of the app is refused while disabled) and `app.rename`.
 * A patch that changes nothing writes none.
 */
export function appChangeEntries(before: App, after: App, actor: string, now: number): AuditInput[] {
  const entries: AuditInput[] = [];
  const base = { clientId: after.clientId, at: now, actor, target: after.clientId };
  if (before.panopticonEnabled !== after.panopticonEnabled) {
    entries.push({ ...base, action: after.panopticonEnabled ? 'app.enable' : 'app.disable', before: { panopticon_enabled: before.panopticonEnabled }, after: { panopticon_enabled: after.panopticonEnabled } });
  }
  if (before.name !== after.name) entries.push({ ...base, action: 'app.rename', before: { name: before.name }, after: { name: after.name } });
  return entries;
}

export async function updateApp(
  store: Store,
  accountId: string,
  clientId: string,
  patch: { name?: string | undefined; panopticonEnabled?: boolean | undefined },
  actor: string,
  now: number,
): Promise<App | null> {
  const app = await store.apps.update(accountId, clientId, patch, (before, after) => appChangeEntries(before, after, actor, now));
  // The enabled flag is part of every node's cached PAK decision.
  if (app !== null && patch.panopticonEnabled !== undefined) await store.publish({ kind: 'keys_changed', clientId });
  return app;
}
