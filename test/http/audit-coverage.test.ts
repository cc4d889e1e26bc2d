/**
 * Every state-changing operator route writes an audit entry, and refuses another account (404,
 * nothing written); every read that names an app or an approval refuses another account too. The routes come from /openapi.json
 * (every POST, PUT, PATCH and DELETE under /api/), so a route added later is in this list whether
 * or not its author thought of the audit log: the test fails until it is in the table below, either
 * with a valid request and the action its entry must name, or exempted with a reason. The table
 * runs in order against one tenant (later requests use what earlier ones created), on both engines.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTenant, ENGINES, http, startServer, type RunningServer, type Tenant } from '../support/harness.js';

interface Ctx {
  server: RunningServer;
  t: Tenant;
  /** The app's current PAK (the tenant's is revoked and replaced along the way). */
  pak: string;
  ids: Record<string, string>;
}

interface Call {
  /** The path with its parameters filled in, and the body. */
  path: string;
  body?: unknown;
  /** The app whose log must grow (default: the tenant's). */
  clientId?: string;
  /** The audit action the new entries must include. */
  action: string;
  /** Reads what later calls need from the response. */
  keep?: (body: any, ctx: Ctx) => void;
}

type Case =
  | { exempt: string }
  | { calls: (ctx: Ctx) => Promise<Call[]> | Call[] };

const APP = '/api/apps/{client_id}';

/** Opens an approval request the way an agent does: a guard check that a require_approval rule answers. */
async function openApproval(ctx: Ctx, amount: number): Promise<string> {
  const res = await http(ctx.server.url, 'POST', '/panopticon/guard/check', {
    token: ctx.pak, body: { client_id: ctx.t.clientId, tool: 'refund', scope: 'payments:write', arguments: { amount } },
  });
  assert.equal(res.body.decision, 'require_approval', JSON.stringify(res.body));
  ctx.ids.approval = res.body.approval.id as string;
  return res.body.approval.id as string;
}

/** Quarantines a changed definition of a tool the way a proxy does: a report pins it, a second one with another description is held. */
async function quarantinedDefinition(ctx: Ctx, description: string): Promise<string> {
  const report = (d: string) => http(ctx.server.url, 'POST', '/panopticon/tools', { token: ctx.pak, body: { client_id: ctx.t.clientId, tools: [{ name: 'write_file', description: d }] } });
  await report('Writes a file');
  const res = await report(description);
  assert.equal(res.body.tools?.[0]?.status, 'pending', res.text);
  return res.body.tools[0].definition_id as string;
}

/**
 * `METHOD path` as /openapi.json spells it → how to exercise it, in the order they run. Exemptions
 * are for requests that change no governed state; keep them few, each with its reason.
 */
