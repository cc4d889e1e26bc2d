/**
 * Approval floods and replays over HTTP, on both engines (docs/security.md, "Approval floods and
 * replays"): one PAK flooding require_approval checks leaves at most the per-app cap pending and at
 * most the per-endpoint bound in the webhook outbox, the rest answered with the documented deny;
 * identical concurrent checks open one approval and one set of deliveries; a replayed signed check
 * and a retried Idempotency-Key answer the first answer and store nothing new; a reused key with
 * another body is 422 and stores nothing. On PostgreSQL, the same holds with two nodes at once.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { ServerConfig } from '../../src/config.js';
import {
  createTenant, ENGINES, http, POSTGRES_ONLY, rawSql, startServer,
  inParallel, type HttpResult, type RawSql, type RunningServer, type Tenant } from '../support/harness.js';

const CAP = 100;
const OUTBOX = 40;
/** Deliveries to a port nobody listens on fail at once and wait a minute for their retry: they stay in the outbox. */
const DEAD_WEBHOOK = 'http://127.0.0.1:9/hooks';
const SLOW_RETRIES = { baseDelayMs: 60_000, maxDelayMs: 60_000, pollIntervalMs: 60_000 };
const OVERRIDES = { pakRateLimitPerSecond: 100_000, maxPendingApprovals: CAP, webhookOutboxLimit: OUTBOX } as Partial<ServerConfig>;

type Body = Record<string, unknown>;

function checkBody(t: Tenant, overrides: Body = {}): Body {
  return { client_id: t.clientId, tool: 'transfer', scope: 'payments:write', user_sub: 'alice', session_id: 'sess-1', arguments: { amount: 5000 }, ...overrides };
}

function check(url: string, t: Tenant, body: Body, headers: Record<string, string> = {}): Promise<HttpResult> {
  return http(url, 'POST', '/panopticon/guard/check', { token: t.pak, body, headers });
}

function sign(secret: string, body: string, t = Math.floor(Date.now() / 1000)): string {
  const v1 = crypto.createHmac('sha256', secret).update(`${t}.POST./panopticon/guard/check.${body}`).digest('hex');
  return `t=${t},v1=${v1}`;
}

async function prepare(url: string, options: { webhook?: boolean } = {}): Promise<Tenant> {
  const t = await createTenant(url);
  const rule = await http(url, 'POST', `/api/apps/${t.clientId}/policies/rules`, {
    token: t.token,
    body: { name: 'transfers', effect: 'require_approval', match: { tools: ['transfer'] } },
  });
  assert.equal(rule.status, 201, rule.text);
  if (options.webhook !== false) {
    const hook = await http(url, 'POST', `/api/apps/${t.clientId}/webhooks`, { token: t.token, body: { url: DEAD_WEBHOOK, events: ['approval.requested'] } });
    assert.equal(hook.status, 201, hook.text);
  }
  return t;
}

/** What one app has stored: approvals (pending), deliveries by status, checks, HITL usage. */
async function stored(sql: RawSql, clientId: string) {
  const n = async (q: string, ...params: unknown[]) => Number((await sql.query(q, [clientId, ...params]))[0]!.n);
  return {
    approvals: await n('SELECT count(*) AS n FROM approvals WHERE client_id = ?'),
    pending: await n("SELECT count(*) AS n FROM approvals WHERE client_id = ? AND status = 'pending'"),
    deliveries: await n('SELECT count(*) AS n FROM webhook_deliveries WHERE client_id = ?'),
    outbox: await n("SELECT count(*) AS n FROM webhook_deliveries WHERE client_id = ? AND status = 'pending'"),
    dropped: await n("SELECT count(*) AS n FROM webhook_deliveries WHERE client_id = ? AND status = 'dropped'"),
    checks: await n('SELECT count(*) AS n FROM guard_checks WHERE client_id = ?'),
    hitl: await n('SELECT coalesce(sum(hitl_requests), 0) AS n FROM usage_daily WHERE client_id = ?'),
  };
}

function tally(results: HttpResult[]) {
  const statuses = new Map<number, number>();
  const reasons = new Map<string, number>();
  for (const r of results) {
    statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    if (r.status === 200) reasons.set(`${r.body.decision}/${r.body.reason}`, (reasons.get(`${r.body.decision}/${r.body.reason}`) ?? 0) + 1);
  }
  return { statuses: Object.fromEntries(statuses), reasons: Object.fromEntries(reasons) };
}

