/** The delivery outbox on both engines, without a server: leases, takeover after a lease ends, stale outcomes dropped. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
import { ENGINES, freshLocation, TEST_AUDIT_KEY } from '../support/harness.js';

for (const engine of ENGINES) {
  describe(`webhook outbox [${engine}]`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    const now = 1_780_000_000_000;

    before(async () => {
      const fresh = freshLocation(engine);
      cleanup = fresh.cleanup;
      store = await openStore(fresh.location, { auditKey: TEST_AUDIT_KEY });
      await store.createAccount({ id: 'acct_1', email: 'o@example.com', passwordHash: 'h', now });
      await store.createApp({ clientId: 'logi_000000000001', accountId: 'acct_1', name: 'a', now }, { clientId: 'logi_000000000001', at: now, actor: 'test', action: 'app.create', target: 'logi_000000000001', before: null, after: null });
      await store.webhooks.create(
        { id: 'whk_1', clientId: 'logi_000000000001', url: 'http://127.0.0.1:9/x', format: 'json', events: ['kill_switch.on'], secretEnc: 'sealed', enabled: true, createdAt: now },
        { clientId: 'logi_000000000001', at: now, actor: 'test', action: 'webhook.create', target: 'whk_1', before: null, after: null },
      );
    });
    after(async () => {
      await store.close();
      await cleanup();
    });

    it('a claimed row is leased; after the lease another claim takes over and the first outcome is dropped', async () => {
      await store.webhooks.enqueue([{ id: 'whd_1', webhookId: 'whk_1', clientId: 'logi_000000000001', event: 'kill_switch.on', payload: '{}', createdAt: now }]);
      const first = await store.webhooks.claimDue(now, now + 1000, 10);
      assert.equal(first.length, 1);
      assert.equal(first[0]!.delivery.attempts, 1);
      assert.equal(first[0]!.endpoint.id, 'whk_1');
      assert.deepEqual(first[0]!.endpoint.events, ['kill_switch.on']);
      assert.equal((await store.webhooks.claimDue(now + 999, now + 2000, 10)).length, 0, 'leased rows are not claimed again');

      const second = await store.webhooks.claimDue(now + 1000, now + 2000, 10);
      assert.equal(second.length, 1, 'an ended lease (a crashed sender) is taken over');
      assert.equal(second[0]!.delivery.attempts, 2);

      const outcome = { id: 'whd_1', status: 'delivered' as const, nextAttemptAt: now, statusCode: 200, error: null, completedAt: now + 1500 };
      assert.equal(await store.webhooks.complete({ ...outcome, attempts: 1 }), false, 'the stale claim cannot record');
      assert.equal(await store.webhooks.complete({ ...outcome, attempts: 2 }), true);
      assert.equal((await store.webhooks.claimDue(now + 10_000, now + 20_000, 10)).length, 0, 'delivered rows are done');
      const [d] = await store.webhooks.listDeliveries('logi_000000000001', 'whk_1', 10);
      assert.equal(d!.status, 'delivered');
      assert.equal(d!.attempts, 2);
      assert.equal(d!.leaseUntil, null);
    });

    it('a retry waits for its next attempt time', async () => {
      await store.webhooks.enqueue([{ id: 'whd_2', webhookId: 'whk_1', clientId: 'logi_000000000001', event: 'kill_switch.on', payload: '{}', createdAt: now }]);
      const [c] = await store.webhooks.claimDue(now, now + 1000, 10);
      await store.webhooks.complete({ id: 'whd_2', attempts: c!.delivery.attempts, status: 'pending', nextAttemptAt: now + 5000, statusCode: 500, error: 'HTTP 500', completedAt: null });
      assert.equal((await store.webhooks.claimDue(now + 4999, now + 9000, 10)).length, 0);
      assert.equal((await store.webhooks.claimDue(now + 5000, now + 9000, 10)).length, 1);
    });

    it('removing an endpoint drops its deliveries', async () => {
      const removed = await store.webhooks.remove({
        clientId: 'logi_000000000001', webhookId: 'whk_1',
        audit: { clientId: 'logi_000000000001', at: now, actor: 'test', action: 'webhook.remove', target: 'whk_1', before: null, after: null },
      });
      assert.equal(removed?.id, 'whk_1');
      assert.deepEqual(await store.webhooks.listDeliveries('logi_000000000001', 'whk_1', 10), []);
      assert.equal((await store.webhooks.claimDue(now + 100_000, now + 200_000, 10)).length, 0);
    });
  });
}
