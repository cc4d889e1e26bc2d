/**
 * What the per-area store contract suites (test/store/<area>.contract.test.ts) share: a fresh store
 * on one engine, and the rows and audit entries they put in it. Not a test file itself.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { openStore } from '../../src/store/index.js';
import type { AuditInput } from '../../src/store/types/audit.js';
import type { Store, TraceRow } from '../../src/store/types/store.js';
import { type Engine, freshLocation, TEST_AUDIT_KEY } from './locations.js';

/** The clock every suite passes to the store: the APIs take `now`, so no test waits for time to pass. */
export const NOW = 1_780_000_000_000;

export interface OpenedStore {
  store: Store;
  /** Closes the store and removes its file or schema. */
  close(): Promise<void>;
}

/** A migrated store on a fresh SQLite file or PostgreSQL schema of its own. */
export async function freshStore(engine: Engine): Promise<OpenedStore> {
  const fresh = freshLocation(engine);
  const store = await openStore(fresh.location, { auditKey: TEST_AUDIT_KEY });
  return {
    store,
    async close() {
      await store.close();
      await fresh.cleanup();
    },
  };
}

/** An audit entry as the services write them (the store only chains and stores it). */
export function auditEntry(clientId: string, action: string, at = NOW, extra: Partial<AuditInput> = {}): AuditInput {
  return { clientId, at, actor: 'system', action, target: null, before: null, after: null, ...extra };
}

/** A store-level app creation with the audit entry it must carry (the apps service writes the real one). */
export function appCreated<T extends { clientId: string; now: number }>(input: T): [T, AuditInput] {
  return [input, auditEntry(input.clientId, 'app.create', input.now, { target: input.clientId })];
}

/** Creates the account (ignoring whether it is the first) and returns its id. */
export async function createAccount(store: Store, id: string, now = NOW): Promise<string> {
  const created = ok(await store.accounts.create({ id, email: `${id}@example.com`, passwordHash: `hash-of-${id}`, now }));
  return created.account.id;
}

/** Creates an app of the account with its `app.create` audit entry. */
export async function createApp(store: Store, accountId: string, clientId: string, now = NOW, name = clientId) {
  return store.apps.create(...appCreated({ clientId, accountId, name, now }));
}

/** The actions of an app's audit log, oldest first. */
export async function auditActions(store: Store, clientId: string): Promise<string[]> {
  return (await store.audit.list(clientId, { limit: 1000 })).map((e) => e.action);
}

/** A trace row of the app with a fresh event id; `overrides` set any field. */
export function traceRow(clientId: string, overrides: Partial<TraceRow> = {}): TraceRow {
  return {
    clientId,
    eventId: crypto.randomUUID(),
    tool: 'search',
    scopeUsed: 'agent:read',
    status: 'ok',
    startedAtUs: Date.parse('2026-05-09T10:11:12Z') * 1000,
    day: '2026-05-09',
    durationMs: 5,
    userSub: null,
    errorMessage: null,
    sessionId: null,
    attributes: null,
    keyId: 'pak_test',
    receivedAt: NOW,
    checkId: null,
    ...overrides,
  };
}

/** Asserts a `{ ok }` result succeeded and narrows it. */
export function ok<T extends { ok: boolean }>(result: T): Extract<T, { ok: true }> {
  assert.ok(result.ok, JSON.stringify(result));
  return result as Extract<T, { ok: true }>;
}
