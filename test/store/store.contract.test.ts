/**
 * The store as a whole, on every engine: migrations, health (ping, writable, signal health) and the
 * cross-node signals. Each area's sub-store has its own contract suite (test/store/<area>.contract.test.ts);
 * SQLite's trace commit worker has its own (sqlite-commit-worker.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openStore } from '../../src/store/index.js';
import type { StoreLocation } from '../../src/config.js';
import type { Store, StoreSignal } from '../../src/store/types/store.js';
import { ENGINES, freshLocation, TEST_AUDIT_KEY } from '../support/locations.js';
import { createAccount, createApp, NOW, traceRow } from '../support/store-fixtures.js';

for (const engine of ENGINES) {
  describe(`store contract [${engine}]`, () => {
    let store: Store;
    let location: StoreLocation;
    let cleanup: () => Promise<void>;

    before(async () => {
      const fresh = freshLocation(engine);
      location = fresh.location;
      cleanup = fresh.cleanup;
      store = await openStore(location, { auditKey: TEST_AUDIT_KEY });
    });
    after(async () => {
      await store?.close();
      await cleanup?.();
    });

    it('is the engine its location names', () => {
      assert.equal(store.engine, engine);
    });

    it('migrations are idempotent: migrating again keeps every row and changes nothing', async () => {
      const account = await createAccount(store, 'acct_m');
      const app = await createApp(store, account, 'logi_e00000000001');
      assert.deepEqual(await store.traces.insert([traceRow(app.clientId)]), [true]);
      const pinned = await store.audit.pinned(app.clientId);
      await store.migrate();
      await store.migrate();
      assert.equal(await store.accounts.count(), 1);
      assert.deepEqual(await store.apps.list(account), [app]);
      assert.equal(await store.traces.count(app.clientId), 1);
      assert.deepEqual(await store.audit.pinned(app.clientId), pinned);
      // Reopened, it finds the schema done and the data there.
      const again = await openStore(location, { auditKey: TEST_AUDIT_KEY });
      try {
        assert.deepEqual(await again.apps.find(account, app.clientId), app);
      } finally {
        await again.close();
      }
    });

    it('ping resolves, a healthy store is writable, and signals are heard', async () => {
      await store.ping();
      assert.deepEqual(await store.writable(), { ok: true });
      const health = store.signalHealth();
      assert.equal(health.live, true, JSON.stringify(health));
      assert.equal(health.mode, engine === 'sqlite' ? 'in_process' : 'listen_notify');
      assert.equal(health.lastError, null);
    });

    it('a signal has reached every subscriber of this node when publish returns, once; unsubscribed listeners hear nothing', async () => {
      const first: StoreSignal[] = [];
      const second: StoreSignal[] = [];
      const offFirst = store.subscribe((s) => first.push(s));
      const offSecond = store.subscribe((s) => second.push(s));
      try {
        const keys: StoreSignal = { kind: 'keys_changed', clientId: 'logi_e00000000001' };
        await store.publish(keys);
        assert.deepEqual(first, [keys]);
        assert.deepEqual(second, [keys]);
        offSecond();
        const committed: StoreSignal = { kind: 'traces_committed', clientIds: ['logi_e00000000001', 'logi_e00000000002'] };
        await store.publish(committed);
        assert.deepEqual(first, [keys, committed]);
        assert.deepEqual(second, [keys], 'unsubscribed');

        if (engine === 'postgres') {
          // Our own NOTIFYs come back through LISTEN too, and must not be heard twice. Another
          // node's signal, sent after them, arrives after them (notifications come in commit
          // order): once it is here, any echo would have been.
          const other = await openStore(location, { auditKey: TEST_AUDIT_KEY });
          try {
            const fromOther: StoreSignal = { kind: 'guard_changed', clientId: 'logi_e00000000003' };
            const heard = new Promise<void>((resolve) => {
              const off = store.subscribe((s) => {
                if (s.kind === 'guard_changed') {
                  off();
                  resolve();
                }
              });
            });
            await other.publish(fromOther);
            await heard;
            assert.deepEqual(first, [keys, committed, fromOther]);
          } finally {
            await other.close();
          }
        }
      } finally {
        offFirst();
        offSecond();
      }
    });
  });
}
