/**
 * The key store's contract (store.keys: PAKs), on every engine: one primary key per app, rotation
 * with a grace period (never lengthening one already running) or none (revoked on the spot),
 * revocation of one key or all, what authentication reads, and last-use times that only move forward.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NewPak, Pak, Store } from '../../src/store/types/store.js';
import { ENGINES } from '../support/locations.js';
import { auditActions, auditEntry, createAccount, createApp, freshStore, NOW, type OpenedStore } from '../support/store-fixtures.js';

const ACCOUNT = 'acct_keys';

/** A new key's input: its hash and prefix derive from its id. */
const pak = (id: string, clientId: string, now: number): NewPak => ({ id, clientId, keyHash: `hash_${id}`, prefix: `pfx_${id}`, now });

/** The Pak a fresh key reads back as. */
const fresh = (id: string, clientId: string, now: number): Pak => ({ id, clientId, prefix: `pfx_${id}`, createdAt: now, lastUsedAt: null, expiresAt: null, revokedAt: null });

const byId = (paks: readonly Pak[]) => [...paks].sort((a, b) => (a.id < b.id ? -1 : 1));
const ids = (paks: readonly Pak[]) => paks.map((p) => p.id);
/** `active` promises no order: its ids, sorted. */
const activeIds = async (store: Store, clientId: string, now: number) => ids(byId(await store.keys.active(clientId, now)));

