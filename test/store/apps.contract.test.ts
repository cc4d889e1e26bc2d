/**
 * The app store's contract (store.apps), on every engine: an app is created with its first audit
 * entry in one transaction, listed and found only within its account, and updated field by field
 * with the audit entries of the change committed (or rolled back) together with it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AuditInput } from '../../src/store/types/audit.js';
import type { App, Store } from '../../src/store/types/store.js';
import { ENGINES } from '../support/locations.js';
import { appCreated, auditActions, auditEntry, createAccount, createApp, freshStore, NOW, type OpenedStore } from '../support/store-fixtures.js';

const A = 'acct_a';
const B = 'acct_b';

for (const engine of ENGINES) {
  describe(`app store contract [${engine}]`, () => {
    let opened: OpenedStore;
    let store: Store;

    before(async () => {
      opened = await freshStore(engine);
      store = opened.store;
      await createAccount(store, A);
      await createAccount(store, B);
    });
    after(async () => {
      await opened?.close();
    });

    it('create returns the app with its defaults and writes its audit entry with it', async () => {
      const app = await store.apps.create(
        { clientId: 'logi_a00000000001', accountId: A, name: 'first', now: NOW + 1 },
        auditEntry('logi_a00000000001', 'app.create', NOW + 1, { actor: 'account:acct_a', target: 'logi_a00000000001', after: { name: 'first' } }),
      );
      const expected: App = { clientId: 'logi_a00000000001', accountId: A, name: 'first', panopticonEnabled: false, hmacEnabled: false, keepArguments: false, createdAt: NOW + 1 };
      assert.deepEqual(app, expected);
      assert.deepEqual(await store.apps.find(A, 'logi_a00000000001'), expected);
      const log = await store.audit.list('logi_a00000000001', { limit: 10 });
      assert.deepEqual(log.map((e) => [e.seq, e.at, e.actor, e.action, e.target, e.after]), [[1, NOW + 1, 'account:acct_a', 'app.create', 'logi_a00000000001', '{"name":"first"}']]);
      assert.deepEqual(await store.audit.pinned('logi_a00000000001'), { head: log[0]!.hash, count: 1 });
    });

    it('a client id is created once; a create whose audit entry cannot be written leaves no app', async () => {
      await assert.rejects(store.apps.create(...appCreated({ clientId: 'logi_a00000000001', accountId: B, name: 'again', now: NOW + 2 })));
      assert.equal((await store.apps.find(A, 'logi_a00000000001'))?.name, 'first');
      assert.equal(await store.apps.find(B, 'logi_a00000000001'), null);
      assert.deepEqual(await auditActions(store, 'logi_a00000000001'), ['app.create'], 'no second entry');

      // The entry names an app that does not exist: the append fails, and the insert rolls back with it.
      await assert.rejects(store.apps.create({ clientId: 'logi_a0000000000f', accountId: A, name: 'orphan', now: NOW + 3 }, auditEntry('logi_nonexistent00', 'app.create')));
      assert.equal(await store.apps.find(A, 'logi_a0000000000f'), null);
      assert.deepEqual(await auditActions(store, 'logi_a0000000000f'), []);
      // An app of an account that does not exist is refused.
      await assert.rejects(createApp(store, 'acct_none', 'logi_a0000000000e'));
      assert.equal(await store.apps.find('acct_none', 'logi_a0000000000e'), null);
    });

    it('list returns one account\'s apps by creation time, then client id', async () => {
      // Inserted out of order: neither insertion order nor client id alone gives the expected order.
      await createApp(store, B, 'logi_b00000000003', NOW + 20);
      await createApp(store, B, 'logi_b00000000002', NOW + 10);
      await createApp(store, B, 'logi_b00000000001', NOW + 20);
      const listed = await store.apps.list(B);
      assert.deepEqual(listed.map((a) => [a.clientId, a.createdAt]), [['logi_b00000000002', NOW + 10], ['logi_b00000000001', NOW + 20], ['logi_b00000000003', NOW + 20]]);
      assert.ok(listed.every((a) => a.accountId === B));
      assert.deepEqual(listed[0], { clientId: 'logi_b00000000002', accountId: B, name: 'logi_b00000000002', panopticonEnabled: false, hmacEnabled: false, keepArguments: false, createdAt: NOW + 10 });
      assert.deepEqual((await store.apps.list(A)).map((a) => a.clientId), ['logi_a00000000001']);
      assert.deepEqual(await store.apps.list('acct_none'), []);
    });

    it('find is scoped to the account: another account\'s app, or an unknown one, is null', async () => {
      assert.equal((await store.apps.find(B, 'logi_b00000000001'))?.clientId, 'logi_b00000000001');
      assert.equal(await store.apps.find(A, 'logi_b00000000001'), null);
      assert.equal(await store.apps.find(B, 'logi_a00000000001'), null);
      assert.equal(await store.apps.find(B, 'logi_000000000000'), null);
    });

    it('update patches the name only, the switch only, both, or nothing; the builder sees before and after; its entries commit with the change', async () => {
      const clientId = 'logi_a00000000002';
      const created = await createApp(store, A, clientId, NOW + 30, 'original');
      const seen: Array<[App, App]> = [];
      const build = (before: App, after: App): AuditInput[] => {
        seen.push([before, after]);
        const entries: AuditInput[] = [];
        if (before.name !== after.name) entries.push(auditEntry(clientId, 'app.rename', NOW + 31, { before: before.name, after: after.name }));
        if (before.panopticonEnabled !== after.panopticonEnabled) entries.push(auditEntry(clientId, after.panopticonEnabled ? 'app.enable' : 'app.disable', NOW + 31));
        return entries;
      };

      const renamed = await store.apps.update(A, clientId, { name: 'renamed' }, build);
      assert.deepEqual(renamed, { ...created, name: 'renamed' });
      assert.deepEqual(seen.at(-1), [created, renamed]);

      const enabled = await store.apps.update(A, clientId, { panopticonEnabled: true }, build);
      assert.deepEqual(enabled, { ...created, name: 'renamed', panopticonEnabled: true }, 'the name stays');

      const both = await store.apps.update(A, clientId, { name: 'both', panopticonEnabled: false }, build);
      assert.deepEqual(both, { ...created, name: 'both', panopticonEnabled: false }, 'false is applied, not taken for "absent"');
      assert.deepEqual(seen.at(-1), [enabled, both]);

      const nothing = await store.apps.update(A, clientId, {}, build);
      assert.deepEqual(nothing, both);
      const undefinedFields = await store.apps.update(A, clientId, { name: undefined, panopticonEnabled: undefined }, build);
      assert.deepEqual(undefinedFields, both);
      assert.deepEqual(seen.slice(-2), [[both, both], [both, both]], 'a no-op still shows the builder the row, unchanged');

      assert.deepEqual(await store.apps.find(A, clientId), both, 'stored, not only returned');
      const log = await store.audit.list(clientId, { limit: 10 });
      assert.deepEqual(log.map((e) => e.action), ['app.create', 'app.rename', 'app.enable', 'app.rename', 'app.disable'], 'two entries for one change, none for a no-op');
      assert.deepEqual(log.map((e) => e.seq), [1, 2, 3, 4, 5]);
      assert.equal(log[1]!.before, '"original"');
      assert.equal(log[1]!.after, '"renamed"');
      assert.deepEqual(await store.audit.pinned(clientId), { head: log[4]!.hash, count: 5 });
    });

    it('update of another account\'s app, or an unknown one, is null: the builder is never called and nothing is written', async () => {
      const clientId = 'logi_a00000000001';
      const before = await store.apps.find(A, clientId);
      let called = 0;
      const build = () => {
        called++;
        return [auditEntry(clientId, 'app.rename')];
      };
      assert.equal(await store.apps.update(B, clientId, { name: 'stolen', panopticonEnabled: true }, build), null);
      assert.equal(await store.apps.update(A, 'logi_000000000000', { name: 'ghost' }, build), null);
      assert.equal(called, 0);
      assert.deepEqual(await store.apps.find(A, clientId), before);
      assert.deepEqual(await auditActions(store, clientId), ['app.create']);
    });

    it('an update whose builder throws, or whose entry cannot be written, changes nothing', async () => {
      const clientId = 'logi_a00000000003';
      const created = await createApp(store, A, clientId, NOW + 40, 'steady');
      await assert.rejects(
        store.apps.update(A, clientId, { name: 'changed', panopticonEnabled: true }, () => {
          throw new Error('builder failed');
        }),
        /builder failed/,
      );
      assert.deepEqual(await store.apps.find(A, clientId), created);
      await assert.rejects(store.apps.update(A, clientId, { name: 'changed' }, () => [auditEntry(clientId, 'app.rename'), auditEntry('logi_nonexistent00', 'app.rename')]));
      assert.deepEqual(await store.apps.find(A, clientId), created);
      assert.deepEqual(await auditActions(store, clientId), ['app.create'], 'the first entry rolled back with the second');
    });
  });
}
