/**
 * Fault: the PostgreSQL server under two nodes crashes (`pg_ctl stop -m immediate`) and comes
 * back, and, separately, the listener's backend stops answering without closing its connection
 * (SIGSTOP: what a cut network looks like). A cluster of the test's own, never the shared one.
 *
 * What must hold: during the outage clients see only documented answers (success, or 503
 * store_unavailable with Retry-After, or a refused connection); no acknowledged trace is lost;
 * right after the restart, and with no node restarted, a key revoked, a kill switch set and an
 * approval decided on node B hold on node A within a second, and B's traces reach A's live
 * stream within a second; each node LISTENs again (pg_stat_activity) and /healthz says so.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import crypto from 'node:crypto';
import type { StoreLocation } from '../../src/config.js';
import { createTenant, http, postTrace, rawSql, startServer, traceBody, type RunningServer, type Tenant, POSTGRES_ONLY } from '../support/harness.js';
import { createPgCluster, type PgCluster } from '../support/pg-cluster.js';
import { SseClient } from '../support/sse.js';
import { formatCounts, keepSending, type Traffic } from '../support/traffic.js';
import { sleep } from '../support/wait.js';


/** Repeats `attempt` until it yields true; the ms that took, failing after `ms`. */
async function within(ms: number, what: string, attempt: () => Promise<boolean>): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await attempt().catch(() => false)) return performance.now() - started;
    const spent = performance.now() - started;
    if (spent > ms) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

const check = (url: string, t: Tenant, tool: string) =>
  http(url, 'POST', '/panopticon/guard/check', { token: t.pak, body: { client_id: t.clientId, tool, scope: 'agent:write' } });

