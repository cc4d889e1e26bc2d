/** One contract, every engine: the Store interface behaves the same on SQLite and PostgreSQL. */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ENGINES, freshLocation, TEST_AUDIT_KEY } from '../support/harness.js';
import { openStore } from '../../src/store/index.js';
import type { AuditInput } from '../../src/store/types/guard.js';
import type { Store, TraceRow } from '../../src/store/types/store.js';

/** A store-level app creation with the audit entry it must carry (the apps service writes the real one). */
function appCreated<T extends { clientId: string; now: number }>(input: T): [T, AuditInput] {
  return [input, { clientId: input.clientId, at: input.now, actor: 'system', action: 'app.create', target: input.clientId, before: null, after: null }];
}

function row(clientId: string, overrides: Partial<TraceRow> = {}): TraceRow {
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
    receivedAt: Date.now(),
    checkId: null,
    ...overrides,
  };
}

function ok<T extends { ok: boolean }>(result: T): Extract<T, { ok: true }> {
  assert.ok(result.ok, JSON.stringify(result));
  return result as Extract<T, { ok: true }>;
}

for (const engine of ENGINES) {
  describe(`store contract [${engine}]`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    let accountId: string;
    const now = 1_780_000_000_000;

    before(async () => {
      const fresh = freshLocation(engine);
      cleanup = fresh.cleanup;
      store = await openStore(fresh.location, { auditKey: TEST_AUDIT_KEY });
      const { account } = ok(await store.accounts.create({ id: 'acct_owner', email: 'owner@example.com', passwordHash: 'h', now }));
      accountId = account!.id;
    });
    after(async () => {
      await store.close();
      await cleanup();
    });

    it('migrations are idempotent', async () => {
      await store.migrate();
      assert.equal(await store.accounts.count(), 1);
    });

    it('a signal has reached this node\'s subscribers when publish returns, once', async () => {
      const got: unknown[] = [];
      const off = store.subscribe((s) => got.push(s));
      try {
        await store.publish({ kind: 'keys_changed', clientId: 'logi_000000000002' });
        assert.deepEqual(got, [{ kind: 'keys_changed', clientId: 'logi_000000000002' }]);
        // On PostgreSQL our own NOTIFY also comes back through LISTEN; it must not be heard twice.
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(got.length, 1);
      } finally {
        off();
      }
    });

    it('signals reach subscribers', async () => {
      const got = new Promise((resolve) => {
        const off = store.subscribe((s) => {
          off();
          resolve(s);
        });
      });
      await store.publish({ kind: 'keys_changed', clientId: 'logi_000000000001' });
      assert.deepEqual(await got, { kind: 'keys_changed', clientId: 'logi_000000000001' });
      const committed = new Promise((resolve) => {
        const off = store.subscribe((s) => {
          off();
          resolve(s);
        });
      });
      await store.publish({ kind: 'traces_committed', clientIds: ['logi_000000000001', 'logi_000000000002'] });
      assert.deepEqual(await committed, { kind: 'traces_committed', clientIds: ['logi_000000000001', 'logi_000000000002'] });
    });
  });
}