for (const engine of ENGINES) {
  describe(`approval floods and replays [${engine}]`, () => {
    let server: RunningServer;
    let sql: RawSql;

    before(async () => {
      server = await startServer(engine, OVERRIDES, undefined, { webhooks: SLOW_RETRIES });
      sql = await rawSql(server.location);
    });
    after(async () => {
      await sql.close();
      await server.close();
    });

    it('a flood of 1,000 distinct checks from one PAK: the cap opens, the rest are denied with Retry-After, the outbox stays bounded', async () => {
      const t = await prepare(server.url);
      const results = await inParallel(1000, (i) => check(server.url, t, checkBody(t, { arguments: { amount: 5000 + i } })));
      const { statuses, reasons } = tally(results);
      const after_ = await stored(sql, t.clientId);
      console.log(`[${engine}] flood of 1000: statuses ${JSON.stringify(statuses)}, decisions ${JSON.stringify(reasons)}, stored ${JSON.stringify(after_)}`);

      assert.deepEqual(statuses, { 200: 1000 }, 'every check is answered with a decision');
      const opened = results.filter((r) => r.body.decision === 'require_approval');
      const refused = results.filter((r) => r.body.decision !== 'require_approval');
      assert.equal(opened.length, CAP);
      assert.equal(new Set(opened.map((r) => r.body.approval.id)).size, CAP, 'each opened its own approval');
      for (const r of refused) {
        assert.equal(r.body.decision, 'deny');
        assert.equal(r.body.reason, 'too_many_pending_approvals');
        assert.equal(r.body.approval, undefined);
        assert.ok(r.body.retry_after_seconds >= 1 && r.body.retry_after_seconds <= 600, `retry_after_seconds ${r.body.retry_after_seconds}`);
      }
      assert.equal(after_.pending, CAP);
      assert.equal(after_.approvals, CAP);
      assert.equal(after_.hitl, CAP, 'only opened requests count as HITL requests');
      assert.equal(after_.checks, 1000, 'every decision is recorded, refusals included');
      assert.equal(after_.outbox, OUTBOX, 'at most the bound waits in the outbox');
      assert.equal(after_.dropped, CAP - OUTBOX, 'the oldest were dropped, visibly');

      const hooks = await http(server.url, 'GET', `/api/apps/${t.clientId}/webhooks`, { token: t.token });
      const list = await http(server.url, 'GET', `/api/apps/${t.clientId}/webhooks/${hooks.body.webhooks[0].id}/deliveries?limit=500`, { token: t.token });
      assert.equal(list.status, 200, list.text);
      assert.deepEqual(list.body.counts, { pending: OUTBOX, delivered: 0, failed: 0, dropped: CAP - OUTBOX });
      const dropped = list.body.deliveries.filter((d: { status: string }) => d.status === 'dropped');
      assert.equal(dropped.length, CAP - OUTBOX);
      assert.match(dropped[0].last_error, /outbox/);

      // Deciding one frees a slot: the next check opens a request again.
      assert.equal((await http(server.url, 'POST', `/api/approvals/${opened[0]!.body.approval.id}/deny`, { token: t.token, body: {} })).status, 200);
      const next = await check(server.url, t, checkBody(t, { arguments: { amount: 1 } }));
      assert.equal(next.body.decision, 'require_approval', next.text);
      const full = await check(server.url, t, checkBody(t, { arguments: { amount: 2 } }));
      assert.equal(full.body.reason, 'too_many_pending_approvals');
    });

    it('200 identical concurrent checks open exactly one approval and one webhook delivery', async () => {
      const t = await prepare(server.url);
      const results = await Promise.all(Array.from({ length: 200 }, () => check(server.url, t, checkBody(t))));
      const ids = new Set(results.map((r) => r.body.approval?.id));
      const after_ = await stored(sql, t.clientId);
      console.log(`[${engine}] 200 identical: ${JSON.stringify(tally(results))}, approval ids ${ids.size}, stored ${JSON.stringify(after_)}`);
      assert.ok(results.every((r) => r.status === 200 && r.body.decision === 'require_approval'), 'all ask for approval');
      assert.equal(ids.size, 1, 'all answer the same approval');
      assert.equal(new Set(results.map((r) => r.body.check_id)).size, 200, 'each check is its own decision');
      assert.equal(new Set(results.map((r) => r.body.approval.expires_at)).size, 1);
      assert.deepEqual({ approvals: after_.approvals, deliveries: after_.deliveries, checks: after_.checks, hitl: after_.hitl }, { approvals: 1, deliveries: 1, checks: 200, hitl: 1 });
      const listed = await http(server.url, 'GET', `/api/apps/${t.clientId}/checks?limit=500`, { token: t.token });
      assert.ok(listed.body.checks.every((c: { approval_id: string }) => c.approval_id === [...ids][0]), 'each check names the approval it was answered with');
    });

    it('coalescing needs the same tool, scope, user, session and arguments; a decided request is not reused', async () => {
      const t = await prepare(server.url, { webhook: false });
      const first = await check(server.url, t, checkBody(t));
      const id = first.body.approval.id as string;
      assert.equal((await check(server.url, t, checkBody(t, { arguments: { amount: 5000 } }))).body.approval.id, id);
      for (const change of [{ scope: 'payments:admin' }, { user_sub: 'bob' }, { session_id: 'sess-2' }, { session_id: null }, { arguments: { amount: 5001 } }, { arguments: null }]) {
        const other = await check(server.url, t, checkBody(t, change));
        assert.equal(other.body.decision, 'require_approval');
        assert.notEqual(other.body.approval.id, id, `a different ${Object.keys(change)[0]} is another request`);
      }
      assert.equal((await http(server.url, 'POST', `/api/approvals/${id}/approve`, { token: t.token, body: {} })).status, 200);
      const after_ = await check(server.url, t, checkBody(t));
      assert.equal(after_.body.decision, 'require_approval');
      assert.notEqual(after_.body.approval.id, id, 'once decided, an identical call asks again');
    });

    it('a replayed signed check answers the first answer and opens nothing new, even with another Idempotency-Key', async () => {
      const t = await prepare(server.url);
      const secret = (await http(server.url, 'POST', `/api/apps/${t.clientId}/hmac/enable`, { token: t.token })).body.pak_secret as string;
      const raw = JSON.stringify(checkBody(t, { arguments: { amount: 7000 } }));
      const headers = { 'content-type': 'application/json', 'x-panopticon-signature': sign(secret, raw) };
      const send = (extra: Record<string, string> = {}) => http(server.url, 'POST', '/panopticon/guard/check', { token: t.pak, raw, headers: { ...headers, ...extra } });
      const first = await send();
      assert.equal(first.status, 200, first.text);
      const replays = await Promise.all([send(), send(), send({ 'idempotency-key': 'fresh-key-1' }), send({ 'idempotency-key': 'fresh-key-2' })]);
      for (const r of replays) assert.deepEqual(r.body, first.body, 'a replay is answered with the first answer');
      const after_ = await stored(sql, t.clientId);
      console.log(`[${engine}] signed check sent 5 times: stored ${JSON.stringify(after_)}`);
      assert.deepEqual({ approvals: after_.approvals, checks: after_.checks, deliveries: after_.deliveries }, { approvals: 1, checks: 1, deliveries: 1 });

      // The same call signed at another second is another request (and coalesces with the pending approval).
      const later = await http(server.url, 'POST', '/panopticon/guard/check', { token: t.pak, raw, headers: { ...headers, 'x-panopticon-signature': sign(secret, raw, Math.floor(Date.now() / 1000) - 7) } });
      assert.notEqual(later.body.check_id, first.body.check_id);
      assert.equal(later.body.approval.id, first.body.approval.id);
    });

    it('Idempotency-Key: a retry answers the first answer; another body is 422 and stores nothing; a bad key is 400', async () => {
      const t = await prepare(server.url);
      const key = { 'idempotency-key': `retry-${crypto.randomUUID()}` };
      const first = await check(server.url, t, checkBody(t, { arguments: { amount: 8000 } }), key);
      assert.equal(first.status, 200, first.text);
      const retries = await Promise.all(Array.from({ length: 20 }, () => check(server.url, t, checkBody(t, { arguments: { amount: 8000 } }), key)));
      for (const r of retries) assert.deepEqual(r.body, first.body);
      // The same parameters in another key order and spacing are the same request.
      const reordered = await http(server.url, 'POST', '/panopticon/guard/check', { token: t.pak, raw: JSON.stringify({ arguments: { amount: 8000 }, session_id: 'sess-1', user_sub: 'alice', scope: 'payments:write', tool: 'transfer', client_id: t.clientId }), headers: { 'content-type': 'application/json', ...key } });
      assert.deepEqual(reordered.body, first.body);
      const before_ = await stored(sql, t.clientId);
      assert.deepEqual({ approvals: before_.approvals, checks: before_.checks, deliveries: before_.deliveries }, { approvals: 1, checks: 1, deliveries: 1 });

      const reused = await check(server.url, t, checkBody(t, { arguments: { amount: 9000 } }), key);
      assert.equal(reused.status, 422, reused.text);
      assert.equal(reused.body.error.code, 'idempotency_key_reused');
      assert.match(reused.headers.get('x-request-id') ?? '', /^req_/);
      assert.deepEqual(await stored(sql, t.clientId), before_, 'a refused reuse stores nothing');

      for (const bad of ['', 'x'.repeat(256), 'has space', 'naïve']) {
        const res = await check(server.url, t, checkBody(t), { 'idempotency-key': bad });
        assert.equal(res.status, 400, `${JSON.stringify(bad)}: ${res.text}`);
        assert.equal(res.body.error.code, 'validation_failed');
        assert.equal(res.body.error.fields[0].field, 'headers.idempotency-key');
      }
      assert.deepEqual(await stored(sql, t.clientId), before_);
    });

    it('a kill switch turned on after the first answer wins over a replay of it', async () => {
      const t = await createTenant(server.url);
      const key = { 'idempotency-key': 'before-the-kill' };
      const body = checkBody(t, { tool: 'export' });
      const first = await check(server.url, t, body, key);
      assert.equal(first.body.decision, 'allow');
      assert.equal((await http(server.url, 'POST', `/api/apps/${t.clientId}/kill`, { token: t.token, body: { reason: 'incident 42' } })).status, 200);
      const replay = await check(server.url, t, body, key);
      assert.equal(replay.body.decision, 'deny');
      assert.equal(replay.body.reason, 'kill_switch');
      assert.notEqual(replay.body.check_id, first.body.check_id);
    });
  });
}

