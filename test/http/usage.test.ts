/**
 * Daily usage over HTTP on both engines, after a concurrent workload of single and batch sends with
 * duplicates, several apps, every status, and timestamps with offsets near midnight: the counters
 * equal the stored rows, per UTC day, and a duplicate never counts.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createTenant, ENGINES, http, postTrace, startServer, traceBody, type RunningServer, type Tenant } from '../support/harness.js';

/** started_at as sent, and the UTC day it belongs to (worked out by hand, not by the code under test). */
const TIMES: Array<[startedAt: string, utcDay: string]> = [
  ['2026-04-30T23:59:59.999999Z', '2026-04-30'],
  ['2026-05-01T08:59:59+09:00', '2026-04-30'],
  ['2026-05-01T09:00:00+09:00', '2026-05-01'],
  ['2026-05-09T23:59:59.999Z', '2026-05-09'],
  ['2026-05-10T00:00:00Z', '2026-05-10'],
  ['2026-05-10T08:59:59.999+09:00', '2026-05-09'],
  ['2026-05-10T23:30:00-02:00', '2026-05-11'],
  ['2026-05-12T00:14:00+00:15', '2026-05-11'],
  ['2026-05-31T22:59:59-01:00', '2026-05-31'],
  ['2026-05-31T23:00:00-01:00', '2026-06-01'],
];
const STATUSES = ['ok', 'error', 'timeout', 'denied'] as const;
const SINCE = '2026-05-01';
const UNTIL = '2026-05-31';

interface Counts {
  traces: number;
  errors: number;
}

function expectedRows(events: Array<Record<string, unknown>>) {
  const byDay = new Map<string, Counts>();
  for (const e of events) {
    const day = TIMES.find(([t]) => t === e.started_at)![1];
    if (day < SINCE || day > UNTIL) continue;
    const c = byDay.get(day) ?? { traces: 0, errors: 0 };
    c.traces++;
    if (e.status === 'error' || e.status === 'timeout') c.errors++;
    byDay.set(day, c);
  }
  return [...byDay.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([date, c]) => ({ date, ...c, hitl_requests: 0, kill_switch: 0 }));
}