for (const engine of ENGINES) {
  describe(`key store contract [${engine}]`, () => {
    let opened: OpenedStore;
    let store: Store;

    before(async () => {
      opened = await freshStore(engine);
      store = opened.store;
      await createAccount(store, ACCOUNT);
    });
    after(async () => {
      await opened?.close();
    });

    it('insert issues the primary key with its audit entry; a second primary is refused (null) and writes no entry', async () => {
      const app = 'logi_c00000000001';
      await createApp(store, ACCOUNT, app);
      const issued = await store.keys.insert(pak('pak_i1', app, NOW + 1), auditEntry(app, 'pak.issue', NOW + 1, { target: 'pak_i1' }));
      assert.deepEqual(issued, fresh('pak_i1', app, NOW + 1));
      assert.deepEqual(await auditActions(store, app), ['app.create', 'pak.issue']);

      assert.equal(await store.keys.insert(pak('pak_i2', app, NOW + 2), auditEntry(app, 'pak.issue', NOW + 2)), null);
      assert.deepEqual(await auditActions(store, app), ['app.create', 'pak.issue'], 'no entry for the refused key');
      assert.deepEqual(await store.keys.list(app), [fresh('pak_i1', app, NOW + 1)]);
      assert.equal(await store.keys.findForAuth('hash_pak_i2'), null);

      // Another app has a primary of its own; once this app's is revoked, it can have a new one.
      const other = 'logi_c00000000002';
      await createApp(store, ACCOUNT, other);
      assert.deepEqual(await store.keys.insert(pak('pak_o1', other, NOW + 3)), fresh('pak_o1', other, NOW + 3));
      assert.deepEqual(await auditActions(store, other), ['app.create'], 'no audit entry given, none written');
      await store.keys.revoke(app, NOW + 4);
      assert.deepEqual(await store.keys.insert(pak('pak_i3', app, NOW + 5)), fresh('pak_i3', app, NOW + 5));
    });

    it('concurrent inserts on an app without a key: exactly one becomes its primary, with one audit entry', async () => {
      const app = 'logi_c00000000003';
      await createApp(store, ACCOUNT, app);
      const results = await Promise.all([1, 2, 3, 4].map((i) => store.keys.insert(pak(`pak_r${i}`, app, NOW + i), auditEntry(app, 'pak.issue', NOW + i))));
      const winners = results.filter((r) => r !== null);
      assert.equal(winners.length, 1, JSON.stringify(results));
      assert.deepEqual(await store.keys.list(app), winners);
      assert.deepEqual(await auditActions(store, app), ['app.create', 'pak.issue']);
    });

    it('list returns every key of the app, newest first (then by id); active only those neither revoked nor expired at now', async () => {
      const app = 'logi_c00000000004';
      await createApp(store, ACCOUNT, app);
      await store.keys.insert(pak('pak_l1', app, NOW));
      await store.keys.rotate({ ...pak('pak_l2', app, NOW + 10), expiresAt: NOW + 100 }); // l1 in grace until NOW + 100
      await store.keys.revoke(app, NOW + 20, 'pak_l2');
      // l4 and then l3 are created at the same time: listed by id, not in the order they were made.
      assert.ok(await store.keys.insert(pak('pak_l4', app, NOW + 20)));
      await store.keys.revoke(app, NOW + 20, 'pak_l4');
      assert.ok(await store.keys.insert(pak('pak_l3', app, NOW + 20)));
      const listed = await store.keys.list(app);
      assert.deepEqual(ids(listed), ['pak_l3', 'pak_l4', 'pak_l2', 'pak_l1']);
      assert.deepEqual(listed[3], { ...fresh('pak_l1', app, NOW), expiresAt: NOW + 100 });
      assert.deepEqual(listed[2], { ...fresh('pak_l2', app, NOW + 10), revokedAt: NOW + 20 });
      assert.deepEqual(ids(await store.keys.list('logi_c00000000001')), ['pak_i3', 'pak_i1'], 'another app\'s keys stay apart');
      assert.deepEqual(await store.keys.list('logi_000000000000'), []);

      assert.deepEqual(await activeIds(store, app, NOW + 99), ['pak_l1', 'pak_l3'], 'l1 valid until its expiry; revoked keys never');
      assert.deepEqual(await activeIds(store, app, NOW + 100), ['pak_l3'], 'expired at expiresAt');
      assert.deepEqual(await store.keys.active(app, NOW + 100), [fresh('pak_l3', app, NOW + 20)]);
      assert.deepEqual(await store.keys.active('logi_000000000000', NOW), []);
    });

    it('rotate with a grace: every key still valid expires then, never later than it already would; the new key is the primary', async () => {
      const app = 'logi_c00000000005';
      await createApp(store, ACCOUNT, app);
      const first = await store.keys.rotate({ ...pak('pak_g1', app, NOW), expiresAt: NOW + 10_000 }, auditEntry(app, 'pak.rotate', NOW));
      assert.deepEqual(first, { pak: fresh('pak_g1', app, NOW), previous: [] }, 'an app without keys gets its first primary');

      const second = await store.keys.rotate({ ...pak('pak_g2', app, NOW + 10), expiresAt: NOW + 10_000 }, auditEntry(app, 'pak.rotate', NOW + 10));
      assert.deepEqual(second, { pak: fresh('pak_g2', app, NOW + 10), previous: [{ ...fresh('pak_g1', app, NOW), expiresAt: NOW + 10_000 }] });

      // A shorter grace shortens the one already running.
      const third = await store.keys.rotate({ ...pak('pak_g3', app, NOW + 20), expiresAt: NOW + 5000 });
      assert.deepEqual(byId(third.previous).map((p) => [p.id, p.expiresAt, p.revokedAt]), [['pak_g1', NOW + 5000, null], ['pak_g2', NOW + 5000, null]]);

      // A longer one does not lengthen them.
      const fourth = await store.keys.rotate({ ...pak('pak_g4', app, NOW + 30), expiresAt: NOW + 20_000 });
      assert.deepEqual(byId(fourth.previous).map((p) => [p.id, p.expiresAt, p.revokedAt]), [['pak_g1', NOW + 5000, null], ['pak_g2', NOW + 5000, null], ['pak_g3', NOW + 20_000, null]]);

      // Keys already expired are not touched again.
      const fifth = await store.keys.rotate({ ...pak('pak_g5', app, NOW + 6000), expiresAt: NOW + 7000 });
      assert.deepEqual(byId(fifth.previous).map((p) => [p.id, p.expiresAt, p.revokedAt]), [['pak_g3', NOW + 7000, null], ['pak_g4', NOW + 7000, null]]);
      assert.deepEqual(
        (await store.keys.list(app)).map((p) => [p.id, p.expiresAt, p.revokedAt]),
        [['pak_g5', null, null], ['pak_g4', NOW + 7000, null], ['pak_g3', NOW + 7000, null], ['pak_g2', NOW + 5000, null], ['pak_g1', NOW + 5000, null]],
      );
      assert.deepEqual(await activeIds(store, app, NOW + 6999), ['pak_g3', 'pak_g4', 'pak_g5']);
      assert.deepEqual(await activeIds(store, app, NOW + 7000), ['pak_g5']);
      assert.equal(await store.keys.insert(pak('pak_gx', app, NOW + 7000)), null, 'the rotated-in key is the primary');
      assert.deepEqual(await auditActions(store, app), ['app.create', 'pak.rotate', 'pak.rotate'], 'an entry for each rotation given one');
    });

    it('rotate with no grace revokes every key still valid on the spot; expired and revoked keys keep their times', async () => {
      const app = 'logi_c00000000006';
      await createApp(store, ACCOUNT, app);
      await store.keys.insert(pak('pak_z1', app, NOW));
      await store.keys.rotate({ ...pak('pak_z2', app, NOW + 10), expiresAt: NOW + 100 }); // z1 expires at NOW + 100
      await store.keys.rotate({ ...pak('pak_z3', app, NOW + 20), expiresAt: NOW + 5000 }); // z2 expires at NOW + 5000
      await store.keys.revoke(app, NOW + 30, 'pak_z2');
      const immediate = await store.keys.rotate({ ...pak('pak_z4', app, NOW + 200), expiresAt: NOW + 200 }, auditEntry(app, 'pak.rotate', NOW + 200));
      assert.deepEqual(immediate.pak, fresh('pak_z4', app, NOW + 200));
      assert.deepEqual(immediate.previous, [{ ...fresh('pak_z3', app, NOW + 20), expiresAt: NOW + 200, revokedAt: NOW + 200 }]);
      assert.deepEqual(
        (await store.keys.list(app)).map((p) => [p.id, p.expiresAt, p.revokedAt]),
        [['pak_z4', null, null], ['pak_z3', NOW + 200, NOW + 200], ['pak_z2', NOW + 5000, NOW + 30], ['pak_z1', NOW + 100, null]],
      );
      assert.deepEqual(await activeIds(store, app, NOW + 200), ['pak_z4']);
      // A grace that ended before now revokes as well.
      const past = await store.keys.rotate({ ...pak('pak_z5', app, NOW + 300), expiresAt: NOW + 250 });
      assert.deepEqual(past.previous.map((p) => [p.id, p.expiresAt, p.revokedAt]), [['pak_z4', NOW + 250, NOW + 300]]);
      assert.deepEqual(await auditActions(store, app), ['app.create', 'pak.rotate']);
    });

    it('concurrent rotations of one app each succeed and leave exactly one primary', async () => {
      const app = 'logi_c00000000007';
      await createApp(store, ACCOUNT, app);
      await store.keys.insert(pak('pak_c0', app, NOW));
      const rotations = await Promise.all([1, 2, 3, 4].map((i) => store.keys.rotate({ ...pak(`pak_c${i}`, app, NOW + 10), expiresAt: NOW + 1000 })));
      assert.deepEqual(rotations.map((r) => r.pak.id), ['pak_c1', 'pak_c2', 'pak_c3', 'pak_c4']);
      const listed = await store.keys.list(app);
      assert.equal(listed.length, 5);
      assert.equal(listed.filter((p) => p.expiresAt === null && p.revokedAt === null).length, 1, JSON.stringify(listed));
      assert.equal(listed.filter((p) => p.expiresAt === NOW + 1000).length, 4);
    });

    it('revoke by id revokes that key only; without an id every key not yet revoked; the audit entry only when something was revoked', async () => {
      const app = 'logi_c00000000008';
      const other = 'logi_c0000000000d';
      await createApp(store, ACCOUNT, app);
      await createApp(store, ACCOUNT, other);
      await store.keys.insert(pak('pak_w1', other, NOW));
      await store.keys.insert(pak('pak_v1', app, NOW));
      await store.keys.rotate({ ...pak('pak_v2', app, NOW + 10), expiresAt: NOW + 1000 }); // v1 in grace
      const seen: Pak[][] = [];
      const audit = (revoked: Pak[]) => {
        seen.push(revoked);
        return auditEntry(app, 'pak.revoke', NOW, { after: revoked.map((p) => p.id) });
      };

      const one = await store.keys.revoke(app, NOW + 20, 'pak_v1', audit);
      assert.deepEqual(one, [{ ...fresh('pak_v1', app, NOW), expiresAt: NOW + 1000, revokedAt: NOW + 20 }]);
      assert.deepEqual(seen, [one], 'the entry is built from what was revoked');
      assert.equal((await store.keys.findForAuth('hash_pak_v2'))?.revokedAt, null, 'the other key still works');

      assert.deepEqual(await store.keys.revoke(app, NOW + 21, 'pak_v1', audit), [], 'already revoked');
      assert.deepEqual(await store.keys.revoke(app, NOW + 22, 'pak_w1', audit), [], 'another app\'s key, by id');
      assert.equal((await store.keys.findForAuth('hash_pak_w1'))?.revokedAt, null, 'and it is untouched');
      assert.deepEqual(await store.keys.revoke(app, NOW + 23, 'pak_none', audit), []);
      assert.equal(seen.length, 1, 'no entry built when nothing was revoked');

      assert.equal(await store.keys.insert(pak('pak_v3', app, NOW + 24)), null, 'v2 is still the primary');
      const all = await store.keys.revoke(app, NOW + 30, undefined, audit);
      assert.deepEqual(all, [fresh('pak_v2', app, NOW + 10)].map((p) => ({ ...p, revokedAt: NOW + 30 })));
      assert.deepEqual(await store.keys.revoke(app, NOW + 40, undefined, audit), []);
      assert.deepEqual(await store.keys.revoke(app, NOW + 41), [], 'without an audit builder too');
      assert.equal(seen.length, 2);
      assert.equal((await store.keys.findForAuth('hash_pak_w1'))?.revokedAt, null, 'revoking all is one app\'s all');
      assert.deepEqual((await store.keys.list(app)).map((p) => [p.id, p.revokedAt]), [['pak_v2', NOW + 30], ['pak_v1', NOW + 20]], 'an earlier revocation keeps its time');
      const log = await store.audit.list(app, { limit: 10 });
      assert.deepEqual(log.map((e) => [e.action, e.after]), [['app.create', null], ['pak.revoke', '["pak_v1"]'], ['pak.revoke', '["pak_v2"]']]);
    });

    it('revoke leaves a key whose grace has ended expired, by id or all: the answer and the audit entry name only the keys it stopped', async () => {
      const app = 'logi_c0000000000e';
      await createApp(store, ACCOUNT, app);
      await store.keys.insert(pak('pak_e1', app, NOW));
      await store.keys.rotate({ ...pak('pak_e2', app, NOW + 10), expiresAt: NOW + 100 }); // e1 valid until NOW + 100
      await store.keys.rotate({ ...pak('pak_e3', app, NOW + 20), expiresAt: NOW + 1000 }); // e2 until NOW + 1000
      const audit = (keys: Pak[]) => auditEntry(app, 'pak.revoke', NOW + 500, { after: ids(keys).sort() });

      assert.deepEqual(await store.keys.revoke(app, NOW + 100, 'pak_e1', audit), [], 'expired at its expiresAt, by id');
      const revoked = await store.keys.revoke(app, NOW + 500, undefined, audit);
      assert.deepEqual(byId(revoked), [
        { ...fresh('pak_e2', app, NOW + 10), expiresAt: NOW + 1000, revokedAt: NOW + 500 },
        { ...fresh('pak_e3', app, NOW + 20), revokedAt: NOW + 500 },
      ], 'the key in its grace and the primary; not the expired one');
      assert.deepEqual((await store.keys.list(app)).map((p) => [p.id, p.expiresAt, p.revokedAt]), [['pak_e3', null, NOW + 500], ['pak_e2', NOW + 1000, NOW + 500], ['pak_e1', NOW + 100, null]]);
      assert.deepEqual((await store.audit.list(app, { limit: 10 })).map((e) => [e.action, e.after]), [['app.create', null], ['pak.revoke', '["pak_e2","pak_e3"]']]);
    });

    it('a key change whose audit entry cannot be written changes nothing', async () => {
      const app = 'logi_c0000000000f';
      await createApp(store, ACCOUNT, app);
      const broken = auditEntry('logi_nonexistent00', 'pak.issue');
      await assert.rejects(store.keys.insert(pak('pak_b1', app, NOW), broken));
      assert.deepEqual(await store.keys.list(app), []);
      assert.ok(await store.keys.insert(pak('pak_b2', app, NOW + 1)), 'the primary slot is still free');
      await assert.rejects(store.keys.rotate({ ...pak('pak_b3', app, NOW + 2), expiresAt: NOW + 2 }, broken));
      assert.deepEqual(await store.keys.list(app), [fresh('pak_b2', app, NOW + 1)], 'not revoked, no new key');
      await assert.rejects(store.keys.revoke(app, NOW + 3, undefined, () => broken));
      assert.deepEqual(await store.keys.list(app), [fresh('pak_b2', app, NOW + 1)], 'not revoked');
      assert.deepEqual(await auditActions(store, app), ['app.create']);
    });

    it('findForAuth reads the key with its app\'s switches, its expiry and its revocation', async () => {
      const app = 'logi_c00000000009';
      const other = 'logi_c0000000000a';
      await createApp(store, ACCOUNT, app);
      await createApp(store, ACCOUNT, other);
      await store.keys.insert(pak('pak_f1', app, NOW));
      await store.keys.insert(pak('pak_f2', other, NOW));
      const record = { keyId: 'pak_f1', keyHash: 'hash_pak_f1', clientId: app, panopticonEnabled: false, hmacEnabled: false, expiresAt: null, revokedAt: null };
      assert.deepEqual(await store.keys.findForAuth('hash_pak_f1'), record);

      await store.apps.update(ACCOUNT, app, { panopticonEnabled: true }, () => []);
      assert.deepEqual(await store.keys.findForAuth('hash_pak_f1'), { ...record, panopticonEnabled: true });
      await store.secrets.enableHmac({ clientId: app, secret: { id: 'sec_f', sealed: 'sealed' }, now: NOW, audit: auditEntry(app, 'hmac.enable') });
      assert.deepEqual(await store.keys.findForAuth('hash_pak_f1'), { ...record, panopticonEnabled: true, hmacEnabled: true });
      assert.deepEqual(await store.keys.findForAuth('hash_pak_f2'), { ...record, keyId: 'pak_f2', keyHash: 'hash_pak_f2', clientId: other }, 'each key reads its own app');

      await store.keys.rotate({ ...pak('pak_f3', app, NOW + 10), expiresAt: NOW + 500 });
      assert.deepEqual(await store.keys.findForAuth('hash_pak_f1'), { ...record, panopticonEnabled: true, hmacEnabled: true, expiresAt: NOW + 500 });
      await store.keys.revoke(app, NOW + 20, 'pak_f1');
      assert.deepEqual(await store.keys.findForAuth('hash_pak_f1'), { ...record, panopticonEnabled: true, hmacEnabled: true, expiresAt: NOW + 500, revokedAt: NOW + 20 }, 'still found: the caller decides');
      await store.apps.update(ACCOUNT, app, { panopticonEnabled: false }, () => []);
      assert.equal((await store.keys.findForAuth('hash_pak_f3'))?.panopticonEnabled, false);
      assert.equal(await store.keys.findForAuth('pak_f1'), null, 'found by hash, not by id');
      assert.equal(await store.keys.findForAuth('hash_none'), null);
    });

    it('touch records when each key was last used, never moving a time backwards', async () => {
      const app = 'logi_c0000000000b';
      const other = 'logi_c0000000000c';
      await createApp(store, ACCOUNT, app);
      await createApp(store, ACCOUNT, other);
      await store.keys.insert(pak('pak_t1', app, NOW));
      await store.keys.insert(pak('pak_t2', other, NOW));
      const lastUsed = async () => [(await store.keys.list(app))[0]!.lastUsedAt, (await store.keys.list(other))[0]!.lastUsedAt];
      assert.deepEqual(await lastUsed(), [null, null]);

      await store.keys.touch(new Map([['pak_t1', NOW + 100]]));
      assert.deepEqual(await lastUsed(), [NOW + 100, null], 'only the keys named');
      await store.keys.touch(new Map([['pak_t1', NOW + 90], ['pak_t2', NOW + 50]]));
      assert.deepEqual(await lastUsed(), [NOW + 100, NOW + 50], 'an older time does not move it back');
      await store.keys.touch(new Map([['pak_t1', NOW + 200], ['pak_t2', NOW + 60], ['pak_none', NOW + 70]]));
      assert.deepEqual(await lastUsed(), [NOW + 200, NOW + 60]);
      await store.keys.touch(new Map());
      assert.deepEqual(await lastUsed(), [NOW + 200, NOW + 60]);
      assert.equal((await store.keys.active(app, NOW + 300))[0]?.lastUsedAt, NOW + 200);
    });
  });
}
