/**
 * End to end: a real MCP client calls tools on a real McpServer instrumented with one line, over
 * the MCP SDK's in-memory transport, against a Panopticon server running as its own process. Denied
 * tools are refused with the policy's reason and never run; a require_approval tool waits and runs
 * once an operator approves it through the API; timeouts and failures are traced as such; with the
 * server stopped the SDK buffers, and after a restart on the same database every trace arrives
 * exactly once.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import * as z from 'zod';
import { createPanopticon, instrumentMcpServer, type Panopticon } from '@panopticon/sdk';
import { createTenant, ENGINES, freshLocation, http, spawnServer, tempDir, type SpawnedServer, type Tenant } from '../testing/harness.js';
import { closedPort, eventually, sleep } from './fixtures.js';

type CallResult = { content: Array<{ type: string; text: string }>; isError?: boolean };

const textOf = (r: CallResult) => r.content.map((c) => c.text).join('\n');

for (const engine of ENGINES) describe(`MCP server instrumented with the SDK, end to end [${engine}, separate server process]`, () => {
  let dir: string;
  let dropStore: () => Promise<void> = async () => {};
  let env: Record<string, string>;
  let server: SpawnedServer;
  let t: Tenant;
  let pano: Panopticon;
  let client: Client;
  const ran: Record<string, number> = {};
  const calls: string[] = [];
  const approvalsSeen: string[] = [];

  const call = async (name: string, args: Record<string, unknown> = {}): Promise<CallResult> => {
    calls.push(name);
    return (await client.callTool({ name, arguments: args })) as CallResult;
  };
  const traces = async () => (await http(server.url, 'GET', `/api/apps/${t.clientId}/traces?limit=500`, { token: t.token })).body.traces as Array<Record<string, any>>;

  before(async () => {
    dir = tempDir('mcp');
    const store = freshLocation(engine);
    dropStore = store.cleanup;
    env = { PANOPTICON_DB: store.dbValue, PANOPTICON_DATA_DIR: dir, PORT: String(await closedPort()) };
    server = await spawnServer(env);
    t = await createTenant(server.url);
    for (const body of [
      { name: 'no deletes', effect: 'deny', reason: 'repositories are never deleted by agents', match: { tools: ['delete_repo'] } },
      { name: 'deploys need a human', effect: 'require_approval', match: { tools: ['deploy'] } },
    ]) {
      const rule = await http(server.url, 'POST', `/api/apps/${t.clientId}/policies/rules`, { token: t.token, body });
      assert.equal(rule.status, 201, rule.text);
    }

    pano = createPanopticon({ url: server.url, pak: t.pak, clientId: t.clientId, flushIntervalMs: 100, retryInitialDelayMs: 100, retryMaxDelayMs: 500 });
    const mcp = new McpServer({ name: 'repo-tools', version: '1.0.0' });
    const count = (name: string) => (ran[name] = (ran[name] ?? 0) + 1);
    // Registered before instrumenting: the instrumentation must still cover it.
    mcp.registerTool('echo', { description: 'echo', inputSchema: { text: z.string() } }, async ({ text }) => {
      count('echo');
      return { content: [{ type: 'text', text }] };
    });

    instrumentMcpServer(mcp, pano, { timeoutMs: 1000, onApprovalRequired: ({ approval }) => approvalsSeen.push(approval.id) });

    mcp.registerTool('search', { description: 'search', inputSchema: { q: z.string() } }, async ({ q }) => {
      count('search');
      return { content: [{ type: 'text', text: `results for ${q}` }] };
    });
    mcp.registerTool('delete_repo', { description: 'delete a repository', inputSchema: { repo: z.string() } }, async () => {
      count('delete_repo');
      return { content: [{ type: 'text', text: 'deleted' }] };
    });
    mcp.registerTool('deploy', { description: 'deploy', inputSchema: { env: z.string() } }, async ({ env: target }) => {
      count('deploy');
      return { content: [{ type: 'text', text: `deployed to ${target}` }] };
    });
    mcp.registerTool('slow', { description: 'slow' }, async () => {
      count('slow');
      await sleep(5000);
      return { content: [{ type: 'text', text: 'finally' }] };
    });
    mcp.tool('explode', 'always throws', async () => {
      count('explode');
      throw new Error('disk on fire');
    });

    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    // What an HTTP transport's bearer-auth middleware hands the server: the caller's token info.
    const send = clientSide.send.bind(clientSide);
    clientSide.send = (message, options) =>
      send(message, { ...options, authInfo: { token: 'opaque', clientId: 'agent-app', scopes: ['repo:read', 'deploy:write'], extra: { sub: 'alice' } } });
    await mcp.connect(serverSide);
    client = new Client({ name: 'e2e-agent', version: '1.0.0' });
    await client.connect(clientSide);
  });

  after(async () => {
    await client?.close();
    await pano?.shutdown({ timeoutMs: 1000 });
    server?.child.kill('SIGTERM');
    await server?.exited;
    fs.rmSync(dir, { recursive: true, force: true });
    await dropStore();
  });

  it('allowed tools run and are traced with the caller from the request context', async () => {
    assert.equal(textOf(await call('search', { q: 'panopticon' })), 'results for panopticon');
    assert.equal(textOf(await call('echo', { text: 'hi' })), 'hi');
    assert.equal(await pano.flush({ timeoutMs: 20_000 }), true);
    const search = (await traces()).find((x) => x.tool === 'search')!;
    assert.equal(search.status, 'ok');
    assert.equal(search.user_sub, 'alice', 'authInfo.extra.sub');
    assert.equal(search.scope_used, 'repo:read deploy:write', 'the token scopes');
    assert.equal(search.attributes['mcp.method.name'], 'tools/call');
    assert.ok((await traces()).some((x) => x.tool === 'echo' && x.status === 'ok'), 'a tool registered before instrumenting is covered');
  });

  it('a denied tool is refused with the policy reason and never runs', async () => {
    const res = await call('delete_repo', { repo: 'prod' });
    assert.equal(res.isError, true);
    assert.match(textOf(res), /repositories are never deleted by agents/);
    assert.equal(ran.delete_repo, undefined);
    assert.equal(await pano.flush({ timeoutMs: 20_000 }), true);
    const trace = (await traces()).find((x) => x.tool === 'delete_repo')!;
    assert.equal(trace.status, 'denied');
    assert.match(trace.error_message, /repositories are never deleted/);
  });

  it('a require_approval tool waits, then runs once approved through the operator API; a denial refuses it', async () => {
    const pending = call('deploy', { env: 'staging' });
    const id = await eventually('the approval request', async () => {
      const list = await http(server.url, 'GET', `/api/apps/${t.clientId}/approvals?status=pending`, { token: t.token });
      return (list.body.approvals as Array<{ id: string; tool: string }>).find((a) => a.tool === 'deploy')?.id;
    });
    await sleep(200);
    assert.equal(ran.deploy, undefined, 'not run before the decision');
    const approved = await http(server.url, 'POST', `/api/approvals/${id}/approve`, { token: t.token, body: { comment: 'go' } });
    assert.equal(approved.status, 200);
    const res = await pending;
    assert.equal(res.isError, undefined);
    assert.equal(textOf(res), 'deployed to staging');
    assert.equal(ran.deploy, 1);
    assert.deepEqual(approvalsSeen, [id]);

    const refused = call('deploy', { env: 'prod' });
    const id2 = await eventually('the second approval request', () => approvalsSeen[1]);
    await http(server.url, 'POST', `/api/approvals/${id2}/deny`, { token: t.token, body: { comment: 'not on a friday' } });
    const res2 = await refused;
    assert.equal(res2.isError, true);
    assert.match(textOf(res2), /Not approved \(denied\): not on a friday/);
    assert.equal(ran.deploy, 1, 'the denied deploy never ran');

    assert.equal(await pano.flush({ timeoutMs: 20_000 }), true);
    const deploys = (await traces()).filter((x) => x.tool === 'deploy').map((x) => x.status).sort();
    assert.deepEqual(deploys, ['denied', 'ok']);
  });

  it('a call over timeoutMs is answered with an error and traced as timeout; a throwing tool as error', async () => {
    const slow = await call('slow');
    assert.equal(slow.isError, true);
    assert.match(textOf(slow), /timed out after 1000 ms/);
    const boom = await call('explode');
    assert.equal(boom.isError, true);
    assert.match(textOf(boom), /disk on fire/);
    assert.equal(await pano.flush({ timeoutMs: 20_000 }), true);
    const all = await traces();
    assert.equal(all.find((x) => x.tool === 'slow')?.status, 'timeout');
    const explode = all.find((x) => x.tool === 'explode')!;
    assert.equal(explode.status, 'error');
    assert.equal(explode.error_message, 'disk on fire');
  });

  it('with the server stopped the SDK buffers (and the guard fails closed); after a restart every trace arrives exactly once', async () => {
    server.child.kill('SIGTERM');
    assert.equal(await server.exited, 0);
    const during: CallResult[] = [];
    for (let i = 0; i < 5; i++) during.push(await call('search', { q: `outage ${i}` }));
    assert.ok(during.every((r) => r.isError === true && /unreachable/.test(textOf(r))), 'the default fail mode refuses calls the guard cannot judge');
    await eventually('a failed delivery attempt', () => pano.stats().failedRequests > 0);
    assert.equal(pano.stats().buffered, 5);
    assert.equal(pano.stats().dropped, 0);

    server = await spawnServer(env);
    assert.equal(await pano.flush({ timeoutMs: 30_000 }), true);
    const all = await traces();
    assert.equal(all.length, calls.length, `one trace per tool call (${calls.length})`);
    assert.equal(new Set(all.map((x) => x.event_id)).size, calls.length);
    assert.equal(all.filter((x) => x.tool === 'search' && x.status === 'denied').length, 5);
    const today = new Date().toISOString().slice(0, 10);
    const usage = await http(server.url, 'GET', `/api/apps/${t.clientId}/usage?since=${today}&until=${today}`, { token: t.token });
    assert.equal(usage.body.totals.traces, calls.length, 'counted once each in usage');
    const s = pano.stats();
    assert.equal(s.sent, calls.length);
    assert.equal(s.dropped, 0);
    assert.ok(s.retried >= 5);
  });
});
