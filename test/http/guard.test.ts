/**
 * AI Guard over HTTP on both engines: rule effects, argument conditions, rate-limit windows, kill
 * switch (and its usage count), policy versioning and audit, argument privacy, simulation, tenant
 * isolation, and what bad input gets.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { canonicalJson } from '../../src/guard/evaluate.js';
import { createTenant, ENGINES, freshLocation, http, postTrace, rawSql, spawnServer, startServer, twoNodesOnePostgres, TEST_SECRET_KEY, traceBody, type RunningServer, type TwoNodes, type SpawnedServer, type Tenant, POSTGRES_ONLY } from '../support/harness.js';

const today = () => new Date().toISOString().slice(0, 10);

function guard(url: string, t: Tenant) {
  return {
    check: (body: Record<string, unknown>) =>
      http(url, 'POST', '/panopticon/guard/check', { token: t.pak, body: { client_id: t.clientId, tool: 'send_email', scope: 'mail:send', ...body } }),
    addRule: (rule: Record<string, unknown>) => http(url, 'POST', `/api/apps/${t.clientId}/policies/rules`, { token: t.token, body: rule }),
    policy: () => http(url, 'GET', `/api/apps/${t.clientId}/policies`, { token: t.token }),
    usage: async () => (await http(url, 'GET', `/api/apps/${t.clientId}/usage?since=${today()}`, { token: t.token })).body.totals,
    api: (method: string, path: string, body?: unknown) => http(url, method, `/api/apps/${t.clientId}${path}`, { token: t.token, body }),
  };
}

for (const engine of ENGINES) {
  describe(`AI Guard [${engine}]`, () => {
    let server: RunningServer;

    before(async () => {
      server = await startServer(engine);
    });
    after(() => server.close());

    it('with no policy every call is allowed by the default, and the decision is recorded', async () => {
      const t = await createTenant(server.url);
      const g = guard(server.url, t);
      const res = await g.check({ user_sub: 'alice', arguments: { to: 'x@y.z' } });
      assert.equal(res.status, 200);
      assert.equal(res.body.decision, 'allow');
      assert.equal(res.body.reason, 'default');
      assert.equal(res.body.rule_id, null);
      assert.equal(res.body.policy_version, 0);
      assert.match(res.body.check_id, /^chk_/);
      const checks = await g.api('GET', '/checks');
      assert.equal(checks.body.checks.length, 1);
      assert.equal(checks.body.checks[0].check_id, res.body.check_id);
      assert.equal(checks.body.checks[0].user_sub, 'alice');
    });

    it('denies by an argument condition and allows what it does not match', async () => {
      const t = await createTenant(server.url);
      const g = guard(server.url, t);
      const added = await g.addRule({
        name: 'internal mail only', effect: 'deny', reason: 'external recipients are not allowed',
        match: { tools: ['send_email'], arguments: [{ path: 'to', op: 'not_suffix', value: '@ourco.com' }] },
      });
      assert.equal(added.status, 201, added.text);
      assert.equal(added.body.version, 1);
      assert.match(added.body.rule.id, /^rul_/);
      const denied = await g.check({ arguments: { to: 'eve@evil.com' } });
      assert.equal(denied.body.decision, 'deny');
      assert.equal(denied.body.reason, 'external recipients are not allowed');
      assert.equal(denied.body.rule_id, added.body.rule.id);
      assert.equal(denied.body.policy_version, 1);
      assert.equal((await g.check({ arguments: { to: 'bob@ourco.com' } })).body.decision, 'allow');
      assert.equal((await g.check({ tool: 'read_email', arguments: { to: 'eve@evil.com' } })).body.decision, 'allow');
    });

    it('require_approval opens an approval request, counted as a HITL request in usage', async () => {
      const t = await createTenant(server.url);
      const g = guard(server.url, t);
      await g.addRule({ name: 'big transfers', effect: 'require_approval', approval_ttl_seconds: 120, match: { tools: ['transfer'], arguments: [{ path: '/amount', op: 'gt', value: 1000 }] } });
      const before = Date.now();
      const res = await g.check({ tool: 'transfer', scope: 'payments:write', user_sub: 'alice', session_id: 's1', arguments: { amount: 5000 } });
      assert.equal(res.body.decision, 'require_approval');
      assert.match(res.body.approval.id, /^apr_/);
      assert.equal(res.body.approval.poll_url, `/panopticon/approvals/${res.body.approval.id}`);
      const ttl = Date.parse(res.body.approval.expires_at) - before;
      assert.ok(ttl > 110_000 && ttl <= 125_000, `ttl ${ttl}`);
      assert.equal((await g.check({ tool: 'transfer', arguments: { amount: 10 } })).body.decision, 'allow');
      assert.equal((await g.usage()).hitl_requests, 1);
      const db = await rawSql(server.location);
      try {
        const rows = await db.query('SELECT status, tool, user_sub, session_id, arguments_hash, check_id FROM approvals WHERE id = ?', [res.body.approval.id]);
        assert.equal(rows.length, 1);
        assert.equal(rows[0]!.status, 'pending');
        assert.equal(rows[0]!.check_id, res.body.check_id);
        assert.equal(rows[0]!.arguments_hash, server.services.argumentHashes.hash(t.clientId, { amount: 5000 }));
      } finally {
        await db.close();
      }
    });

    it('rate limits count per user in a fixed window and deny with a retry hint', async () => {
      const t = await createTenant(server.url);
      const g = guard(server.url, t);
      await g.addRule({ name: 'two a minute', effect: 'allow', rate_limit: { max: 2, period: 'minute', per: 'user' }, match: { tools: ['search'] } });
      const call = (user: string) => g.check({ tool: 'search', scope: 'web', user_sub: user });
      assert.equal((await call('alice')).body.decision, 'allow');
      assert.equal((await call('alice')).body.decision, 'allow');
      const third = await call('alice');
      assert.equal(third.body.decision, 'deny');
      assert.equal(third.body.reason, 'rate_limited');
      assert.ok(third.body.retry_after_seconds >= 1 && third.body.retry_after_seconds <= 60);
      assert.equal((await call('bob')).body.decision, 'allow', 'another user has a window of their own');
    });

    it('kill switch: every check denied, counted in usage, traces still stored; revive restores', async () => {
      const t = await createTenant(server.url);
      const g = guard(server.url, t);
      await g.addRule({ name: 'allow all', effect: 'allow', match: { tools: ['*'] } });
      const killed = await g.api('POST', '/kill', { reason: 'incident 42' });
      assert.equal(killed.status, 200, killed.text);
      assert.equal(killed.body.kill_switch.tool, null);
      const denied = await g.check({});
      assert.equal(denied.body.decision, 'deny');
      assert.equal(denied.body.reason, 'kill_switch');
      assert.equal(denied.body.message, 'incident 42');
      await g.check({ tool: 'other' });
      assert.equal((await g.usage()).kill_switch, 2);
      assert.equal((await postTrace(server.url, t.pak, traceBody(t.clientId, { tool: 'send_email', status: 'denied', started_at: new Date().toISOString() }))).status, 202, 'the audit trail does not go dark');
      assert.equal((await g.api('POST', '/revive', {})).status, 200);
      assert.equal((await g.check({})).body.decision, 'allow');
      const again = await g.api('POST', '/revive');
      assert.equal(again.status, 404);
      assert.equal(again.body.error.code, 'kill_switch_not_found');

      await g.api('POST', '/kill', { tool: 'send_email', reason: 'spam wave' });
      assert.equal((await g.check({})).body.reason, 'kill_switch');
      assert.equal((await g.check({ tool: 'search' })).body.decision, 'allow', 'a tool kill spares other tools');
      const listed = await g.api('GET', '/kill-switches');
      assert.deepEqual(listed.body.kill_switches.map((k: { tool: string }) => k.tool), ['send_email']);
      assert.equal((await g.api('POST', '/revive', { tool: 'send_email' })).status, 200);
    });

    it('every policy change bumps the version and is audited before → after; the chain verifies', async () => {
      const t = await createTenant(server.url);
      const g = guard(server.url, t);
      const a = (await g.addRule({ name: 'a', effect: 'deny', match: { tools: ['a'] } })).body.rule.id as string;
      const b = (await g.addRule({ name: 'b', effect: 'deny', match: { tools: ['b'] } })).body.rule.id as string;
      const moved = await g.api('POST', `/policies/rules/${b}/move`, { position: 1 });
      assert.equal(moved.body.position, 1);
      assert.equal((await g.api('POST', `/policies/rules/${a}/disable`)).body.rule.enabled, false);
      assert.equal((await g.check({ tool: 'a' })).body.decision, 'allow', 'a disabled rule does not apply');
      assert.equal((await g.api('POST', `/policies/rules/${a}/enable`)).body.rule.enabled, true);
      const edited = await g.api('PUT', `/policies/rules/${a}`, { name: 'a2', effect: 'require_approval', match: { tools: ['a'] } });
      assert.equal(edited.body.rule.name, 'a2');
      assert.equal((await g.api('PUT', '/policies/default', { effect: 'deny' })).body.default_effect, 'deny');
      assert.equal((await g.check({ tool: 'zzz' })).body.decision, 'deny');
      const removed = await g.api('DELETE', `/policies/rules/${b}`);
      assert.equal(removed.body.removed.id, b);
      const policy = await g.policy();
      assert.equal(policy.body.version, 8);
      assert.deepEqual(policy.body.rules.map((r: { id: string }) => r.id), [a]);

      const audit = await g.api('GET', '/audit?limit=100');
      const actions = audit.body.entries.map((e: { action: string }) => e.action).reverse();
      assert.deepEqual(actions, ['app.create', 'app.enable', 'pak.issue', 'policy.rule_add', 'policy.rule_add', 'policy.rule_move', 'policy.rule_disable', 'policy.rule_enable', 'policy.rule_edit', 'policy.default', 'policy.rule_remove']);
      const edit = audit.body.entries.find((e: { action: string }) => e.action === 'policy.rule_edit');
      assert.equal(edit.before.rule.name, 'a');
      assert.equal(edit.after.rule.name, 'a2');
      assert.equal(edit.actor_email, t.email);
      const verify = await g.api('GET', '/audit/verify');
      assert.deepEqual([verify.body.ok, verify.body.entries], [true, 11]);
    });

    it('rejects bad rules, unknown rule ids and stale versions, changing nothing', async () => {
      const t = await createTenant(server.url);
      const g = guard(server.url, t);
      const backref = await g.addRule({ name: 'x', effect: 'deny', match: { arguments: [{ path: 'q', op: 'matches', value: '(a)\\1' }] } });
      assert.equal(backref.status, 400);
      assert.equal(backref.body.error.code, 'validation_failed');
      assert.equal(backref.body.error.fields[0].field, 'match.arguments.0');
      const badEffect = await g.addRule({ name: 'x', effect: 'maybe', match: {} });
      assert.equal(badEffect.status, 400);
      assert.equal(badEffect.body.error.fields[0].field, 'effect');
      const missing = await g.api('POST', '/policies/rules/rul_nope/disable');
      assert.equal(missing.status, 404);
      assert.equal(missing.body.error.code, 'rule_not_found');
      const stale = await g.api('PUT', '/policies', { if_version: 5, rules: [] });
      assert.equal(stale.status, 409);
      assert.equal(stale.body.error.code, 'policy_conflict');
      assert.equal((await g.policy()).body.version, 0);
      const imported = await g.api('PUT', '/policies', { if_version: 0, default_effect: 'require_approval', rules: [{ name: 'r', effect: 'allow', match: { tools: ['ok_*'] } }] });
      assert.equal(imported.status, 200, imported.text);
      assert.equal(imported.body.version, 1);
      assert.match(imported.body.rules[0].id, /^rul_/);
    });

    it('bad check input gets the documented error and records nothing', async () => {
      const t = await createTenant(server.url);
      const g = guard(server.url, t);
      const other = await createTenant(server.url);
      const cases: Array<[string, Promise<{ status: number; body: any }>, number, string]> = [
        ['no tool', http(server.url, 'POST', '/panopticon/guard/check', { token: t.pak, body: { client_id: t.clientId, scope: 's' } }), 400, 'validation_failed'],
        ['too deep', g.check({ arguments: { a: { b: { c: { d: { e: { f: { g: { h: { i: 1 } } } } } } } } } }), 400, 'validation_failed'],
        ['too big', g.check({ arguments: { blob: 'x'.repeat(20_000) } }), 400, 'validation_failed'],
        ['NUL in the tool', g.check({ tool: 'send\u0000email' }), 400, 'validation_failed'],
        ['NUL in user_sub', g.check({ user_sub: 'a\u0000' }), 400, 'validation_failed'],
        ['another app', http(server.url, 'POST', '/panopticon/guard/check', { token: other.pak, body: { client_id: t.clientId, tool: 'x', scope: 's' } }), 403, 'client_id_mismatch'],
        ['no key', http(server.url, 'POST', '/panopticon/guard/check', { body: { client_id: t.clientId, tool: 'x', scope: 's' } }), 401, 'pak_missing'],
        ['not json', http(server.url, 'POST', '/panopticon/guard/check', { token: t.pak, raw: 'tool=x', headers: { 'content-type': 'text/plain' } }), 415, 'unsupported_media_type'],
      ];
      for (const [name, pending, status, code] of cases) {
        const res = await pending;
        assert.equal(res.status, status, name);
        assert.equal(res.body.error.code, code, name);
      }
      assert.equal((await g.api('GET', '/checks')).body.checks.length, 0);
    });

    it('a trace carrying a check_id shows the decision and rule that let it run; another app\'s check shows nothing', async () => {
      const t = await createTenant(server.url);
      const other = await createTenant(server.url);
      const g = guard(server.url, t);
      const rule = (await g.addRule({ name: 'reads ok', effect: 'allow', match: { tools: ['read_*'] } })).body.rule.id as string;
      const decided = await g.check({ tool: 'read_file', scope: 'fs:read' });
      const eventId = crypto.randomUUID();
      const started = new Date().toISOString();
      assert.equal((await postTrace(server.url, t.pak, traceBody(t.clientId, { event_id: eventId, tool: 'read_file', check_id: decided.body.check_id, started_at: started }))).status, 202);
      const foreign = await postTrace(server.url, other.pak, traceBody(other.clientId, { tool: 'read_file', check_id: decided.body.check_id, started_at: started }));
      assert.equal(foreign.status, 202);
      const bad = await postTrace(server.url, t.pak, traceBody(t.clientId, { check_id: 'not-a-check' }));
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.fields[0].field, 'check_id');

      const timeline = await g.api('GET', '/traces?limit=1');
      assert.equal(timeline.body.traces[0].event_id, eventId);
      assert.equal(timeline.body.traces[0].check_id, decided.body.check_id);
      assert.deepEqual(timeline.body.traces[0].guard, { decision: 'allow', reason: 'reads ok', rule_id: rule, policy_version: 1, approval_id: null, grant_id: null });
      const theirs = await http(server.url, 'GET', `/api/apps/${other.clientId}/traces?limit=1`, { token: other.token });
      assert.equal(theirs.body.traces[0].guard, null, "another app's check_id reveals nothing");
    });

    it('keeps only a hash of the arguments unless the app opts in', async () => {
      const t = await createTenant(server.url);
      const g = guard(server.url, t);
      const args = { to: 'bob@ourco.com', body: 'secret plans' };
      const first = await g.check({ arguments: args });
      let checks = (await g.api('GET', '/checks')).body.checks;
      assert.equal(checks[0].arguments, null);
      assert.equal(checks[0].arguments_sha256, server.services.argumentHashes.hash(t.clientId, args));
      assert.notEqual(checks[0].arguments_sha256, crypto.createHash('sha256').update(canonicalJson(args)).digest('hex'), 'keyed, not a plain SHA-256 anyone can recompute');
      const db = await rawSql(server.location);
      try {
        const stored = await db.query('SELECT * FROM guard_checks WHERE id = ?', [first.body.check_id]);
        assert.ok(!JSON.stringify(stored).includes('secret plans'));
      } finally {
        await db.close();
      }
      assert.equal((await g.api('PUT', '/guard/settings', { keep_arguments: true })).status, 200);
      await g.check({ arguments: args });
      checks = (await g.api('GET', '/checks')).body.checks;
      assert.deepEqual(checks[0].arguments, args);
    });

    it('simulates a proposed policy on recent checks and traces, per rule', async () => {
      const t = await createTenant(server.url);
      const g = guard(server.url, t);
      await g.api('PUT', '/guard/settings', { keep_arguments: true });
      await g.check({ arguments: { to: 'eve@evil.com' } });
      await g.check({ arguments: { to: 'bob@ourco.com' } });
      await g.check({ tool: 'transfer', scope: 'pay', arguments: { amount: 5000 } });
      await postTrace(server.url, t.pak, traceBody(t.clientId, { tool: 'delete_repo', started_at: new Date().toISOString() }));
      const res = await g.api('POST', '/policies/simulate', {
        policy: {
          rules: [
            { id: 'rul_mail', name: 'mail', effect: 'deny', match: { tools: ['send_email'], arguments: [{ path: 'to', op: 'not_suffix', value: '@ourco.com' }] } },
            { name: 'no deletes', effect: 'require_approval', match: { tools: ['delete_*'] } },
          ],
        },
      });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.samples, 4);
      assert.equal(res.body.changed, 2);
      assert.deepEqual(res.body.current, { allow: 4, deny: 0, require_approval: 0 });
      assert.deepEqual(res.body.proposed, { allow: 2, deny: 1, require_approval: 1 });
      const mail = res.body.rules.find((r: { rule_id: string }) => r.rule_id === 'rul_mail');
      assert.deepEqual([mail.matched, mail.changed, mail.to_deny], [1, 1, 1]);
      assert.equal((await g.policy()).body.version, 0, 'a simulation changes nothing');
    });

    it('detects a changed, a deleted and a truncated audit entry', async () => {
      const t = await createTenant(server.url);
      const g = guard(server.url, t);
      for (const name of ['a', 'b', 'c']) await g.addRule({ name, effect: 'deny', match: { tools: [name] } });
      assert.equal((await g.api('GET', '/audit/verify')).body.ok, true);
      const db = await rawSql(server.location);
      try {
        const [row] = await db.query('SELECT after FROM audit_log WHERE client_id = ? AND seq = 4', [t.clientId]);
        await db.query('UPDATE audit_log SET after = ? WHERE client_id = ? AND seq = 4', [String(row!.after).replace('"a"', '"evil"'), t.clientId]);
        let v = (await g.api('GET', '/audit/verify')).body;
        assert.deepEqual([v.ok, v.problem, v.seq], [false, 'hash_mismatch', 4]);
        await db.query('UPDATE audit_log SET after = ? WHERE client_id = ? AND seq = 4', [row!.after, t.clientId]);
        assert.equal((await g.api('GET', '/audit/verify')).body.ok, true);

        await db.query('DELETE FROM audit_log WHERE client_id = ? AND seq = 6', [t.clientId]);
        v = (await g.api('GET', '/audit/verify')).body;
        assert.deepEqual([v.ok, v.problem], [false, 'tail_mismatch']);
        await db.query('DELETE FROM audit_log WHERE client_id = ? AND seq = 4', [t.clientId]);
        v = (await g.api('GET', '/audit/verify')).body;
        assert.deepEqual([v.ok, v.problem, v.seq], [false, 'missing_entry', 4]);
      } finally {
        await db.close();
      }
    });

    it("another account cannot read or change this app's guard", async () => {
      const t = await createTenant(server.url);
      const intruder = await createTenant(server.url);
      const as = (method: string, path: string, body?: unknown) => http(server.url, method, `/api/apps/${t.clientId}${path}`, { token: intruder.token, body });
      const rule = (await guard(server.url, t).addRule({ name: 'a', effect: 'deny', match: {} })).body.rule.id as string;
      const attempts: Array<[string, string, unknown?]> = [
        ['GET', '/policies'], ['PUT', '/policies', { rules: [] }], ['POST', '/policies/rules', { name: 'x', effect: 'allow', match: {} }],
        ['PUT', `/policies/rules/${rule}`, { name: 'x', effect: 'allow', match: {} }], ['POST', `/policies/rules/${rule}/disable`],
        ['POST', `/policies/rules/${rule}/move`, { position: 1 }], ['DELETE', `/policies/rules/${rule}`], ['PUT', '/policies/default', { effect: 'deny' }],
        ['POST', '/policies/simulate', { policy: { rules: [] } }], ['GET', '/kill-switches'], ['POST', '/kill', { reason: 'x' }], ['POST', '/revive', {}],
        ['GET', '/checks'], ['PUT', '/guard/settings', { keep_arguments: true }], ['GET', '/audit'], ['GET', '/audit/verify'],
      ];
      for (const [method, path, body] of attempts) {
        const res = await as(method, path, body);
        assert.equal(res.status, 404, `${method} ${path}`);
        assert.equal(res.body.error.code, 'app_not_found', `${method} ${path}`);
      }
      const policy = await guard(server.url, t).policy();
      assert.equal(policy.body.version, 1);
      assert.equal(policy.body.kill_switches.length, 0);
    });
  });
}

describe('kill switch on every node (two nodes, one PostgreSQL)', POSTGRES_ONLY, () => {
  let a: RunningServer;
  let b: RunningServer;
  let t: Tenant;
  let nodes: TwoNodes;
  before(async () => {
    nodes = await twoNodesOnePostgres();
    ({ a, b, t } = nodes);
  });
  after(() => nodes.close());

  async function decisionWithin(url: string, expected: string, ms: number, body: Record<string, unknown> = {}): Promise<string> {
    const deadline = Date.now() + ms;
    let decision = '';
    while (Date.now() < deadline) {
      decision = (await guard(url, t).check(body)).body.decision;
      if (decision === expected) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    return decision;
  }

  it('a kill on node A denies on node B within a second, though B had the policy cached; revive likewise', async () => {
    assert.equal((await guard(b.url, t).check({})).body.decision, 'allow');
    assert.equal((await guard(a.url, t).api('POST', '/kill', { reason: 'stop' })).status, 200);
    assert.equal(await decisionWithin(b.url, 'deny', 1000), 'deny');
    assert.equal((await guard(a.url, t).api('POST', '/revive', {})).status, 200);
    assert.equal(await decisionWithin(b.url, 'allow', 1000), 'allow');
  });

  it('a rule added on node B applies on node A within a second', async () => {
    assert.equal((await guard(a.url, t).check({ tool: 'rm' })).body.decision, 'allow');
    await guard(b.url, t).addRule({ name: 'no rm', effect: 'deny', match: { tools: ['rm'] } });
    assert.equal(await decisionWithin(a.url, 'deny', 1000, { tool: 'rm' }), 'deny');
    assert.equal((await guard(a.url, t).check({ tool: 'rm' })).body.policy_version, 1);
    assert.equal((await guard(a.url, t).check({ tool: 'ls' })).body.decision, 'allow');
  });
});

describe('kill switch across two server processes sharing PostgreSQL', POSTGRES_ONLY, () => {
  const fresh = freshLocation('postgres');
  const nodes: SpawnedServer[] = [];
  let t: Tenant;
  before(async () => {
    const env = { PANOPTICON_DB: fresh.dbValue, PANOPTICON_SECRET_KEY: TEST_SECRET_KEY.toString('hex') };
    nodes.push(await spawnServer(env));
    nodes.push(await spawnServer(env));
    t = await createTenant(nodes[0]!.url);
  });
  after(async () => {
    for (const n of nodes) {
      n.child.kill('SIGTERM');
      await n.exited;
    }
    await fresh.cleanup();
  });

  it('kill on process A: process B denies within a second; revive on B: A allows within a second', async () => {
    const [a, b] = [nodes[0]!, nodes[1]!];
    const decision = async (url: string) => (await guard(url, t).check({})).body.decision as string;
    const within = async (url: string, expected: string) => {
      const deadline = Date.now() + 1000;
      let d = await decision(url);
      while (d !== expected && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        d = await decision(url);
      }
      return d;
    };
    assert.equal(await decision(b.url), 'allow');
    assert.equal((await guard(a.url, t).api('POST', '/kill', { reason: 'stop' })).status, 200);
    assert.equal(await within(b.url, 'deny'), 'deny');
    assert.equal((await guard(b.url, t).api('POST', '/revive', {})).status, 200);
    assert.equal(await within(a.url, 'allow'), 'allow');
  });
});
