/**
 * The guard store's contract for approval floods and replays, on every engine: recordChecks
 * decides the cap, coalescing and idempotency keys in its transaction (within one batch and
 * across batches, and on PostgreSQL across two pools racing on one database); stored answers are
 * found, bound and swept; each webhook endpoint's outbox is bounded, its oldest rows dropped.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { StoreLocation } from '../../src/config.js';
import { ENGINES, freshLocation, TEST_AUDIT_KEY } from '../support/locations.js';
import type { CheckRecord, IdempotencyClaim, RecordOutcome } from '../../src/store/types/guard.js';
import { openStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types/store.js';
import type { NewDelivery } from '../../src/store/types/webhooks.js';

const APP = 'logi_00000000000a';
const OTHER = 'logi_00000000000b';
const now = 1_780_000_000_000;
let seq = 0;

function record(clientId: string, overrides: Partial<CheckRecord> & { maxPending?: number; approve?: boolean } = {}): CheckRecord {
  const { maxPending = 3, approve = true, ...rest } = overrides;
  const n = ++seq;
  const at = rest.createdAt ?? now;
  return {
    id: `chk_${String(n).padStart(16, '0')}`,
    clientId,
    createdAt: now,
    tool: 'transfer',
    scope: 'pay',
    userSub: 'alice',
    sessionId: 's1',
    eventId: null,
    argumentsHash: `args-${n}`,
    arguments: null,
    decision: approve ? 'require_approval' : 'allow',
    reason: 'r',
    ruleId: 'rul_1',
    policyVersion: 1,
    keyId: 'pak_1',
    grantId: null,
    approval: approve ? { id: `apr_${String(n).padStart(16, '0')}`, ruleId: 'rul_1', reason: 'r', expiresAt: at + 60_000, maxPending } : null,
    killed: false,
    ...rest,
  };
}

const claim = (keys: string[], requestHash: string, expiresAt = now + 86_400_000): IdempotencyClaim => ({
  keys: keys.map((key) => ({ key, expiresAt })),
  requestHash,
  answer: (o) => JSON.stringify({ answered: o }),
});

function delivery(webhookId: string, n: number, at = now): NewDelivery {
  return { id: `whd_${webhookId}_${String(n).padStart(4, '0')}`, webhookId, clientId: APP, event: 'approval.requested', payload: '{}', createdAt: at + n };
}

const kinds = (outcomes: RecordOutcome[]) => outcomes.map((o) => (o.kind === 'recorded' ? (o.approval === null ? 'recorded' : o.approval.opened ? 'opened' : 'reused') : o.kind));

for (const engine of ENGINES) {
  describe(`guard store: floods and replays [${engine}]`, () => {
    let store: Store;
    let location: StoreLocation;
    let cleanup: () => Promise<void>;

    before(async () => {
      const fresh = freshLocation(engine);
      location = fresh.location;
      cleanup = fresh.cleanup;
      store = await openStore(location, { auditKey: TEST_AUDIT_KEY, webhookOutboxLimit: 3 });
      await store.accounts.create({ id: 'acct_1', email: 'o@example.com', passwordHash: 'h', now });
      for (const clientId of [APP, OTHER]) await store.apps.create({ clientId, accountId: 'acct_1', name: clientId, now }, { clientId: clientId, at: now, actor: 'system', action: 'app.create', target: clientId, before: null, after: null });
      for (const id of ['whk_a', 'whk_b']) {
        await store.webhooks.create(
          { id, clientId: APP, url: 'http://127.0.0.1:9/x', format: 'json', events: ['approval.requested'], secretEnc: 'sealed', enabled: true, createdAt: now },
          { clientId: APP, at: now, actor: 'test', action: 'webhook.create', target: id, before: null, after: null },
        );
      }
    });
    after(async () => {
      await store.close();
      await cleanup();
    });

    it('the cap holds within one batch and across batches; refused checks are written as denies, opening nothing', async () => {
      const app = 'logi_0000000000c1';
      await store.apps.create({ clientId: app, accountId: 'acct_1', name: 'cap', now }, { clientId: app, at: now, actor: 'system', action: 'app.create', target: app, before: null, after: null });
      const first = await store.guard.recordChecks([record(app), record(app), record(app, { approve: false }), record(app), record(app)]);
      assert.deepEqual(kinds(first), ['opened', 'opened', 'recorded', 'opened', 'refused']);
      const refused = first[4] as Extract<RecordOutcome, { kind: 'refused' }>;
      assert.equal(refused.retryAfterMs, 60_000, 'until the first pending one expires');
      assert.deepEqual(kinds(await store.guard.recordChecks([record(app)])), ['refused']);

      const checks = await store.guard.recentChecks(app, 0, 100);
      assert.equal(checks.length, 6, 'every check is written');
      const denied = checks.filter((c) => c.reason === 'too_many_pending_approvals');
      assert.equal(denied.length, 2);
      assert.ok(denied.every((c) => c.decision === 'deny' && c.approvalId === null));
      assert.equal((await store.approvals.list({ clientId: app, now, limit: 100, status: 'pending' })).length, 3);
      const day = new Date(now).toISOString().slice(0, 10);
      assert.equal((await store.traces.usage(app, day, day))[0]?.hitlRequests, 3, 'only opened requests count');

      // An expired pending request no longer counts; a decided one neither.
      assert.deepEqual(kinds(await store.guard.recordChecks([record(app, { createdAt: now + 60_000 })])), ['opened']);
      assert.equal(kinds(await store.guard.recordChecks([record(app, { createdAt: now + 60_000, maxPending: 1 })]))[0], 'refused', 'the cap is the record\'s');
    });

    it('an identical pending request answers the check: same tool, scope, user, session and arguments hash, unexpired', async () => {
      const app = 'logi_0000000000c2';
      await store.apps.create({ clientId: app, accountId: 'acct_1', name: 'same', now }, { clientId: app, at: now, actor: 'system', action: 'app.create', target: app, before: null, after: null });
      const same = { argumentsHash: 'h' };
      const outcomes = await store.guard.recordChecks([record(app, same), record(app, same), record(app, { ...same, sessionId: null }), record(app, { ...same, scope: 'other' })]);
      assert.deepEqual(kinds(outcomes), ['opened', 'reused', 'opened', 'opened']);
      const opened = outcomes[0] as Extract<RecordOutcome, { kind: 'recorded' }>;
      assert.deepEqual((outcomes[1] as Extract<RecordOutcome, { kind: 'recorded' }>).approval, { ...opened.approval!, opened: false });
      const later = await store.guard.recordChecks([record(app, { ...same, maxPending: 1 })]);
      assert.deepEqual(kinds(later), ['reused'], 'reusing opens nothing, so the cap does not refuse it');
      const checks = await store.guard.recentChecks(app, 0, 100);
      assert.equal(checks.filter((c) => c.approvalId === opened.approval!.id).length, 3, 'each reusing check names the approval');

      const decided = await store.approvals.decide({
        clientId: app, approvalId: opened.approval!.id, status: 'denied', now: now + 1, decidedBy: 'account:x', comment: null, remember: null, grant: null, audit: [], deliveries: [],
      });
      assert.ok(decided.ok);
      assert.deepEqual(kinds(await store.guard.recordChecks([record(app, { ...same, createdAt: now + 2 })])), ['opened'], 'a decided request is not reused');
      assert.deepEqual(kinds(await store.guard.recordChecks([record(app, { ...same, createdAt: now + 2 + 60_000 })])), ['opened'], 'an expired one neither');
    });

    it('idempotency keys: the first stored key decides; a replay binds the other keys; another request is key_reused; nothing written for either', async () => {
      const app = 'logi_0000000000c3';
      await store.apps.create({ clientId: app, accountId: 'acct_1', name: 'keys', now }, { clientId: app, at: now, actor: 'system', action: 'app.create', target: app, before: null, after: null });
      const first = record(app, { idempotency: claim(['key:a', 'sig:1'], 'H') });
      const outcomes = await store.guard.recordChecks([
        first,
        record(app, { idempotency: claim(['key:a'], 'H') }),
        record(app, { idempotency: claim(['sig:2', 'key:a'], 'H') }),
        record(app, { idempotency: claim(['key:a'], 'other') }),
        record(app, { idempotency: claim(['key:b'], 'other') }),
      ]);
      assert.deepEqual(kinds(outcomes), ['opened', 'replayed', 'replayed', 'key_reused', 'opened']);
      const replay = outcomes[1] as Extract<RecordOutcome, { kind: 'replayed' }>;
      assert.equal(replay.checkId, first.id);
      assert.deepEqual(JSON.parse(replay.answer), { answered: outcomes[0] });
      assert.equal((await store.guard.recentChecks(app, 0, 100)).length, 2, 'replays and reuses write no check');

      const found = await store.guard.findAnswers(app, ['key:a', 'sig:1', 'sig:2', 'key:zzz'], now);
      assert.deepEqual(found.map((f) => f.key).sort(), ['key:a', 'sig:1', 'sig:2']);
      assert.ok(found.every((f) => f.checkId === first.id && f.requestHash === 'H'));
      assert.deepEqual(await store.guard.findAnswers(OTHER, ['key:a'], now), [], 'keys are per app');

      // Across batches, and bindAnswers leaves a stored answer alone.
      assert.deepEqual(kinds(await store.guard.recordChecks([record(app, { idempotency: claim(['sig:1'], 'H') })])), ['replayed']);
      await store.guard.bindAnswers(app, [{ key: 'key:a', expiresAt: now + 5 }, { key: 'key:c', expiresAt: now + 5 }], { requestHash: 'X', checkId: 'chk_x', answer: '{}' }, now);
      const bound = await store.guard.findAnswers(app, ['key:a', 'key:c'], now);
      assert.equal(bound.find((b) => b.key === 'key:a')?.checkId, first.id);
      assert.equal(bound.find((b) => b.key === 'key:c')?.checkId, 'chk_x');

      // An expired answer is ignored, replaced by the next request, and swept.
      assert.deepEqual(await store.guard.findAnswers(app, ['key:c'], now + 5), []);
      assert.deepEqual(kinds(await store.guard.recordChecks([record(app, { createdAt: now + 5, idempotency: claim(['key:c'], 'new') })])), ['opened']);
      assert.equal((await store.guard.findAnswers(app, ['key:c'], now + 5))[0]?.requestHash, 'new');
      await store.guard.recordChecks([record(app, { approve: false, idempotency: claim(['key:short'], 'S', now + 10) })]);
      assert.equal(await store.guard.deleteExpiredAnswers(now + 10, 1000), 1);
      assert.equal(await store.guard.deleteExpiredAnswers(now + 10, 1000), 0);
      assert.equal((await store.guard.findAnswers(app, ['key:a'], now)).length, 1, 'unexpired answers stay');
    });

    it("each endpoint's outbox keeps at most the limit: the oldest pending are dropped, counted, and a dropped row whose attempt delivers is delivered", async () => {
      await store.webhooks.enqueue([1, 2].map((n) => delivery('whk_a', n)));
      const [inFlight] = await store.webhooks.claimDue(now + 100, now + 10_000, 1);
      assert.equal(inFlight!.delivery.id, 'whd_whk_a_0001');
      await store.webhooks.enqueue([3, 4, 5].map((n) => delivery('whk_a', n)).concat([delivery('whk_b', 1)]));
      const a = await store.webhooks.listDeliveries(APP, 'whk_a', 100);
      const status = Object.fromEntries(a.map((d) => [d.id.slice(-1), d.status]));
      assert.deepEqual(status, { 1: 'dropped', 2: 'dropped', 3: 'pending', 4: 'pending', 5: 'pending' });
      assert.match(a.find((d) => d.status === 'dropped')!.lastError!, /outbox limit/);
      assert.deepEqual(await store.webhooks.deliveryCounts(APP, 'whk_a'), { pending: 3, delivered: 0, failed: 0, dropped: 2 });
      assert.deepEqual(await store.webhooks.deliveryCounts(APP, 'whk_b'), { pending: 1, delivered: 0, failed: 0, dropped: 0 }, 'per endpoint');

      const outcome = { id: inFlight!.delivery.id, attempts: inFlight!.delivery.attempts, nextAttemptAt: now, statusCode: 200, error: null, completedAt: now + 200 };
      assert.equal(await store.webhooks.complete({ ...outcome, status: 'pending', statusCode: 500, error: 'HTTP 500', completedAt: null }), false, 'a dropped row is not retried');
      assert.equal(await store.webhooks.complete({ ...outcome, status: 'delivered' }), true, 'but its delivery is recorded');
      assert.deepEqual(await store.webhooks.deliveryCounts(APP, 'whk_a'), { pending: 3, delivered: 1, failed: 0, dropped: 1 });
      assert.equal((await store.webhooks.claimDue(now + 100_000, now + 200_000, 100)).filter((c) => c.delivery.status === 'dropped').length, 0, 'dropped rows are never claimed');
    });

    it('a check commit bounds the outbox too: the approvals it opens bring their deliveries, the oldest make way', async () => {
      const app = 'logi_0000000000c4';
      await store.apps.create({ clientId: app, accountId: 'acct_1', name: 'outbox', now }, { clientId: app, at: now, actor: 'system', action: 'app.create', target: app, before: null, after: null });
      await store.webhooks.create(
        { id: 'whk_c', clientId: app, url: 'http://127.0.0.1:9/x', format: 'json', events: ['approval.requested'], secretEnc: 'sealed', enabled: true, createdAt: now },
        { clientId: app, at: now, actor: 'test', action: 'webhook.create', target: 'whk_c', before: null, after: null },
      );
      const records = [1, 2, 3, 4, 5].map(() => record(app, { maxPending: 10 }));
      for (const [i, r] of records.entries()) r.deliveries = [{ id: `whd_c_${i}`, webhookId: 'whk_c', clientId: app, event: 'approval.requested', payload: '{}', createdAt: now + i }];
      records.push({ ...record(app, { argumentsHash: records[0]!.argumentsHash }), deliveries: [{ id: 'whd_c_reused', webhookId: 'whk_c', clientId: app, event: 'approval.requested', payload: '{}', createdAt: now + 9 }] });
      assert.deepEqual(kinds(await store.guard.recordChecks(records)), ['opened', 'opened', 'opened', 'opened', 'opened', 'reused']);
      assert.deepEqual(await store.webhooks.deliveryCounts(app, 'whk_c'), { pending: 3, delivered: 0, failed: 0, dropped: 2 }, 'a reused approval writes no delivery');
    });

    it('two writers racing on one database keep the cap, reuse one approval and answer one key', { skip: engine === 'sqlite' ? 'one process owns a SQLite file' : false }, async () => {
      const app = 'logi_0000000000c5';
      await store.apps.create({ clientId: app, accountId: 'acct_1', name: 'race', now }, { clientId: app, at: now, actor: 'system', action: 'app.create', target: app, before: null, after: null });
      const second = await openStore(location, { auditKey: TEST_AUDIT_KEY });
      try {
        const writers = [store, second];
        const flood = await Promise.all(Array.from({ length: 40 }, (_, i) => writers[i % 2]!.guard.recordChecks([record(app, { maxPending: 7 }), record(app, { maxPending: 7 })])));
        assert.equal(flood.flat().filter((o) => o.kind === 'recorded').length, 7);
        const same = await Promise.all(Array.from({ length: 20 }, (_, i) => writers[i % 2]!.guard.recordChecks([record(app, { argumentsHash: 'race', maxPending: 100 })])));
        assert.equal(kinds(same.flat()).filter((k) => k === 'opened').length, 1);
        const keyed = await Promise.all(Array.from({ length: 20 }, (_, i) => writers[i % 2]!.guard.recordChecks([record(app, { approve: false, idempotency: claim(['key:race'], 'R') })])));
        assert.deepEqual(kinds(keyed.flat()).sort(), ['recorded', ...Array(19).fill('replayed')].sort());
      } finally {
        await second.close();
      }
    });
  });
}
