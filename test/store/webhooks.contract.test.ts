/**
 * The webhook store's contract on both engines, without a server: endpoints are per application
 * (created and removed with their audit entry, never visible to another app); the delivery outbox
 * leases what it claims, lets another claim take over after a lease ends, drops stale outcomes,
 * counts deliveries per status, and forgets an endpoint's deliveries with it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types/store.js';
import { ENGINES, freshLocation, TEST_AUDIT_KEY } from '../support/locations.js';

for (const engine of ENGINES) {
  describe(`webhook outbox [${engine}]`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    const now = 1_780_000_000_000;

    before(async () => {
      const fresh = freshLocation(engine);
      cleanup = fresh.cleanup;
      store = await openStore(fresh.location, { auditKey: TEST_AUDIT_KEY });
      await store.accounts.create({ id: 'acct_1', email: 'o@example.com', passwordHash: 'h', now });
      await store.apps.create({ clientId: 'logi_000000000001', accountId: 'acct_1', name: 'a', now }, { clientId: 'logi_000000000001', at: now, actor: 'test', action: 'app.create', target: 'logi_000000000001', before: null, after: null });
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

    it('endpoints belong to their app: listed, read and removed only there; create and remove are audited', async () => {
      const other = 'logi_000000000002';
      await store.apps.create({ clientId: other, accountId: 'acct_1', name: 'b', now }, { clientId: other, at: now, actor: 'test', action: 'app.create', target: other, before: null, after: null });
      const before = (await store.audit.pinned(other)).count;
      const created = await store.webhooks.create(
        { id: 'whk_2', clientId: other, url: 'https://example.com/hook', format: 'slack', events: ['approval.requested', 'kill_switch.off'], secretEnc: 'sealed2', enabled: true, createdAt: now },
        { clientId: other, at: now, actor: 'test', action: 'webhook.create', target: 'whk_2', before: null, after: null },
      );
      assert.deepEqual([created.format, created.events, created.secretEnc], ['slack', ['approval.requested', 'kill_switch.off'], 'sealed2']);
      assert.deepEqual((await store.webhooks.list(other)).map((w) => w.id), ['whk_2']);
      assert.equal(await store.webhooks.get('logi_000000000001', 'whk_2'), null, "another app's endpoint is not found");
      assert.equal((await store.webhooks.list('logi_000000000001')).some((w) => w.id === 'whk_2'), false);
      assert.equal(await store.webhooks.remove({ clientId: 'logi_000000000001', webhookId: 'whk_2', audit: { clientId: 'logi_000000000001', at: now, actor: 'test', action: 'webhook.remove', target: 'whk_2', before: null, after: null } }), null);
      assert.equal((await store.audit.pinned(other)).count, before + 1, 'create audited');
      assert.equal((await store.webhooks.remove({ clientId: other, webhookId: 'whk_2', audit: { clientId: other, at: now, actor: 'test', action: 'webhook.remove', target: 'whk_2', before: null, after: null } }))?.id, 'whk_2');
      assert.equal((await store.audit.pinned(other)).count, before + 2, 'remove audited');
      assert.deepEqual(await store.webhooks.list(other), []);
    });

    it('counts deliveries per status', async () => {
      await store.webhooks.enqueue([3, 4, 5].map((i) => ({ id: `whd_c${i}`, webhookId: 'whk_1', clientId: 'logi_000000000001', event: 'kill_switch.on' as const, payload: '{}', createdAt: now + i })));
      const claimed = await store.webhooks.claimDue(now + 10, now + 1000, 1);
      await store.webhooks.complete({ id: claimed[0]!.delivery.id, attempts: 1, status: 'failed', nextAttemptAt: now, statusCode: 410, error: 'HTTP 410', completedAt: now + 20 });
      const counts = await store.webhooks.deliveryCounts('logi_000000000001', 'whk_1');
      assert.equal(counts.failed, 1);
      assert.equal(counts.delivered, 1, 'from the first test');
      assert.equal(counts.pending, 3, 'the retry of the second test and two of these');
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
