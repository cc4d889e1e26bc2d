/**
 * Everything that is not a tools/call passes through `logi mcp proxy` unchanged, shown with
 * @modelcontextprotocol/server-everything (from npm) and the official MCP client: the same session
 * is run once directly and once through the proxy, and what the client sees must be the same —
 * initialize, tools, resources and templates, prompts, completions, ping, logging level and log
 * notifications, progress notifications, and the server's own requests to the client (sampling,
 * elicitation, roots) with the client's answers going back. A cancelled call is cancelled at the
 * server. One engine: the relay does not depend on the store.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { createTenant, ENGINES, startServer, type RunningServer, type Tenant } from '../support/harness.js';
import { connect, EVERYTHING_SERVER, traces } from '../support/mcp.js';
import { eventually, sleep } from '../support/wait.js';

const engine = ENGINES[0]!;
const CAPABILITIES = { capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } } };

interface Transcript {
  server: unknown;
  steps: Array<[string, unknown]>;
  /** Notifications the client received, in order (log messages reduced to their method: their level is random). */
  notifications: unknown[];
  /** Requests the server sent the client, with their params. */
  serverRequests: Array<[string, unknown]>;
}

/** One scripted session; everything the client sees is recorded. */
async function session(client: Client, notifications: unknown[]): Promise<Omit<Transcript, 'notifications'>> {
  const serverRequests: Array<[string, unknown]> = [];
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
    serverRequests.push(['sampling/createMessage', req.params]);
    return { role: 'assistant', content: { type: 'text', text: 'a sampled answer' }, model: 'test-model', stopReason: 'endTurn' };
  });
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    serverRequests.push(['elicitation/create', req.params]);
    return { action: 'accept', content: { name: 'Ada Lovelace', check: true, firstLine: 'It was a dark and stormy night.', email: 'ada@example.org' } };
  });
  client.setRequestHandler(ListRootsRequestSchema, async () => {
    serverRequests.push(['roots/list', null]);
    return { roots: [{ uri: 'file:///srv/project', name: 'project' }] };
  });
  const steps: Array<[string, unknown]> = [];
  const step = async (name: string, fn: () => Promise<unknown>) => steps.push([name, await fn()]);

  await sleep(600); // the server asks for roots 350 ms after initialization
  await step('ping', () => client.ping());
  await step('tools/list', () => client.listTools());
  await step('resources/list', () => client.listResources());
  await step('resources/templates/list', () => client.listResourceTemplates());
  await step('resources/read static', () => client.readResource({ uri: 'demo://resource/static/document/architecture.md' }));
  await step('resources/read dynamic', () => client.readResource({ uri: 'demo://resource/dynamic/text/2' }));
  await step('prompts/list', () => client.listPrompts());
  await step('prompts/get', () => client.getPrompt({ name: 'args-prompt', arguments: { city: 'Paris', state: 'IDF' } }));
  await step('completion/complete', () => client.complete({ ref: { type: 'ref/prompt', name: 'completable-prompt' }, argument: { name: 'department', value: 'E' } }));
  await step('logging/setLevel', () => client.setLoggingLevel('debug'));
  await step('tools/call echo', () => client.callTool({ name: 'echo', arguments: { message: 'héllo \u2028 world' } }));
  await step('tools/call structured', () => client.callTool({ name: 'get-structured-content', arguments: { location: 'Chicago' } }));
  await step('tools/call image', () => client.callTool({ name: 'get-tiny-image', arguments: {} }));
  // The progress notifications are compared as the transport received them (with the other
  // notifications): the client drops one that it processes after the call's answer, a race of its own.
  await step('tools/call progress', () => client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } }, undefined, { onprogress: () => {} }));
  await step('tools/call sampling', () => client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'Say hi', maxTokens: 5 } }));
  await step('tools/call elicitation', () => client.callTool({ name: 'trigger-elicitation-request', arguments: {} }));
  await step('tools/call roots', () => client.callTool({ name: 'get-roots-list', arguments: {} }));
  await step('notifications/roots/list_changed', () => client.sendRootsListChanged());
  await sleep(300); // the server asks for the roots again
  await step('tools/call logging', () => client.callTool({ name: 'toggle-simulated-logging', arguments: {} }));
  await eventually('a log message', () => notifications.some((n) => (n as { method?: string }).method === 'notifications/message'));
  await step('tools/call logging off', () => client.callTool({ name: 'toggle-simulated-logging', arguments: {} }));

  // Cancellation: the client gives up on a long call; the server must stop and not answer.
  const aborted = new AbortController();
  const cancelled = client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1.5, steps: 3 } }, undefined, { signal: aborted.signal });
  await sleep(200);
  aborted.abort('user pressed stop');
  await step('tools/call cancelled', () => cancelled.then(() => 'answered', (err: Error) => `rejected: ${err.message}`));
  await sleep(1600); // past the operation's end: a server that missed the cancellation would answer now
  await step('tools/call after the cancellation', () => client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } }));
  return { server: { capabilities: client.getServerCapabilities(), version: client.getServerVersion(), instructions: client.getInstructions() }, steps, serverRequests };
}