describe('PostgreSQL restarted under two nodes', POSTGRES_ONLY, () => {
  let cluster: PgCluster;
  let a: RunningServer;
  let b: RunningServer;
  let t: Tenant;

  before(async () => {
    cluster = await createPgCluster();
    const location: StoreLocation = { engine: 'postgres', url: cluster.url, schema: `pano_f_${crypto.randomBytes(4).toString('hex')}` };
    a = await startServer('postgres', { lockTimeoutMs: 1000 }, location);
    b = await startServer('postgres', { lockTimeoutMs: 1000 }, location);
    t = await createTenant(a.url);
  });
  after(async () => {
    await b?.close().catch(() => {});
    await a?.close().catch(() => {});
    cluster?.destroy();
  });

  it('after `pg_ctl stop -m immediate` and start, revoke, kill, approve and ingest cross nodes within 1 s; only 503s meanwhile; nothing acknowledged is lost', async (ctx) => {
    // What node A holds in its caches before the crash: another app's key, the (empty) policy.
    const other = await createTenant(a.url);
    assert.equal((await postTrace(a.url, other.pak, traceBody(other.clientId))).status, 202);
    assert.equal((await check(a.url, t, 'deploy')).body.decision, 'allow');
    const rule = await http(b.url, 'POST', `/api/apps/${t.clientId}/policies/rules`, { token: t.token, body: { name: 'refunds need a human', effect: 'require_approval', match: { tools: ['refund'] } } });
    assert.equal(rule.status, 201, rule.text);

    const trafficA = keepSending(a.url, t, 60_000);
    const trafficB = keepSending(b.url, t, 60_000);
    await sleep(300);
    const crashedAt = performance.now();
    cluster.stop('immediate');
    // While the database is down, operator reads and stream (re)connects are 503 store_unavailable
    // with Retry-After too, never 500: the token lookup, the policy, the kill switches, the streams.
    const outageAnswers: string[] = [];
    for (const path of ['policies', 'kill-switches', 'checks', 'traces', 'live', 'approvals/live']) {
      const r = await fetch(`${a.url}/api/apps/${t.clientId}/${path}`, { headers: { authorization: `Bearer ${t.token}`, accept: 'application/json, text/event-stream' } });
      const text = await r.text();
      outageAnswers.push(`${path}: ${r.status} ${r.headers.get('retry-after') !== null ? 'retry-after' : 'no retry-after'} ${text.includes('store_unavailable') ? 'store_unavailable' : text.slice(0, 80)}`);
    }
    const unavailable = (path: string) => `${path}: 503 retry-after store_unavailable`;
    assert.deepEqual(outageAnswers, ['policies', 'kill-switches', 'checks', 'traces', 'live', 'approvals/live'].map(unavailable));
    await sleep(Math.max(0, 1000 - (performance.now() - crashedAt)));
    cluster.start();
    const upAt = performance.now();

    // Right away, while each listener may still be reconnecting: a node that cannot hear the
    // others must read the store rather than trust its caches.
    const revoke = await within(3000, 'revoke on B takes on A', async () => {
      const r = await http(b.url, 'POST', `/api/apps/${other.clientId}/paks/revoke`, { token: other.token, body: {} });
      return r.status === 200;
    });
    const revokeSeenMs = await within(1000, 'A refuses the key revoked on B', async () => (await postTrace(a.url, other.pak, traceBody(other.clientId))).status === 401);

    assert.equal((await http(b.url, 'POST', `/api/apps/${t.clientId}/kill`, { token: t.token, body: { tool: 'deploy', reason: 'after the crash' } })).status, 200);
    const killSeenMs = await within(1000, 'A denies the tool killed on B', async () => (await check(a.url, t, 'deploy')).body.decision === 'deny');

    const opened = await check(a.url, t, 'refund');
    assert.equal(opened.body.decision, 'require_approval', opened.text);
    const approvalId = opened.body.approval.id as string;
    const polling = http(a.url, 'GET', `/panopticon/approvals/${approvalId}?wait=20`, { token: t.pak });
    await sleep(200);
    const decidedAt = performance.now();
    assert.equal((await http(b.url, 'POST', `/api/approvals/${approvalId}/approve`, { token: t.token })).status, 200);
    const answer = await polling;
    const approvalSeenMs = performance.now() - decidedAt;
    assert.equal(answer.body.status, 'approved', answer.text);
    assert.ok(approvalSeenMs < 1000, `A's long poll answered ${approvalSeenMs} ms after B's decision`);

    const sse = await SseClient.open(`${a.url}/api/apps/${t.clientId}/live`, { authorization: `Bearer ${t.token}` });
    await sse.until(() => sse.events.some((e) => e.event === 'ready'), 2000, 'ready');
    const crossing = traceBody(t.clientId, { tool: 'crossing' });
    assert.equal((await postTrace(b.url, t.pak, crossing)).status, 202);
    const liveStarted = performance.now();
    await sse.until(() => sse.traces().some((x) => x.event_id === crossing.event_id), 1000, "B's trace on A's live stream");
    const liveSeenMs = performance.now() - liveStarted;
    sse.close();

    // Each node listens again, as the database sees it and as /healthz reports it.
    const listenBackMs = await within(5000, 'both nodes LISTEN again', async () => (await cluster.backendPids('panopticon-listener')).length === 2);
    for (const node of [a, b]) {
      const health = await http(node.url, 'GET', '/healthz');
      assert.equal(health.status, 200, health.text);
      assert.equal(health.body.status, 'ok');
      assert.equal(health.body.signals.state, 'listening');
      assert.ok(health.body.signals.reconnects >= 1, health.text);
    }
    // The same still holds once listening: the kill switch and revoke are now served from caches.
    assert.equal((await check(a.url, t, 'deploy')).body.decision, 'deny');
    assert.equal((await postTrace(a.url, other.pak, traceBody(other.clientId))).status, 401);
    assert.equal((await http(b.url, 'POST', `/api/apps/${t.clientId}/revive`, { token: t.token, body: { tool: 'deploy' } })).status, 200);
    const reviveSeenMs = await within(1000, 'A allows the tool revived on B', async () => (await check(a.url, t, 'deploy')).body.decision === 'allow');

    await trafficA.stop();
    await trafficB.stop();
    const lost = await lostAcknowledged(a, [trafficA, trafficB]);
    const summary = {
      outage_ms: Math.round(upAt - crashedAt),
      node_a: { traces: formatCounts(trafficA.traces), checks: formatCounts(trafficA.checks) },
      node_b: { traces: formatCounts(trafficB.traces), checks: formatCounts(trafficB.checks) },
      acked: trafficA.acked.size + trafficB.acked.size,
      acked_lost: lost,
      revoke_took_ms: Math.round(revoke),
      revoke_seen_on_a_ms: Math.round(revokeSeenMs),
      kill_seen_on_a_ms: Math.round(killSeenMs),
      approval_seen_on_a_ms: Math.round(approvalSeenMs),
      live_crossed_ms: Math.round(liveSeenMs),
      listening_again_ms: Math.round(listenBackMs),
      revive_seen_on_a_ms: Math.round(reviveSeenMs),
    };
    ctx.diagnostic(JSON.stringify(summary));
    assert.deepEqual([...trafficA.unexpected, ...trafficB.unexpected], []);
    assert.equal(lost, 0);
    assert.ok((trafficA.traces['503'] ?? 0) + (trafficA.traces.network ?? 0) > 0, `the outage was seen: ${summary.node_a.traces}`);
  });

  it("a listener whose backend stops answering (no FATAL, no FIN) is replaced within seconds, and caches are bypassed meanwhile", async (ctx) => {
    const before = (await cluster.backendPids('panopticon-listener')).sort();
    assert.equal(before.length, 2);
    const healthOf = async (node: RunningServer) => (await http(node.url, 'GET', '/healthz')).body;
    const reconnectsBefore = [(await healthOf(a)).signals.reconnects, (await healthOf(b)).signals.reconnects];
    // Stop both listeners' backends: the sessions stay open but nothing comes back on them.
    for (const pid of before) process.kill(pid, 'SIGSTOP');
    const stoppedAt = performance.now();
    try {
      // A revoke on B must not wait for A to notice: A either hears it or does not trust its cache.
      const victim = await createTenant(b.url);
      assert.equal((await postTrace(a.url, victim.pak, traceBody(victim.clientId))).status, 202);
      const noticedMs = await within(6000, 'both nodes notice their listener is gone', async () =>
        (await healthOf(a)).signals.state === 'reconnecting' || (await healthOf(a)).signals.reconnects > reconnectsBefore[0]!);
      assert.equal((await http(b.url, 'POST', `/api/apps/${victim.clientId}/paks/revoke`, { token: victim.token, body: {} })).status, 200);
      const refusedMs = await within(1000, 'A refuses the key revoked on B', async () => (await postTrace(a.url, victim.pak, traceBody(victim.clientId))).status === 401);
      const backMs = await within(8000, 'new listeners on both nodes', async () => {
        const now = await cluster.backendPids('panopticon-listener');
        return now.filter((p) => !before.includes(p)).length === 2;
      });
      ctx.diagnostic(JSON.stringify({ noticed_ms: Math.round(noticedMs), refused_ms: Math.round(refusedMs), new_listeners_ms: Math.round(backMs), since_stopped_ms: Math.round(performance.now() - stoppedAt) }));
      assert.equal((await healthOf(a)).signals.state, 'listening');
      assert.ok((await healthOf(a)).signals.reconnects > reconnectsBefore[0]!);
      assert.ok((await healthOf(b)).signals.reconnects > reconnectsBefore[1]!);
    } finally {
      for (const pid of before) {
        try {
          process.kill(pid, 'SIGCONT');
          process.kill(pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
      }
    }
  });
});

describe('a node whose listener stays down (PostgreSQL itself up)', POSTGRES_ONLY, () => {
  let cluster: PgCluster;
  let a: RunningServer;
  let b: RunningServer;
  let t: Tenant;
  const RECONNECT_AFTER_MS = 6000;

  before(async () => {
    cluster = await createPgCluster();
    const location: StoreLocation = { engine: 'postgres', url: cluster.url, schema: `pano_d_${crypto.randomBytes(4).toString('hex')}` };
    // A's listener waits 6 s before reconnecting: a long, known window in which A hears nothing.
    a = await startServer('postgres', {}, location, {}, { listener: { minBackoffMs: RECONNECT_AFTER_MS * 2, maxBackoffMs: RECONNECT_AFTER_MS * 2 } });
    b = await startServer('postgres', {}, location);
    t = await createTenant(a.url);
  });
  after(async () => {
    await b?.close().catch(() => {});
    await a?.close().catch(() => {});
    cluster?.destroy();
  });

  it('serves nothing stale from its caches: revoke, kill, approval and live traces from node B hold on A within 1 s', async (ctx) => {
    const other = await createTenant(b.url);
    const rule = await http(b.url, 'POST', `/api/apps/${t.clientId}/policies/rules`, { token: t.token, body: { name: 'refunds need a human', effect: 'require_approval', match: { tools: ['refund'] } } });
    assert.equal(rule.status, 201, rule.text);
    // Warm A's caches: the key, the policy.
    assert.equal((await postTrace(a.url, other.pak, traceBody(other.clientId))).status, 202);
    assert.equal((await check(a.url, t, 'deploy')).body.decision, 'allow');
    const sse = await SseClient.open(`${a.url}/api/apps/${t.clientId}/live`, { authorization: `Bearer ${t.token}` });
    await sse.until(() => sse.events.some((e) => e.event === 'ready'), 2000, 'ready');

    const pidsBefore = await cluster.backendPids('panopticon-listener');
    const sql = await rawSql({ engine: 'postgres', url: cluster.url, schema: 'public' });
    // Both listeners lose their session; B's comes back at once, A's only after its long backoff.
    await sql.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'panopticon-listener'");
    await sql.close();
    const lostAt = performance.now();
    await within(1000, 'A reports its listener down', async () => (await http(a.url, 'GET', '/healthz')).body.signals.state === 'reconnecting');
    const health = await http(a.url, 'GET', '/healthz');
    assert.equal(health.status, 200);
    assert.equal(health.body.status, 'degraded');
    assert.ok(health.body.signals.last_error, health.text);
    // What A reads while deaf is not cached: used once more now, the key and the policy must still
    // be read afresh after B changes them.
    assert.equal((await postTrace(a.url, other.pak, traceBody(other.clientId))).status, 202);
    assert.equal((await check(a.url, t, 'deploy')).body.decision, 'allow');

    assert.equal((await http(b.url, 'POST', `/api/apps/${other.clientId}/paks/revoke`, { token: other.token, body: {} })).status, 200);
    const revokeMs = await within(1000, 'deaf A refuses the key revoked on B', async () => (await postTrace(a.url, other.pak, traceBody(other.clientId))).status === 401);

    assert.equal((await http(b.url, 'POST', `/api/apps/${t.clientId}/kill`, { token: t.token, body: { tool: 'deploy', reason: 'while A is deaf' } })).status, 200);
    const killMs = await within(1000, 'deaf A denies the tool killed on B', async () => (await check(a.url, t, 'deploy')).body.decision === 'deny');

    const opened = await check(a.url, t, 'refund');
    assert.equal(opened.body.decision, 'require_approval', opened.text);
    const polling = http(a.url, 'GET', `/panopticon/approvals/${opened.body.approval.id}?wait=20`, { token: t.pak });
    await sleep(200);
    const decidedAt = performance.now();
    assert.equal((await http(b.url, 'POST', `/api/approvals/${opened.body.approval.id}/approve`, { token: t.token })).status, 200);
    assert.equal((await polling).body.status, 'approved');
    const approvalMs = performance.now() - decidedAt;
    assert.ok(approvalMs < 1000, `A's long poll answered ${approvalMs} ms after B's decision`);

    const crossing = traceBody(t.clientId, { tool: 'crossing' });
    assert.equal((await postTrace(b.url, t.pak, crossing)).status, 202);
    const liveStarted = performance.now();
    await sse.until(() => sse.traces().some((x) => x.event_id === crossing.event_id), 1000, "B's trace on deaf A's live stream");
    const liveMs = performance.now() - liveStarted;
    assert.ok(performance.now() - lostAt < RECONNECT_AFTER_MS, 'all of it happened while A was still deaf');
    assert.equal((await http(a.url, 'GET', '/healthz')).body.signals.state, 'reconnecting');

    // And A comes back by itself, listening again.
    await within(RECONNECT_AFTER_MS * 2 + 2000, 'A listens again', async () => (await http(a.url, 'GET', '/healthz')).body.signals.state === 'listening');
    const pidsAfter = await cluster.backendPids('panopticon-listener');
    assert.equal(pidsAfter.filter((p) => !pidsBefore.includes(p)).length, 2);
    assert.equal((await check(a.url, t, 'deploy')).body.decision, 'deny');
    sse.close();
    ctx.diagnostic(JSON.stringify({ revoke_ms: Math.round(revokeMs), kill_ms: Math.round(killMs), approval_ms: Math.round(approvalMs), live_ms: Math.round(liveMs) }));
  });
});

async function lostAcknowledged(node: RunningServer, traffic: Traffic[]): Promise<number> {
  const sql = await rawSql(node.location);
  try {
    const acked = traffic.flatMap((x) => [...x.acked]);
    const rows = await sql.query('SELECT event_id FROM traces WHERE event_id = ANY($1)', [acked]);
    const stored = new Set(rows.map((r) => r.event_id as string));
    return acked.filter((id) => !stored.has(id)).length;
  } finally {
    await sql.close();
  }
}
