// A small MCP server (stdio transport) whose every tool call is checked by the Panopticon guard
// and traced: the instrumentation is the one `instrumentMcpServer(...)` line.
//
//   npm run build
//   node examples/mcp-server.mjs --url http://127.0.0.1:8080 --pak pano_pak_… --client-id logi_…
//
// Point an MCP client (Claude Desktop, an IDE, `npx @modelcontextprotocol/inspector`) at that
// command. Logs go to stderr; stdout carries the MCP protocol.
import { parseArgs } from 'node:util';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import * as z from 'zod';
import { createPanopticon, instrumentMcpServer } from '@panopticon/sdk';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:8080' },
    pak: { type: 'string' },
    'client-id': { type: 'string' },
    'pak-secret': { type: 'string' },
    user: { type: 'string', default: 'stdio-user' },
  },
});
if (!args.pak || !args['client-id']) {
  console.error('usage: node examples/mcp-server.mjs --url URL --pak PAK --client-id CLIENT_ID [--pak-secret SECRET] [--user SUB]');
  process.exit(2);
}

const panopticon = createPanopticon({
  url: args.url, pak: args.pak, clientId: args['client-id'], pakSecret: args['pak-secret'],
  onError: (err) => console.error(`panopticon: ${err.message}`),
});
const server = new McpServer({ name: 'notes', version: '1.0.0' });

instrumentMcpServer(server, panopticon, {
  timeoutMs: 10_000,
  // A stdio server has no OAuth token to read the caller from; name them here.
  userSub: () => args.user,
  scope: (tool) => (tool === 'delete_note' ? 'notes:write' : 'notes:read'),
  onApprovalRequired: ({ tool, approval }) => console.error(`${tool} waits for approval ${approval.id}`),
});

const notes = new Map([['welcome', 'Hello from Panopticon.']]);
server.registerTool('list_notes', { description: 'List the note titles' }, async () => ({
  content: [{ type: 'text', text: [...notes.keys()].join('\n') }],
}));
server.registerTool('read_note', { description: 'Read one note', inputSchema: { title: z.string() } }, async ({ title }) => {
  const text = notes.get(title);
  return text === undefined ? { content: [{ type: 'text', text: `no note ${title}` }], isError: true } : { content: [{ type: 'text', text }] };
});
server.registerTool('delete_note', { description: 'Delete a note', inputSchema: { title: z.string() } }, async ({ title }) => {
  notes.delete(title);
  return { content: [{ type: 'text', text: `deleted ${title}` }] };
});

const shutdown = async () => {
  await panopticon.shutdown({ timeoutMs: 5000 });
  process.exit(0);
};
process.stdin.on('end', shutdown);
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
await server.connect(new StdioServerTransport());
