/** event_id is the idempotency key: one spelling per UUID, or one trace could be stored twice. */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createTenant, ENGINES, http, postTrace, startServer, traceBody, type RunningServer, type Tenant } from '../support/harness.js';

for (const engine of ENGINES) {
  describe(`event_id forms [${engine}]`, () => {
    let server: RunningServer;
    let t: Tenant;
    before(async () => {
      server = await startServer(engine);
      t = await createTenant(server.url);
    });
    after(() => server.close());

    it('refuses every form but 8-4-4-4-12 hex with 400, storing nothing', async () => {
      const id = crypto.randomUUID();
      for (const spelling of [`urn:uuid:${id}`, `URN:UUID:${id}`, `{${id}}`, id.replace(/-/g, ''), ` ${id}`, `${id}\n`]) {
        const res = await postTrace(server.url, t.pak, traceBody(t.clientId, { event_id: spelling }));
        assert.equal(res.status, 400, `${JSON.stringify(spelling)}: ${res.text}`);
        assert.equal(res.body.error.code, 'validation_failed');
        assert.equal(res.body.error.fields[0].field, 'event_id');
      }
      const batch = await http(server.url, 'POST', '/panopticon/traces', { token: t.pak, body: { traces: [traceBody(t.clientId, { event_id: `urn:uuid:${id}` })] } });
      assert.equal(batch.body.results[0].status, 'rejected');
      const check = await http(server.url, 'POST', '/panopticon/guard/check', { token: t.pak, body: { client_id: t.clientId, tool: 'hello', scope: 'agent:read', event_id: `urn:uuid:${id}` } });
      assert.equal(check.status, 400);
      assert.equal(await server.store.traces.count(t.clientId), 0);
    });

    it('treats upper and lower case as one id: the second spelling is a duplicate', async () => {
      const id = crypto.randomUUID();
      assert.equal((await postTrace(server.url, t.pak, traceBody(t.clientId, { event_id: id.toUpperCase() }))).status, 202);
      const again = await postTrace(server.url, t.pak, traceBody(t.clientId, { event_id: id }));
      assert.equal(again.status, 200);
      assert.equal(again.body.status, 'duplicate');
      assert.equal(again.body.event_id, id);
      const usage = await http(server.url, 'GET', `/api/apps/${t.clientId}/usage?since=2026-05-09&until=2026-05-09`, { token: t.token });
      assert.equal(usage.body.rows[0].traces, 1);
    });
  });
}