describe('approval floods across two PostgreSQL nodes', POSTGRES_ONLY, () => {
  let a: RunningServer;
  let b: RunningServer;
  let sql: RawSql;
  before(async () => {
    a = await startServer('postgres', OVERRIDES, undefined, { webhooks: SLOW_RETRIES });
    b = await startServer('postgres', OVERRIDES, a.location, { webhooks: SLOW_RETRIES });
    sql = await rawSql(a.location);
  });
  after(async () => {
    await sql.close();
    // B first: A's close drops the schema B is still connected to.
    await b.close();
    await a.close();
  });

  it('the cap, coalescing and the outbox bound hold with checks arriving on both nodes at once', async () => {
    const t = await prepare(a.url);
    const results = await inParallel(600, (i) => check(i % 2 === 0 ? a.url : b.url, t, checkBody(t, { arguments: { amount: i } })));
    const counts = await stored(sql, t.clientId);
    console.log(`[two nodes] flood of 600: ${JSON.stringify(tally(results))}, stored ${JSON.stringify(counts)}`);
    assert.equal(results.filter((r) => r.body.decision === 'require_approval').length, CAP);
    assert.equal(counts.pending, CAP);
    assert.equal(counts.outbox, OUTBOX);

    const u = await prepare(a.url);
    const same = await Promise.all(Array.from({ length: 100 }, (_, i) => check(i % 2 === 0 ? a.url : b.url, u, checkBody(u))));
    assert.equal(new Set(same.map((r) => r.body.approval?.id)).size, 1);
    const c = await stored(sql, u.clientId);
    assert.deepEqual({ approvals: c.approvals, deliveries: c.deliveries }, { approvals: 1, deliveries: 1 });

    // One Idempotency-Key sent to both nodes at once: one check.
    const key = { 'idempotency-key': 'both-nodes' };
    const keyed = await Promise.all(Array.from({ length: 20 }, (_, i) => check(i % 2 === 0 ? a.url : b.url, u, checkBody(u, { tool: 'export' }), key)));
    assert.equal(new Set(keyed.map((r) => r.body.check_id)).size, 1);
  });
});
