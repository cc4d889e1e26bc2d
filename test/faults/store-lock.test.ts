/**
 * Fault: another process holds the database's write lock (SQLite: BEGIN IMMEDIATE in a second
 * process; PostgreSQL: a session holding ACCESS EXCLUSIVE locks on the tables a trace and a check
 * write). The server must keep answering everything else (the event loop never waits for a lock),
 * answer what needs the lock with `503 store_unavailable` + Retry-After at the lock timeout, never
 * 500, store nothing it refused, lose nothing it acknowledged, and recover by itself.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPanopticon } from '@panopticon/sdk';
import { createTenant, ENGINES, http, rawSql, startServer, type Engine, type RunningServer } from '../support/harness.js';
import { formatCounts, holdSqliteWriteLock, ingestWorks, keepSending, timeUntil, type ForeignLock } from '../support/traffic.js';

const LOCK_TIMEOUT_MS = 1000;
const LOCK_HELD_MS = 3000;

async function holdLock(engine: Engine, server: RunningServer): Promise<ForeignLock> {
  if (server.location.engine === 'sqlite') return holdSqliteWriteLock(server.location.file);
  const sql = await rawSql(server.location);
  await sql.query('BEGIN');
  await sql.query('LOCK TABLE traces, usage_daily, guard_checks, kill_switches IN ACCESS EXCLUSIVE MODE');
  return {
    async release() {
      await sql.query('COMMIT');
      await sql.close();
    },
  };
}

for (const engine of ENGINES) {
  test(`${engine}: a write lock held by another process ends in 503 at the lock timeout, never a frozen server`, async (t) => {
    const server = await startServer(engine, { lockTimeoutMs: LOCK_TIMEOUT_MS });
    try {
      const tenant = await createTenant(server.url);
      assert.ok(await ingestWorks(server.url, tenant));

      const lock = await holdLock(engine, server);
      const lockedAt = performance.now();
      const traffic = keepSending(server.url, tenant);
      let released = false;
      try {
        // Operator calls made while the lock is held: a write waits for the lock timeout and is
        // refused; a read is answered (SQLite's WAL readers never wait for the writer).
        const killStarted = performance.now();
        const kill = await http(server.url, 'POST', `/api/apps/${tenant.clientId}/kill`, { token: tenant.token, body: { reason: 'fault test' } });
        const killMs = performance.now() - killStarted;
        assert.equal(kill.status, 503, kill.text);
        assert.equal(kill.body.error.code, 'store_unavailable');
        assert.ok(kill.headers.get('retry-after'));
        assert.ok(killMs >= LOCK_TIMEOUT_MS * 0.9 && killMs < LOCK_TIMEOUT_MS + 1500, `kill switch answered after ${killMs} ms`);

        const timeline = await http(server.url, 'GET', `/api/apps/${tenant.clientId}/traces`, { token: tenant.token });
        if (engine === 'sqlite') assert.equal(timeline.status, 200, timeline.text);
        else assert.equal(timeline.status, 503, timeline.text);

        const sdk = createPanopticon({ url: server.url, pak: tenant.pak, clientId: tenant.clientId, checkTimeoutMs: 10_000, onError: () => {} });
        const decision = await sdk.check({ tool: 'hello', scope: 'agent:read' });
        await sdk.shutdown({ timeoutMs: 1000 });
        assert.equal(decision.decision, 'deny', 'the SDK fails closed on 503');
        assert.equal(decision.source, 'fail_closed');

        const health = await http(server.url, 'GET', '/healthz');
        if (engine === 'sqlite') {
          // Trace commits have failed by now; the probe write finds the lock at once.
          assert.equal(health.status, 503, health.text);
          assert.match(health.body.error.reason, /lock/i);
        }
        assert.equal((await http(server.url, 'GET', '/livez')).status, 200);

        const left = LOCK_HELD_MS - (performance.now() - lockedAt);
        if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
      } finally {
        await lock.release();
        released = true;
      }
      const recoveryMs = await timeUntil(async () => {
        const check = await http(server.url, 'POST', '/panopticon/guard/check', { token: tenant.pak, body: { client_id: tenant.clientId, tool: 'hello', scope: 'agent:read' } });
        return check.status === 200 && (await ingestWorks(server.url, tenant));
      }, 5000);
      assert.equal((await http(server.url, 'GET', '/healthz')).status, 200);
      await traffic.stop();
      assert.ok(released);

      assert.deepEqual(traffic.unexpected, [], 'every answer is a success or a documented 503');
      assert.ok((traffic.traces['503'] ?? 0) > 0 && (traffic.checks['503'] ?? 0) > 0, 'the lock was felt');
      assert.ok(traffic.slowestProbeMs < 500, `/livez took ${traffic.slowestProbeMs} ms: the event loop waited`);

      const sql = await rawSql(server.location);
      const stored = new Set((await sql.query('SELECT event_id FROM traces WHERE client_id = ?', [tenant.clientId])).map((r) => String(r.event_id)));
      await sql.close();
      const lost = [...traffic.acked].filter((id) => !stored.has(id));
      const storedDespite503 = [...traffic.refused].filter((id) => stored.has(id));
      assert.deepEqual(lost, [], 'no acknowledged trace is lost');
      assert.deepEqual(storedDespite503, [], 'nothing refused is stored');

      t.diagnostic(`traces: ${formatCounts(traffic.traces)}; checks: ${formatCounts(traffic.checks)}`);
      t.diagnostic(`slowest /livez during the lock: ${traffic.slowestProbeMs.toFixed(0)} ms; acked lost: ${lost.length}; recovered ${recoveryMs.toFixed(0)} ms after release`);
    } finally {
      await server.close();
    }
  });
}
