/**
 * The SDK against a real server (and, to provoke failures, a real loopback proxy in front of it):
 * batching on size and interval; retries that honour 503/429 Retry-After; a lost acknowledgement
 * resent and stored once; overflow dropping the oldest, counted; the on-disk spool surviving a
 * killed process; flush/shutdown deadlines; HMAC signing; the guard check, approvals, and the fail
 * modes when the server cannot be reached.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createPanopticon, uuidv7, type Panopticon, type PanopticonError, type PanopticonOptions } from '@panopticon/sdk';
import { createTenant, ENGINES, http, REPO_ROOT, startServer, tempDir, type RunningServer, type Tenant } from '../support/harness.js';
import { closedPort, eventually, LoopbackProxy, storedRows } from '../support/sdk.js';
import { sleep } from '../support/wait.js';

const trace = (p: Panopticon, i: number, extra: Record<string, unknown> = {}) =>
  p.trace({ tool: `tool_${i}`, scope: 'agent:read', status: 'ok', durationMs: i, ...extra });

async function usageTraces(server: RunningServer, t: Tenant): Promise<number> {
  const today = new Date().toISOString().slice(0, 10);
  const res = await http(server.url, 'GET', `/api/apps/${t.clientId}/usage?since=${today}&until=${today}`, { token: t.token });
  return res.body.totals.traces as number;
}

describe('SDK event ids', () => {
  const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

  it('are UUIDv7 carrying the millisecond they were made in', () => {
    const at = Date.UTC(2026, 10, 25, 12, 0, 0, 123);
    const id = uuidv7(at + 1_000_000);
    assert.match(id, V7);
    assert.equal(parseInt(id.replace(/-/g, '').slice(0, 12), 16), at + 1_000_000);
  });

  it('sort in the order they were made, within one millisecond and past its 4,096-id counter', () => {
    const at = Date.now() + 10_000_000;
    const ids = Array.from({ length: 10_000 }, () => uuidv7(at));
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids) assert.match(id, V7);
    assert.deepEqual([...ids].sort(), ids);
    // A clock that steps back does not make an id sort before the previous one.
    const later = uuidv7(at - 5_000);
    assert.ok(later > ids[ids.length - 1]!);
  });

  it('are what trace() fills in when no eventId is given', async () => {
    const p = createPanopticon({ url: `http://127.0.0.1:${await closedPort()}`, clientId: 'logi_0123456789ab', pak: 'pano_pak_x', flushIntervalMs: 60_000, onError: () => {} });
    const first = trace(p, 1);
    const second = trace(p, 2);
    assert.match(first!, V7);
    assert.ok(second! > first!);
    // Nothing listens there: shutdown gives up after its deadline (its timers do not hold the loop).
    await Promise.race([p.shutdown({ timeoutMs: 1 }), sleep(100)]);
  });
});

for (const engine of ENGINES) {
  describe(`SDK trace delivery [${engine}]`, () => {
    let server: RunningServer;
    let proxy: LoopbackProxy;
    const clients: Panopticon[] = [];
    const open = (t: Tenant, o: Partial<PanopticonOptions> = {}) => {
      const p = createPanopticon({ url: proxy.url, pak: t.pak, clientId: t.clientId, retryInitialDelayMs: 50, retryMaxDelayMs: 400, ...o });
      clients.push(p);
      return p;
    };

    before(async () => {
      server = await startServer(engine);
      proxy = await new LoopbackProxy(server.url).start();
    });
    after(async () => {
      for (const c of clients) await c.shutdown({ timeoutMs: 100 });
      await proxy.close();
      await server.close();
    });

    it('batches on size, then on the interval, and every trace is stored once', async () => {
      const t = await createTenant(server.url);
      proxy.seen.length = 0;
      const p = open(t, { batchSize: 10, flushIntervalMs: 300 });
      const ids = Array.from({ length: 25 }, (_, i) => trace(p, i));
      assert.ok(ids.every((id) => typeof id === 'string' && /^[0-9a-f-]{36}$/.test(id)), 'trace() returns the event_id it filled in');
      // No flush(): 20 leave because the buffer reached batchSize, the last 5 on the interval.
      await eventually('25 sent', () => p.stats().sent === 25);
      const sizes = proxy.batchSizes();
      assert.equal(sizes.reduce((a, b) => a + b, 0), 25);
      assert.ok(sizes.every((n) => n <= 10), `batches of at most 10: ${sizes}`);
      assert.ok(sizes.length <= 4, `25 traces in a few batches, not one request each: ${sizes}`);
      const rows = await storedRows(server, t.clientId);
      assert.deepEqual([...rows.keys()].sort(), [...ids].sort());
      assert.equal(await usageTraces(server, t), 25);
      assert.deepEqual(p.stats(), { buffered: 0, sent: 25, duplicate: 0, retried: 0, dropped: 0, droppedOverflow: 0, droppedRejected: 0, droppedShutdown: 0, failedRequests: 0 });
    });

    it('retries after 503 and 429, waiting at least Retry-After, and loses nothing', async () => {
      const t = await createTenant(server.url);
      const errors: PanopticonError[] = [];
      const p = open(t, { batchSize: 100, flushIntervalMs: 60_000, onError: (e) => errors.push(e) });
      proxy.seen.length = 0;
      proxy.mode = { kind: 'status', status: 503, retryAfter: '1', times: 1 };
      const ids = [0, 1, 2, 3, 4].map((i) => trace(p, i));
      const flushed = p.flush({ timeoutMs: 30_000 });
      await eventually('the 503', () => proxy.seen.length >= 1);
      proxy.mode = { kind: 'status', status: 429, retryAfter: '1', times: 1 };
      assert.equal(await flushed, true);
      proxy.mode = { kind: 'forward' };
      const attempts = proxy.seen.filter((r) => r.url === '/panopticon/traces');
      assert.deepEqual(attempts.map((r) => r.answered), [503, 429, 200]);
      // Lower bounds only: a slow machine can only make the gaps longer.
      assert.ok(attempts[1]!.at - attempts[0]!.at >= 950, `waited ${attempts[1]!.at - attempts[0]!.at} ms after the 503's Retry-After: 1`);
      assert.ok(attempts[2]!.at - attempts[1]!.at >= 950, `waited ${attempts[2]!.at - attempts[1]!.at} ms after the 429's Retry-After: 1`);
      const s = p.stats();
      assert.equal(s.sent, 5);
      assert.equal(s.retried, 10, 'five traces, each sent again twice');
      assert.equal(s.failedRequests, 2);
      assert.equal(s.dropped, 0);
      assert.deepEqual(errors.map((e) => e.status), [503, 429]);
      assert.deepEqual([...(await storedRows(server, t.clientId)).keys()].sort(), [...ids].sort());
    });

    it('resends a batch whose acknowledgement was lost; the server stores it once', async () => {
      const t = await createTenant(server.url);
      const p = open(t, { flushIntervalMs: 60_000 });
      proxy.mode = { kind: 'lose-ack', times: 1 };
      const ids = [0, 1, 2].map((i) => trace(p, i));
      assert.equal(await p.flush({ timeoutMs: 20_000 }), true);
      proxy.mode = { kind: 'forward' };
      const s = p.stats();
      assert.equal(s.sent, 3);
      assert.equal(s.duplicate, 3, 'the resend found all three already stored');
      assert.equal(s.retried, 3);
      const rows = await storedRows(server, t.clientId);
      assert.deepEqual([...rows.keys()].sort(), [...ids].sort());
      assert.ok([...rows.values()].every((n) => n === 1));
      assert.equal(await usageTraces(server, t), 3, 'usage counted each trace once');
    });
  });
}

describe('SDK buffer, spool and shutdown [sqlite]', () => {
  let server: RunningServer;
  let proxy: LoopbackProxy;
  let t: Tenant;
  const dirs: string[] = [];
  const spoolFile = () => {
    const d = tempDir('spool');
    dirs.push(d);
    return path.join(d, 'spool', 'traces.jsonl');
  };

  before(async () => {
    server = await startServer('sqlite');
    proxy = await new LoopbackProxy(server.url).start();
  });
  after(async () => {
    await proxy.close();
    await server.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('a full buffer drops the oldest traces, counted and reported; the newest are delivered', async () => {
    t = await createTenant(server.url);
    proxy.mode = { kind: 'refuse' };
    const errors: PanopticonError[] = [];
    const p = createPanopticon({ url: proxy.url, pak: t.pak, clientId: t.clientId, maxBufferSize: 5, batchSize: 10, flushIntervalMs: 60_000, retryInitialDelayMs: 50, retryMaxDelayMs: 200, onError: (e) => errors.push(e) });
    const ids = Array.from({ length: 8 }, (_, i) => trace(p, i));
    assert.equal(p.stats().droppedOverflow, 3);
    assert.equal(p.stats().buffered, 5);
    assert.ok(errors.some((e) => e.code === 'overflow'));
    assert.equal(await p.flush({ timeoutMs: 300 }), false, 'the proxy refuses every connection');
    assert.ok(p.stats().failedRequests >= 1);
    assert.equal(p.stats().droppedOverflow, 3, 'a failed batch back in the buffer still fits');
    proxy.mode = { kind: 'forward' };
    assert.equal(await p.flush({ timeoutMs: 20_000 }), true);
    const s = p.stats();
    assert.equal(s.sent, 5);
    assert.equal(s.dropped, 3);
    assert.deepEqual([...(await storedRows(server, t.clientId)).keys()].sort(), ids.slice(3).sort(), 'the three oldest were the ones dropped');
    await p.shutdown();
  });

  it('shutdown keeps its deadline against a server that never answers; without a spool the rest is counted as dropped', async () => {
    t = await createTenant(server.url);
    proxy.mode = { kind: 'hang' };
    const p = createPanopticon({ url: proxy.url, pak: t.pak, clientId: t.clientId, flushIntervalMs: 60_000, requestTimeoutMs: 60_000 });
    [0, 1, 2, 3].forEach((i) => trace(p, i));
    const started = Date.now();
    const flushed = await p.flush({ timeoutMs: 300 });
    assert.equal(flushed, false);
    const result = await p.shutdown({ timeoutMs: 500 });
    const took = Date.now() - started;
    assert.deepEqual(result, { delivered: false, pending: 4 });
    assert.ok(took < 5_000, `flush + shutdown returned after ${took} ms, not after the 60 s request timeout`);
    assert.equal(p.stats().droppedShutdown, 4);
    assert.equal(trace(p, 9), null, 'trace() after shutdown is refused');
    assert.equal(p.stats().droppedShutdown, 5);
    proxy.mode = { kind: 'forward' };
  });

  it('the spool keeps unacknowledged traces across a shutdown; a new client sends them once', async () => {
    t = await createTenant(server.url);
    const file = spoolFile();
    proxy.mode = { kind: 'refuse' };
    const first = createPanopticon({ url: proxy.url, pak: t.pak, clientId: t.clientId, spoolPath: file, flushIntervalMs: 50, retryInitialDelayMs: 50, retryMaxDelayMs: 100 });
    const ids = Array.from({ length: 7 }, (_, i) => trace(first, i, { attributes: { n: i } }));
    const down = await first.shutdown({ timeoutMs: 300 });
    assert.deepEqual(down, { delivered: false, pending: 7 });
    assert.equal(first.stats().droppedShutdown, 0, 'kept in the spool, not dropped');

    proxy.mode = { kind: 'forward' };
    const second = createPanopticon({ url: proxy.url, pak: t.pak, clientId: t.clientId, spoolPath: file });
    assert.equal(second.stats().buffered, 7, 'loaded from the spool');
    assert.equal(await second.flush({ timeoutMs: 20_000 }), true);
    assert.equal(second.stats().sent, 7);
    await second.shutdown();
    const rows = await storedRows(server, t.clientId);
    assert.deepEqual([...rows.keys()].sort(), [...ids].sort());

    const third = createPanopticon({ url: proxy.url, pak: t.pak, clientId: t.clientId, spoolPath: file });
    assert.equal(third.stats().buffered, 0, 'acknowledged traces left the spool');
    await third.shutdown();
  });

  it('the spool survives a killed process: the next one delivers every trace exactly once', async () => {
    t = await createTenant(server.url);
    const file = spoolFile();
    const port = await closedPort();
    const script = `
      import { createPanopticon } from '@panopticon/sdk';
      const p = createPanopticon({ url: 'http://127.0.0.1:${port}', pak: ${JSON.stringify(t.pak)}, clientId: ${JSON.stringify(t.clientId)}, spoolPath: ${JSON.stringify(file)}, retryMaxDelayMs: 100 });
      const ids = [];
      for (let i = 0; i < 6; i++) ids.push(p.trace({ tool: 'crash_' + i, scope: 'agent:read', status: 'ok' }));
      await p.flush({ timeoutMs: 300 });
      console.log(JSON.stringify(ids));
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const ids = await eventually('the child to trace', () => (out.includes(']') ? (JSON.parse(out.trim()) as string[]) : undefined));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.equal(ids.length, 6);

    const next = createPanopticon({ url: server.url, pak: t.pak, clientId: t.clientId, spoolPath: file });
    assert.equal(await next.flush({ timeoutMs: 20_000 }), true);
    assert.equal(next.stats().sent, 6);
    await next.shutdown();
    const rows = await storedRows(server, t.clientId);
    assert.deepEqual([...rows.keys()].sort(), [...ids].sort());
    assert.equal(await usageTraces(server, t), 6);
  });

  it('a trace the server refuses as invalid is dropped and counted, not retried', async () => {
    t = await createTenant(server.url);
    const errors: PanopticonError[] = [];
    const p = createPanopticon({ url: server.url, pak: t.pak, clientId: t.clientId, onError: (e) => errors.push(e) });
    const good = trace(p, 1);
    trace(p, 2, { startedAt: 'yesterday' });
    assert.equal(p.trace({ tool: '', scope: 'x', status: 'ok' }), null);
    assert.equal(await p.flush({ timeoutMs: 20_000 }), true);
    const s = p.stats();
    assert.equal(s.sent, 1);
    assert.equal(s.droppedRejected, 2);
    assert.equal(s.retried, 0);
    assert.ok(errors.some((e) => e.code === 'validation_failed'));
    assert.deepEqual([...(await storedRows(server, t.clientId)).keys()], [good]);
    await p.shutdown();
  });
});

for (const engine of ENGINES) describe(`SDK guard, approvals, HMAC [${engine}]`, () => {
  let server: RunningServer;
  let t: Tenant;

  before(async () => {
    server = await startServer(engine);
    t = await createTenant(server.url);
    for (const body of [
      { name: 'no drops', effect: 'deny', reason: 'dropping tables is not allowed', match: { tools: ['drop_table'] } },
      { name: 'big transfers', effect: 'require_approval', match: { tools: ['transfer'], arguments: [{ path: 'amount', op: 'gt', value: 1000 }] } },
    ]) {
      const rule = await http(server.url, 'POST', `/api/apps/${t.clientId}/policies/rules`, { token: t.token, body });
      assert.equal(rule.status, 201, rule.text);
    }
  });
  after(() => server.close());

  it('check() returns the guard decision; waitForApproval() long-polls until a human decides', async () => {
    const p = createPanopticon({ url: server.url, pak: t.pak, clientId: t.clientId });
    const allowed = await p.check({ tool: 'search', scope: 'docs:read' });
    assert.equal(allowed.decision, 'allow');
    assert.equal(allowed.source, 'server');
    const denied = await p.check({ tool: 'drop_table', scope: 'db:admin' });
    assert.equal(denied.decision, 'deny');
    assert.equal(denied.reason, 'dropping tables is not allowed');

    const small = await p.check({ tool: 'transfer', scope: 'payments:write', arguments: { amount: 10 } });
    assert.equal(small.decision, 'allow', 'arguments reach the policy');
    const big = await p.check({ tool: 'transfer', scope: 'payments:write', userSub: 'alice', arguments: { amount: 5000 } });
    assert.equal(big.decision, 'require_approval');
    assert.ok(big.approval?.id.startsWith('apr_'));

    const waiting = p.waitForApproval(big.approval!.id, { timeoutMs: 20_000 });
    await sleep(300);
    const decided = await http(server.url, 'POST', `/api/approvals/${big.approval!.id}/approve`, { token: t.token, body: { comment: 'ok' } });
    assert.equal(decided.status, 200);
    const outcome = await waiting;
    assert.equal(outcome.status, 'approved');
    assert.equal(outcome.approved, true);
    assert.equal(outcome.approval?.comment, 'ok');

    const again = await p.check({ tool: 'transfer', scope: 'payments:write', arguments: { amount: 9000 } });
    const refusing = p.waitForApproval(again.approval!, { timeoutMs: 20_000 });
    await http(server.url, 'POST', `/api/approvals/${again.approval!.id}/deny`, { token: t.token, body: { comment: 'no' } });
    assert.deepEqual([(await refusing).status, (await refusing).approved], ['denied', false]);

    const third = await p.check({ tool: 'transfer', scope: 'payments:write', arguments: { amount: 7000 } });
    const undecided = await p.waitForApproval(third.approval!.id, { timeoutMs: 1200 });
    assert.deepEqual([undecided.status, undecided.approved], ['pending', false]);
    const unknown = await p.waitForApproval('apr_doesnotexist', { timeoutMs: 1000 });
    assert.deepEqual([unknown.status, unknown.error], ['error', 'approval_not_found']);
    await p.shutdown();
  });

  it('fails closed by default, open when asked, when the server cannot be reached; approvals always fail closed', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const closed = createPanopticon({ url, pak: t.pak, clientId: t.clientId });
    const d1 = await closed.check({ tool: 'search', scope: 'docs:read' });
    assert.deepEqual([d1.decision, d1.source, d1.reason], ['deny', 'fail_closed', 'unreachable']);
    const opened = createPanopticon({ url, pak: t.pak, clientId: t.clientId, failMode: 'open' });
    const d2 = await opened.check({ tool: 'search', scope: 'docs:read' });
    assert.deepEqual([d2.decision, d2.source], ['allow', 'fail_open']);
    const waited = await opened.waitForApproval('apr_0000000000000000', { timeoutMs: 800 });
    assert.deepEqual([waited.status, waited.approved], ['unreachable', false]);
    // A refused key is a misconfiguration, not an outage: fail-open does not let it through.
    const badKey = createPanopticon({ url: server.url, pak: 'pano_pak_AJBudVd5U4cp6Hbe6glfeRxKR94jem754SDSkj', clientId: t.clientId, failMode: 'open' });
    const d3 = await badKey.check({ tool: 'search', scope: 'docs:read' });
    assert.equal(d3.decision, 'deny');
    assert.match(d3.reason, /^pak_/);
    for (const p of [closed, opened, badKey]) await p.shutdown({ timeoutMs: 50 });
  });

  it('over the cap of pending approvals the server denies, in both fail modes; idempotencyKey returns the first decision', async () => {
    const capped = await startServer(engine, { maxPendingApprovals: 1 });
    try {
      const c = await createTenant(capped.url);
      const rule = await http(capped.url, 'POST', `/api/apps/${c.clientId}/policies/rules`, { token: c.token, body: { name: 'ask', effect: 'require_approval', match: { tools: ['wire'] } } });
      assert.equal(rule.status, 201, rule.text);
      const closed = createPanopticon({ url: capped.url, pak: c.pak, clientId: c.clientId });
      const open = createPanopticon({ url: capped.url, pak: c.pak, clientId: c.clientId, failMode: 'open' });
      const first = await closed.check({ tool: 'wire', scope: 'pay', arguments: { n: 1 }, idempotencyKey: 'call-1' });
      assert.equal(first.decision, 'require_approval');
      for (const p of [closed, open]) {
        const over = await p.check({ tool: 'wire', scope: 'pay', arguments: { n: 2 } });
        assert.deepEqual([over.decision, over.reason, over.source, over.approval], ['deny', 'too_many_pending_approvals', 'server', null]);
        assert.ok((over.retryAfterSeconds ?? 0) >= 1);
      }
      const retried = await open.check({ tool: 'wire', scope: 'pay', arguments: { n: 1 }, idempotencyKey: 'call-1' });
      assert.deepEqual([retried.checkId, retried.approval?.id], [first.checkId, first.approval?.id], 'the retry is answered the first decision');
      const reused = await open.check({ tool: 'wire', scope: 'pay', arguments: { n: 3 }, idempotencyKey: 'call-1' });
      assert.deepEqual([reused.decision, reused.reason, reused.source], ['deny', 'idempotency_key_reused', 'fail_closed']);
      for (const p of [closed, open]) await p.shutdown({ timeoutMs: 50 });
    } finally {
      await capped.close();
    }
  });

  it('signs every request when given the pak_secret of an app that enforces HMAC', async () => {
    const h = await createTenant(server.url);
    const enabled = await http(server.url, 'POST', `/api/apps/${h.clientId}/hmac/enable`, { token: h.token });
    assert.equal(enabled.status, 201);
    const secret = enabled.body.pak_secret as string;
    const rule = await http(server.url, 'POST', `/api/apps/${h.clientId}/policies/rules`, { token: h.token, body: { name: 'ask', effect: 'require_approval', match: { tools: ['wire'] } } });
    assert.equal(rule.status, 201);

    const unsigned: PanopticonError[] = [];
    const noSecret = createPanopticon({ url: server.url, pak: h.pak, clientId: h.clientId, flushIntervalMs: 60_000, retryMaxDelayMs: 100, onError: (e) => unsigned.push(e) });
    trace(noSecret, 0);
    assert.equal(await noSecret.flush({ timeoutMs: 300 }), false, 'unsigned traces are refused, and kept for retry');
    assert.equal(unsigned[0]?.code, 'signature_missing');
    assert.equal((await noSecret.check({ tool: 'x', scope: 'y' })).reason, 'signature_missing');
    await noSecret.shutdown({ timeoutMs: 10 });

    const signed = createPanopticon({ url: server.url, pak: h.pak, clientId: h.clientId, pakSecret: secret });
    const ids = [0, 1, 2].map((i) => trace(signed, i));
    assert.equal(await signed.flush({ timeoutMs: 20_000 }), true);
    assert.deepEqual([...(await storedRows(server, h.clientId)).keys()].sort(), [...ids].sort());
    const d = await signed.check({ tool: 'wire', scope: 'payments:write' });
    assert.equal(d.decision, 'require_approval');
    const waiting = signed.waitForApproval(d.approval!.id, { timeoutMs: 20_000 });
    await sleep(200);
    await http(server.url, 'POST', `/api/approvals/${d.approval!.id}/approve`, { token: h.token });
    assert.equal((await waiting).status, 'approved', 'the signed long poll (GET with a query) is accepted');
    await signed.shutdown();
  });
});
