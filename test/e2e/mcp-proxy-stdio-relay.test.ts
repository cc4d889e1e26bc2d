/**
 * The stdio relay, byte by byte, against a bare server that records every line it receives
 * (testing/raw-server.ts): what is not governed passes unchanged both ways (ids, key order,
 * spacing, escapes, CR, batches, server → client requests and their answers); tools/call ids are
 * kept and answers relayed as written; a line that is not JSON is refused; a held call cancelled by
 * the client never reaches the server; a call timeout cancels the call and drops the late answer;
 * the server's exit code, its stderr and the client's EOF. One engine: nothing here depends on the
 * store (the PAK routes the proxy calls run on both in tools.test.ts and filesystem.test.ts).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTenant, ENGINES, http, startServer, tempDir, type RunningServer, type Tenant } from '../support/harness.js';
import { addRule, proxyArgs, proxyEnv, RAW_SERVER, traces } from '../support/mcp.js';
import { eventually, sleep } from '../support/wait.js';

class RawSession {
  readonly child: ChildProcess;
  readonly out: string[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;
  private partial = '';
  private seen = 0;

  constructor(readonly logFile: string, url: string, tenant: Tenant, flags: readonly string[], server: readonly string[] = [RAW_SERVER]) {
    this.child = spawn(process.execPath, proxyArgs(url, tenant.clientId, flags, [process.execPath, ...server]), {
      env: proxyEnv(tenant.pak, { RAW_SERVER_LOG: logFile }), stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (d: Buffer) => {
      this.partial += d.toString('utf8');
      let nl: number;
      while ((nl = this.partial.indexOf('\n')) !== -1) {
        this.out.push(this.partial.slice(0, nl));
        this.partial = this.partial.slice(nl + 1);
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  send(line: string): void {
    this.child.stdin!.write(line + '\n');
  }

  /** The next line from the proxy's stdout (in order), waiting for it. */
  async next(timeoutMs = 20_000): Promise<string> {
    const line = await eventually('a line from the proxy', () => this.out[this.seen], timeoutMs);
    this.seen++;
    return line;
  }

  /** Every line the server received, verbatim. */
  received(): string[] {
    if (!fs.existsSync(this.logFile)) return [];
    return fs.readFileSync(this.logFile, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as string);
  }

  async handshake(): Promise<void> {
    this.send(JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } }));
    assert.match(await this.next(), /"serverInfo":\{"name":"raw-server"/);
    this.send('{"jsonrpc":"2.0","method":"notifications/initialized"}');
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

const engine = ENGINES[0]!;

describe(`MCP proxy over stdio: the relay [${engine}]`, () => {
  let server: RunningServer;
  let t: Tenant;
  let dir: string;
  let n = 0;
  const session = (flags: readonly string[] = [], tenant = t, command?: readonly string[]) => new RawSession(path.join(dir, `server-${++n}.log`), server.url, tenant, flags, command);

  before(async () => {
    server = await startServer(engine);
    t = await createTenant(server.url);
    dir = tempDir('relay');
  });
  after(async () => {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('one session', () => {
    let s: RawSession;
    before(async () => {
      s = session();
      await s.handshake();
    });
    after(async () => {
      s.kill();
      await s.exited;
    });

    it('relays every message it does not govern byte for byte, both ways: spacing, key order, escapes, CR, batches, server → client requests and their answers', async () => {
      const lines = [
        '{ "jsonrpc" : "2.0", "id" : 7, "method" : "resources/list", "params" : { "b" : "\\u00e9", "a" : 1 } }',
        '{"method":"notifications/roots/list_changed","jsonrpc":"2.0"}\r',
        '[{"jsonrpc":"2.0","id":8,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/x"}]',
        '{"jsonrpc":"2.0","id":"s-1","result":{"role":"assistant","content":{"type":"text","text":"hi \\ud83d\\ude00"}}}',
      ];
      for (const l of lines) s.send(l);
      assert.equal(await s.next(), '{"jsonrpc":"2.0","id":7,"result":{"method":"resources/list"}}');
      assert.equal(await s.next(), '[{"jsonrpc":"2.0","id":8,"result":{"method":"ping"}}]');
      await eventually('the lines at the server', () => s.received().length >= 6);
      assert.deepEqual(s.received().slice(2, 6), lines, 'the server received each line exactly as the client wrote it');

      // Server → client: a sampling request and an odd notification, as the server wrote them.
      const fromServer = [
        '{"jsonrpc":"2.0","id":"s-2","method":"sampling/createMessage","params":{"messages":[],"maxTokens":5,"x":"\\u2028"}}',
        '{ "jsonrpc":"2.0", "method":"notifications/message", "params":{"level":"info","data":"log line"} }',
      ];
      for (const l of fromServer) s.send(JSON.stringify({ jsonrpc: '2.0', method: 'test/emit', params: { line: l } }));
      assert.equal(await s.next(), fromServer[0]);
      assert.equal(await s.next(), fromServer[1]);
    });

    it('answers a client line that is not JSON with a parse error and does not relay it; a tools/call without a name is invalid params', async () => {
      const before = s.received().length;
      s.send('{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"a":NaN}}}');
      assert.deepEqual(JSON.parse(await s.next()), { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error: the Panopticon MCP proxy relays JSON-RPC messages only' } });
      s.send('{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"arguments":{}}}');
      assert.equal(JSON.parse(await s.next()).error.code, -32602);
      await sleep(200);
      assert.equal(s.received().length, before, 'neither reached the server');
    });

    it('a call to a tool never listed makes the proxy list the tools itself (its own id, the answer not relayed); ids of calls are kept and answers relayed as written', async () => {
      s.send('{"jsonrpc":"2.0","id":"call-a","method":"tools/call","params":{"name":"echo","arguments":{"x":1}}}');
      assert.equal(await s.next(), '{"jsonrpc":"2.0","id":"call-a","result":{"content":[{"type":"text","text":"{\\"x\\":1}"}]}}');
      const own = s.received().filter((l) => l.includes('"tools/list"'));
      assert.deepEqual(own.map((l) => JSON.parse(l).id), ['panopticon-proxy-1']);
      assert.ok(!s.out.some((l) => l.includes('panopticon-proxy')), 'the proxy\'s own answer is not relayed');

      s.send('{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"echo","arguments":{"y":2}}}');
      assert.equal(await s.next(), '{"jsonrpc":"2.0","id":11,"result":{"content":[{"type":"text","text":"{\\"y\\":2}"}]}}');
      assert.ok(s.received().includes('{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"echo","arguments":{"y":2}}}'), 'the call line itself is forwarded unchanged');

      s.send('{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"nope","arguments":{}}}');
      const refused = JSON.parse(await s.next());
      assert.equal(refused.id, 12);
      assert.equal(refused.result.isError, true);
      assert.match(refused.result.content[0].text, /did not list a tool named "nope"/);

      const got = await eventually('three traces', async () => ((await traces(server, t)).length >= 3 ? traces(server, t) : undefined));
      assert.deepEqual(got.map((x) => [x.tool, x.status, x.attributes?.['mcp.request.id']]).sort(), [['echo', 'ok', '11'], ['echo', 'ok', 'call-a'], ['nope', 'denied', '12']]);
    });

    it('the answer to tools/list is the one message rewritten: without the tools that are not approved, everything else kept', async () => {
      // Another definition of `slow` reported (as by another proxy of the app) is quarantined; the
      // server's own definition is still the pin, so this session keeps showing it.
      const changed = await http(server.url, 'POST', '/panopticon/tools', { token: t.pak, body: { client_id: t.clientId, tools: [{ name: 'slow', description: 'something else', inputSchema: { type: 'object' } }] } });
      assert.equal(changed.body.tools[0].status, 'pending');
      const listed = await http(server.url, 'GET', `/api/apps/${t.clientId}/tools`, { token: t.token });
      const slow = listed.body.tools.find((x: { name: string }) => x.name === 'slow');
      assert.equal(slow.status, 'quarantined');
      s.send('{"jsonrpc":"2.0","id":13,"method":"tools/list","params":{}}');
      const answer = JSON.parse(await s.next());
      assert.deepEqual(answer.result.tools.map((x: { name: string }) => x.name), ['echo', 'slow', 'exit'], 'the pinned definition is what the server shows');
      // An operator approves the other definition: the server's becomes a change, hidden and refused.

      const pinnedId = slow.pinned.id as string;
      const pending = slow.changes[0].id as string;
      assert.equal((await http(server.url, 'POST', `/api/apps/${t.clientId}/tools/definitions/${pending}/approve`, { token: t.token })).status, 200);
      s.send('{"jsonrpc":"2.0","id":14,"method":"tools/list"}');
      const hidden = JSON.parse(await s.next());
      assert.deepEqual(Object.keys(hidden), ['jsonrpc', 'id', 'result']);
      assert.deepEqual(hidden.result.tools.map((x: { name: string }) => x.name), ['echo', 'exit'], 'the server\'s definition is now a change, quarantined');
      assert.match(s.stderr, /tool "slow" hidden: tool "slow" changed since it was approved and is quarantined until an operator approves the new definition \(tdf_\w+\)/);
      s.send('{"jsonrpc":"2.0","id":15,"method":"tools/call","params":{"name":"slow","arguments":{"ms":1}}}');
      const refused = JSON.parse(await s.next());
      assert.equal(refused.result.isError, true);
      assert.match(refused.result.content[0].text, /^Refused by Panopticon: tool "slow" changed since it was approved and is quarantined/);
      assert.ok(!s.received().some((l) => l.includes('"id":15')), 'the server never saw the refused call');
      assert.notEqual(pinnedId, pending);
    });

    it('a batch holding a tools/call is relayed one message at a time', async () => {
      s.send('[{"jsonrpc":"2.0","id":20,"method":"tools/call","params":{"name":"echo","arguments":{"b":1}}},{"jsonrpc":"2.0","id":21,"method":"ping"}]');
      const answers = [JSON.parse(await s.next()), JSON.parse(await s.next())];
      assert.deepEqual(answers.map((a) => a.id).sort(), [20, 21]);
      assert.ok(s.received().includes('{"jsonrpc":"2.0","id":21,"method":"ping"}'));
      assert.ok(s.received().includes('{"jsonrpc":"2.0","id":20,"method":"tools/call","params":{"name":"echo","arguments":{"b":1}}}'));
    });
  });

  it('a call held for approval and cancelled by the client: neither the call nor the cancellation reaches the server; no answer; traced as cancelled', async () => {
    const held = await createTenant(server.url);
    await addRule(server, held, { name: 'slow needs a human', effect: 'require_approval', match: { tools: ['slow'] } });
    const s = session([], held);
    try {
      await s.handshake();
      s.send('{"jsonrpc":"2.0","id":1,"method":"tools/list"}');
      await s.next();
      s.send('{"jsonrpc":"2.0","id":30,"method":"tools/call","params":{"name":"slow","arguments":{"ms":1}}}');
      const approval = await eventually('the approval request', async () => (await http(server.url, 'GET', `/api/apps/${held.clientId}/approvals?status=pending`, { token: held.token })).body.approvals[0]);
      s.send('{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":30,"reason":"user pressed stop"}}');
      await sleep(100);
      assert.equal((await http(server.url, 'POST', `/api/approvals/${approval.id}/approve`, { token: held.token, body: {} })).status, 200);
      const trace = await eventually('the trace', async () => (await traces(server, held)).find((x) => x.tool === 'slow'));
      assert.equal(trace.status, 'error');
      assert.equal(trace.error_message, 'cancelled: user pressed stop (before it was sent to the server)');
      s.send('{"jsonrpc":"2.0","id":31,"method":"ping"}');
      assert.equal(await s.next(), '{"jsonrpc":"2.0","id":31,"result":{"method":"ping"}}', 'nothing answered call 30');
      assert.ok(!s.received().some((l) => l.includes('"id":30') || l.includes('"requestId":30')));
    } finally {
      s.kill();
      await s.exited;
    }
  });

  it('--call-timeout: the client gets a tool error, the server notifications/cancelled, its late answer is dropped; traced as timeout', async () => {
    const own = await createTenant(server.url);
    const s = session(['--call-timeout', '300ms'], own);
    try {
      await s.handshake();
      s.send('{"jsonrpc":"2.0","id":40,"method":"tools/call","params":{"name":"slow","arguments":{"ms":1200}}}');
      const answer = JSON.parse(await s.next());
      assert.equal(answer.id, 40);
      assert.deepEqual(answer.result, { content: [{ type: 'text', text: 'Tool slow timed out after 300 ms (Panopticon proxy); the server was asked to cancel it.' }], isError: true });
      await eventually('the cancellation at the server', () => s.received().find((l) => l.includes('notifications/cancelled')));
      assert.deepEqual(JSON.parse(s.received().find((l) => l.includes('notifications/cancelled'))!).params, { requestId: 40, reason: 'timed out after 300 ms in the Panopticon proxy' });
      await sleep(1200);
      s.send('{"jsonrpc":"2.0","id":41,"method":"ping"}');
      assert.equal(await s.next(), '{"jsonrpc":"2.0","id":41,"result":{"method":"ping"}}', 'the late answer to 40 was dropped');
      const trace = await eventually('the trace', async () => (await traces(server, own)).find((x) => x.tool === 'slow' && x.status === 'timeout'));
      assert.equal(trace.error_message, 'no result within 300 ms');
    } finally {
      s.kill();
      await s.exited;
    }
  });

  it('a refusal that is not an outage (a revoked key) hides the tools and refuses calls even with --fail-open', async () => {
    const revoked = await createTenant(server.url);
    assert.equal((await http(server.url, 'POST', `/api/apps/${revoked.clientId}/paks/revoke`, { token: revoked.token, body: {} })).status, 200);
    const s = session(['--fail-open'], revoked);
    try {
      await s.handshake();
      s.send('{"jsonrpc":"2.0","id":60,"method":"tools/list"}');
      assert.deepEqual(JSON.parse(await s.next()).result.tools, []);
      s.send('{"jsonrpc":"2.0","id":61,"method":"tools/call","params":{"name":"echo","arguments":{}}}');
      const refused = JSON.parse(await s.next());
      assert.match(refused.result.content[0].text, /^Refused by Panopticon: the definition of tool "echo" cannot be verified: Panopticon refused the tool report \(pak_revoked: /);
      assert.ok(!s.received().some((l) => l.includes('"id":61')));
      assert.match(s.stderr, /hiding every tool not approved before, in any fail mode/);
    } finally {
      s.kill();
      await s.exited;
    }
  });

  it('a hidden tool an operator approves is announced: initialize declares tools.listChanged, notifications/tools/list_changed follows the approval, and the next list shows the tool', async () => {
    const strict = await createTenant(server.url);
    await http(server.url, 'PUT', `/api/apps/${strict.clientId}/tools/settings`, { token: strict.token, body: { new_tools: 'require_approval' } });
    const s = session([], strict);
    try {
      s.send(JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } }));
      const init = JSON.parse(await s.next());
      assert.deepEqual(init.result.capabilities, { tools: { listChanged: true } }, 'the raw server declares tools: {}; the proxy adds listChanged');
      assert.deepEqual(init.result.serverInfo, { name: 'raw-server', version: '1.0.0' });
      s.send('{"jsonrpc":"2.0","method":"notifications/initialized"}');
      s.send('{"jsonrpc":"2.0","id":1,"method":"tools/list"}');
      assert.deepEqual(JSON.parse(await s.next()).result.tools, [], 'every tool is new and waits for approval');

      const listed = (await http(server.url, 'GET', `/api/apps/${strict.clientId}/tools`, { token: strict.token })).body.tools as Array<{ name: string; changes: Array<{ id: string }> }>;
      const echo = listed.find((x) => x.name === 'echo')!;
      assert.equal((await http(server.url, 'POST', `/api/apps/${strict.clientId}/tools/definitions/${echo.changes[0]!.id}/approve`, { token: strict.token })).status, 200);
      // The next line, unasked: within one recheck (3 s) and the report's round trip.
      assert.equal(await s.next(10_000), '{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}');
      s.send('{"jsonrpc":"2.0","id":2,"method":"tools/list"}');
      assert.deepEqual(JSON.parse(await s.next()).result.tools.map((x: { name: string }) => x.name), ['echo'], 'slow and exit still wait');
      assert.equal(s.received().filter((l) => l.includes('list_changed')).length, 0, 'the notification is the proxy\'s: the server never sees it');
      assert.match(s.stderr, /tool "echo" may be shown now \(approved\)/);
    } finally {
      s.kill();
      await s.exited;
    }
  });

  it('the server\'s exit ends the proxy with its exit code; the server\'s stderr is the proxy\'s stderr', async () => {
    const s = session(['--no-guard']);
    await s.handshake();
    s.send('{"jsonrpc":"2.0","id":50,"method":"tools/call","params":{"name":"exit","arguments":{"code":3}}}');
    assert.equal(await s.exited, 3);
    assert.match(s.stderr, /^raw-server started$/m);
    const trace = await eventually('the trace', async () => (await traces(server, t)).find((x) => x.tool === 'exit'));
    assert.deepEqual([trace.status, trace.error_message, trace.check_id], ['error', 'the server exited before answering', null], '--no-guard: no check');
  });

  it('the client\'s EOF closes the server\'s stdin; the proxy exits with the server\'s code', async () => {
    const s = session();
    await s.handshake();
    s.child.stdin!.end();
    assert.equal(await s.exited, 0);
    assert.equal(s.received().at(-1), 'EOF');
  });

  it('a server that cannot be started: exit 127 and a message on stderr', async () => {
    const proxy = spawn(process.execPath, proxyArgs(server.url, t.clientId, [], ['/nonexistent/mcp-server']), { env: proxyEnv(t.pak), stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    proxy.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => proxy.on('exit', resolve));
    assert.equal(code, 127);
    assert.match(stderr, /could not start \/nonexistent\/mcp-server: spawn \/nonexistent\/mcp-server ENOENT/);
  });
});
