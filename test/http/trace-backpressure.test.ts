/**
 * The two ways the trace API says "not now, resend later" on both engines: 429 per PAK, and 503
 * when the database cannot take the write (here: another connection holds the lock the insert
 * needs for longer than the lock timeout). Neither stores anything nor gives a 202.
 */
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import pg from 'pg';
import { after, before, describe, it } from 'node:test';
import { createTenant, ENGINES, http, postTrace, startServer, traceBody, type HttpResult, type RunningServer, type Tenant } from '../support/harness.js';

const LIMIT = 5;

for (const engine of ENGINES) {
  describe(`per-PAK rate limit [${engine}]`, () => {
    let server: RunningServer;
    let a: Tenant;
    let b: Tenant;

    before(async () => {
      server = await startServer(engine, { pakRateLimitPerSecond: LIMIT });
      a = await createTenant(server.url);
      b = await createTenant(server.url);
    });
    after(() => server.close());

    it('refuses a PAK over its limit with 429, Retry-After and the error body, storing nothing; another PAK is not slowed', async () => {
      const burstA = Array.from({ length: 12 * LIMIT }, () => traceBody(a.clientId));
      const burstB = Array.from({ length: LIMIT - 1 }, () => traceBody(b.clientId));
      // Interleaved in one burst: were the limit shared (by address, say), B would be refused too.
      const [resA, resB] = await Promise.all([
        Promise.all(burstA.map((body) => postTrace(server.url, a.pak, body))),
        Promise.all(burstB.map((body) => postTrace(server.url, b.pak, body))),
      ]);

      assert.deepEqual(resB.map((r) => r.status), burstB.map(() => 202), 'B stays under its own limit');
      const limited = resA.filter((r) => r.status === 429);
      assert.ok(limited.length > 0, 'A went over its limit');
      for (const r of resA) assert.ok(r.status === 202 || r.status === 429, `status ${r.status}`);
      for (const r of limited) {
        assert.match(r.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
        assert.equal(r.body.error.code, 'rate_limited');
        assert.match(r.body.error.request_id, /^req_/);
        assert.equal(r.body.error.retry_after_seconds, Number(r.headers.get('retry-after')));
      }

      const stored = new Set((await server.store.traces.list({ clientId: a.clientId, limit: 1000 })).map((t) => t.eventId));
      const accepted = new Set(burstA.filter((_, i) => resA[i]!.status === 202).map((t) => t.event_id as string));
      assert.deepEqual([...stored].sort(), [...accepted].sort(), 'exactly the 202s are stored');
    });
  });

  describe(`store unavailable [${engine}]`, () => {
    let server: RunningServer;
    let t: Tenant;

    before(async () => {
      server = await startServer(engine, { lockTimeoutMs: 300 });
      t = await createTenant(server.url);
    });
    after(() => server.close());

    /** Holds the write lock the trace insert needs from a second connection while `during` runs. */
    async function whileLocked<T>(during: () => Promise<T>): Promise<T> {
      const location = server.location;
      if (location.engine === 'sqlite') {
        const db = new Database(location.file);
        try {
          db.exec('BEGIN IMMEDIATE');
          return await during();
        } finally {
          db.exec('ROLLBACK');
          db.close();
        }
      }
      const client = new pg.Client({ connectionString: location.url });
      await client.connect();
      try {
        await client.query('BEGIN');
        await client.query(`LOCK TABLE ${location.schema!}.traces IN ACCESS EXCLUSIVE MODE`);
        return await during();
      } finally {
        await client.query('ROLLBACK').catch(() => {});
        await client.end();
      }
    }

    const assertUnavailable = (res: HttpResult) => {
      assert.equal(res.status, 503, res.text);
      assert.equal(res.body.error.code, 'store_unavailable');
      assert.match(res.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    };

    // Without a bounded lock wait the requests would hang for as long as the lock is held.
    it('answers 503 store_unavailable with Retry-After when the write cannot get its lock, stores nothing, and recovers', { timeout: 30_000 }, async () => {
      const single = traceBody(t.clientId);
      const batch = [traceBody(t.clientId), traceBody(t.clientId, { status: 'error' })];
      const before = await server.store.traces.count(t.clientId);
      const [one, many] = await whileLocked(() =>
        Promise.all([
          postTrace(server.url, t.pak, single),
          http(server.url, 'POST', '/panopticon/traces', { body: { traces: batch }, token: t.pak }),
        ]),
      );
      assertUnavailable(one);
      assertUnavailable(many);
      assert.equal(await server.store.traces.count(t.clientId), before, 'nothing was stored');
      const usage = await http(server.url, 'GET', `/api/apps/${t.clientId}/usage?since=2026-05-01&until=2026-05-31`, { token: t.token });
      assert.deepEqual(usage.body.rows, [], 'nor counted');

      // Resending the same event_ids once the lock is gone stores them: the 503 left no trace behind.
      assert.equal((await postTrace(server.url, t.pak, single)).status, 202);
      const again = await http(server.url, 'POST', '/panopticon/traces', { body: { traces: batch }, token: t.pak });
      assert.equal(again.status, 200);
      assert.equal(again.body.accepted, 2);
    });
  });
}
