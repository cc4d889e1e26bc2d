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
import { createPanopticon, instrumentMcpServer, type InstrumentOptions, type McpRequestExtra, type Panopticon } from '@panopticon/sdk';
import { createTenant, ENGINES, freshLocation, http, spawnServer, startServer, tempDir, type RunningServer, type SpawnedServer, type Tenant } from '../support/harness.js';
import { closedPort, eventually } from '../support/sdk.js';
import { sleep } from '../support/wait.js';

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

/**
 * An McpServer instrumented with `options`, with tools `<label>_search` and `<label>_guarded`,
 * connected to a real MCP client whose requests carry token info (scopes `token:scope`, subject
 * `token-subject`), as an HTTP transport's bearer-auth middleware would.
 */
async function connectedServer(pano: Panopticon, label: string, options: InstrumentOptions): Promise<Client> {
  const mcp = new McpServer({ name: `options-${label}`, version: '1.0.0' });
  instrumentMcpServer(mcp, pano, options);
  for (const name of [`${label}_search`, `${label}_guarded`]) {
    mcp.registerTool(name, { description: name, inputSchema: { q: z.string() } }, async ({ q }) => ({ content: [{ type: 'text', text: `${name}: ${q}` }] }));
  }
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const send = clientSide.send.bind(clientSide);
  clientSide.send = (message, opts) =>
    send(message, { ...opts, authInfo: { token: 'opaque', clientId: 'agent-app', scopes: ['token:scope'], extra: { sub: 'token-subject' } } });
  await mcp.connect(serverSide);
  const client = new Client({ name: `options-agent-${label}`, version: '1.0.0' });
  await client.connect(clientSide);
  return client;
}