async function run(target: Parameters<typeof connect>[0]): Promise<Transcript & { stderr: string }> {
  const p = await connect(target, [EVERYTHING_SERVER, 'stdio'], CAPABILITIES);
  const notifications: unknown[] = [];
  const unmatchedResponses: unknown[] = [];
  const deliver = p.transport.onmessage!;
  p.transport.onmessage = (message: JSONRPCMessage) => {
    const m = message as { method?: string; id?: unknown };
    if (m.method !== undefined && m.id === undefined) notifications.push(m.method === 'notifications/message' ? { method: m.method } : message);
    deliver(message);
  };
  p.client.onerror = (err) => unmatchedResponses.push(String(err));
  try {
    const t = await session(p.client, notifications);
    // The dynamic resources say when they were made: the only text that differs between two runs.
    const timeless = JSON.parse(JSON.stringify({ ...t, notifications }).replace(/\b\d{1,2}:\d{2}:\d{2}\s?[AP]M\b/g, '<time>')) as Transcript;
    return { ...timeless, stderr: p.stderr() + unmatchedResponses.join('\n') };
  } finally {
    await p.close();
  }
}

describe(`MCP proxy over stdio: server-everything passes through unchanged [${engine}]`, () => {
  let server: RunningServer;
  let t: Tenant;

  before(async () => {
    server = await startServer(engine);
    t = await createTenant(server.url);
  });
  after(() => server.close());

  it('the same session directly and through the proxy: everything the client sees is the same', async () => {
    const direct = await run({ url: server.url, tenant: t, direct: true });
    const proxied = await run({ url: server.url, tenant: t });

    assert.deepEqual(proxied.server, direct.server, 'initialize: capabilities, server info, instructions');
    assert.deepEqual(proxied.steps.map(([name]) => name), direct.steps.map(([name]) => name));
    for (let i = 0; i < direct.steps.length; i++) assert.deepEqual(proxied.steps[i], direct.steps[i], `step ${direct.steps[i]![0]}`);
    assert.deepEqual(proxied.serverRequests, direct.serverRequests, 'sampling, elicitation and roots requests from the server, as it sent them');
    assert.deepEqual(proxied.notifications, direct.notifications, 'notifications: list changes, progress, log messages');

    // What the session shows, so the comparison above is not of two empty transcripts.
    const step = (name: string) => proxied.steps.find(([n]) => n === name)![1] as any;
    assert.ok(step('tools/list').tools.length >= 15);
    const progress = proxied.notifications.filter((n) => (n as { method: string }).method === 'notifications/progress') as Array<{ params: { progress: number; total: number } }>;
    assert.deepEqual(progress.map((n) => [n.params.progress, n.params.total]), [[1, 3], [2, 3], [3, 3]]);
    assert.match(JSON.stringify(step('tools/call sampling')), /a sampled answer/);
    assert.match(JSON.stringify(step('tools/call elicitation')), /Ada Lovelace/);
    assert.match(JSON.stringify(step('tools/call roots')), /file:\/\/\/srv\/project/);
    assert.deepEqual(proxied.serverRequests.map(([m]) => m), ['roots/list', 'sampling/createMessage', 'elicitation/create', 'roots/list']);
    assert.ok(proxied.notifications.some((n) => (n as { method: string }).method === 'notifications/tools/list_changed'));
    assert.ok(proxied.notifications.some((n) => (n as { method: string }).method === 'notifications/message'));
    assert.match(String(step('tools/call cancelled')), /^rejected: .*user pressed stop/);
    assert.deepEqual(step('tools/call after the cancellation').content, [{ type: 'text', text: 'The sum of 2 and 3 is 5.' }]);
    assert.doesNotMatch(proxied.stderr, /unknown message ID|Received a response for an unknown/i, 'no answer to the cancelled call reached the client');

    // The server (someone else's code) never sees the proxy's secrets: its get-env tool would hand them to the model.
    const env = await connect({ url: server.url, tenant: t }, [EVERYTHING_SERVER, 'stdio'], CAPABILITIES);
    try {
      const shown = JSON.stringify(await env.client.callTool({ name: 'get-env', arguments: {} }));
      assert.match(shown, /PATH/, 'the environment is passed on');
      assert.doesNotMatch(shown, /LOGI_PAK|pano_pak_/, 'but not the PAK');
    } finally {
      await env.close();
    }

    // Every tools/call through the proxy is traced: 10 answered and 1 cancelled (and get-env).
    const got = await eventually('the traces', async () => {
      const all = await traces(server, t);
      return all.length >= 12 ? all : undefined;
    });
    const cancelledTrace = got.find((x) => x.status === 'error');
    assert.match(cancelledTrace?.error_message ?? '', /^cancelled: /);
    assert.equal(got.filter((x) => x.status === 'ok').length, 11);
    assert.equal(got.length, 12);
  });
});
