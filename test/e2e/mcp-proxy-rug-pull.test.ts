/**
 * Tool pinning end to end, on both engines: a server (testing/rug-pull-server.ts) changes a tool's
 * description between two tools/list calls; through the proxy, the official MCP client then no
 * longer sees that tool and its calls are refused, until an operator approves the new definition;
 * the change and the approval are in the audit log. New tools can be made to wait for approval.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { createTenant, ENGINES, http, startServer, type RunningServer, type Tenant } from '../support/harness.js';
import { connect, RUG_PULL_SERVER, traces } from '../support/mcp.js';
import { eventually } from '../support/wait.js';
import { HONEST, POISONED } from '../support/mcp-rug-pull-server.js';

const text = (r: unknown) => ((r as { content: Array<{ text: string }> }).content[0]?.text ?? '');

for (const engine of ENGINES) {
  describe(`MCP proxy: tool pinning against a rug pull [${engine}]`, () => {
    let server: RunningServer;
    let t: Tenant;

    before(async () => {
      server = await startServer(engine);
      t = await createTenant(server.url);
    });
    after(() => server.close());

    const audit = async (tenant: Tenant) =>
      ((await http(server.url, 'GET', `/api/apps/${tenant.clientId}/audit?limit=50`, { token: tenant.token })).body.entries as Array<{ action: string; target: string | null; actor: string; after: any }>).reverse();

    it('a changed description quarantines the tool (gone from the list, calls refused) until an operator approves it; change and approval audited', async () => {
      const p = await connect({ url: server.url, tenant: t }, [RUG_PULL_SERVER]);
      try {
        const first = (await p.client.listTools()).tools;
        assert.deepEqual(first.map((x) => [x.name, x.description]), [['fetch_url', HONEST], ['get_time', 'Returns the time.']]);
        assert.equal(text(await p.client.callTool({ name: 'fetch_url', arguments: { url: 'https://example.org' } })), 'fetch_url ran');

        const second = (await p.client.listTools()).tools;
        assert.deepEqual(second.map((x) => x.name), ['get_time'], 'the poisoned description never reaches the client');
        const refused = await p.client.callTool({ name: 'fetch_url', arguments: { url: 'https://example.org' } });
        assert.equal(refused.isError, true);
        assert.match(text(refused), /^Refused by Panopticon: tool "fetch_url" changed since it was approved and is quarantined until an operator approves the new definition \(tdf_\w+\)\.$/);
        assert.equal(text(await p.client.callTool({ name: 'get_time', arguments: {} })), 'get_time ran', 'the unchanged tool still works');

        const listed = (await http(server.url, 'GET', `/api/apps/${t.clientId}/tools`, { token: t.token })).body.tools as any[];
        const tool = listed.find((x) => x.name === 'fetch_url');
        assert.equal(tool.status, 'quarantined');
        assert.equal(tool.pinned.definition.description, HONEST);
        assert.equal(tool.changes[0].definition.description, POISONED);
        const change = (await audit(t)).find((e) => e.action === 'tool.quarantine')!;
        assert.equal(change.target, 'fetch_url');
        assert.match(change.actor, /^pak:pak_/);
        assert.equal(change.after.definition_id, tool.changes[0].id);

        const approved = await http(server.url, 'POST', `/api/apps/${t.clientId}/tools/definitions/${tool.changes[0].id}/approve`, { token: t.token });
        assert.equal(approved.status, 200, approved.text);
        // Approved while the client's view is stale: a call is asked about again, and goes through.
        assert.equal(text(await p.client.callTool({ name: 'fetch_url', arguments: { url: 'https://example.org' } })), 'fetch_url ran');
        const third = (await p.client.listTools()).tools;
        assert.deepEqual(third.map((x) => [x.name, x.description]), [['fetch_url', POISONED], ['get_time', 'Returns the time.']]);

        const entries = await audit(t);
        assert.deepEqual(entries.filter((e) => e.target === 'fetch_url' || e.action === 'tool.pin').map((e) => e.action), ['tool.pin', 'tool.quarantine', 'tool.approve']);
        assert.match(entries.find((e) => e.action === 'tool.approve')!.actor, /^account:/);
        const verify = await http(server.url, 'GET', `/api/apps/${t.clientId}/audit/verify`, { token: t.token });
        assert.equal(verify.body.ok, true, verify.text);

        const refusedTrace = await eventually('the refused call\'s trace', async () => (await traces(server, t)).find((x) => x.status === 'denied'));
        assert.equal(refusedTrace.tool, 'fetch_url');
        assert.equal(refusedTrace.error_message, 'tool_pending');
      } finally {
        await p.close();
      }
    });

    it('with new tools requiring approval, a server\'s tools stay hidden and refused until approved one by one', async () => {
      const strict = await createTenant(server.url);
      await http(server.url, 'PUT', `/api/apps/${strict.clientId}/tools/settings`, { token: strict.token, body: { new_tools: 'require_approval' } });
      const p = await connect({ url: server.url, tenant: strict }, [RUG_PULL_SERVER]);
      let announced = 0;
      p.client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
        announced++;
      });
      try {
        assert.equal(p.client.getServerCapabilities()?.tools?.listChanged, true);
        assert.deepEqual((await p.client.listTools()).tools, []);
        const refused = await p.client.callTool({ name: 'get_time', arguments: {} });
        assert.match(text(refused), /^Refused by Panopticon: tool "get_time" is new and waits for an operator's approval \(definition tdf_\w+\)\.$/);
        const listed = (await http(server.url, 'GET', `/api/apps/${strict.clientId}/tools`, { token: strict.token })).body.tools as any[];
        const getTime = listed.find((x) => x.name === 'get_time');
        assert.deepEqual([getTime.status, getTime.pinned], ['quarantined', null]);
        assert.equal(announced, 0);
        await http(server.url, 'POST', `/api/apps/${strict.clientId}/tools/definitions/${getTime.changes[0].id}/approve`, { token: strict.token });
        // The client is told, without listing: the proxy asks about hidden tools every 3 s.
        await eventually('notifications/tools/list_changed', () => announced > 0);
        assert.deepEqual((await p.client.listTools()).tools.map((x) => x.name), ['get_time'], 'approved: it appears; fetch_url (now poisoned, never approved) stays hidden');
      } finally {
        await p.close();
      }
    });
  });
}
