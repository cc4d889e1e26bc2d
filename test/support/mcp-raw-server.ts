/**
 * A bare MCP stdio server for the relay tests, written without the MCP SDK so every byte is under
 * the test's control. It appends every line it receives, verbatim, to the file named by
 * RAW_SERVER_LOG (one JSON string per line), and answers:
 *   initialize → tools capability; tools/list → `echo`, `slow`, `exit`; tools/call echo → the
 *   arguments as text; slow → after `ms`; exit → exits with `code`; any other request → {method}.
 *   notification `test/emit` → writes `params.line` to stdout as is (server → client messages).
 * It prints "raw-server started" on stderr, and exits 0 at the end of its stdin (after logging "EOF").
 */
import fs from 'node:fs';

const logFile = process.env.RAW_SERVER_LOG;
const record = (line: string) => {
  if (logFile !== undefined) fs.appendFileSync(logFile, JSON.stringify(line) + '\n');
};
const send = (m: unknown): void => void process.stdout.write(JSON.stringify(m) + "\n");

process.stderr.write('raw-server started\n');
let partial = '';
process.stdin.on('data', (chunk: Buffer) => {
  partial += chunk.toString('utf8');
  let nl: number;
  while ((nl = partial.indexOf('\n')) !== -1) {
    const line = partial.slice(0, nl);
    partial = partial.slice(nl + 1);
    record(line);
    handle(line);
  }
});
process.stdin.on('end', () => {
  record('EOF');
  process.exit(0);
});

function handle(line: string): void {
  let m: Record<string, any>;
  try {
    m = JSON.parse(line);
  } catch {
    return;
  }
  if (Array.isArray(m)) {
    const answers = m.filter((x) => x.id !== undefined && x.method !== undefined).map((x) => ({ jsonrpc: '2.0', id: x.id, result: { method: x.method } }));
    if (answers.length > 0) process.stdout.write(JSON.stringify(answers) + '\n');
    return;
  }
  if (m.method === 'test/emit') {
    process.stdout.write(String(m.params.line) + '\n');
    return;
  }
  if (m.id === undefined || m.method === undefined) return;
  switch (m.method) {
    case 'initialize':
      return send({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: m.params?.protocolVersion ?? '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'raw-server', version: '1.0.0' } } });
    case 'tools/list':
      return send({
        jsonrpc: '2.0', id: m.id, result: {
          tools: [
            { name: 'echo', description: 'Echoes its arguments', inputSchema: { type: 'object' } },
            { name: 'slow', description: 'Answers after ms milliseconds', inputSchema: { type: 'object', properties: { ms: { type: 'number' } } } },
            { name: 'exit', description: 'Exits with code', inputSchema: { type: 'object', properties: { code: { type: 'number' } } } },
          ],
        },
      });
    case 'tools/call': {
      const args = m.params?.arguments ?? {};
      if (m.params?.name === 'slow') {
        setTimeout(() => send({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: 'slow done' }] } }), Number(args.ms ?? 0));
        return;
      }
      if (m.params?.name === 'exit') process.exit(Number(args.code ?? 0));
      return send({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: JSON.stringify(args) }] } });
    }
    default:
      return send({ jsonrpc: '2.0', id: m.id, result: { method: m.method } });
  }
}
