/**
 * `logi mcp proxy --upstream URL --listen HOST:PORT`: the Streamable HTTP proxy in front of a real
 * Streamable HTTP MCP server (testing/http-upstream.ts, the SDK's own server transport), driven by
 * the official MCP client's Streamable HTTP transport, on both engines: the client's Authorization
 * reaches the upstream unchanged and only it (the PAK never does; a 401 and its WWW-Authenticate
 * come back as they were); user_sub from the token's claim; a deny rule keeps the call from the
 * upstream; SSE streams (progress) and JSON answers relayed; tools/list pinned in both forms;
 * non-JSON bodies and batches refused.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { createTenant, ENGINES, http, LOGI_BIN, startServer, type RunningServer, type Tenant } from '../support/harness.js';
import { addRule, proxyEnv, traces } from '../support/mcp.js';
import { eventually } from '../support/wait.js';
import { RUG_HONEST, RUG_POISONED, startUpstream, type Upstream } from '../support/mcp-http-upstream.js';

/** A JWT-shaped bearer token (unsigned: the upstream here compares it whole, as an opaque token). */
const TOKEN = `eyJhbGciOiJub25lIn0.${Buffer.from(JSON.stringify({ sub: 'alice@example.org', scope: 'files:read' })).toString('base64url')}.sig`;
const text = (r: unknown) => ((r as { content: Array<{ text: string }> }).content[0]?.text ?? '');

interface HttpProxy {
  endpoint: string;
  child: ChildProcess;
  stderr: () => string;
  stop(): Promise<void>;
}