for (const engine of ENGINES) {
  describe(`usage [${engine}]`, () => {
    let server: RunningServer;
    let alice: Tenant;
    let bob: Tenant;
    const apps: Array<{ clientId: string; pak: string; token: string; events: Array<Record<string, unknown>> }> = [];

    before(async () => {
      server = await startServer(engine);
      alice = await createTenant(server.url);
      bob = await createTenant(server.url);
      // A second app of Alice's, so her apps' counters must stay apart too.
      const second = await http(server.url, 'POST', '/api/apps', { token: alice.token, body: { name: 'second' } });
      await http(server.url, 'PATCH', `/api/apps/${second.body.client_id}`, { token: alice.token, body: { panopticon_enabled: true } });
      const pak = await http(server.url, 'POST', `/api/apps/${second.body.client_id}/paks`, { token: alice.token });
      for (const [clientId, key, token] of [[alice.clientId, alice.pak, alice.token], [second.body.client_id, pak.body.pak, alice.token], [bob.clientId, bob.pak, bob.token]] as const) {
        const events = Array.from({ length: 120 }, (_, i) =>
          traceBody(clientId, { started_at: TIMES[i % TIMES.length]![0], status: STATUSES[Math.floor(i / TIMES.length) % STATUSES.length] }),
        );
        apps.push({ clientId, pak: key, token, events });
      }
    });
    after(() => server.close());

    it('counts each stored trace once per UTC day, errors being error and timeout, whatever the duplicates', async () => {
      // Every event goes out once alone or in a batch, and about a third again (identical) in
      // another job, so duplicates race their originals across both endpoints and inside batches.
      type Job = { pak: string; traces: Array<Record<string, unknown>> };
      const jobs: Job[] = [];
      for (const app of apps) {
        const sends = [...app.events, ...app.events.filter((_, i) => i % 3 === 0)];
        sends.sort(() => Math.random() - 0.5);
        for (let i = 0; i < sends.length;) {
          const size = i % 2 === 0 ? 1 : 1 + Math.floor(Math.random() * 20);
          jobs.push({ pak: app.pak, traces: sends.slice(i, i + size) });
          i += size;
        }
      }
      jobs.sort(() => Math.random() - 0.5);
      const accepted = new Map<string, number>();
      const worker = async () => {
        for (let job = jobs.pop(); job !== undefined; job = jobs.pop()) {
          const statuses: string[] = [];
          if (job.traces.length === 1) {
            const res = await postTrace(server.url, job.pak, job.traces[0]);
            assert.ok(res.status === 202 || res.status === 200, res.text);
            statuses.push(res.body.status);
          } else {
            const res = await http(server.url, 'POST', '/panopticon/traces', { body: { traces: job.traces }, token: job.pak });
            assert.equal(res.status, 200, res.text);
            statuses.push(...res.body.results.map((r: { status: string }) => r.status));
          }
          statuses.forEach((s, k) => {
            if (s === 'accepted') {
              const id = job.traces[k]!.event_id as string;
              accepted.set(id, (accepted.get(id) ?? 0) + 1);
            }
          });
        }
      };
      await Promise.all(Array.from({ length: 12 }, worker));

      // Later resends with another day and status change nothing: the first stored version stands.
      for (const app of apps) {
        for (const e of app.events.slice(0, 10)) {
          const res = await postTrace(server.url, app.pak, { ...e, started_at: '2026-05-20T12:00:00Z', status: 'error' });
          assert.equal(res.status, 200);
        }
      }

      for (const app of apps) {
        for (const e of app.events) assert.equal(accepted.get(e.event_id as string), 1, 'exactly one 202 per event_id');
        const res = await http(server.url, 'GET', `/api/apps/${app.clientId}/usage?since=${SINCE}&until=${UNTIL}`, { token: app.token });
        assert.equal(res.status, 200);
        const expected = expectedRows(app.events);
        assert.deepEqual(res.body.rows, expected);
        assert.ok(expected.length >= 4, 'several days');

        // The same, from the raw rows: per day, and in total.
        const raw = await server.store.traces.list({ clientId: app.clientId, limit: 100_000 });
        assert.equal(raw.length, app.events.length, 'one row per distinct event_id');
        const inRange = raw.filter((r) => r.day >= SINCE && r.day <= UNTIL);
        for (const row of res.body.rows as Array<{ date: string; traces: number; errors: number }>) {
          const ofDay = inRange.filter((r) => r.day === row.date);
          assert.equal(row.traces, ofDay.length, row.date);
          assert.equal(row.errors, ofDay.filter((r) => r.status === 'error' || r.status === 'timeout').length, row.date);
        }
        assert.deepEqual(res.body.totals, {
          traces: inRange.length,
          errors: inRange.filter((r) => r.status === 'error' || r.status === 'timeout').length,
          hitl_requests: 0,
          kill_switch: 0,
        });
      }
    });

    it('includes since and until themselves and nothing outside them', async () => {
      const app = apps[0]!;
      const one = await http(server.url, 'GET', `/api/apps/${app.clientId}/usage?since=2026-04-30&until=2026-04-30`, { token: app.token });
      assert.deepEqual(one.body.rows.map((r: { date: string }) => r.date), ['2026-04-30']);
      const edge = await http(server.url, 'GET', `/api/apps/${app.clientId}/usage?since=2026-05-31&until=2026-06-01`, { token: app.token });
      assert.deepEqual(edge.body.rows.map((r: { date: string }) => r.date), ['2026-05-31', '2026-06-01']);
    });

    it("answers 404 app_not_found when another account asks for an app's usage", async () => {
      const res = await http(server.url, 'GET', `/api/apps/${alice.clientId}/usage?since=${SINCE}&until=${UNTIL}`, { token: bob.token });
      assert.equal(res.status, 404);
      assert.equal(res.body.error.code, 'app_not_found');
      assert.ok(!res.text.includes('"rows"'));
      const unknown = await http(server.url, 'GET', `/api/apps/logi_${crypto.randomBytes(6).toString('hex')}/usage`, { token: bob.token });
      assert.equal(unknown.status, 404, 'the same answer as for an app that does not exist');
    });
  });
}
