/** What /healthz reports about writes (src/store/write-health.ts): the failure to fix, since when. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StoreUnavailableError } from '../../src/store/errors.js';
import { WriteHealth } from '../../src/store/write-health.js';

const sqlite = (code: string, message: string) => Object.assign(new Error(message), { code });
const full = sqlite('SQLITE_FULL', 'database or disk is full');
const locked = sqlite('SQLITE_BUSY', 'database is locked');
const lockedWrapped = new StoreUnavailableError('the database stayed locked for 1000 ms', { cause: locked });
const pgLockTimeout = Object.assign(new Error('canceling statement due to lock timeout'), { code: '55P03' });
const failingProbe = (err: unknown) => async () => {
  throw err;
};

describe('WriteHealth', () => {
  it('a full disk stays the reason while lock timeouts follow it (the writer holding the lock on the full disk)', async () => {
    let now = 1000;
    const health = new WriteHealth(() => now);
    health.failed(full);
    now = 2000;
    for (const err of [locked, lockedWrapped, pgLockTimeout]) health.failed(err);
    assert.deepEqual(await health.check(failingProbe(locked)), { ok: false, reason: 'database or disk is full', since: 1000 });
  });

  it('a lock timeout on its own is the reason; another failure replaces it', async () => {
    const health = new WriteHealth(() => 5);
    assert.deepEqual(await health.check(failingProbe(lockedWrapped)), { ok: true }, 'no failure recorded: no probe');
    health.failed(lockedWrapped);
    assert.deepEqual(await health.check(failingProbe(locked)), { ok: false, reason: 'the database stayed locked for 1000 ms', since: 5 });
    health.failed(full);
    assert.deepEqual(await health.check(failingProbe(full)), { ok: false, reason: 'database or disk is full', since: 5 });
  });

  it('a successful probe or write ends the outage; bugs are not store failures', async () => {
    const health = new WriteHealth(() => 7);
    health.failed(full);
    assert.deepEqual(await health.check(async () => undefined), { ok: true });
    health.failed(locked);
    assert.equal((await health.check(failingProbe(locked))).ok, false);
    health.succeeded();
    health.failed(new TypeError('x is undefined'));
    health.failed(sqlite('SQLITE_CONSTRAINT_UNIQUE', 'UNIQUE constraint failed'));
    assert.deepEqual(await health.check(failingProbe(full)), { ok: true });
  });
});
