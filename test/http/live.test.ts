/**
 * Live Trace over SSE, on both engines and across two nodes of one PostgreSQL schema: traces
 * arrive within a second of their 202, filters apply, a reconnect with Last-Event-ID (or ?after)
 * gets exactly what was missed, other accounts get 404, and shutdown ends open streams. The hub's
 * out-of-order handling is tested against a scripted store, where we decide what becomes visible.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTenant, ENGINES, http, postTrace, startServer, traceBody, type RunningServer, type Tenant, POSTGRES_ONLY } from '../support/harness.js';
import type { StoredTrace, StoreSignal } from '../../src/store/types/store.js';
import { LiveHub } from '../../src/live/hub.js';
import { SseClient } from '../support/sse.js';

const liveUrl = (server: RunningServer, clientId: string, query = '') => `${server.url}/api/apps/${clientId}/live${query}`;
const bearer = (t: Tenant) => ({ authorization: `Bearer ${t.token}` });

for (const engine of ENGINES) {
  describe(`live trace stream [${engine}]`, () => {
    let server: RunningServer;
    let a: Tenant;
    let b: Tenant;
    const clients: SseClient[] = [];
    const open = async (url: string, headers: Record<string, string>) => {
      const c = await SseClient.open(url, headers);
      clients.push(c);
      return c;
    };

    before(async () => {
      server = await startServer(engine);
      a = await createTenant(server.url);
      b = await createTenant(server.url);
    });
    after(async () => {
      for (const c of clients) c.close();
      await server?.close();
    });

    it('sends each accepted trace within a second of its 202, as an event whose id is its seq', async () => {
      const sse = await open(liveUrl(server, a.clientId), bearer(a));
      assert.equal(sse.status, 200);
      assert.match(sse.contentType, /^text\/event-stream/);
      await sse.until(() => sse.events.some((e) => e.event === 'ready'), 2000, 'ready');
      for (let i = 0; i < 3; i++) {
        const body = traceBody(a.clientId, { tool: `step${i}` });
        const res = await postTrace(server.url, a.pak, body);
        assert.equal(res.status, 202);
        const t0 = Date.now();
        await sse.until(() => sse.traces().some((t) => t.event_id === body.event_id), 1000, `trace ${i} within 1 s`);
        assert.ok(Date.now() - t0 <= 1000);
      }
      const traces = sse.traces();
      assert.deepEqual(traces.map((t) => t.tool), ['step0', 'step1', 'step2']);
      const ids = sse.events.filter((e) => e.event === 'trace').map((e) => Number(e.id));
      assert.deepEqual(ids, traces.map((t) => t.seq));
      assert.ok(ids[0]! < ids[1]! && ids[1]! < ids[2]!);
      // A duplicate is not a new trace.
      const dup = await postTrace(server.url, a.pak, { ...traceBody(a.clientId), event_id: traces[0]!.event_id });
      assert.equal(dup.status, 200);
      const other = traceBody(a.clientId, { tool: 'after-dup' });
      await postTrace(server.url, a.pak, other);
      await sse.until(() => sse.traces().some((t) => t.event_id === other.event_id), 1000, 'trace after the duplicate');
      assert.equal(sse.traces().length, 4);
      sse.close();
    });

    it('filters by tool, status and user_sub', async () => {
      const byTool = await open(liveUrl(server, a.clientId, '?tool=wanted'), bearer(a));
      const byStatus = await open(liveUrl(server, a.clientId, '?status=error'), bearer(a));
      const byUser = await open(liveUrl(server, a.clientId, '?user_sub=alice&tool=wanted'), bearer(a));
      for (const c of [byTool, byStatus, byUser]) await c.until(() => c.events.some((e) => e.event === 'ready'), 2000, 'ready');
      const sent = [
        traceBody(a.clientId, { tool: 'wanted', user_sub: 'alice' }),
        traceBody(a.clientId, { tool: 'other', status: 'error' }),
        traceBody(a.clientId, { tool: 'wanted', user_sub: 'bob', status: 'error' }),
        traceBody(a.clientId, { tool: 'last' }),
      ];
      const res = await http(server.url, 'POST', '/panopticon/traces', { token: a.pak, body: { traces: sent } });
      assert.equal(res.status, 200);
      const last = traceBody(a.clientId, { tool: 'wanted', status: 'error', user_sub: 'alice' });
      await postTrace(server.url, a.pak, last);
      for (const c of [byTool, byStatus, byUser]) await c.until(() => c.traces().some((t) => t.event_id === last.event_id), 2000, 'the last trace');
      assert.deepEqual(byTool.traces().map((t) => t.event_id), [sent[0]!.event_id, sent[2]!.event_id, last.event_id].sort(bySeqOf(byTool)));
      assert.deepEqual(new Set(byStatus.traces().map((t) => t.event_id)), new Set([sent[1]!.event_id, sent[2]!.event_id, last.event_id]));
      assert.deepEqual(new Set(byUser.traces().map((t) => t.event_id)), new Set([sent[0]!.event_id, last.event_id]));
      const bad = await http(server.url, 'GET', `/api/apps/${a.clientId}/live?status=maybe`, { token: a.token });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'validation_failed');
    });

    it('a reconnect with Last-Event-ID gets exactly the traces it missed: no gap, no duplicate', async () => {
      const first = await open(liveUrl(server, a.clientId), bearer(a));
      await first.until(() => first.events.some((e) => e.event === 'ready'), 2000, 'ready');
      const seen1 = [traceBody(a.clientId), traceBody(a.clientId)];
      for (const t of seen1) assert.equal((await postTrace(server.url, a.pak, t)).status, 202);
      await first.until(() => first.traces().length === 2, 2000, 'two traces');
      const lastId = first.lastId()!;
      first.close();
      await first.until(() => first.ended, 2000, 'the stream to end');

      // Sent while nobody listens: in one batch and one by one.
      const missed = [traceBody(a.clientId), traceBody(a.clientId), traceBody(a.clientId)];
      assert.equal((await http(server.url, 'POST', '/panopticon/traces', { token: a.pak, body: { traces: missed.slice(0, 2) } })).status, 200);
      assert.equal((await postTrace(server.url, a.pak, missed[2]!)).status, 202);

      const second = await open(liveUrl(server, a.clientId), { ...bearer(a), 'last-event-id': lastId });
      await second.until(() => second.traces().length >= 3, 2000, 'the missed traces');
      const live = traceBody(a.clientId);
      await postTrace(server.url, a.pak, live);
      await second.until(() => second.traces().some((t) => t.event_id === live.event_id), 1000, 'a new trace after the resume');
      // Give a duplicate time to show up, if one were coming.
      await new Promise((r) => setTimeout(r, 300));
      // The two of one batch commit together, in an order of the engine's choosing (PostgreSQL sorts by event_id).
      const inOrder = (got: string[]) => [...got.slice(0, 2).sort(), ...got.slice(2)];
      const expected = inOrder([...missed, live].map((t) => t.event_id as string));
      assert.deepEqual(inOrder(second.traces().map((t) => t.event_id)), expected);
      assert.equal(second.events.find((e) => e.event === 'ready')?.id, lastId);

      // ?after replays history the same way, and the header wins over it.
      const replay = await open(liveUrl(server, a.clientId, `?after=${lastId}`), bearer(a));
      await replay.until(() => replay.traces().length === 4, 2000, 'replay by ?after');
      assert.deepEqual(inOrder(replay.traces().map((t) => t.event_id)), expected);
      const both = await open(liveUrl(server, a.clientId, '?after=0'), { ...bearer(a), 'last-event-id': String(second.traces()[2]!.seq) });
      await both.until(() => both.traces().length === 1, 2000, 'replay by Last-Event-ID');
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(both.traces().map((t) => t.event_id), [live.event_id]);
      const badHeader = await http(server.url, 'GET', `/api/apps/${a.clientId}/live`, { token: a.token, headers: { 'last-event-id': 'yesterday' } });
      assert.equal(badHeader.status, 400);
    });

    it("another account's app is a 404, and no credential is a 401", async () => {
      const foreign = await http(server.url, 'GET', `/api/apps/${a.clientId}/live`, { token: b.token });
      assert.equal(foreign.status, 404);
      assert.equal(foreign.body.error.code, 'app_not_found');
      const anonymous = await http(server.url, 'GET', `/api/apps/${a.clientId}/live`);
      assert.equal(anonymous.status, 401);
      // B's own stream never sees A's traces.
      const mine = await open(liveUrl(server, b.clientId, '?after=0'), bearer(b));
      const t = traceBody(a.clientId);
      await postTrace(server.url, a.pak, t);
      const own = traceBody(b.clientId);
      await postTrace(server.url, b.pak, own);
      await mine.until(() => mine.traces().some((x) => x.event_id === own.event_id), 2000, "B's own trace");
      assert.deepEqual(mine.traces().map((x) => x.event_id), [own.event_id]);
    });

    it('works with the session cookie of the console', async () => {
      const email = `live-${Date.now()}@example.com`;
      const signup = await http(server.url, 'POST', '/api/auth/signup', { body: { email, password: 'correct horse battery staple' } });
      const cookie = signup.headers.get('set-cookie')!.split(';')[0]!;
      const created = await http(server.url, 'POST', '/api/apps', { body: { name: 'cookie app' }, headers: { cookie } });
      assert.equal(created.status, 201);
      const sse = await open(liveUrl(server, created.body.client_id), { cookie });
      assert.equal(sse.status, 200);
    });

    it('shutdown ends open streams instead of waiting for the browsers', async () => {
      const own = await startServer(engine);
      try {
        const t = await createTenant(own.url);
        const sse = await SseClient.open(liveUrl(own, t.clientId), bearer(t));
        await sse.until(() => sse.events.some((e) => e.event === 'ready'), 2000, 'ready');
        assert.equal(own.services.live.size, 1);
        const t0 = Date.now();
        await own.close();
        assert.ok(Date.now() - t0 < 5000, 'close() took too long');
        await sse.until(() => sse.ended, 2000, 'the stream to end');
      } catch (err) {
        await own.close().catch(() => {});
        throw err;
      }
    });
  });
}

function bySeqOf(c: SseClient) {
  const seq = new Map(c.traces().map((t) => [t.event_id, t.seq]));
  return (x: unknown, y: unknown) => (seq.get(x as string) ?? 0) - (seq.get(y as string) ?? 0);
}

describe('live trace across two nodes [postgres]', POSTGRES_ONLY, () => {
  let nodeA: RunningServer;
  let nodeB: RunningServer;
  let tenant: Tenant;

  before(async () => {
    nodeA = await startServer('postgres');
    nodeB = await startServer('postgres', {}, nodeA.location);
    tenant = await createTenant(nodeA.url);
  });
  after(async () => {
    await nodeB?.close();
    await nodeA?.close();
  });

  it('a trace ingested on node A reaches a stream on node B within a second; a resume on A has no gap', async () => {
    const onB = await SseClient.open(liveUrl(nodeB, tenant.clientId), bearer(tenant));
    try {
      await onB.until(() => onB.events.some((e) => e.event === 'ready'), 2000, 'ready');
      const sent = [];
      for (let i = 0; i < 3; i++) {
        const t = traceBody(tenant.clientId, { tool: `a${i}` });
        sent.push(t);
        assert.equal((await postTrace(nodeA.url, tenant.pak, t)).status, 202);
        const t0 = Date.now();
        await onB.until(() => onB.traces().some((x) => x.event_id === t.event_id), 1000, `trace ${i} on node B`);
        assert.ok(Date.now() - t0 <= 1000);
      }
      // Concurrent ingestion on both nodes: node B's stream gets every trace once.
      const burst = Array.from({ length: 40 }, (_, i) => traceBody(tenant.clientId, { tool: `burst${i}` }));
      await Promise.all(burst.map((t, i) => postTrace(i % 2 ? nodeA.url : nodeB.url, tenant.pak, t)));
      await onB.until(() => onB.traces().length === 43, 3000, 'every burst trace on node B');
      const ids = onB.traces().map((t) => t.event_id);
      assert.equal(new Set(ids).size, ids.length);
      // Resuming on the other node continues where node B left off.
      const resumed = await SseClient.open(liveUrl(nodeA, tenant.clientId), { ...bearer(tenant), 'last-event-id': onB.lastId()! });
      const next = traceBody(tenant.clientId);
      await postTrace(nodeB.url, tenant.pak, next);
      await resumed.until(() => resumed.traces().length >= 1, 2000, 'the next trace on node A');
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(resumed.traces().map((t) => t.event_id), [next.event_id]);
      resumed.close();
    } finally {
      onB.close();
    }
  });
});

/** A store whose visible traces the test decides, to replay commits landing out of seq order. */
class ScriptedStore {
  visible: StoredTrace[] = [];
  listeners = new Set<(s: StoreSignal) => void>();
  subscribe(l: (s: StoreSignal) => void) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  traces = {
    after: async (_clientId: string, afterSeq: number, limit: number) => this.visible.filter((t) => t.seq > afterSeq).sort((x, y) => x.seq - y.seq).slice(0, limit),
    maxSeq: async () => Math.max(0, ...this.visible.map((t) => t.seq)),
  };
  commit(...seqs: number[]) {
    for (const seq of seqs) this.visible.push({ seq, clientId: 'logi_000000000001', eventId: `e${seq}`, tool: 't', scopeUsed: 's', status: 'ok', startedAtUs: 0, day: '2026-01-01', durationMs: 1, userSub: null, errorMessage: null, sessionId: null, attributes: null, keyId: 'pak_x', receivedAt: 0, checkId: null });
    for (const l of this.listeners) l({ kind: 'traces_committed', clientIds: ['logi_000000000001'] });
  }
}

