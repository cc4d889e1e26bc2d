/**
 * The examples under examples/ run as documented in sdk/README.md, against a real server: the plain
 * agent loop (guard check, trace, shutdown) and the stdio MCP server, driven by a real MCP client
 * over stdio.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { createTenant, ENGINES, http, REPO_ROOT, startServer, type RunningServer, type Tenant } from '../support/harness.js';
import { eventually } from '../support/sdk.js';

type CallResult = { content: Array<{ type: string; text: string }>; isError?: boolean };

for (const engine of ENGINES) describe(`examples/ against a real server [${engine}]`, () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer(engine);
  });
  after(() => server.close());

  const traces = async (t: Tenant) => (await http(server.url, 'GET', `/api/apps/${t.clientId}/traces?limit=100`, { token: t.token })).body.traces as Array<Record<string, any>>;
  const deny = async (t: Tenant, tool: string, reason: string) => {
    const rule = await http(server.url, 'POST', `/api/apps/${t.clientId}/policies/rules`, { token: t.token, body: { name: `no ${tool}`, effect: 'deny', reason, match: { tools: [tool] } } });
    assert.equal(rule.status, 201, rule.text);
  };

  it('examples/agent-loop.mjs: checks, runs and traces each step, and delivers everything before exiting', async () => {
    const t = await createTenant(server.url);
    await deny(t, 'search_docs', 'the docs index is being rebuilt');
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['examples/agent-loop.mjs', '--url', server.url, '--pak', t.pak, '--client-id', t.clientId], { cwd: REPO_ROOT, timeout: 60_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stdout}\n${stderr}`)) : resolve(stdout)),
    );
    const lines = out.trim().split('\n');
    assert.equal(lines[0], 'get_weather: It is sunny in Paris.');
    assert.equal(lines[1], 'search_docs: denied (the docs index is being rebuilt)');
    assert.equal(lines[2], 'send_email: error: not an address: nobody');
    assert.equal(lines[3], 'send_email: sent to ops@example.com');
    const stats = JSON.parse(lines[4]!) as Record<string, number>;
    assert.equal(stats.sent, 4);
    assert.equal(stats.dropped, 0);
    assert.equal(stats.buffered, 0);
    const stored = await traces(t);
    assert.deepEqual(stored.map((x) => `${x.tool}:${x.status}`).sort(), ['get_weather:ok', 'search_docs:denied', 'send_email:error', 'send_email:ok']);
    assert.ok(stored.every((x) => x.user_sub === 'demo-user' && String(x.session_id).startsWith('session-')));
  });

  it('examples/mcp-server.mjs over stdio: a real MCP client calls its tools; each call is governed and traced', async () => {
    const t = await createTenant(server.url);
    await deny(t, 'delete_note', 'notes are kept forever');
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [path.join(REPO_ROOT, 'examples', 'mcp-server.mjs'), '--url', server.url, '--pak', t.pak, '--client-id', t.clientId, '--user', 'bob'],
      cwd: REPO_ROOT,
      stderr: 'pipe',
    });
    const client = new Client({ name: 'examples-test', version: '1.0.0' });
    await client.connect(transport);
    try {
      const listed = (await client.callTool({ name: 'list_notes', arguments: {} })) as CallResult;
      assert.equal(listed.content[0]?.text, 'welcome');
      const missing = (await client.callTool({ name: 'read_note', arguments: { title: 'nope' } })) as CallResult;
      assert.equal(missing.isError, true);
      const deleted = (await client.callTool({ name: 'delete_note', arguments: { title: 'welcome' } })) as CallResult;
      assert.equal(deleted.isError, true);
      assert.match(deleted.content[0]!.text, /notes are kept forever/);
      const still = (await client.callTool({ name: 'read_note', arguments: { title: 'welcome' } })) as CallResult;
      assert.equal(still.content[0]?.text, 'Hello from Panopticon.', 'the denied delete never ran');
    } finally {
      await client.close();
    }
    const stored = await eventually('four traces', async () => {
      const all = await traces(t);
      return all.length === 4 ? all : undefined;
    });
    assert.deepEqual(stored.map((x) => `${x.tool}:${x.status}:${x.scope_used}`).sort(), [
      'delete_note:denied:notes:write', 'list_notes:ok:notes:read', 'read_note:error:notes:read', 'read_note:ok:notes:read',
    ]);
    assert.ok(stored.every((x) => x.user_sub === 'bob'));
  });
});
