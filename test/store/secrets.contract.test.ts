/** The secret sub-store behaves the same on SQLite and PostgreSQL: the switch, rotation, revocation, audit. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ENGINES, freshLocation, TEST_AUDIT_KEY } from '../support/locations.js';
import type { AuditInput } from '../../src/store/types/guard.js';
import { openStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types/store.js';

/** A store-level app creation with the audit entry it must carry (the apps service writes the real one). */
function appCreated<T extends { clientId: string; now: number }>(input: T): [T, AuditInput] {
  return [input, { clientId: input.clientId, at: input.now, actor: 'system', action: 'app.create', target: input.clientId, before: null, after: null }];
}

for (const engine of ENGINES) {
  describe(`secret store contract [${engine}]`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    const clientId = 'logi_5ec000000001';
    const now = 1_780_000_000_000;
    const audit = (action: string): AuditInput => ({ clientId, at: now, actor: 'system', action, target: null, before: null, after: null });

    before(async () => {
      const fresh = freshLocation(engine);
      cleanup = fresh.cleanup;
      store = await openStore(fresh.location, { auditKey: TEST_AUDIT_KEY });
      await store.accounts.create({ id: 'acct_1', email: 'o@example.com', passwordHash: 'h', now });
      await store.apps.create(...appCreated({ clientId, accountId: 'acct_1', name: 'signed', now }));
      await store.keys.insert({ id: 'pak_1', clientId, keyHash: 'h1', prefix: 'p1', now });
    });
    after(async () => {
      await store.close();
      await cleanup();
    });

    it('rotate and disable refuse while off; enable turns it on once, with its audit entry', async () => {
      assert.equal(await store.secrets.rotateSecret({ clientId, secret: { id: 'sec_x', sealed: 'x' }, now, expiresAt: now, audit: audit('hmac.rotate') }), null);
      assert.equal(await store.secrets.disableHmac({ clientId, now, audit: () => audit('hmac.disable') }), null);
      const first = await store.secrets.enableHmac({ clientId, secret: { id: 'sec_1', sealed: 'sealed-1' }, now, audit: audit('hmac.enable') });
      assert.deepEqual(first, { id: 'sec_1', clientId, sealed: 'sealed-1', createdAt: now, expiresAt: null, revokedAt: null });
      assert.equal(await store.secrets.enableHmac({ clientId, secret: { id: 'sec_y', sealed: 'y' }, now, audit: audit('hmac.enable') }), null);
      assert.equal((await store.keys.findForAuth('h1'))?.hmacEnabled, true);
      assert.equal((await store.apps.find('acct_1', clientId))?.hmacEnabled, true);
      assert.deepEqual((await store.audit.list(clientId, { limit: 10 })).map((e) => e.action), ['app.create', 'hmac.enable']);
      assert.deepEqual((await store.secrets.listSecrets(clientId)).map((s) => s.id), ['sec_1']);
    });

    it('rotation: the previous secret expires after the grace, never later than it already would; no grace revokes', async () => {
      const r1 = await store.secrets.rotateSecret({ clientId, secret: { id: 'sec_2', sealed: 's2' }, now: now + 10, expiresAt: now + 1000, audit: audit('hmac.rotate') });
      assert.deepEqual(r1?.previous.map((s) => [s.id, s.expiresAt, s.revokedAt]), [['sec_1', now + 1000, null]]);
      assert.deepEqual((await store.secrets.activeSecrets(clientId, now + 20)).map((s) => s.id), ['sec_2', 'sec_1']);
      assert.deepEqual((await store.secrets.activeSecrets(clientId, now + 1000)).map((s) => s.id), ['sec_2']);

      const r2 = await store.secrets.rotateSecret({ clientId, secret: { id: 'sec_3', sealed: 's3' }, now: now + 20, expiresAt: now + 5000, audit: audit('hmac.rotate') });
      assert.deepEqual(r2?.previous.map((s) => [s.id, s.expiresAt]), [['sec_2', now + 5000], ['sec_1', now + 1000]]);

      const r3 = await store.secrets.rotateSecret({ clientId, secret: { id: 'sec_4', sealed: 's4' }, now: now + 30, expiresAt: now + 30, audit: audit('hmac.rotate') });
      assert.deepEqual(r3?.previous.map((s) => [s.id, s.revokedAt]), [['sec_3', now + 30], ['sec_2', now + 30], ['sec_1', now + 30]]);
      assert.deepEqual((await store.secrets.activeSecrets(clientId, now + 31)).map((s) => s.id), ['sec_4']);
    });

    it('disable revokes what still works and turns it off, in one transaction with its audit entry', async () => {
      const revoked = await store.secrets.disableHmac({ clientId, now: now + 40, audit: (r) => ({ ...audit('hmac.disable'), after: r.map((s) => s.id) }) });
      assert.deepEqual(revoked?.map((s) => [s.id, s.revokedAt]), [['sec_4', now + 40]]);
      assert.equal((await store.keys.findForAuth('h1'))?.hmacEnabled, false);
      assert.deepEqual(await store.secrets.activeSecrets(clientId, now + 41), []);
      const entries = await store.audit.list(clientId, { limit: 10 });
      assert.deepEqual(entries.map((e) => e.action), ['app.create', 'hmac.enable', 'hmac.rotate', 'hmac.rotate', 'hmac.rotate', 'hmac.disable']);
      assert.equal(entries[5]!.after, JSON.stringify(['sec_4']));
      assert.equal((await store.audit.pinned(clientId)).count, 6);
    });

    it('a change whose audit entry fails is rolled back', async () => {
      const broken = { ...audit('hmac.enable'), clientId: 'logi_000000000000' };
      await assert.rejects(store.secrets.enableHmac({ clientId, secret: { id: 'sec_5', sealed: 's5' }, now: now + 50, audit: broken }));
      assert.equal((await store.keys.findForAuth('h1'))?.hmacEnabled, false);
      assert.equal((await store.secrets.listSecrets(clientId)).some((s) => s.id === 'sec_5'), false);
    });
  });
}
