/**
 * How the SQLite engine runs trace commits: on a worker thread, merging the batches of concurrent
 * callers into one transaction. This is the engine's machinery, not the TraceStore contract (which
 * traces.contract.test.ts checks on both engines, the SQLite one going through this worker), so it
 * has a file of its own: SQLite only, whatever PANOPTICON_TEST_ENGINES says, since no other engine
 * has a commit worker to test.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { openStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types/store.js';
import { freshLocation, TEST_AUDIT_KEY } from '../support/locations.js';
import { appCreated, ok, traceRow as row } from '../support/store-fixtures.js';

describe('SQLite trace commits run on a worker thread', () => {
  let store: Store;
  let cleanup: () => Promise<void>;
  let file: string;
  const clientId = 'logi_0000000000aa';

  before(async () => {
    const fresh = freshLocation('sqlite');
    cleanup = fresh.cleanup;
    file = fresh.dbValue;
    store = await openStore(fresh.location, { auditKey: TEST_AUDIT_KEY });
    const { account } = ok(await store.accounts.create({ id: 'acct_w', email: 'w@example.com', passwordHash: 'h', now: 1 }));
    await store.apps.create(...appCreated({ clientId, accountId: account!.id, name: 'w', now: 1 }));
  });
  after(async () => {
    await store.close();
    await cleanup();
  });

  it('the event loop keeps turning while a commit is in flight', async () => {
    await store.traces.insert([row(clientId)]);
    // Another connection holds the write lock, so the commit waits for it (up to the lock timeout).
    // On the main thread that wait would block the event loop; on the worker, timers still fire.
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    let settled = false;
    const insert = store.traces.insert([row(clientId), row(clientId)]).finally(() => (settled = true));
    try {
      for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(settled, false, 'the commit waits for the lock');
    } finally {
      other.exec('COMMIT');
      other.close();
    }
    assert.deepEqual(await insert, [true, true]);
  });

  it('batches posted while a commit runs ride the next one together; each caller gets its own rows\' answers, duplicates across callers included', async () => {
    const stats = store.traces.commitStats!;
    await store.traces.insert([row(clientId)]);
    const before = { ...stats };
    const stored = await store.traces.count(clientId);
    const shared = row(clientId);
    // 40 callers at once, 3 rows each; caller 0 and caller 25 both carry `shared`.
    const batches = Array.from({ length: 40 }, (_, i) => [row(clientId), i === 0 || i === 25 ? shared : row(clientId), row(clientId)]);
    const answers = await Promise.all(batches.map((b) => store.traces.insert(b)));
    answers.forEach((a, i) => assert.deepEqual(a, [true, i !== 25, true], `caller ${i}`));
    const commits = stats.commits - before.commits;
    assert.equal(stats.rows - before.rows, 120);
    assert.ok(commits >= 1 && commits < 40, `40 batches in ${commits} transactions`);
    assert.equal(await store.traces.count(clientId), stored + 119);
  });

  it('the worker merges no more than PANOPTICON_COMMIT_BATCH rows into one transaction, and never splits a caller\'s rows', async () => {
    const fresh = freshLocation('sqlite');
    const bounded = await openStore(fresh.location, { auditKey: TEST_AUDIT_KEY, commitBatch: 5 });
    try {
      const { account } = ok(await bounded.accounts.create({ id: 'acct_b', email: 'b@example.com', passwordHash: 'h', now: 1 }));
      await bounded.apps.create(...appCreated({ clientId, accountId: account!.id, name: 'b', now: 1 }));
      const stats = bounded.traces.commitStats!;
      await bounded.traces.insert([row(clientId)]);
      const before = { ...stats };
      // Two callers of 3 rows exceed 5: however they arrive, each commits on its own. 7 rows commit whole.
      const batches = [...Array.from({ length: 20 }, () => [row(clientId), row(clientId), row(clientId)]), Array.from({ length: 7 }, () => row(clientId))];
      const answers = await Promise.all(batches.map((b) => bounded.traces.insert(b)));
      answers.forEach((a, i) => assert.deepEqual(a, batches[i]!.map(() => true), `caller ${i}`));
      assert.equal(stats.rows - before.rows, 67);
      assert.equal(stats.commits - before.commits, 21);
      assert.equal(await bounded.traces.count(clientId), 68);
    } finally {
      await bounded.close();
      await fresh.cleanup();
    }
  });

  it('once the worker commits, the main connection leaves checkpoints to it (a checkpoint here would stall the event loop)', async () => {
    await store.traces.insert([row(clientId)]);
    const db = (store as unknown as { db: import('better-sqlite3').Database }).db;
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 0);
  });

  it('a commit worker that dies fails the commits waiting on it, and the next commit starts a new one', { timeout: 20_000 }, async () => {
    const internals = store.traces as unknown as { worker: import('node:worker_threads').Worker | null };
    await store.traces.insert([row(clientId)]);
    const worker = internals.worker;
    assert.ok(worker !== null);
    const waiting = store.traces.insert([row(clientId)]).then(() => 'committed', (err: Error) => err.message);
    await worker.terminate();
    // It either committed before the thread stopped or failed with it; it never hangs.
    assert.match(await waiting, /committed|worker exited/);
    const again = row(clientId);
    assert.deepEqual(await store.traces.insert([again]), [true]);
    assert.notEqual(internals.worker, worker);
    assert.deepEqual(await store.traces.insert([again]), [false]);
  });
});

describe('SQLite in memory (:memory:) commits traces on the store\'s own connection', () => {
  it('with the same answers and usage as the worker, one commit per call', async () => {
    const store = await openStore({ engine: 'sqlite', file: ':memory:' }, { auditKey: TEST_AUDIT_KEY });
    try {
      const { account } = ok(await store.accounts.create({ id: 'acct_m', email: 'm@example.com', passwordHash: 'h', now: 1 }));
      const clientId = 'logi_0000000000bb';
      await store.apps.create(...appCreated({ clientId, accountId: account.id, name: 'm', now: 1 }));
      const stats = store.traces.commitStats!;
      const a = row(clientId, { status: 'timeout' });
      assert.deepEqual(await store.traces.insert([a, row(clientId), { ...a, tool: 'other' }]), [true, true, false]);
      assert.deepEqual(await store.traces.insert([a]), [false]);
      assert.deepEqual(stats, { commits: 2, rows: 4 });
      assert.equal((store.traces as unknown as { worker: unknown }).worker, null, 'no thread was started');
      assert.equal((await store.traces.list({ clientId, limit: 10 })).find((t) => t.eventId === a.eventId)?.tool, 'search');
      assert.deepEqual(await store.traces.usage(clientId, '2026-05-09', '2026-05-09'), [{ day: '2026-05-09', traces: 2, errors: 1, hitlRequests: 0, killSwitch: 0 }]);
    } finally {
      await store.close();
    }
  });
});
