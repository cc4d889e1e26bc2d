/**
 * `logi mcp proxy` in front of @modelcontextprotocol/server-filesystem (installed from npm, written
 * by nobody here), driven by the official MCP client over stdio, on both engines: a deny rule on
 * write_file refuses the write (a tool error naming the rule's reason) and no file appears;
 * read_file works and is traced with its check; the tool list is pinned; an approval is waited for;
 * an unreachable Panopticon fails closed unless --fail-open.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTenant, ENGINES, http, startServer, tempDir, type RunningServer, type Tenant } from '../support/harness.js';
import { addRule, connect, FILESYSTEM_SERVER, traces } from '../support/mcp.js';
import { eventually } from '../support/wait.js';

const text = (r: unknown) => ((r as { content: Array<{ text: string }> }).content[0]?.text ?? '');

for (const engine of ENGINES) {
  describe(`MCP proxy over stdio: server-filesystem [${engine}]`, () => {
    let server: RunningServer;
    let t: Tenant;
    let dir: string;

    before(async () => {
      server = await startServer(engine);
      t = await createTenant(server.url);
      dir = fs.realpathSync(tempDir('fs'));
      fs.writeFileSync(path.join(dir, 'notes.txt'), 'hello from the filesystem\n');
      await addRule(server, t, { name: 'no writes', effect: 'deny', match: { tools: ['write_file', 'edit_file', 'create_directory', 'move_file'] }, reason: 'this agent may only read files' });
    });
    after(async () => {
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('lists the server\'s tools unchanged (all pinned on first sight), refuses write_file by the deny rule, runs and traces read_file', async () => {
      const direct = await connect({ url: server.url, tenant: t, direct: true }, [FILESYSTEM_SERVER, dir]);
      const directTools = (await direct.client.listTools()).tools;
      await direct.close();

      const p = await connect({ url: server.url, tenant: t, flags: ['--user-sub', 'alice', '--session-id', 'sess-1'] }, [FILESYSTEM_SERVER, dir]);
      try {
        const listed = (await p.client.listTools()).tools;
        assert.deepEqual(listed, directTools, 'every tool, as the server describes it');
        assert.ok(listed.some((x) => x.name === 'write_file') && listed.some((x) => x.name === 'read_text_file' || x.name === 'read_file'));
        const pinned = (await http(server.url, 'GET', `/api/apps/${t.clientId}/tools`, { token: t.token })).body.tools as Array<{ name: string; status: string }>;
        assert.deepEqual(pinned.map((x) => x.name).sort(), listed.map((x) => x.name).sort());
        assert.ok(pinned.every((x) => x.status === 'approved'));

        const target = path.join(dir, 'written.txt');
        const write = await p.client.callTool({ name: 'write_file', arguments: { path: target, content: 'should never land' } });
        assert.equal(write.isError, true);
        assert.equal(text(write), 'Denied by Panopticon: this agent may only read files');
        assert.equal(fs.existsSync(target), false, 'the server never saw the call');

        const readName = listed.some((x) => x.name === 'read_file') ? 'read_file' : 'read_text_file';
        const read = await p.client.callTool({ name: readName, arguments: { path: path.join(dir, 'notes.txt') } });
        assert.equal(read.isError ?? false, false, JSON.stringify(read));
        assert.match(text(read), /hello from the filesystem/);

        const got = await eventually('both traces', async () => {
          const all = await traces(server, t);
          return all.length >= 2 ? all : undefined;
        });
        const denied = got.find((x) => x.tool === 'write_file')!;
        const ok = got.find((x) => x.tool === readName)!;
        assert.equal(denied.status, 'denied');
        assert.match(denied.error_message ?? '', /this agent may only read files/);
        assert.equal(ok.status, 'ok');
        for (const tr of [denied, ok]) {
          assert.match(tr.check_id ?? '', /^chk_/, 'the trace names the guard check that decided it');
          assert.equal(tr.user_sub, 'alice');
          assert.equal(tr.session_id, 'sess-1');
          assert.equal(tr.scope_used, 'mcp:tools');
          assert.equal(tr.attributes?.['panopticon.proxy'], 'stdio');
          assert.match(String(tr.attributes?.['mcp.tool.hash']), /^[0-9a-f]{64}$/);
        }
      } finally {
        await p.close();
      }
    });

    it('a call that needs approval waits for the operator, then runs', async () => {
      await addRule(server, t, { name: 'listing needs a human', effect: 'require_approval', match: { tools: ['list_directory'] }, reason: 'directory listings are reviewed' });
      const p = await connect({ url: server.url, tenant: t, flags: ['--approval-timeout', '20s'] }, [FILESYSTEM_SERVER, dir]);
      try {
        await p.client.listTools();
        const call = p.client.callTool({ name: 'list_directory', arguments: { path: dir } });
        const pending = await eventually('the approval request', async () => {
          const res = await http(server.url, 'GET', `/api/apps/${t.clientId}/approvals?status=pending`, { token: t.token });
          return (res.body.approvals as Array<{ id: string; tool: string }>).find((a) => a.tool === 'list_directory');
        });
        const approved = await http(server.url, 'POST', `/api/approvals/${pending.id}/approve`, { token: t.token, body: {} });
        assert.equal(approved.status, 200, approved.text);
        const result = await call;
        assert.equal(result.isError ?? false, false, JSON.stringify(result));
        assert.match(text(result), /notes\.txt/);
        assert.match(p.stderr(), /waits for approval apr_/, 'the proxy says on stderr where to approve');
      } finally {
        await p.close();
      }
    });

    // Touches no server, so once is enough.
    it('Panopticon unreachable: fail-closed hides unverified tools and refuses calls with a clear message; --fail-open lets them through', { skip: engine !== ENGINES[0] && 'needs no store' }, async () => {
      const nowhere = { url: 'http://127.0.0.1:9', tenant: t };
      const closed = await connect({ ...nowhere, flags: ['--quiet'] }, [FILESYSTEM_SERVER, dir]);
      try {
        assert.deepEqual((await closed.client.listTools()).tools, [], 'no definition could be verified');
        const read = await closed.client.callTool({ name: 'list_directory', arguments: { path: dir } });
        assert.equal(read.isError, true);
        assert.match(text(read), /^Refused by Panopticon: Panopticon is unreachable, so the definition of tool "list_directory" cannot be verified; this proxy fails closed\.$/);
      } finally {
        await closed.close();
      }
      const open = await connect({ ...nowhere, flags: ['--fail-open', '--quiet'] }, [FILESYSTEM_SERVER, dir]);
      try {
        assert.ok((await open.client.listTools()).tools.length > 5);
        const read = await open.client.callTool({ name: 'list_directory', arguments: { path: dir } });
        assert.equal(read.isError ?? false, false, JSON.stringify(read));
      } finally {
        await open.close();
      }
    });
  });
}
