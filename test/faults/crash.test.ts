/**
 * kill -9 under load, on `logi serve` child processes on both engines: a 202 is a promise that
 * survives the process dying right after it, an unanswered request leaves either its whole trace or
 * nothing, and usage never disagrees with the stored rows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTenant, ENGINES, freshLocation, http, postTrace, spawnServer, traceBody, type SpawnedServer, type Tenant } from '../support/harness.js';
import { startLoad, storedIds, waitFor } from '../support/load.js';

for (const engine of ENGINES) {
  describe(`SIGKILL during load [${engine}]`, () => {
    const fresh = freshLocation(engine);
    const servers: SpawnedServer[] = [];
    let tenant: Tenant;

    before(async () => {
      servers.push(await spawnServer({ PANOPTICON_DB: fresh.dbValue }));
      tenant = await createTenant(servers[0]!.url);
    });
    after(async () => {
      for (const s of servers) {
        if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
        await s.exited;
      }
      await fresh.cleanup();
    });

    it('keeps every acked trace, stores no phantom, and usage equals the rows after a restart', async () => {
      const first = servers[0]!;
      const load = startLoad(first.url, tenant);
      await waitFor(() => load.acked() >= 300, 20_000, '300 acknowledged traces');
      first.child.kill('SIGKILL');
      await first.exited;
      const outcomes = await load.stop();

      const acked = new Set(outcomes.filter((o) => o.status === 202 || o.status === 200).map((o) => o.eventId));
      for (const o of outcomes) assert.ok(o.status === null || o.status === 202 || o.status === 200, `status ${o.status}: ${o.body}`);
      const acceptedBefore = outcomes.filter((o) => o.status === 202).map((o) => o.eventId);
      assert.equal(new Set(acceptedBefore).size, acceptedBefore.length, 'no event_id was accepted twice');
      assert.ok(outcomes.some((o) => o.status === 200), 'the load raced duplicates against their originals');

      const storedAfterCrash = await storedIds(fresh.location, tenant.clientId);
      for (const id of acked) assert.ok(storedAfterCrash.has(id), `acked ${id} is stored`);
      for (const id of storedAfterCrash) assert.ok(load.ids.has(id), 'only ids that were sent are stored');

      const second = await spawnServer({ PANOPTICON_DB: fresh.dbValue });
      servers.push(second);
      const resent = new Map<string, number>();
      const all = [...load.ids];
      // Resend everything, 16 at a time: acked ids must be duplicates; the rest either way.
      for (let i = 0; i < all.length; i += 16) {
        await Promise.all(all.slice(i, i + 16).map(async (id) => {
          const res = await postTrace(second.url, tenant.pak, traceBody(tenant.clientId, { event_id: id }));
          resent.set(id, res.status);
        }));
      }
      for (const id of all) {
        const status = resent.get(id);
        // A stored trace must answer duplicate and an unstored one accepted: a row left half
        // written, or an ack without a row, would break one of the two.
        assert.equal(status, storedAfterCrash.has(id) ? 200 : 202, `resend of ${id}`);
      }

      const finalIds = await storedIds(fresh.location, tenant.clientId);
      assert.equal(finalIds.size, load.ids.size, 'one row per distinct event_id');
      const usage = await http(second.url, 'GET', `/api/apps/${tenant.clientId}/usage?since=2026-05-01&until=2026-05-31`, { token: tenant.token });
      assert.equal(usage.status, 200);
      assert.ok(usage.body.rows.length >= 2, 'the load spread over several days');
      assert.equal(usage.body.totals.traces, finalIds.size, 'usage counts exactly the stored rows');
    });
  });
}
