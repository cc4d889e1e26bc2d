/** The SQLite files hold password hashes, emails and traces: only their owner may read them. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { tempDir, TEST_AUDIT_KEY } from '../support/locations.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';

test('sqlite: a created data directory is 0700 and the database, WAL and shared-memory files 0600', async () => {
  const parent = tempDir('perm');
  const file = path.join(parent, 'data', 'panopticon.db');
  const previous = process.umask(0o022);
  try {
    const store = new SqliteStore(file, TEST_AUDIT_KEY);
    await store.migrate();
    await store.accounts.create({ id: 'acc_1', email: 'a@example.com', passwordHash: 'x', now: Date.now() });
    const mode = (p: string) => (fs.statSync(p).mode & 0o777).toString(8);
    assert.equal(mode(path.dirname(file)), '700');
    assert.equal(mode(file), '600');
    assert.equal(mode(`${file}-wal`), '600');
    assert.equal(mode(`${file}-shm`), '600');
    await store.close();
  } finally {
    process.umask(previous);
    fs.rmSync(parent, { recursive: true, force: true });
  }
});
