// A plain agent loop governed and traced by Panopticon, with no MCP involved: before each tool
// call it asks the guard, waits for a human when the policy says so, runs the tool, and records
// the call. The "model" is a fixed plan so the example runs anywhere.
//
//   npm run build
//   node examples/agent-loop.mjs --url http://127.0.0.1:8080 --pak pano_pak_… --client-id logi_…
//
// It prints one line per call and, at the end, the SDK's delivery counters as JSON.
import { parseArgs } from 'node:util';
import { createPanopticon } from '@panopticon/sdk';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:8080' },
    pak: { type: 'string' },
    'client-id': { type: 'string' },
    'pak-secret': { type: 'string' },
    user: { type: 'string', default: 'demo-user' },
  },
});
if (!args.pak || !args['client-id']) {
  console.error('usage: node examples/agent-loop.mjs --url URL --pak PAK --client-id CLIENT_ID [--pak-secret SECRET] [--user SUB]');
  process.exit(2);
}

const panopticon = createPanopticon({ url: args.url, pak: args.pak, clientId: args['client-id'], pakSecret: args['pak-secret'] });

// The agent's tools: plain functions.
const tools = {
  get_weather: async ({ city }) => `It is sunny in ${city}.`,
  search_docs: async ({ query }) => `3 documents match "${query}".`,
  send_email: async ({ to }) => {
    if (!to.includes('@')) throw new Error(`not an address: ${to}`);
    return `sent to ${to}`;
  },
};
const scopes = { get_weather: 'weather:read', search_docs: 'docs:read', send_email: 'mail:send' };

// What a model would decide, one tool call per turn.
const plan = [
  { tool: 'get_weather', arguments: { city: 'Paris' } },
  { tool: 'search_docs', arguments: { query: 'refund policy' } },
  { tool: 'send_email', arguments: { to: 'nobody' } },
  { tool: 'send_email', arguments: { to: 'ops@example.com' } },
];

const sessionId = `session-${Date.now()}`;
for (const step of plan) {
  const scope = scopes[step.tool];
  const eventId = crypto.randomUUID();
  const calledAt = new Date();
  const decision = await panopticon.check({ tool: step.tool, scope, userSub: args.user, sessionId, arguments: step.arguments, eventId });
  let allowed = decision.decision === 'allow';
  if (decision.decision === 'require_approval') {
    console.log(`${step.tool}: waiting for approval ${decision.approval.id}`);
    allowed = (await panopticon.waitForApproval(decision.approval.id, { timeoutMs: 120_000 })).approved;
  }
  if (!allowed) {
    panopticon.trace({ eventId, tool: step.tool, scope, status: 'denied', startedAt: calledAt, userSub: args.user, sessionId, errorMessage: decision.message });
    console.log(`${step.tool}: denied (${decision.reason})`);
    continue;
  }
  const started = Date.now();
  try {
    const result = await tools[step.tool](step.arguments);
    panopticon.trace({ eventId, tool: step.tool, scope, status: 'ok', startedAt: new Date(started), durationMs: Date.now() - started, userSub: args.user, sessionId });
    console.log(`${step.tool}: ${result}`);
  } catch (err) {
    panopticon.trace({ eventId, tool: step.tool, scope, status: 'error', startedAt: new Date(started), durationMs: Date.now() - started, userSub: args.user, sessionId, errorMessage: err.message });
    console.log(`${step.tool}: error: ${err.message}`);
  }
}

// Deliver what is still buffered before exiting (at most 10 s).
await panopticon.shutdown({ timeoutMs: 10_000 });
console.log(JSON.stringify(panopticon.stats()));
