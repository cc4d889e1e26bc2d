/**
 * The approvals inbox stream (GET /api/apps/:client_id/approvals/live) on both engines: a real
 * guard check's request arrives within a second, a decision and an expiry follow, a lost decision
 * race says who won, other accounts get 404, shutdown ends the stream; and on PostgreSQL, a check
 * on one node reaches a stream on another, and a decision there reaches the first node's stream.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTenant, ENGINES, http, startServer, type RunningServer, type Tenant, POSTGRES_ONLY } from '../support/harness.js';
import { SseClient } from '../support/sse.js';
import { openApproval } from '../support/approvals.js';

interface ApprovalEvent { id: string; status: string; tool: string; comment: string | null; decided_by: string | null; arguments_hash: string; reason: string }

const inboxUrl = (server: RunningServer, clientId: string) => `${server.url}/api/apps/${clientId}/approvals/live`;
const bearer = (t: Tenant) => ({ authorization: `Bearer ${t.token}` });
const of = (sse: SseClient, event: string): ApprovalEvent[] => sse.events.filter((e) => e.event === event).map((e) => JSON.parse(e.data));

async function requireApprovalFor(server: RunningServer, t: Tenant, tool: string): Promise<void> {
  const rule = await http(server.url, 'POST', `/api/apps/${t.clientId}/policies/rules`, {
    token: t.token, body: { name: `ask for ${tool}`, effect: 'require_approval', match: { tools: [tool] }, reason: 'a human decides' },
  });
  assert.equal(rule.status, 201, rule.text);
}

const check = (server: RunningServer, t: Tenant, tool: string, args: Record<string, unknown> = { amount: 5000 }) =>
  http(server.url, 'POST', '/panopticon/guard/check', {
    token: t.pak, body: { client_id: t.clientId, tool, scope: 'payments:write', user_sub: 'alice', session_id: 'sess-1', arguments: args },
  });

async function openInbox(server: RunningServer, t: Tenant, clients: SseClient[]): Promise<SseClient> {
  const sse = await SseClient.open(inboxUrl(server, t.clientId), bearer(t));
  clients.push(sse);
  assert.equal(sse.status, 200, JSON.stringify(sse.events));
  assert.match(sse.contentType, /^text\/event-stream/);
  await sse.until(() => sse.events.some((e) => e.event === 'ready'), 2000, 'ready');
  return sse;
}

for (const engine of ENGINES) {
  describe(`approvals inbox stream [${engine}]`, () => {
    let server: RunningServer;
    let t: Tenant;
    let other: Tenant;
    const clients: SseClient[] = [];

    before(async () => {
      server = await startServer(engine, {}, undefined, { hitl: { sweepIntervalMs: 100 } });
      t = await createTenant(server.url);
      other = await createTenant(server.url);
      await requireApprovalFor(server, t, 'transfer');
      await requireApprovalFor(server, other, 'transfer');
    });
    after(async () => {
      for (const c of clients) c.close();
      await server?.close();
    });

    it('a guard check that needs approval shows as `requested` within a second; the decision follows as `decided`', async () => {
      const sse = await openInbox(server, t, clients);
      const otherSse = await openInbox(server, other, clients);
      const asked = await check(server, t, 'transfer');
      assert.equal(asked.body.decision, 'require_approval');
      const id = asked.body.approval.id as string;
      const t0 = Date.now();
      await sse.until(() => of(sse, 'requested').some((a) => a.id === id), 1000, 'requested within 1 s');
      assert.ok(Date.now() - t0 <= 1000);
      const requested = of(sse, 'requested').find((a) => a.id === id)!;
      assert.equal(requested.status, 'pending');
      assert.equal(requested.tool, 'transfer');
      assert.match(requested.arguments_hash, /^[0-9a-f]{64}$/);
      assert.equal(requested.reason, 'a human decides');

      const decided = await http(server.url, 'POST', `/api/approvals/${id}/approve`, { token: t.token, body: { comment: 'fine', remember: 'once' } });
      assert.equal(decided.status, 200, decided.text);
      await sse.until(() => of(sse, 'decided').some((a) => a.id === id), 1000, 'decided within 1 s');
      const d = of(sse, 'decided').find((a) => a.id === id)!;
      assert.equal(d.status, 'approved');
      assert.equal(d.comment, 'fine');
      assert.match(d.decided_by!, /^account:/);

      // The other account's inbox heard nothing of it (its own check shows up there, only there).
      const own = await check(server, other, 'transfer');
      await otherSse.until(() => of(otherSse, 'requested').some((a) => a.id === own.body.approval.id), 1000, "the other app's own request");
      assert.deepEqual(otherSse.events.filter((e) => e.event !== 'ready' && JSON.parse(e.data).id === id), []);
      assert.equal(of(sse, 'requested').some((a) => a.id === own.body.approval.id), false);
    });

    it('an unanswered request is reported `expired` by the sweep', async () => {
      const sse = await openInbox(server, t, clients);
      const { approvalId } = await openApproval(server, t.clientId, { expiresInMs: 300 });
      await sse.until(() => of(sse, 'requested').some((a) => a.id === approvalId), 1000, 'requested');
      await sse.until(() => of(sse, 'expired').some((a) => a.id === approvalId), 5000, 'expired');
      assert.equal(of(sse, 'expired').find((a) => a.id === approvalId)!.status, 'expired');
    });

    it('the losing decision of a race gets 409 approval_decided naming who decided and when', async () => {
      const asked = await check(server, t, 'transfer', { amount: 7 });
      const id = asked.body.approval.id as string;
      const first = await http(server.url, 'POST', `/api/approvals/${id}/deny`, { token: t.token, body: { comment: 'no' } });
      assert.equal(first.status, 200);
      const second = await http(server.url, 'POST', `/api/approvals/${id}/approve`, { token: t.token, body: {} });
      assert.equal(second.status, 409);
      assert.equal(second.body.error.code, 'approval_decided');
      assert.equal(second.body.error.status, 'denied');
      assert.equal(second.body.error.decided_by, first.body.approval.decided_by);
      assert.equal(second.body.error.decided_at, first.body.approval.decided_at);
    });

    it('refuses another account (404) and a request without credentials (401)', async () => {
      const foreign = await http(server.url, 'GET', `/api/apps/${t.clientId}/approvals/live`, { token: other.token });
      assert.equal(foreign.status, 404);
      assert.equal(foreign.body.error.code, 'app_not_found');
      const anonymous = await http(server.url, 'GET', `/api/apps/${t.clientId}/approvals/live`);
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.body.error.code, 'unauthenticated');
    });

    it('a signed-in browser session can open it (the console does, with its cookie)', async () => {
      const login = await http(server.url, 'POST', '/api/auth/login', { body: { email: t.email, password: t.password } });
      assert.equal(login.status, 200);
      const cookie = login.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
      const sse = await SseClient.open(inboxUrl(server, t.clientId), { cookie });
      clients.push(sse);
      assert.equal(sse.status, 200);
      await sse.until(() => sse.events.some((e) => e.event === 'ready'), 2000, 'ready');
    });

    it('server shutdown ends open streams instead of waiting for them', async () => {
      const own = await startServer(engine);
      try {
        const u = await createTenant(own.url);
        const sse = await openInbox(own, u, clients);
        const closing = own.close();
        await sse.until(() => sse.ended, 5000, 'the stream to end on close');
        await closing;
      } catch (err) {
        await own.close().catch(() => {});
        throw err;
      }
    });
  });
}

describe('approvals inbox across two nodes [postgres]', POSTGRES_ONLY, () => {
  let nodeA: RunningServer;
  let nodeB: RunningServer;
  let t: Tenant;
  const clients: SseClient[] = [];

  before(async () => {
    nodeA = await startServer('postgres');
    nodeB = await startServer('postgres', {}, nodeA.location);
    t = await createTenant(nodeA.url);
    await requireApprovalFor(nodeA, t, 'transfer');
  });
  after(async () => {
    for (const c of clients) c.close();
    await nodeB?.close();
    await nodeA?.close();
  });

  it('a check on node A appears on node B within a second; a decision on B reaches the stream on A', async () => {
    const onA = await openInbox(nodeA, t, clients);
    const onB = await openInbox(nodeB, t, clients);
    const asked = await check(nodeA, t, 'transfer');
    assert.equal(asked.body.decision, 'require_approval');
    const id = asked.body.approval.id as string;
    const t0 = Date.now();
    await onB.until(() => of(onB, 'requested').some((a) => a.id === id), 1000, 'requested on B within 1 s');
    assert.ok(Date.now() - t0 <= 1000);
    await onA.until(() => of(onA, 'requested').some((a) => a.id === id), 1000, 'requested on A');

    const decided = await http(nodeB.url, 'POST', `/api/approvals/${id}/deny`, { token: t.token, body: { comment: 'not today' } });
    assert.equal(decided.status, 200, decided.text);
    await onA.until(() => of(onA, 'decided').some((a) => a.id === id), 1000, 'decided on A within 1 s');
    assert.equal(of(onA, 'decided').find((a) => a.id === id)!.comment, 'not today');
    await onB.until(() => of(onB, 'decided').some((a) => a.id === id), 1000, 'decided on B');
    // Each node reports each change once per stream, although B both published and heard it.
    assert.equal(of(onB, 'requested').filter((a) => a.id === id).length, 1);
    assert.equal(of(onA, 'decided').filter((a) => a.id === id).length, 1);
  });
});