async function startProxy(server: RunningServer, tenant: Tenant, upstream: string, flags: readonly string[] = []): Promise<HttpProxy> {
  const child = spawn(process.execPath, [LOGI_BIN, '--url', server.url, 'mcp', 'proxy', '--client-id', tenant.clientId, '--upstream', upstream, '--listen', '127.0.0.1:0', ...flags], {
    env: proxyEnv(tenant.pak), stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const endpoint = await eventually('the proxy to listen', () => /MCP proxy listening on (\S+) for /.exec(stdout)?.[1]);
  return { endpoint, child, stderr: () => stderr, stop: async () => {
    child.kill('SIGTERM');
    await exited;
  } };
}

async function client(endpoint: string, token = TOKEN): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  const c = new Client({ name: 'http-test', version: '1.0.0' });
  await c.connect(transport);
  return { client: c, transport };
}

for (const engine of ENGINES) {
  describe(`MCP proxy over Streamable HTTP [${engine}]`, () => {
    let server: RunningServer;
    let t: Tenant;
    let upstream: Upstream;
    let proxy: HttpProxy;

    before(async () => {
      server = await startServer(engine);
      t = await createTenant(server.url);
      await addRule(server, t, { name: 'no progress for alice', effect: 'deny', match: { tools: ['progress'], users: ['bob@example.org'] }, reason: 'bob may not' });
      await addRule(server, t, { name: 'no echo of secrets', effect: 'deny', match: { tools: ['echo'], arguments: [{ path: 'text', op: 'matches', value: 'secret' }] }, reason: 'no secrets in echoes' });
      upstream = await startUpstream({ token: TOKEN });
      proxy = await startProxy(server, t, upstream.url, ['--user-sub-from', 'jwt:sub']);
    });
    after(async () => {
      await proxy?.stop();
      await upstream?.close();
      await server?.close();
    });

    it('relays a session: the token reaches the upstream unchanged, the PAK never; calls checked, traced with user and session; a denied call never reaches the upstream', async () => {
      const { client: c, transport } = await client(proxy.endpoint);
      try {
        const tools = (await c.listTools()).tools;
        assert.deepEqual(tools.map((x) => x.name), ['echo', 'progress', 'rug']);
        assert.equal(text(await c.callTool({ name: 'echo', arguments: { text: 'hello' } })), 'hello');
        const denied = await c.callTool({ name: 'echo', arguments: { text: 'my secret' } });
        assert.equal(denied.isError, true);
        assert.equal(text(denied), 'Denied by Panopticon: no secrets in echoes');
        assert.ok(!upstream.seen.some((r) => r.body.includes('my secret')), 'the denied call never reached the upstream');

        const mcp = upstream.seen.filter((r) => r.path === '/mcp');
        assert.ok(mcp.length >= 4);
        assert.ok(mcp.every((r) => r.headers.authorization === `Bearer ${TOKEN}`), 'every request carried the client\'s token, unchanged');
        assert.ok(!upstream.seen.some((r) => JSON.stringify(r.headers).includes(t.pak) || r.body.includes(t.pak)), 'the PAK never reaches the upstream');
        assert.ok(mcp.some((r) => r.headers['mcp-session-id'] === transport.sessionId));

        const got = await eventually('two traces', async () => {
          const all = await traces(server, t);
          return all.length >= 2 ? all : undefined;
        });
        for (const tr of got) {
          assert.equal(tr.user_sub, 'alice@example.org', 'from the token\'s sub claim');
          assert.equal(tr.session_id, transport.sessionId, 'the MCP session');
          assert.equal(tr.attributes?.['panopticon.proxy'], 'http');
          assert.match(tr.check_id ?? '', /^chk_/);
        }
        assert.deepEqual(got.map((x) => x.status).sort(), ['denied', 'ok']);
      } finally {
        await c.close();
      }
    });

    it('SSE answers stream through (a progress notification before the result); a rug pull is hidden from the second listing and refused', async () => {
      const { client: c } = await client(proxy.endpoint);
      try {
        const first = (await c.listTools()).tools;
        assert.equal(first.find((x) => x.name === 'rug')?.description, RUG_HONEST);
        const progress: unknown[] = [];
        const done = await c.callTool({ name: 'progress', arguments: {} }, undefined, { onprogress: (p) => progress.push(p) });
        assert.equal(text(done), 'done');
        assert.deepEqual(progress, [{ progress: 1, total: 2, message: 'halfway' }]);

        const second = (await c.listTools()).tools;
        assert.deepEqual(second.map((x) => x.name), ['echo', 'progress'], 'the changed definition is not shown');
        const refused = await c.callTool({ name: 'rug', arguments: {} });
        assert.match(text(refused), /^Refused by Panopticon: tool "rug" changed since it was approved and is quarantined/);
        const pending = (await http(server.url, 'GET', `/api/apps/${t.clientId}/tools`, { token: t.token })).body.tools.find((x: { name: string }) => x.name === 'rug').changes[0];
        assert.equal(pending.definition.description, RUG_POISONED);
      } finally {
        await c.close();
      }
    });

    it('a wrong token: the upstream\'s 401 and WWW-Authenticate come back unchanged; metadata on other paths is relayed; the proxy adds no credentials', async () => {
      const res = await fetch(proxy.endpoint, {
        method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: 'Bearer wrong' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
      });
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer error="invalid_token", resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp"$/);
      assert.equal(await res.text(), '{"error":"invalid_token"}');
      assert.equal(upstream.seen.at(-1)?.headers.authorization, 'Bearer wrong');

      const none = await fetch(proxy.endpoint, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":2,"method":"ping"}' });
      assert.equal(none.status, 401);
      assert.equal(upstream.seen.at(-1)?.headers.authorization, undefined, 'no token invented');

      const meta = await fetch(new URL('/.well-known/oauth-protected-resource/mcp', proxy.endpoint));
      assert.equal(meta.status, 200);
      assert.deepEqual((await meta.json()).authorization_servers, ['https://auth.example.com']);
    });

    it('refuses a body that is not JSON, and a batch holding a tools/call, without relaying them', async () => {
      const before = upstream.seen.length;
      const bad = await fetch(proxy.endpoint, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":NaN}}}' });
      assert.equal(bad.status, 400);
      assert.equal((await bad.json()).error.code, -32700);
      const batch = await fetch(proxy.endpoint, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: '[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}]' });
      assert.equal(batch.status, 400);
      assert.equal((await batch.json()).error.code, -32600);
      assert.equal(upstream.seen.length, before);
    });

    it('a hidden tool an operator approves is announced on the client\'s GET stream: initialize declares tools.listChanged, notifications/tools/list_changed follows the approval', async () => {
      const strict = await createTenant(server.url);
      await http(server.url, 'PUT', `/api/apps/${strict.clientId}/tools/settings`, { token: strict.token, body: { new_tools: 'require_approval' } });
      const sseUpstream = await startUpstream({ token: TOKEN });
      const p = await startProxy(server, strict, sseUpstream.url);
      const { client: c } = await client(p.endpoint);
      let announced = 0;
      c.setNotificationHandler(ToolListChangedNotificationSchema, () => {
        announced++;
      });
      try {
        assert.deepEqual(c.getServerCapabilities()?.tools, { listChanged: true }, 'the upstream declares tools: {}; the proxy adds listChanged');
        assert.deepEqual((await c.listTools()).tools, [], 'every tool is new and waits for approval');
        // The official client opens its GET stream once initialized; the proxy relays it to the upstream.
        await eventually('the client\'s GET stream', () => sseUpstream.seen.some((r) => r.method === 'GET'));
        assert.equal(announced, 0);
        const listed = (await http(server.url, 'GET', `/api/apps/${strict.clientId}/tools`, { token: strict.token })).body.tools as Array<{ name: string; changes: Array<{ id: string }> }>;
        const echo = listed.find((x) => x.name === 'echo')!;
        assert.equal((await http(server.url, 'POST', `/api/apps/${strict.clientId}/tools/definitions/${echo.changes[0]!.id}/approve`, { token: strict.token })).status, 200);
        await eventually('notifications/tools/list_changed on the GET stream', () => announced > 0);
        assert.deepEqual((await c.listTools()).tools.map((x) => x.name), ['echo'], 'progress and rug still wait');
        assert.equal(text(await c.callTool({ name: 'echo', arguments: { text: 'approved' } })), 'approved');
      } finally {
        await c.close();
        await p.stop();
        await sseUpstream.close();
      }
    });

    it('an upstream answering JSON (no SSE): lists pinned and calls traced the same way; DELETE ends the session at the upstream', async () => {
      const jsonUpstream = await startUpstream({ token: TOKEN, jsonResponse: true });
      const jsonTenant = await createTenant(server.url);
      const p = await startProxy(server, jsonTenant, jsonUpstream.url, ['--user-sub', 'svc-account']);
      const { client: c, transport } = await client(p.endpoint);
      try {
        assert.deepEqual((await c.listTools()).tools.map((x) => x.name), ['echo', 'progress', 'rug']);
        assert.deepEqual((await c.listTools()).tools.map((x) => x.name), ['echo', 'progress'], 'JSON answers are rewritten too');
        assert.equal(text(await c.callTool({ name: 'echo', arguments: { text: 'json' } })), 'json');
        const trace = await eventually('the trace', async () => (await traces(server, jsonTenant)).find((x) => x.tool === 'echo'));
        assert.deepEqual([trace.status, trace.user_sub], ['ok', 'svc-account']);
        const session = transport.sessionId;
        assert.ok(session !== undefined);
        await transport.terminateSession();
        assert.ok(jsonUpstream.seen.some((r) => r.method === 'DELETE' && r.headers['mcp-session-id'] === session));
      } finally {
        await c.close();
        await p.stop();
        await jsonUpstream.close();
      }
    });
  });
}