for (const engine of ENGINES) describe(`instrumentMcpServer options given as values or as functions reach the guard and the trace [${engine}]`, () => {
  let server: RunningServer;
  let t: Tenant;
  let pano: Panopticon;
  const clients: Client[] = [];

  const call = async (client: Client, name: string): Promise<CallResult> => (await client.callTool({ name, arguments: { q: 'x' } })) as CallResult;
  /** What the server stored for the one call of `tool`: its trace and its guard check. */
  const stored = async (tool: string) => {
    assert.equal(await pano.flush({ timeoutMs: 20_000 }), true);
    const traces = (await http(server.url, 'GET', `/api/apps/${t.clientId}/traces?limit=500`, { token: t.token })).body.traces as Array<Record<string, any>>;
    const checks = (await http(server.url, 'GET', `/api/apps/${t.clientId}/checks?limit=500`, { token: t.token })).body.checks as Array<Record<string, any>>;
    const trace = traces.filter((x) => x.tool === tool);
    const check = checks.filter((x) => x.tool === tool);
    assert.equal(trace.length, 1, `one trace of ${tool}`);
    assert.equal(check.length, 1, `one check of ${tool}`);
    assert.equal(check[0]!.event_id, trace[0]!.event_id, 'the check and the trace are linked');
    return { trace: trace[0]!, check: check[0]! };
  };

  before(async () => {
    server = await startServer(engine);
    t = await createTenant(server.url);
    for (const body of [
      { name: 'agent:write may not', effect: 'deny', reason: 'the agent:write scope may not use guarded tools', match: { tools: ['*_guarded'], scopes: ['agent:write'] } },
      { name: 'carol may not', effect: 'deny', reason: 'carol may not use guarded tools', match: { tools: ['*_guarded'], users: ['carol'] } },
    ]) {
      const rule = await http(server.url, 'POST', `/api/apps/${t.clientId}/policies/rules`, { token: t.token, body });
      assert.equal(rule.status, 201, rule.text);
    }
    pano = createPanopticon({ url: server.url, pak: t.pak, clientId: t.clientId, flushIntervalMs: 100 });
  });

  after(async () => {
    for (const c of clients) await c.close();
    await pano?.shutdown({ timeoutMs: 1000 });
    await server?.close();
  });

  it('plain strings: scope, userSub and sessionId are used for every call, by the guard and in the trace', async () => {
    const client = await connectedServer(pano, 'plain', { scope: 'agent:write', userSub: 'bob', sessionId: 'session-7' });
    clients.push(client);
    const ok = await call(client, 'plain_search');
    assert.equal(ok.isError, undefined, textOf(ok));
    assert.equal(textOf(ok), 'plain_search: x');
    const { trace, check } = await stored('plain_search');
    assert.equal(trace.status, 'ok');
    assert.equal(trace.scope_used, 'agent:write', 'the string, not the token scopes');
    assert.equal(trace.user_sub, 'bob', 'the string, not the token subject');
    assert.equal(trace.session_id, 'session-7');
    assert.deepEqual([check.scope, check.user_sub, check.session_id, check.decision], ['agent:write', 'bob', 'session-7', 'allow']);

    const denied = await call(client, 'plain_guarded');
    assert.equal(denied.isError, true);
    assert.match(textOf(denied), /the agent:write scope may not use guarded tools/, 'the scope rule matched the string scope');
    const g = await stored('plain_guarded');
    assert.equal(g.trace.status, 'denied');
    assert.equal(g.trace.scope_used, 'agent:write');
    assert.equal(g.check.decision, 'deny');
    assert.equal(g.check.scope, 'agent:write');
  });

  it('functions of the call: scope gets (toolName, extra), userSub and sessionId get (extra), once per call', async () => {
    const seen: Array<[string, McpRequestExtra]> = [];
    const client = await connectedServer(pano, 'fn', {
      scope: (tool, extra) => {
        seen.push([tool, extra]);
        return tool.endsWith('_guarded') ? `fn:${extra.authInfo?.clientId}` : 'fn:read';
      },
      userSub: (extra) => (extra.authInfo?.extra?.sub === 'token-subject' ? 'carol' : 'nobody'),
      sessionId: (extra) => `s-${String(extra.requestId)}`,
    });
    clients.push(client);
    const ok = await call(client, 'fn_search');
    assert.equal(textOf(ok), 'fn_search: x');
    const { trace, check } = await stored('fn_search');
    assert.equal(trace.scope_used, 'fn:read');
    assert.equal(trace.user_sub, 'carol');
    assert.match(trace.session_id, /^s-\d+$/);
    assert.equal(trace.session_id, `s-${trace.attributes['mcp.request.id']}`);
    assert.deepEqual([check.scope, check.user_sub, check.session_id], ['fn:read', 'carol', trace.session_id]);

    const denied = await call(client, 'fn_guarded');
    assert.equal(denied.isError, true);
    assert.match(textOf(denied), /carol may not use guarded tools/, 'the users rule matched the function\'s user');
    const g = await stored('fn_guarded');
    assert.equal(g.trace.scope_used, 'fn:agent-app');
    assert.equal(g.check.user_sub, 'carol');
    assert.deepEqual(seen.map(([tool]) => tool), ['fn_search', 'fn_guarded'], 'called once per call, with the tool name');
  });

  it('without the options the token gives scope and user; null turns user and session off', async () => {
    const client = await connectedServer(pano, 'nulls', { userSub: null, sessionId: null });
    clients.push(client);
    await call(client, 'nulls_search');
    const { trace, check } = await stored('nulls_search');
    assert.equal(trace.scope_used, 'token:scope');
    assert.equal(trace.user_sub, null);
    assert.equal(trace.session_id, null);
    assert.equal(check.user_sub, null);
  });
});

