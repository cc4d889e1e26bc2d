/**
 * The account store's contract (store.accounts), on every engine: who owns the install, sign-up
 * closed after the first account, unique emails, console sessions up to their expiry, operator
 * tokens until revoked. The store only ever sees hashes; the services normalise emails.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Account, Store } from '../../src/store/types/store.js';
import { ENGINES } from '../support/locations.js';
import { freshStore, NOW, ok, type OpenedStore } from '../support/store-fixtures.js';

for (const engine of ENGINES) {
  describe(`account store contract [${engine}]`, () => {
    /** Used by every case; its first account is made by the first case. */
    let main: OpenedStore;
    /** Stays empty until the concurrent onlyIfFirst case. */
    let empty: OpenedStore;
    let store: Store;
    /** The four accounts the first case created, as create returned them. */
    let firstFour: Account[] = [];

    before(async () => {
      [main, empty] = await Promise.all([freshStore(engine), freshStore(engine)]);
      store = main.store;
    });
    after(async () => {
      await Promise.all([main?.close(), empty?.close()]);
    });

    /** Opens a few pooled connections first (PostgreSQL), so the sign-ups' transactions really overlap instead of queueing for connects. */
    const warm = (s: Store) => Promise.all([1, 2, 3, 4].map(() => s.ping()));

    it('concurrent sign-ups on an empty install make exactly one owner; every later account is not one', async () => {
      assert.equal(await store.accounts.count(), 0);
      await warm(store);
      const results = await Promise.all(
        [1, 2, 3, 4].map((i) => store.accounts.create({ id: `acct_${i}`, email: `user${i}@example.com`, passwordHash: `h${i}`, now: NOW + i })),
      );
      const accounts = results.map((r) => ok(r).account);
      assert.deepEqual(
        accounts.map((a) => [a.id, a.email, a.passwordHash, a.createdAt]),
        [1, 2, 3, 4].map((i) => [`acct_${i}`, `user${i}@example.com`, `h${i}`, NOW + i]),
      );
      assert.equal(accounts.filter((a) => a.isOwner === true).length, 1, 'one owner, however the four transactions interleave');
      assert.equal(accounts.filter((a) => a.isOwner === false).length, 3);
      firstFour = accounts;
      assert.equal(await store.accounts.count(), 4);
      const later = ok(await store.accounts.create({ id: 'acct_5', email: 'user5@example.com', passwordHash: 'h5', now: NOW + 5 }));
      assert.deepEqual(later.account, { id: 'acct_5', email: 'user5@example.com', passwordHash: 'h5', isOwner: false, createdAt: NOW + 5 });
      assert.equal(await store.accounts.count(), 5);
    });

    it('with onlyIfFirst, concurrent sign-ups on an empty install: one becomes the owner, the others are signup_closed and write nothing', async () => {
      const closed = empty.store;
      assert.equal(await closed.accounts.count(), 0);
      await warm(closed);
      const results = await Promise.all(
        [1, 2, 3, 4].map((i) => closed.accounts.create({ id: `acct_${i}`, email: `user${i}@example.com`, passwordHash: `h${i}`, now: NOW + i, onlyIfFirst: true })),
      );
      const created = results.filter((r) => r.ok);
      assert.equal(created.length, 1, JSON.stringify(results));
      assert.equal(ok(created[0]!).account.isOwner, true);
      assert.deepEqual(results.filter((r) => !r.ok), [1, 2, 3].map(() => ({ ok: false, reason: 'signup_closed' })));
      assert.equal(await closed.accounts.count(), 1);
      const winner = ok(created[0]!).account.id;
      for (const id of ['acct_1', 'acct_2', 'acct_3', 'acct_4'].filter((id) => id !== winner)) {
        assert.equal(await closed.accounts.findById(id), null, `${id} was not written`);
      }
    });

    it('with onlyIfFirst on an install that has accounts: signup_closed, nothing written', async () => {
      const before = await store.accounts.count();
      assert.deepEqual(
        await store.accounts.create({ id: 'acct_late', email: 'late@example.com', passwordHash: 'h', now: NOW, onlyIfFirst: true }),
        { ok: false, reason: 'signup_closed' },
      );
      assert.equal(await store.accounts.count(), before);
      assert.equal(await store.accounts.findById('acct_late'), null);
      assert.equal(await store.accounts.findByEmail('late@example.com'), null);
    });

    it('a taken email is refused (email_taken, checked before signup_closed) and writes nothing', async () => {
      const before = await store.accounts.count();
      assert.deepEqual(await store.accounts.create({ id: 'acct_dup', email: 'user1@example.com', passwordHash: 'other', now: NOW + 9 }), { ok: false, reason: 'email_taken' });
      assert.deepEqual(
        await store.accounts.create({ id: 'acct_dup', email: 'user1@example.com', passwordHash: 'other', now: NOW + 9, onlyIfFirst: true }),
        { ok: false, reason: 'email_taken' },
      );
      assert.equal(await store.accounts.count(), before);
      assert.equal(await store.accounts.findById('acct_dup'), null);
      assert.equal((await store.accounts.findByEmail('user1@example.com'))?.passwordHash, 'h1', 'the first account is untouched');
    });

    it('findByEmail and findById return the whole account, matched exactly; anything else is null', async () => {
      assert.equal(firstFour.length, 4);
      for (const account of firstFour) {
        assert.deepEqual(await store.accounts.findById(account.id), account, 'read back as created, owner flag included');
        assert.deepEqual(await store.accounts.findByEmail(account.email), account);
      }
      const fifth = { id: 'acct_5', email: 'user5@example.com', passwordHash: 'h5', isOwner: false, createdAt: NOW + 5 };
      assert.deepEqual(await store.accounts.findById('acct_5'), fifth);
      assert.deepEqual(await store.accounts.findByEmail('user5@example.com'), fifth);
      assert.equal(await store.accounts.findByEmail('USER2@example.com'), null, 'the service normalises; the store compares as given');
      assert.equal(await store.accounts.findByEmail('nobody@example.com'), null);
      assert.equal(await store.accounts.findById('acct_none'), null);
      assert.equal(await store.accounts.findById('user2@example.com'), null, 'an id is not an email');
    });

    it('a session is found before its expiry, not at it; deleting one leaves the others', async () => {
      await store.accounts.createSession({ tokenHash: 'sess_a', accountId: 'acct_1', now: NOW, expiresAt: NOW + 1000 });
      await store.accounts.createSession({ tokenHash: 'sess_b', accountId: 'acct_2', now: NOW, expiresAt: NOW + 5000 });
      assert.deepEqual(await store.accounts.findSession('sess_a', NOW), { accountId: 'acct_1', expiresAt: NOW + 1000 });
      assert.deepEqual(await store.accounts.findSession('sess_a', NOW + 999), { accountId: 'acct_1', expiresAt: NOW + 1000 });
      assert.equal(await store.accounts.findSession('sess_a', NOW + 1000), null, 'expired at expiresAt');
      assert.deepEqual(await store.accounts.findSession('sess_b', NOW + 1000), { accountId: 'acct_2', expiresAt: NOW + 5000 });
      assert.equal(await store.accounts.findSession('sess_none', NOW), null);

      await store.accounts.deleteSession('sess_a');
      assert.equal(await store.accounts.findSession('sess_a', NOW), null);
      assert.deepEqual(await store.accounts.findSession('sess_b', NOW), { accountId: 'acct_2', expiresAt: NOW + 5000 });
      await store.accounts.deleteSession('sess_a'); // already gone: nothing to do, no error
      assert.deepEqual(await store.accounts.findSession('sess_b', NOW), { accountId: 'acct_2', expiresAt: NOW + 5000 });
    });

    it('a session needs an existing account and a hash of its own', async () => {
      await assert.rejects(store.accounts.createSession({ tokenHash: 'sess_orphan', accountId: 'acct_none', now: NOW, expiresAt: NOW + 1000 }));
      assert.equal(await store.accounts.findSession('sess_orphan', NOW), null);
      await assert.rejects(store.accounts.createSession({ tokenHash: 'sess_b', accountId: 'acct_1', now: NOW, expiresAt: NOW + 9000 }));
      assert.deepEqual(await store.accounts.findSession('sess_b', NOW), { accountId: 'acct_2', expiresAt: NOW + 5000 }, 'the first session is kept');
    });

    it('createToken returns the token; findToken finds it by hash until it is revoked; a second revoke answers false', async () => {
      const created = await store.accounts.createToken({ id: 'tok_1', tokenHash: 'th_1', accountId: 'acct_1', prefix: 'pano_op_111', name: 'cli', now: NOW + 10 });
      const expected = { id: 'tok_1', accountId: 'acct_1', prefix: 'pano_op_111', name: 'cli', createdAt: NOW + 10, lastUsedAt: null };
      assert.deepEqual(created, expected);
      await store.accounts.createToken({ id: 'tok_2', tokenHash: 'th_2', accountId: 'acct_2', prefix: 'pano_op_222', name: 'ci', now: NOW + 11 });
      assert.deepEqual(await store.accounts.findToken('th_1'), expected);
      assert.equal((await store.accounts.findToken('th_2'))?.id, 'tok_2');
      assert.equal(await store.accounts.findToken('tok_1'), null, 'found by hash, not by id');

      assert.equal(await store.accounts.revokeToken('th_1', NOW + 20), true);
      assert.equal(await store.accounts.findToken('th_1'), null);
      assert.equal((await store.accounts.findToken('th_2'))?.id, 'tok_2', 'only that token is revoked');
      assert.equal(await store.accounts.revokeToken('th_1', NOW + 30), false, 'revoked twice');
      assert.equal(await store.accounts.revokeToken('th_none', NOW + 30), false);
    });

    it('a token needs an existing account and a hash of its own', async () => {
      await assert.rejects(store.accounts.createToken({ id: 'tok_orphan', tokenHash: 'th_orphan', accountId: 'acct_none', prefix: 'p', name: 'x', now: NOW }));
      assert.equal(await store.accounts.findToken('th_orphan'), null);
      await assert.rejects(store.accounts.createToken({ id: 'tok_3', tokenHash: 'th_2', accountId: 'acct_1', prefix: 'p', name: 'x', now: NOW }));
      assert.equal((await store.accounts.findToken('th_2'))?.accountId, 'acct_2', 'the first token is kept');
    });
  });
}
