/**
 * The whole human-in-the-loop flow with the real guard check: a require_approval decision opens a
 * request the agent long-polls; an operator's approval (remembered) answers the poll at once and
 * lets the next identical call through with a grant, without asking again; revoking the grant asks
 * again; a different argument always asks. Both engines.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTenant, ENGINES, http, startServer, type RunningServer, type Tenant } from '../support/harness.js';

for (const engine of ENGINES) {
  describe(`HITL flow through the guard check [${engine}]`, () => {
    let server: RunningServer;
    let t: Tenant;
    const check = (args: Record<string, unknown>, sessionId = 'sess-1') =>
      http(server.url, 'POST', '/panopticon/guard/check', {
        token: t.pak,
        body: { client_id: t.clientId, tool: 'transfer', scope: 'payments:write', user_sub: 'alice', session_id: sessionId, arguments: args },
      });

    before(async () => {
      server = await startServer(engine);
      t = await createTenant(server.url);
      const rule = await http(server.url, 'POST', `/api/apps/${t.clientId}/policies/rules`, {
        token: t.token,
        body: { name: 'big transfers', effect: 'require_approval', match: { tools: ['transfer'], arguments: [{ path: 'amount', op: 'gt', value: 1000 }] } },
      });
      assert.equal(rule.status, 201);
    });
    after(() => server.close());

    it('a long-polling agent is unblocked by the approval; remembered, the next identical call is allowed by a grant', async () => {
      const first = await check({ amount: 5000, to: 'acme' });
      assert.equal(first.body.decision, 'require_approval');
      const { id, poll_url } = first.body.approval;

      const started = Date.now();
      const poll = http(server.url, 'GET', `${poll_url}?wait=20`, { token: t.pak });
      await new Promise((r) => setTimeout(r, 300));
      const decided = await http(server.url, 'POST', `/api/approvals/${id}/approve`, { token: t.token, body: { comment: 'ok for acme', remember: 'session' } });
      assert.equal(decided.status, 200, decided.text);
      const answered = await poll;
      assert.equal(answered.status, 200);
      assert.equal(answered.body.status, 'approved');
      assert.equal(answered.body.comment, 'ok for acme');
      assert.ok(Date.now() - started < 10_000, 'the poll answered on the decision, not at its timeout');

      const again = await check({ to: 'acme', amount: 5000 });
      assert.equal(again.body.decision, 'allow', 'same tool, user, session and arguments (any key order)');
      assert.equal(again.body.reason, 'grant');
      assert.match(again.body.grant_id, /^grt?_/);

      const otherSession = await check({ amount: 5000, to: 'acme' }, 'sess-2');
      assert.equal(otherSession.body.decision, 'require_approval', 'a session grant does not cover another session');
      const otherArgs = await check({ amount: 5001, to: 'acme' });
      assert.equal(otherArgs.body.decision, 'require_approval', 'different arguments ask again');

      const grants = await http(server.url, 'GET', `/api/apps/${t.clientId}/grants`, { token: t.token });
      const grant = grants.body.grants.find((g: { id: string }) => g.id === again.body.grant_id);
      assert.equal(grant.uses, 1);
      assert.equal((await http(server.url, 'DELETE', `/api/apps/${t.clientId}/grants/${grant.id}`, { token: t.token })).status, 200);
      assert.equal((await check({ amount: 5000, to: 'acme' })).body.decision, 'require_approval', 'a revoked grant no longer applies');
    });

    it('a denied request answers the poll with denied; HITL usage counts every request opened', async () => {
      const res = await check({ amount: 9999 });
      const { id } = res.body.approval;
      const poll = http(server.url, 'GET', `/panopticon/approvals/${id}?wait=20`, { token: t.pak });
      await new Promise((r) => setTimeout(r, 200));
      assert.equal((await http(server.url, 'POST', `/api/approvals/${id}/deny`, { token: t.token, body: { comment: 'no' } })).status, 200);
      assert.equal((await poll).body.status, 'denied');
      const second = await http(server.url, 'POST', `/api/approvals/${id}/approve`, { token: t.token, body: {} });
      assert.equal(second.status, 409);
      assert.equal(second.body.error.code, 'approval_decided');
      const today = new Date().toISOString().slice(0, 10);
      const usage = await http(server.url, 'GET', `/api/apps/${t.clientId}/usage?since=${today}`, { token: t.token });
      assert.equal(usage.body.totals.hitl_requests, 5, 'five require_approval decisions so far in this app');
    });
  });
}