const TABLE: Array<[string, Case]> = [
  ['POST /api/auth/signup', { exempt: 'creates the caller\'s own account and session; no application exists yet whose log could hold it' }],
  ['POST /api/auth/login', { exempt: 'starts a session for the caller; changes no governed state' }],
  ['POST /api/auth/token', { exempt: 'signs the caller in with an operator token (`logi login`); changes no governed state' }],
  ['DELETE /api/auth/token', { exempt: 'signs the caller out (revokes the token it is called with); changes no governed state' }],
  ['POST /api/auth/logout', { exempt: 'ends the caller\'s own session; changes no governed state' }],
  ['POST /api/apps/{client_id}/policies/simulate', { exempt: 'evaluates a proposed policy against past checks; stores nothing' }],

  ['POST /api/apps', {
    calls: () => [{ path: '/api/apps', body: { name: 'audited' }, action: 'app.create', keep: (b, ctx) => (ctx.ids.newApp = b.client_id) }],
  }],
  [`PATCH ${APP}`, {
    calls: (ctx) => [
      { path: `/api/apps/${ctx.t.clientId}`, body: { name: 'renamed' }, action: 'app.rename' },
      { path: `/api/apps/${ctx.t.clientId}`, body: { panopticon_enabled: false }, action: 'app.disable' },
      { path: `/api/apps/${ctx.t.clientId}`, body: { panopticon_enabled: true }, action: 'app.enable' },
      // The new app's own log, too.
      { path: `/api/apps/${ctx.ids.newApp}`, body: { panopticon_enabled: true }, clientId: ctx.ids.newApp, action: 'app.enable' },
    ],
  }],
  [`POST ${APP}/paks/revoke`, { calls: (ctx) => [{ path: `/api/apps/${ctx.t.clientId}/paks/revoke`, body: {}, action: 'pak.revoke' }] }],
  [`POST ${APP}/paks`, { calls: (ctx) => [{ path: `/api/apps/${ctx.t.clientId}/paks`, action: 'pak.issue' }] }],
  [`POST ${APP}/paks/rotate`, {
    calls: (ctx) => [{ path: `/api/apps/${ctx.t.clientId}/paks/rotate`, body: { grace_seconds: 0 }, action: 'pak.rotate', keep: (b, c) => (c.pak = b.pak) }],
  }],
  [`PUT ${APP}/policies`, { calls: (ctx) => [{ path: `/api/apps/${ctx.t.clientId}/policies`, body: { rules: [] }, action: 'policy.import' }] }],
  [`POST ${APP}/policies/rules`, {
    calls: (ctx) => [{
      path: `/api/apps/${ctx.t.clientId}/policies/rules`, body: { name: 'refunds', effect: 'require_approval', match: { tools: ['refund'] } },
      action: 'policy.rule_add', keep: (b, c) => (c.ids.rule = b.rule.id),
    }],
  }],
  [`PUT ${APP}/policies/rules/{rule_id}`, {
    calls: (ctx) => [{ path: `/api/apps/${ctx.t.clientId}/policies/rules/${ctx.ids.rule}`, body: { name: 'refunds (edited)', effect: 'require_approval', match: { tools: ['refund'] } }, action: 'policy.rule_edit' }],
  }],
  [`POST ${APP}/policies/rules/{rule_id}/disable`, { calls: (ctx) => [{ path: `/api/apps/${ctx.t.clientId}/policies/rules/${ctx.ids.rule}/disable`, action: 'policy.rule_disable' }] }],
  [`POST ${APP}/policies/rules/{rule_id}/enable`, { calls: (ctx) => [{ path: `/api/apps/${ctx.t.clientId}/policies/rules/${ctx.ids.rule}/enable`, action: 'policy.rule_enable' }] }],
  [`POST ${APP}/policies/rules/{rule_id}/move`, { calls: (ctx) => [{ path: `/api/apps/${ctx.t.clientId}/policies/rules/${ctx.ids.rule}/move`, body: { position: 1 }, action: 'policy.rule_move' }] }],
  [`PUT ${APP}/policies/default`, { calls: (ctx) => [{ path: `/api/apps/${ctx.t.clientId}/policies/default`, body: { effect: 'allow' }, action: 'policy.default' }] }],
  [`POST ${APP}/kill`, { calls: (ctx) => [{ path: `/api/apps/${ctx.t.clientId}/kill`, body: { tool: 'rm', reason: 'incident' }, action: 'kill.on' }] }],
  [`POST ${APP}/revive`, { calls: (ctx) => [{ path: `/api/apps/${ctx.t.clientId}/revive`, body: { tool: 'rm' }, action: 'kill.off' }] }],
  [`PUT ${APP}/guard/settings`, { calls: (ctx) => [{ path: `/api/apps/${ctx.t.clientId}/guard/settings`, body: { keep_arguments: true }, action: 'guard.settings' }] }],
  ['POST /api/approvals/{approval_id}/approve', {
    calls: async (ctx) => [{
      path: `/api/approvals/${await openApproval(ctx, 100)}/approve`, body: { remember: 'always' }, action: 'approval.approve',
      keep: (b, c) => (c.ids.grant = b.grant.id),
    }],
  }],
  ['POST /api/approvals/{approval_id}/deny', { calls: async (ctx) => [{ path: `/api/approvals/${await openApproval(ctx, 200)}/deny`, body: {}, action: 'approval.deny' }] }],
  [`DELETE ${APP}/grants/{grant_id}`, { calls: (ctx) => [{ path: `/api/apps/${ctx.t.clientId}/grants/${ctx.ids.grant}`, action: 'grant.revoke' }] }],
  [`POST ${APP}/webhooks`, {
    calls: (ctx) => [{ path: `/api/apps/${ctx.t.clientId}/webhooks`, body: { url: 'http://127.0.0.1:9/hook' }, action: 'webhook.create', keep: (b, c) => (c.ids.webhook = b.id) }],
  }],
  [`DELETE ${APP}/webhooks/{webhook_id}`, { calls: (ctx) => [{ path: `/api/apps/${ctx.t.clientId}/webhooks/${ctx.ids.webhook}`, action: 'webhook.remove' }] }],
  [`PUT ${APP}/tools/settings`, { calls: (ctx) => [{ path: `/api/apps/${ctx.t.clientId}/tools/settings`, body: { new_tools: 'require_approval' }, action: 'tools.settings' }] }],
  [`POST ${APP}/tools/definitions/{definition_id}/reject`, {
    calls: async (ctx) => [{ path: `/api/apps/${ctx.t.clientId}/tools/definitions/${await quarantinedDefinition(ctx, 'Writes a file, v2')}/reject`, action: 'tool.reject' }],
  }],
  [`POST ${APP}/tools/definitions/{definition_id}/approve`, {
    calls: async (ctx) => [{ path: `/api/apps/${ctx.t.clientId}/tools/definitions/${await quarantinedDefinition(ctx, 'Writes a file, v3')}/approve`, action: 'tool.approve' }],
  }],
  [`POST ${APP}/hmac/enable`, { calls: (ctx) => [{ path: `/api/apps/${ctx.t.clientId}/hmac/enable`, action: 'hmac.enable' }] }],
  [`POST ${APP}/hmac/rotate`, { calls: (ctx) => [{ path: `/api/apps/${ctx.t.clientId}/hmac/rotate`, body: {}, action: 'hmac.rotate' }] }],
  [`POST ${APP}/hmac/disable`, { calls: (ctx) => [{ path: `/api/apps/${ctx.t.clientId}/hmac/disable`, action: 'hmac.disable' }] }],
  [`DELETE ${APP}/policies/rules/{rule_id}`, { calls: (ctx) => [{ path: `/api/apps/${ctx.t.clientId}/policies/rules/${ctx.ids.rule}`, action: 'policy.rule_remove' }] }],
];

