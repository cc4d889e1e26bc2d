/**
 * Tenant isolation: no account can see or change another's apps, keys, traces or usage. Every
 * read and write endpoint is tried with the wrong account; each answers 404 app_not_found (which
 * says nothing of whether the app exists) and changes nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTenant, ENGINES, http, postTrace, startServer, traceBody, type RunningServer, type Tenant } from '../support/harness.js';

for (const engine of ENGINES) {
  describe(`tenant isolation [${engine}]`, () => {
    let server: RunningServer;
    let alice: Tenant;
    let mallory: Tenant;

    before(async () => {
      server = await startServer(engine);
      alice = await createTenant(server.url);
      mallory = await createTenant(server.url);
      assert.equal((await postTrace(server.url, alice.pak, traceBody(alice.clientId))).status, 202);
    });
    after(() => server.close());

    const attempts = (clientId: string) =>
      [
        ['GET', `/api/apps/${clientId}`, undefined],
        ['PATCH', `/api/apps/${clientId}`, { name: 'pwned', panopticon_enabled: false }],
        ['GET', `/api/apps/${clientId}/paks`, undefined],
        ['POST', `/api/apps/${clientId}/paks`, undefined],
        ['POST', `/api/apps/${clientId}/paks/rotate`, { grace_seconds: 0 }],
        ['POST', `/api/apps/${clientId}/paks/revoke`, {}],
        ['GET', `/api/apps/${clientId}/traces`, undefined],
        ['GET', `/api/apps/${clientId}/usage?since=2026-01-01&until=2026-12-31`, undefined],
      ] as const;

    it("every app endpoint answers 404 for another account's app, and changes nothing", async () => {
      for (const [method, path, body] of attempts(alice.clientId)) {
        const res = await http(server.url, method, path, { token: mallory.token, body });
        assert.equal(res.status, 404, `${method} ${path}`);
        assert.equal(res.body.error.code, 'app_not_found', `${method} ${path}`);
      }
      const app = await http(server.url, 'GET', `/api/apps/${alice.clientId}`, { token: alice.token });
      assert.equal(app.body.name, 'test app');
      assert.equal(app.body.panopticon_enabled, true);
      const keys = await http(server.url, 'GET', `/api/apps/${alice.clientId}/paks`, { token: alice.token });
      assert.deepEqual(keys.body.paks.map((k: { status: string }) => k.status), ['active']);
      // Alice's key still works: nothing was rotated or revoked.
      assert.equal((await postTrace(server.url, alice.pak, traceBody(alice.clientId))).status, 202);
    });

    it('a client_id that does not exist looks the same as one that belongs to someone else', async () => {
      const res = await http(server.url, 'GET', '/api/apps/logi_ffffffffffff', { token: mallory.token });
      assert.equal(res.status, 404);
      assert.equal(res.body.error.code, 'app_not_found');
    });

    it('lists only the caller\'s apps; traces and usage only of the caller\'s apps', async () => {
      const list = await http(server.url, 'GET', '/api/apps', { token: mallory.token });
      assert.deepEqual(list.body.apps.map((a: { client_id: string }) => a.client_id), [mallory.clientId]);
      const traces = await http(server.url, 'GET', `/api/apps/${mallory.clientId}/traces`, { token: mallory.token });
      assert.deepEqual(traces.body.traces, []);
      const usage = await http(server.url, 'GET', `/api/apps/${mallory.clientId}/usage?since=2026-01-01&until=2026-12-31`, { token: mallory.token });
      assert.equal(usage.body.totals.traces, 0);
      const mine = await http(server.url, 'GET', `/api/apps/${alice.clientId}/usage?since=2026-01-01&until=2026-12-31`, { token: alice.token });
      assert.equal(mine.body.totals.traces, 2);
    });

    it("a PAK cannot write into another app, even naming that app's client_id", async () => {
      const before = await server.store.traces.count(alice.clientId);
      const res = await postTrace(server.url, mallory.pak, traceBody(alice.clientId));
      assert.equal(res.status, 403);
      assert.equal(res.body.error.code, 'client_id_mismatch');
      const batch = await http(server.url, 'POST', '/panopticon/traces', { token: mallory.pak, body: { traces: [traceBody(alice.clientId)] } });
      assert.equal(batch.status, 207);
      assert.equal(batch.body.results[0].error.code, 'client_id_mismatch');
      assert.equal(await server.store.traces.count(alice.clientId), before);
    });
  });
}