describe('instrumentMcpServer rejects a bad option when instrumenting, naming it', () => {
  const pano = createPanopticon({ url: 'http://127.0.0.1:9', pak: 'pano_pak_x', clientId: 'logi_000000000001' });
  after(() => pano.shutdown({ timeoutMs: 100 }));

  const bad: Array<[string, unknown, RegExp]> = [
    ['scope', 42, /option "scope" must be a non-empty string or a function \(toolName, extra\) => string, got number 42/],
    ['scope', '', /option "scope" must be a non-empty string or a function/],
    ['scope', ['a', 'b'], /option "scope" .* got an array/],
    ['userSub', { id: 'bob' }, /option "userSub" must be a non-empty string, null, or a function \(extra\) => string, got an object/],
    ['sessionId', 7, /option "sessionId" must be .*got number 7/],
    ['defaultScope', null, /option "defaultScope" must be a non-empty string, got null/],
    ['timeoutMs', 0, /option "timeoutMs" must be a positive number of milliseconds \(at most 2147483647\), got number 0/],
    ['timeoutMs', -5, /option "timeoutMs" must be a positive number/],
    ['timeoutMs', Number.NaN, /option "timeoutMs" .*got number NaN/],
    ['timeoutMs', '30000', /option "timeoutMs" .*got the string "30000"/],
    ['timeoutMs', 2 ** 31, /option "timeoutMs" .*at most 2147483647/],
    ['approvalTimeoutMs', Infinity, /option "approvalTimeoutMs" must be a positive number/],
    ['sendArguments', 'no', /option "sendArguments" must be a boolean/],
    ['onApprovalRequired', 'log', /option "onApprovalRequired" must be a function/],
  ];
  for (const [name, value, message] of bad) {
    it(`${name}: ${typeof value === 'string' ? JSON.stringify(value) : value !== null && typeof value === 'object' ? JSON.stringify(value) : String(value)}`, async () => {
      const mcp = new McpServer({ name: 'bad', version: '1.0.0' });
      assert.throws(() => instrumentMcpServer(mcp, pano, { [name]: value } as InstrumentOptions), (err: unknown) => {
        assert.ok(err instanceof TypeError);
        assert.match(err.message, message);
        return true;
      });
      // Nothing was instrumented: a corrected call still instruments the server.
      instrumentMcpServer(mcp, pano, { scope: 'agent:write', sendArguments: false });
      let checked = 0;
      pano.check = async () => { checked++; return { decision: 'deny', reason: 'r', message: 'no', checkId: null, approval: null } as never; };
      mcp.registerTool('t', { description: 't' }, async () => ({ content: [{ type: 'text', text: 'ran' }] }));
      const [c, srv] = InMemoryTransport.createLinkedPair();
      await mcp.connect(srv);
      const client = new Client({ name: 'c', version: '1.0.0' });
      await client.connect(c);
      const res = (await client.callTool({ name: 't', arguments: {} })) as CallResult;
      await client.close();
      assert.equal(checked, 1, 'the corrected instrumentation governs the call');
      assert.equal(res.isError, true);
    });
  }

  it('an unknown option name (a typo) is refused with the known ones listed', () => {
    const mcp = new McpServer({ name: 'bad', version: '1.0.0' });
    assert.throws(() => instrumentMcpServer(mcp, pano, { scopes: ['agent:write'] } as unknown as InstrumentOptions),
      { name: 'TypeError', message: /unknown option "scopes" \(known: scope, defaultScope, userSub, sessionId, timeoutMs, approvalTimeoutMs, sendArguments, onApprovalRequired\)/ });
    assert.throws(() => instrumentMcpServer(mcp, pano, { timeout: 1000 } as unknown as InstrumentOptions), { name: 'TypeError', message: /unknown option "timeout"/ });
    assert.throws(() => instrumentMcpServer(mcp, pano, 'agent:write' as unknown as InstrumentOptions), { name: 'TypeError', message: /options must be an object, got the string "agent:write"/ });
  });

  it('an option set to undefined is as if absent', () => {
    const mcp = new McpServer({ name: 'ok', version: '1.0.0' });
    assert.doesNotThrow(() => instrumentMcpServer(mcp, pano, { scope: undefined, timeoutMs: undefined }));
  });
});
