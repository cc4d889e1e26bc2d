/**
 * The approval store's contract, on every engine, without a server: approvals opened by recorded
 * checks are read by id and listed by effective status with a keyset cursor; a decision wins once
 * (with its grant, audit entries and webhook deliveries in the same transaction, none of them when
 * it loses); expiry marks due rows once, however many sweeps race; grants list and revoke.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openStore } from '../../src/store/index.js';
import type { CheckRecord } from '../../src/store/types/guard.js';
import type { Store } from '../../src/store/types/store.js';
import { ENGINES, freshLocation, TEST_AUDIT_KEY } from '../support/locations.js';

const now = 1_780_000_000_000;
let n = 0;

function check(clientId: string, overrides: { expiresAt?: number; createdAt?: number; tool?: string } = {}): CheckRecord {
  const i = ++n;
  const createdAt = overrides.createdAt ?? now + i;
  return {
    id: `chk_${String(i).padStart(16, '0')}`,
    clientId,
    createdAt,
    tool: overrides.tool ?? 'refund',
    scope: 'payments:write',
    userSub: 'alice',
    sessionId: 'sess-1',
    eventId: null,
    argumentsHash: `args-${i}`,
    arguments: null,
    decision: 'require_approval',
    reason: 'refunds need a human',
    ruleId: 'rul_1',
    policyVersion: 1,
    keyId: 'pak_1',
    grantId: null,
    approval: { id: `apr_${String(i).padStart(16, '0')}`, ruleId: 'rul_1', reason: 'refunds need a human', expiresAt: overrides.expiresAt ?? createdAt + 600_000, maxPending: 1000 },
    killed: false,
  };
}

const audit = (clientId: string, action: string, target: string) => ({ clientId, at: now, actor: 'account:acct_1', action, target, before: null, after: null });

for (const engine of ENGINES) {
  describe(`approval store contract [${engine}]`, () => {
    const APP = 'logi_0000000000a1';
    const OTHER = 'logi_0000000000a2';
    let store: Store;
    let cleanup: () => Promise<void>;

    async function open(record: CheckRecord): Promise<string> {
      const [outcome] = await store.guard.recordChecks([record]);
      assert.ok(outcome?.kind === 'recorded' && outcome.approval?.opened === true, JSON.stringify(outcome));
      return record.approval!.id;
    }

    before(async () => {
      const fresh = freshLocation(engine);
      cleanup = fresh.cleanup;
      store = await openStore(fresh.location, { auditKey: TEST_AUDIT_KEY });
      await store.accounts.create({ id: 'acct_1', email: 'o@example.com', passwordHash: 'h', now });
      for (const clientId of [APP, OTHER]) await store.apps.create({ clientId, accountId: 'acct_1', name: clientId, now }, audit(clientId, 'app.create', clientId));
      await store.webhooks.create(
        { id: 'whk_a1', clientId: APP, url: 'http://127.0.0.1:9/x', format: 'json', events: ['approval.decided', 'approval.expired'], secretEnc: 'sealed', enabled: true, createdAt: now },
        audit(APP, 'webhook.create', 'whk_a1'),
      );
    });
    after(async () => {
      await store.close();
      await cleanup();
    });

    it('reads an approval by id with what its check recorded; an unknown id is null', async () => {
      const record = check(APP);
      const id = await open(record);
      const a = await store.approvals.get(id);
      assert.ok(a);
      assert.deepEqual(
        [a.clientId, a.checkId, a.tool, a.scope, a.userSub, a.sessionId, a.argumentsHash, a.status, a.expiresAt],
        [APP, record.id, 'refund', 'payments:write', 'alice', 'sess-1', record.argumentsHash, 'pending', record.approval!.expiresAt],
      );
      assert.equal(await store.approvals.get('apr_doesnotexist0000'), null);
    });

    it('lists by effective status, newest first, in pages by a keyset cursor, one app at a time', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push(await open(check(OTHER, { createdAt: now + 10_000 + i })));
      const expiredId = await open(check(OTHER, { createdAt: now + 10_010, expiresAt: now + 10_020 }));
      const at = now + 20_000;
      const first = await store.approvals.list({ clientId: OTHER, status: 'pending', now: at, limit: 3 });
      assert.deepEqual(first.map((a) => a.id), [ids[4], ids[3], ids[2]]);
      const last = first[first.length - 1]!;
      const second = await store.approvals.list({ clientId: OTHER, status: 'pending', now: at, limit: 3, before: { createdAt: last.createdAt, id: last.id } });
      assert.deepEqual(second.map((a) => a.id), [ids[1], ids[0]]);
      // Past its expiry an approval reads expired before any sweep wrote it.
      const expired = await store.approvals.list({ clientId: OTHER, status: 'expired', now: at, limit: 10 });
      assert.deepEqual(expired.map((a) => a.id), [expiredId]);
      assert.ok((await store.approvals.list({ clientId: APP, now: at, limit: 100 })).every((a) => a.clientId === APP));
    });

    it('a decision wins once: its grant, audit entries and deliveries commit with it, and the loser writes none', async () => {
      const id = await open(check(APP));
      const auditBefore = (await store.audit.pinned(APP)).count;
      const decide = (status: 'approved' | 'denied', by: string) => store.approvals.decide({
        clientId: APP, approvalId: id, status, now: now + 5, decidedBy: by, comment: 'ok', remember: status === 'approved' ? 'always' : null,
        grant: status === 'approved' ? { id: `grt_${by.padEnd(16, '0').slice(0, 16)}`, kind: 'always', expiresAt: null } : null,
        audit: [audit(APP, status === 'approved' ? 'approval.approve' : 'approval.deny', id)],
        deliveries: [{ id: `whd_${by}`, webhookId: 'whk_a1', clientId: APP, event: 'approval.decided', payload: '{}', createdAt: now + 5 }],
      });
      const [a, b] = await Promise.all([decide('approved', 'first'), decide('denied', 'second')]);
      const winners = [a, b].filter((r) => r.ok);
      const losers = [a, b].filter((r) => !r.ok);
      assert.equal(winners.length, 1);
      assert.equal(losers.length, 1);
      assert.ok(!losers[0]!.ok && losers[0]!.reason === 'decided');
      const stored = await store.approvals.get(id);
      assert.equal(stored?.status, winners[0] === a ? 'approved' : 'denied');
      assert.equal((await store.audit.pinned(APP)).count, auditBefore + 1, 'one audit entry, the winner\'s');
      const deliveries = await store.webhooks.listDeliveries(APP, 'whk_a1', 100);
      assert.equal(deliveries.filter((d) => d.id === 'whd_first' || d.id === 'whd_second').length, 1);
      const grants = await store.approvals.listGrants(APP, { includeRevoked: true });
      assert.equal(grants.filter((g) => g.approvalId === id).length, winners[0] === a ? 1 : 0);
      const unknown = await store.approvals.decide({ clientId: APP, approvalId: 'apr_nope000000000000', status: 'denied', now, decidedBy: 'x', comment: null, remember: null, grant: null, audit: [], deliveries: [] });
      assert.deepEqual(unknown, { ok: false, reason: 'not_found' });
      const foreign = await store.approvals.decide({ clientId: OTHER, approvalId: await open(check(APP)), status: 'denied', now, decidedBy: 'x', comment: null, remember: null, grant: null, audit: [], deliveries: [] });
      assert.deepEqual(foreign, { ok: false, reason: 'not_found' }, "another app's approval is not found");
    });

    it('expiry: due rows expire once across racing sweeps, each with its audit entry and deliveries; the rest stay pending', async () => {
      const dueA = await open(check(APP, { expiresAt: now + 50 }));
      const dueB = await open(check(APP, { expiresAt: now + 60 }));
      const later = await open(check(APP, { expiresAt: now + 10_000_000 }));
      const at = now + 1_000;
      assert.ok((await store.approvals.appsWithDue(at)).includes(APP));
      const effects = (a: { id: string; clientId: string }) => ({
        audit: audit(a.clientId, 'approval.expire', a.id),
        deliveries: [{ id: `whd_exp_${a.id}`, webhookId: 'whk_a1', clientId: a.clientId, event: 'approval.expired' as const, payload: '{}', createdAt: at }],
      });
      const sweeps = await Promise.all([store.approvals.expireDue(at, 100, effects), store.approvals.expireDue(at, 100, effects), store.approvals.expireDue(at, 100, effects)]);
      const expired = sweeps.flat().map((a) => a.id);
      for (const id of [dueA, dueB]) assert.equal(expired.filter((x) => x === id).length, 1, `${id} expired exactly once`);
      assert.ok(!expired.includes(later));
      assert.equal((await store.approvals.get(dueA))?.status, 'expired');
      assert.equal((await store.approvals.get(later))?.status, 'pending');
      const deliveries = await store.webhooks.listDeliveries(APP, 'whk_a1', 500);
      assert.equal(deliveries.filter((d) => d.id === `whd_exp_${dueA}`).length, 1);
      assert.deepEqual(await store.approvals.expireDue(at, 100, effects), [], 'a second sweep finds nothing');
    });

    it('grants: listed per app, revoked once (changed false the second time), unknown ids null', async () => {
      const id = await open(check(APP, { tool: 'grant.me' }));
      const decided = await store.approvals.decide({
        clientId: APP, approvalId: id, status: 'approved', now: now + 7, decidedBy: 'account:acct_1', comment: null, remember: 'always',
        grant: { id: 'grt_contract000001', kind: 'always', expiresAt: null }, audit: [audit(APP, 'approval.approve', id)], deliveries: [],
      });
      assert.ok(decided.ok && decided.grant?.id === 'grt_contract000001');
      const listed = await store.approvals.listGrants(APP, { includeRevoked: false });
      const grant = listed.find((g) => g.id === 'grt_contract000001');
      assert.ok(grant);
      assert.deepEqual([grant.tool, grant.userSub, grant.kind, grant.approvalId], ['grant.me', 'alice', 'always', id]);
      assert.equal((await store.approvals.listGrants(OTHER, { includeRevoked: true })).some((g) => g.id === grant.id), false);
      const first = await store.approvals.revokeGrant({ clientId: APP, grantId: grant.id, now: now + 8, audit: audit(APP, 'grant.revoke', grant.id) });
      assert.equal(first?.changed, true);
      const second = await store.approvals.revokeGrant({ clientId: APP, grantId: grant.id, now: now + 9, audit: audit(APP, 'grant.revoke', grant.id) });
      assert.equal(second?.changed, false);
      assert.equal(await store.approvals.revokeGrant({ clientId: OTHER, grantId: grant.id, now, audit: audit(OTHER, 'grant.revoke', grant.id) }), null);
      assert.equal((await store.approvals.listGrants(APP, { includeRevoked: false })).some((g) => g.id === grant.id), false);
      assert.equal((await store.approvals.listGrants(APP, { includeRevoked: true })).some((g) => g.id === grant.id), true);
    });
  });
}
