/**
 * HITL approvals over HTTP on both engines: the agent's poll (and long poll), operator decisions,
 * expiry, grants, tenancy, audit; and on PostgreSQL, two nodes sharing one database.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTenant, ENGINES, http, startServer, twoNodesOnePostgres, type RunningServer, type TwoNodes, type Tenant, POSTGRES_ONLY } from '../support/harness.js';
import type { GuardEvent } from '../../src/guard/events.js';
import { openApproval } from '../support/approvals.js';
import { eventually, sleep } from '../support/wait.js';

const poll = (url: string, pak: string, id: string, wait?: number) =>
  http(url, 'GET', `/panopticon/approvals/${id}${wait === undefined ? '' : `?wait=${wait}`}`, { token: pak });
const decide = (url: string, token: string, id: string, action: 'approve' | 'deny', body?: unknown) =>
  http(url, 'POST', `/api/approvals/${id}/${action}`, body === undefined ? { token } : { token, body });

for (const engine of ENGINES) {
  describe(`HITL approvals [${engine}]`, () => {
    let server: RunningServer;
    let t: Tenant;
    let other: Tenant;
    const events: GuardEvent[] = [];

    before(async () => {
      server = await startServer(engine, {}, undefined, { hitl: { sweepIntervalMs: 100 } });
      t = await createTenant(server.url);
      other = await createTenant(server.url);
      server.services.events.subscribe((e) => events.push(e));
    });
    after(() => server.close());

    it('the owning app reads its pending approval with its PAK; another app, or no PAK, cannot', async () => {
      const { approvalId, record } = await openApproval(server, t.clientId);
      const res = await poll(server.url, t.pak, approvalId);
      assert.equal(res.status, 200);
      assert.equal(res.body.status, 'pending');
      assert.equal(res.body.id, approvalId);
      assert.equal(res.body.tool, record.tool);
      assert.equal(res.body.check_id, record.id);
      assert.equal(res.body.decided_at, null);
      assert.equal(res.body.expires_at, new Date(record.approval!.expiresAt).toISOString());

      const foreign = await poll(server.url, other.pak, approvalId);
      assert.equal(foreign.status, 404);
      assert.equal(foreign.body.error.code, 'approval_not_found');
      assert.equal((await poll(server.url, t.pak, 'apr_doesnotexist')).body.error.code, 'approval_not_found');
      assert.equal((await http(server.url, 'GET', `/panopticon/approvals/${approvalId}`)).body.error.code, 'pak_missing');
      const tooLong = await poll(server.url, t.pak, approvalId, 31);
      assert.equal(tooLong.status, 400);
    });

    it('approve: the agent sees who decided, when and why; audited; HITL usage counts the request, not the decision', async () => {
      const { approvalId } = await openApproval(server, t.clientId);
      const day = new Date().toISOString().slice(0, 10);
      const hitlBefore = (await server.store.traces.usage(t.clientId, day, day))[0]?.hitlRequests ?? 0;
      assert.ok(hitlBefore >= 1, 'opening an approval counts as a HITL request');

      const res = await decide(server.url, t.token, approvalId, 'approve', { comment: 'refund ok' });
      assert.equal(res.status, 200);
      assert.equal(res.body.approval.status, 'approved');
      assert.equal(res.body.approval.remember, 'once');
      assert.equal(res.body.grant, null);
      const seen = await poll(server.url, t.pak, approvalId);
      assert.equal(seen.body.status, 'approved');
      assert.equal(seen.body.comment, 'refund ok');
      assert.match(seen.body.decided_by, /^account:acct_/);
      assert.ok(Date.parse(seen.body.decided_at) > 0);

      const audit = await server.store.audit.list(t.clientId, { limit: 100, newestFirst: true });
      const entry = audit.find((e) => e.action === 'approval.approve' && e.target === approvalId);
      assert.ok(entry, 'approval.approve audited');
      assert.equal(entry.actor, seen.body.decided_by);
      assert.equal(JSON.parse(entry.after!).comment, 'refund ok');
      assert.equal((await server.store.traces.usage(t.clientId, day, day))[0]?.hitlRequests, hitlBefore, 'decisions leave the HITL count alone');
      assert.ok(events.some((e) => e.type === 'approval.decided' && e.approvalId === approvalId && e.status === 'approved'));
    });

    it('deny, with no body at all; audited as approval.deny', async () => {
      const { approvalId } = await openApproval(server, t.clientId);
      const res = await decide(server.url, t.token, approvalId, 'deny');
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.approval.status, 'denied');
      assert.equal((await poll(server.url, t.pak, approvalId)).body.status, 'denied');
      const audit = await server.store.audit.list(t.clientId, { limit: 100, newestFirst: true });
      assert.ok(audit.some((e) => e.action === 'approval.deny' && e.target === approvalId));
      const remember = await decide(server.url, t.token, (await openApproval(server, t.clientId)).approvalId, 'deny', { remember: 'always' });
      assert.equal(remember.status, 400, 'a denial cannot be remembered');
    });

    it('is decided once: a second decision is a 409 and changes nothing', async () => {
      const { approvalId } = await openApproval(server, t.clientId);
      assert.equal((await decide(server.url, t.token, approvalId, 'deny', { comment: 'no' })).status, 200);
      const again = await decide(server.url, t.token, approvalId, 'approve');
      assert.equal(again.status, 409);
      assert.equal(again.body.error.code, 'approval_decided');
      assert.equal(again.body.error.status, 'denied');
      const seen = await poll(server.url, t.pak, approvalId);
      assert.equal(seen.body.status, 'denied');
      assert.equal(seen.body.comment, 'no');
    });

    it('concurrent decisions: exactly one winner, the others 409', async () => {
      const { approvalId } = await openApproval(server, t.clientId);
      const results = await Promise.all([
        decide(server.url, t.token, approvalId, 'approve', { comment: 'a' }),
        decide(server.url, t.token, approvalId, 'deny', { comment: 'b' }),
        decide(server.url, t.token, approvalId, 'approve', { comment: 'c' }),
        decide(server.url, t.token, approvalId, 'deny', { comment: 'd' }),
      ]);
      const statuses = results.map((r) => r.status).sort();
      assert.deepEqual(statuses, [200, 409, 409, 409]);
      const winner = results.find((r) => r.status === 200)!;
      const audit = await server.store.audit.list(t.clientId, { limit: 500 });
      assert.equal(audit.filter((e) => e.target === approvalId).length, 1, 'only the winner is audited');
      assert.equal((await poll(server.url, t.pak, approvalId)).body.comment, winner.body.approval.comment);
    });

    it('a long poll answers the moment the approval is decided', async () => {
      const { approvalId } = await openApproval(server, t.clientId);
      const started = Date.now();
      const waiting = poll(server.url, t.pak, approvalId, 20);
      await sleep(300);
      assert.equal((await decide(server.url, t.token, approvalId, 'approve')).status, 200);
      const res = await waiting;
      assert.equal(res.body.status, 'approved');
      assert.ok(Date.now() - started < 10_000, 'answered on the decision, not at the 20 s deadline');
    });

    it('a long poll that nobody answers returns pending after the wait', async () => {
      const { approvalId } = await openApproval(server, t.clientId);
      const started = Date.now();
      const res = await poll(server.url, t.pak, approvalId, 1);
      assert.equal(res.status, 200);
      assert.equal(res.body.status, 'pending');
      assert.ok(Date.now() - started >= 950, 'it did wait');
    });

    it('expiry means denied: reads expired at once, cannot be approved, is swept with an event and an audit entry', async () => {
      const { approvalId } = await openApproval(server, t.clientId, { expiresInMs: 400 });
      const waited = await poll(server.url, t.pak, approvalId, 10);
      assert.equal(waited.body.status, 'expired', 'a long poll ends at the expiry');
      assert.equal(waited.body.decided_at, waited.body.expires_at);
      const late = await decide(server.url, t.token, approvalId, 'approve');
      assert.equal(late.status, 409);
      assert.equal(late.body.error.status, 'expired');
      const stored = await eventually('the sweeper', async () => {
        const a = await server.store.approvals.get(approvalId);
        return a?.status === 'expired' ? a : undefined;
      });
      assert.equal(stored.decidedAt, stored.expiresAt);
      // The sweep publishes the event after the commit (and, on PostgreSQL, after its NOTIFY), so
      // the row can read expired a moment before the event is out.
      await eventually('the expired event', async () => (events.some((e) => e.type === 'approval.expired' && e.approvalId === approvalId) ? true : undefined));
      const audit = await server.store.audit.list(t.clientId, { limit: 500 });
      const entries = audit.filter((e) => e.target === approvalId);
      assert.deepEqual(entries.map((e) => [e.action, e.actor]), [['approval.expire', 'system']]);
      assert.equal((await decide(server.url, t.token, approvalId, 'deny')).status, 409, 'expired stays expired');
    });

    it("a node's sweeps never overlap: each answers only after the expiries it may have skipped committed", async () => {
      // Watch the real store's expiry write, before the approval exists: this suite's own interval
      // sweeper (every 100 ms) goes through it too, and must not overlap the sweeps below either.
      const approvals = server.store.approvals;
      const expireDue = approvals.expireDue;
      let inside = 0;
      let mostInside = 0;
      let calls = 0;
      approvals.expireDue = async (...args: Parameters<typeof expireDue>) => {
        calls++;
        mostInside = Math.max(mostInside, ++inside);
        try {
          await new Promise((r) => setTimeout(r, 20));
          return await expireDue.apply(approvals, args);
        } finally {
          inside--;
        }
      };
      try {
        const { approvalId } = await openApproval(server, t.clientId, { expiresInMs: 1 });
        await new Promise((r) => setTimeout(r, 5));
        const sweeps = [server.services.approvals.sweep(), server.services.approvals.sweep(), server.services.approvals.sweep()];
        const last = await sweeps[2]!;
        assert.equal((await server.store.approvals.get(approvalId))?.status, 'expired', 'the last sweep answered after the expiry committed');
        assert.deepEqual(last.map((a) => a.id).filter((id) => id === approvalId), [], 'an earlier sweep expired it');
        await Promise.all(sweeps);
        assert.ok(calls >= 1, 'some sweep wrote the expiry');
        assert.equal(mostInside, 1);
      } finally {
        approvals.expireDue = expireDue;
      }
    });

    it('operators list by status with a cursor, read by id; another account sees nothing', async () => {
      const fresh = await createTenant(server.url);
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await openApproval(server, fresh.clientId)).approvalId);
      await decide(server.url, fresh.token, ids[0]!, 'deny');
      const pending = await http(server.url, 'GET', `/api/apps/${fresh.clientId}/approvals?status=pending&limit=1`, { token: fresh.token });
      assert.equal(pending.status, 200);
      assert.equal(pending.body.approvals.length, 1);
      assert.ok(pending.body.next_cursor);
      const page2 = await http(server.url, 'GET', `/api/apps/${fresh.clientId}/approvals?status=pending&limit=1&cursor=${pending.body.next_cursor}`, { token: fresh.token });
      assert.equal(page2.body.approvals.length, 1);
      assert.equal(page2.body.next_cursor, null);
      assert.deepEqual([pending.body.approvals[0].id, page2.body.approvals[0].id].sort(), [ids[1], ids[2]].sort());
      const denied = await http(server.url, 'GET', `/api/apps/${fresh.clientId}/approvals?status=denied`, { token: fresh.token });
      assert.deepEqual(denied.body.approvals.map((a: { id: string }) => a.id), [ids[0]]);
      assert.equal((await http(server.url, 'GET', `/api/apps/${fresh.clientId}/approvals?cursor=garbage`, { token: fresh.token })).body.error.code, 'invalid_cursor');

      const one = await http(server.url, 'GET', `/api/approvals/${ids[1]}`, { token: fresh.token });
      assert.equal(one.status, 200);
      assert.equal(one.body.client_id, fresh.clientId);

      // `other` is another account: the approval does not exist for it.
      assert.equal((await http(server.url, 'GET', `/api/approvals/${ids[1]}`, { token: other.token })).body.error.code, 'approval_not_found');
      const foreignDecision = await decide(server.url, other.token, ids[1]!, 'approve');
      assert.equal(foreignDecision.status, 404);
      assert.equal(foreignDecision.body.error.code, 'approval_not_found');
      assert.equal((await http(server.url, 'GET', `/api/apps/${fresh.clientId}/approvals`, { token: other.token })).body.error.code, 'app_not_found');
      assert.equal((await poll(server.url, fresh.pak, ids[1]!)).body.status, 'pending', 'the foreign attempt changed nothing');
    });

    it('remember session / always records a grant in the same decision; every cache reloads; grants list, count and revoke', async () => {
      const session = await openApproval(server, t.clientId, { tool: 'files.delete', sessionId: 'sess-9' });
      await server.services.guard.get(t.clientId); // cached before the grant exists
      const res = await decide(server.url, t.token, session.approvalId, 'approve', { remember: 'session' });
      assert.equal(res.status, 200, res.text);
      const g = res.body.grant;
      assert.equal(g.kind, 'session');
      assert.equal(g.tool, 'files.delete');
      assert.equal(g.session_id, 'sess-9');
      assert.equal(g.user_sub, 'user-42');
      assert.equal(g.arguments_hash, session.record.argumentsHash);
      assert.equal(g.approval_id, session.approvalId);
      assert.equal(res.body.approval.grant_id, g.id);
      assert.equal(res.body.approval.remember, 'session');

      const always = await openApproval(server, t.clientId, { tool: 'mail.send', sessionId: null });
      const res2 = await decide(server.url, t.token, always.approvalId, 'approve', { remember: 'always', remember_for_seconds: 3600 });
      assert.equal(res2.status, 200, res2.text);
      assert.equal(res2.body.grant.kind, 'always');
      assert.equal(res2.body.grant.session_id, null);
      assert.ok(Math.abs(Date.parse(res2.body.grant.expires_at) - (Date.now() + 3600_000)) < 60_000);

      const active = await server.store.guard.activeGrants(t.clientId, Date.now());
      assert.deepEqual(active.map((x) => x.id).sort(), [g.id, res2.body.grant.id].sort());
      const cached = await server.services.guard.get(t.clientId);
      assert.deepEqual(cached.grants.map((x) => x.id).sort(), [g.id, res2.body.grant.id].sort(), 'the guard cache reloaded its grants');

      const audit = await server.store.audit.list(t.clientId, { limit: 500 });
      assert.ok(audit.some((e) => e.action === 'grant.create' && e.target === g.id));

      // The check counts uses of a grant it applied (written by recordChecks).
      await server.services.checks.write({ ...session.record, id: 'chk_use_1', approval: null, decision: 'allow', grantId: g.id });
      await server.services.checks.write({ ...session.record, id: 'chk_use_2', approval: null, decision: 'allow', grantId: g.id });
      const listed = await http(server.url, 'GET', `/api/apps/${t.clientId}/grants`, { token: t.token });
      assert.equal(listed.status, 200);
      assert.equal(listed.body.grants.find((x: { id: string }) => x.id === g.id).uses, 2);
      assert.deepEqual(listed.body.counts, { active: 2, expired: 0, revoked: 0, uses: 2 });

      assert.equal((await http(server.url, 'DELETE', `/api/apps/${t.clientId}/grants/${g.id}`, { token: other.token })).status, 404);
      const revoked = await http(server.url, 'DELETE', `/api/apps/${t.clientId}/grants/${g.id}`, { token: t.token });
      assert.equal(revoked.status, 200);
      assert.equal(revoked.body.status, 'revoked');
      assert.deepEqual((await server.store.guard.activeGrants(t.clientId, Date.now())).map((x) => x.id), [res2.body.grant.id]);
      assert.deepEqual((await server.services.guard.get(t.clientId)).grants.map((x) => x.id), [res2.body.grant.id], 'revocation reloads the cache');
      const withRevoked = await http(server.url, 'GET', `/api/apps/${t.clientId}/grants?include_revoked=true`, { token: t.token });
      assert.equal(withRevoked.body.counts.revoked, 1);
      const audit2 = await server.store.audit.list(t.clientId, { limit: 500 });
      assert.equal(audit2.filter((e) => e.action === 'grant.revoke' && e.target === g.id).length, 1);
      assert.equal((await http(server.url, 'DELETE', `/api/apps/${t.clientId}/grants/${g.id}`, { token: t.token })).status, 200, 'revoking again is harmless');
      assert.equal((await server.store.audit.list(t.clientId, { limit: 500 })).filter((e) => e.action === 'grant.revoke').length, 1, 'and not audited twice');
      const missing = await http(server.url, 'DELETE', `/api/apps/${t.clientId}/grants/grt_nope`, { token: t.token });
      assert.equal(missing.body.error.code, 'grant_not_found');
    });

    it('remember session needs a session; remember_for_seconds needs session or always', async () => {
      const noSession = await openApproval(server, t.clientId, { sessionId: null });
      const res = await decide(server.url, t.token, noSession.approvalId, 'approve', { remember: 'session' });
      assert.equal(res.status, 400);
      assert.equal(res.body.error.fields[0].field, 'remember');
      const once = await decide(server.url, t.token, noSession.approvalId, 'approve', { remember: 'once', remember_for_seconds: 60 });
      assert.equal(once.status, 400);
      assert.equal((await poll(server.url, t.pak, noSession.approvalId)).body.status, 'pending', 'a refused decision decides nothing');
    });
  });
}

describe('approvals across two nodes (one PostgreSQL)', POSTGRES_ONLY, () => {
  let a: RunningServer;
  let b: RunningServer;
  let t: Tenant;
  let nodes: TwoNodes;
  before(async () => {
    nodes = await twoNodesOnePostgres();
    ({ a, b, t } = nodes);
  });
  after(() => nodes.close());

  it('a long poll on node B answers when node A decides', async () => {
    const { approvalId } = await openApproval(a, t.clientId);
    const started = Date.now();
    const waiting = poll(b.url, t.pak, approvalId, 20);
    await sleep(300);
    assert.equal((await decide(a.url, t.token, approvalId, 'deny', { comment: 'from A' })).status, 200);
    const res = await waiting;
    assert.equal(res.body.status, 'denied');
    assert.equal(res.body.comment, 'from A');
    assert.ok(Date.now() - started < 10_000);
  });

  it('decisions on both nodes at once: one winner, one 409', async () => {
    for (let i = 0; i < 5; i++) {
      const { approvalId } = await openApproval(a, t.clientId);
      const results = await Promise.all([decide(a.url, t.token, approvalId, 'approve'), decide(b.url, t.token, approvalId, 'deny')]);
      assert.deepEqual(results.map((r) => r.status).sort(), [200, 409]);
    }
  });

  it("a grant made on node A reaches node B's guard cache", async () => {
    const { approvalId } = await openApproval(a, t.clientId);
    assert.deepEqual((await b.services.guard.get(t.clientId)).grants, []);
    const res = await decide(a.url, t.token, approvalId, 'approve', { remember: 'always' });
    const grantId = res.body.grant.id as string;
    await eventually('B to see the grant', async () => ((await b.services.guard.get(t.clientId)).grants.some((g) => g.id === grantId) ? true : undefined), 2000);
  });
});

describe('shutdown with a long poll open', () => {
  it('answers the waiting poll with the current state instead of holding the close for 30 s', async () => {
    const server = await startServer('sqlite');
    const t = await createTenant(server.url);
    const { approvalId } = await openApproval(server, t.clientId);
    const waiting = poll(server.url, t.pak, approvalId, 30);
    await sleep(300);
    const started = Date.now();
    await server.close();
    const res = await waiting;
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'pending');
    assert.ok(Date.now() - started < 10_000, `close took ${Date.now() - started} ms`);
  });
});