describe('live hub: commits visible out of seq order', () => {
  async function scenario(overlapMs: number) {
    const store = new ScriptedStore();
    let clock = 1_000_000;
    const hub = new LiveHub(store, { overlapMs, coalesceMs: 0, pageSize: 2, now: () => clock });
    const got: number[] = [];
    const settle = () => new Promise((r) => setTimeout(r, 20));
    store.commit(1, 2);
    await hub.subscribe('logi_000000000001', 0, {}, { send: (rows) => got.push(...rows.map((r) => r.seq)), fail: (err) => assert.fail(String(err)) });
    await settle();
    // Two commits in flight: 5 becomes visible first, 3 and 4 (taken earlier) a moment later.
    store.commit(5);
    await settle();
    clock += 100;
    store.commit(3, 4);
    await settle();
    clock += 100;
    store.commit(6);
    await settle();
    // Long after: the window has moved on, the sets are pruned, and a new commit is still delivered once.
    clock += overlapMs + 10_000;
    store.commit(7);
    await settle();
    store.commit();
    await settle();
    hub.close();
    return got;
  }

  it('with an overlap window every row is delivered exactly once, late ones included', async () => {
    assert.deepEqual(await scenario(5000), [1, 2, 5, 3, 4, 6, 7]);
  });

  it('without one the late rows would be lost (what the window is for)', async () => {
    assert.deepEqual(await scenario(0), [1, 2, 5, 6, 7]);
  });
});