const MUTATING = new Set(['post', 'put', 'patch', 'delete']);

for (const engine of ENGINES) {
  describe(`every state-changing operator route is audited [${engine}]`, () => {
    let server: RunningServer;
    let mutating: string[];

    before(async () => {
      server = await startServer(engine);
      const doc = (await http(server.url, 'GET', '/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
      mutating = Object.entries(doc.paths)
        .filter(([path]) => path.startsWith('/api/'))
        .flatMap(([path, ops]) => Object.keys(ops).filter((m) => MUTATING.has(m)).map((m) => `${m.toUpperCase()} ${path}`));
    });
    after(() => server.close());

    it('the table names every mutating /api/ route of /openapi.json, once, and no other', () => {
      const named = TABLE.map(([route]) => route);
      assert.equal(new Set(named).size, named.length, 'a route is in the table twice');
      const missing = mutating.filter((r) => !named.includes(r));
      assert.deepEqual(missing, [], `add these routes to TABLE in test/http/audit-coverage.test.ts: a valid request and the audit action it writes, or an exemption with its reason`);
      assert.deepEqual(named.filter((r) => !mutating.includes(r)), [], 'routes in the table that the server no longer has');
      assert.ok(mutating.length >= 30, `only ${mutating.length} mutating routes found: is /openapi.json complete?`);
    });

    it('each one, called with a valid request, appends an entry naming its action to the log of the app it changed; the log verifies', async () => {
      const t = await createTenant(server.url);
      const mallory = await createTenant(server.url);
      const crossAccount: string[] = [];
      const ctx: Ctx = { server, t, pak: t.pak, ids: {} };
      const logSize = async (clientId: string) => (await http(server.url, 'GET', `/api/apps/${clientId}/audit/verify`, { token: t.token })).body.entries as number;
      const audited: string[] = [];
      for (const [route, c] of TABLE) {
        if ('exempt' in c) continue;
        const method = route.slice(0, route.indexOf(' '));
        for (const call of await c.calls(ctx)) {
          const clientId = call.clientId ?? t.clientId;
          const sizeBefore = method === 'POST' && call.path === '/api/apps' ? 0 : await logSize(clientId);
          if (call.path !== '/api/apps') {
            // The same request from another account: not found (which says nothing of whether it
            // exists), and nothing written.
            const foreign = await http(server.url, method, call.path, { token: mallory.token, body: call.body });
            assert.equal(foreign.status, 404, `${route} by another account: ${foreign.status} ${foreign.text}`);
            assert.match(foreign.body.error.code, /_not_found$/, route);
            assert.equal(await logSize(clientId), sizeBefore, `${route} by another account wrote to the log`);
            crossAccount.push(route);
          }
          const res = await http(server.url, method, call.path, { token: t.token, body: call.body });
          assert.ok(res.status >= 200 && res.status < 300, `${route}: ${res.status} ${res.text}`);
          call.keep?.(res.body, ctx);
          const target = call.path === '/api/apps' ? ctx.ids.newApp! : clientId;
          const page = (await http(server.url, 'GET', `/api/apps/${target}/audit?limit=50`, { token: t.token })).body.entries as Array<{ seq: number; action: string; actor: string }>;
          const added = page.filter((e) => e.seq > sizeBefore);
          assert.ok(added.some((e) => e.action === call.action), `${route} wrote ${JSON.stringify(added.map((e) => e.action))}, expected ${call.action}`);
          assert.ok(added.filter((e) => e.action === call.action).every((e) => e.actor.startsWith('account:')), `${route}: the entry names the operator`);
          audited.push(route);
        }
      }
      assert.equal(new Set(audited).size, TABLE.filter(([, c]) => !('exempt' in c)).length);
      for (const clientId of [t.clientId, ctx.ids.newApp!]) {
        const v = (await http(server.url, 'GET', `/api/apps/${clientId}/audit/verify`, { token: t.token })).body;
        assert.equal(v.ok, true, JSON.stringify(v));
      }

      // Every read of /openapi.json that names an app or an approval, by another account: 404 too.
      const doc = (await http(server.url, 'GET', '/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
      const hook = await http(server.url, 'POST', `/api/apps/${t.clientId}/webhooks`, { token: t.token, body: { url: 'http://127.0.0.1:9/hook' } });
      assert.equal(hook.status, 201, hook.text);
      const params: Record<string, string> = { client_id: t.clientId, approval_id: ctx.ids.approval!, webhook_id: hook.body.id };
      const reads = Object.entries(doc.paths)
        .filter(([path, ops]) => 'get' in ops && /^\/api\/(apps|approvals)\/\{/.test(path))
        .map(([path]) => path.replace(/\{(\w+)\}/g, (_, name: string) => {
          assert.ok(params[name] !== undefined, `no value for {${name}} of GET ${path}: add one here`);
          return params[name]!;
        }));
      for (const path of reads) {
        const foreign = await http(server.url, 'GET', path, { token: mallory.token });
        assert.equal(foreign.status, 404, `GET ${path} by another account: ${foreign.status} ${foreign.text.slice(0, 200)}`);
        assert.match(foreign.body.error.code, /_not_found$/, path);
        crossAccount.push(`GET ${path}`);
        // The same read by its owner works (event streams, which never end, aside).
        if (!path.endsWith('/live')) assert.ok((await http(server.url, 'GET', path, { token: t.token })).status < 300, `GET ${path} works for its owner`);
      }
      assert.ok(reads.length >= 15, `only ${reads.length} reads found`);
      console.log(`cross-account: ${crossAccount.length} requests (${new Set(crossAccount).size} routes), each 404 *_not_found, nothing written`);
    });

    it('a change that changes nothing writes nothing: a rename to the same name', async () => {
      const t = await createTenant(server.url);
      const size = async () => (await http(server.url, 'GET', `/api/apps/${t.clientId}/audit/verify`, { token: t.token })).body.entries as number;
      const before = await size();
      const same = await http(server.url, 'PATCH', `/api/apps/${t.clientId}`, { token: t.token, body: { name: 'test app', panopticon_enabled: true } });
      assert.equal(same.status, 200);
      assert.equal(await size(), before);
      const both = await http(server.url, 'PATCH', `/api/apps/${t.clientId}`, { token: t.token, body: { name: 'other', panopticon_enabled: false } });
      assert.equal(both.status, 200);
      const entries = (await http(server.url, 'GET', `/api/apps/${t.clientId}/audit?limit=2`, { token: t.token })).body.entries as Array<{ action: string; before: unknown; after: unknown }>;
      assert.deepEqual(entries.map((e) => [e.action, e.before, e.after]).reverse(), [
        ['app.disable', { panopticon_enabled: true }, { panopticon_enabled: false }],
        ['app.rename', { name: 'test app' }, { name: 'other' }],
      ]);
    });
  });
}
