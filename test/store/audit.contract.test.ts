/**
 * The audit store's contract, on every engine, without a server: entries are appended to one
 * application's chain with consecutive seqs, each keyed (HMAC under the key the store was opened
 * with) and linked to the one before; the head and count are pinned on the app; concurrent appends
 * serialise; listing pages forward and newest first; applications have separate chains.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AuditKey } from '../../src/crypto/audit-key.js';
import { KEYED_CHAIN, verifyChain } from '../../src/crypto/audit-chain.js';
import { openStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types/store.js';
import { ENGINES, freshLocation, TEST_AUDIT_KEY } from '../support/locations.js';

const now = 1_780_000_000_000;

for (const engine of ENGINES) {
  describe(`audit store contract [${engine}]`, () => {
    const APP = 'logi_0000000000b1';
    const OTHER = 'logi_0000000000b2';
    let store: Store;
    let cleanup: () => Promise<void>;
    const entry = (clientId: string, action: string, i: number) => ({
      clientId, at: now + i, actor: 'account:acct_1', action, target: `t${i}`, before: { n: i }, after: i % 2 === 0 ? null : { n: i + 1 },
    });

    before(async () => {
      const fresh = freshLocation(engine);
      cleanup = fresh.cleanup;
      store = await openStore(fresh.location, { auditKey: TEST_AUDIT_KEY });
      await store.accounts.create({ id: 'acct_1', email: 'o@example.com', passwordHash: 'h', now });
      for (const clientId of [APP, OTHER]) await store.apps.create({ clientId, accountId: 'acct_1', name: clientId, now }, entry(clientId, 'app.create', 0));
    });
    after(async () => {
      await store.close();
      await cleanup();
    });

    it('appends keyed, linked entries with consecutive seqs; the pin follows; the chain verifies under its key only', async () => {
      const first = await store.audit.append(entry(APP, 'policy.rule_add', 1));
      const second = await store.audit.append(entry(APP, 'kill.on', 2));
      assert.equal(second.seq, first.seq + 1);
      assert.equal(second.prevHash, first.hash);
      assert.equal(second.chain, KEYED_CHAIN);
      assert.deepEqual([second.action, second.target, second.before, second.after], ['kill.on', 't2', '{"n":2}', null]);
      const pinned = await store.audit.pinned(APP);
      assert.deepEqual(pinned, { head: second.hash, count: second.seq });
      const all = await store.audit.list(APP, { limit: 1000 });
      assert.equal(verifyChain(TEST_AUDIT_KEY, all, pinned).ok, true);
      const otherKey = AuditKey.fromServerKey(Buffer.alloc(32, 9));
      assert.equal(verifyChain(otherKey, all, pinned).ok, false, 'another key does not verify it');
    });

    it('concurrent appends serialise: unique consecutive seqs, one unbroken chain', async () => {
      const before = (await store.audit.pinned(APP)).count;
      await Promise.all(Array.from({ length: 25 }, (_, i) => store.audit.append(entry(APP, 'policy.rule_edit', 100 + i))));
      const all = await store.audit.list(APP, { limit: 1000 });
      assert.deepEqual(all.map((e) => e.seq), Array.from({ length: before + 25 }, (_, i) => i + 1));
      assert.equal(verifyChain(TEST_AUDIT_KEY, all, await store.audit.pinned(APP)).ok, true);
    });

    it('lists forward after a seq, or newest first, bounded by limit; another app has its own chain', async () => {
      const page = await store.audit.list(APP, { afterSeq: 2, limit: 3 });
      assert.deepEqual(page.map((e) => e.seq), [3, 4, 5]);
      const newest = await store.audit.list(APP, { limit: 2, newestFirst: true });
      const count = (await store.audit.pinned(APP)).count;
      assert.deepEqual(newest.map((e) => e.seq), [count, count - 1]);
      const other = await store.audit.list(OTHER, { limit: 100 });
      assert.deepEqual(other.map((e) => [e.seq, e.action]), [[1, 'app.create']]);
      assert.ok(other.every((e) => e.clientId === OTHER));
      assert.deepEqual(await store.audit.pinned(OTHER), { head: other[0]!.hash, count: 1 });
    });
  });
}
