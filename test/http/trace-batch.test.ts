/** POST /panopticon/traces against the real server on both engines: per-item results and bounds. */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createTenant, ENGINES, http, postTrace, startServer, traceBody, type RunningServer, type Tenant } from '../support/harness.js';
import { LIMITS } from '../../src/traces/schema.js';

for (const engine of ENGINES) {
  describe(`trace batch [${engine}]`, () => {
    let server: RunningServer;
    let tenant: Tenant;
    let other: Tenant;

    before(async () => {
      server = await startServer(engine);
      tenant = await createTenant(server.url);
      other = await createTenant(server.url);
    });
    after(() => server.close());

    const postBatch = (traces: unknown[], pak = tenant.pak) => http(server.url, 'POST', '/panopticon/traces', { body: { traces }, token: pak });
    const stored = async () => new Map((await server.store.traces.list({ clientId: tenant.clientId, limit: 100_000 })).map((t) => [t.eventId, t]));

    it('answers 200 with one result per item, in input order, when none is rejected', async () => {
      const items = [traceBody(tenant.clientId), traceBody(tenant.clientId, { status: 'error' }), traceBody(tenant.clientId, { status: 'timeout' })];
      const res = await postBatch(items);
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, {
        accepted: 3,
        duplicate: 0,
        rejected: 0,
        results: items.map((i) => ({ event_id: i.event_id, status: 'accepted' })),
      });
      const rows = await stored();
      for (const i of items) assert.ok(rows.has(i.event_id as string));
    });

    it('answers 207 when some items are rejected: the good ones are stored, the bad ones not, each in its slot', async () => {
      const existing = traceBody(tenant.clientId);
      assert.equal((await postTrace(server.url, tenant.pak, existing)).status, 202);
      const fresh1 = traceBody(tenant.clientId);
      const invalid = traceBody(tenant.clientId, { status: 'great', duration_ms: -1 });
      const foreign = traceBody(other.clientId);
      const tooDeep = traceBody(tenant.clientId, { attributes: { a: { b: { c: { d: { e: { f: { g: { h: { i: 1 } } } } } } } } } });
      const noId = { ...traceBody(tenant.clientId), event_id: undefined };
      const fresh2 = traceBody(tenant.clientId);
      const before = (await stored()).size;

      const res = await postBatch([existing, fresh1, invalid, foreign, tooDeep, noId, fresh2]);
      assert.equal(res.status, 207);
      assert.equal(res.body.accepted, 2);
      assert.equal(res.body.duplicate, 1);
      assert.equal(res.body.rejected, 4);
      const r = res.body.results as Array<{ event_id: string | null; status: string; error?: { code: string; message: string; fields?: Array<{ field: string }> } }>;
      assert.equal(r.length, 7);
      assert.deepEqual(r[0], { event_id: existing.event_id, status: 'duplicate' });
      assert.deepEqual(r[1], { event_id: fresh1.event_id, status: 'accepted' });
      assert.equal(r[2]!.status, 'rejected');
      assert.equal(r[2]!.event_id, invalid.event_id);
      assert.equal(r[2]!.error!.code, 'validation_failed');
      assert.deepEqual(r[2]!.error!.fields!.map((f) => f.field).sort(), ['duration_ms', 'status']);
      assert.deepEqual(r[3], {
        event_id: foreign.event_id,
        status: 'rejected',
        error: { code: 'client_id_mismatch', message: 'client_id does not belong to the application of this PAK' },
      });
      assert.equal(r[4]!.error!.code, 'validation_failed');
      assert.deepEqual(r[4]!.error!.fields!.map((f) => f.field), ['attributes']);
      assert.equal(r[5]!.event_id, null);
      assert.deepEqual(r[5]!.error!.fields!.map((f) => f.field), ['event_id']);
      assert.deepEqual(r[6], { event_id: fresh2.event_id, status: 'accepted' });

      const rows = await stored();
      assert.equal(rows.size, before + 2);
      assert.ok(rows.has(fresh1.event_id as string) && rows.has(fresh2.event_id as string));
      for (const bad of [invalid, tooDeep]) assert.ok(!rows.has(bad.event_id as string));
      assert.equal(await server.store.traces.count(other.clientId), 0, "nothing reached the other app's traces");
    });

    it('an event_id twice in one batch: the first item wins, the later one is a duplicate', async () => {
      const id = crypto.randomUUID();
      const first = traceBody(tenant.clientId, { event_id: id, tool: 'first' });
      const second = traceBody(tenant.clientId, { event_id: id.toUpperCase(), tool: 'second' });
      const res = await postBatch([first, second]);
      assert.equal(res.status, 200);
      // Both acknowledgements carry the id as stored: in lower case.
      assert.deepEqual(res.body.results, [{ event_id: id, status: 'accepted' }, { event_id: id, status: 'duplicate' }]);
      const rows = await stored();
      assert.equal(rows.get(id)?.tool, 'first');
      assert.equal([...rows.keys()].filter((k) => k === id).length, 1);
    });

    it(`takes exactly ${LIMITS.batchItems} items; one more is 413 batch_too_large and stores nothing`, async () => {
      const full = Array.from({ length: LIMITS.batchItems }, () => traceBody(tenant.clientId));
      const ok = await postBatch(full);
      assert.equal(ok.status, 200);
      assert.equal(ok.body.accepted, LIMITS.batchItems);

      const before = (await stored()).size;
      const over = Array.from({ length: LIMITS.batchItems + 1 }, () => traceBody(tenant.clientId));
      const res = await postBatch(over);
      assert.equal(res.status, 413);
      assert.equal(res.body.error.code, 'batch_too_large');
      assert.equal((await stored()).size, before);
    });

    it(`refuses a body over ${LIMITS.batchBodyBytes} bytes with 413 payload_too_large and stores nothing`, async () => {
      const before = (await stored()).size;
      const big = Array.from({ length: 600 }, () => traceBody(tenant.clientId, { error_message: 'x'.repeat(4000) }));
      assert.ok(JSON.stringify({ traces: big }).length > LIMITS.batchBodyBytes);
      const res = await postBatch(big);
      assert.equal(res.status, 413);
      assert.equal(res.body.error.code, 'payload_too_large');
      assert.equal((await stored()).size, before);
    });

    it('refuses an empty batch and a malformed envelope with 400 validation_failed', async () => {
      const empty = await postBatch([]);
      assert.equal(empty.status, 400);
      assert.equal(empty.body.error.code, 'validation_failed');
      const notArray = await http(server.url, 'POST', '/panopticon/traces', { body: { traces: traceBody(tenant.clientId) }, token: tenant.pak });
      assert.equal(notArray.status, 400);
      assert.equal(notArray.body.error.code, 'validation_failed');
    });

    it('authenticates the whole batch: a missing PAK is 401 and stores nothing', async () => {
      const before = (await stored()).size;
      const res = await http(server.url, 'POST', '/panopticon/traces', { body: { traces: [traceBody(tenant.clientId)] } });
      assert.equal(res.status, 401);
      assert.equal(res.body.error.code, 'pak_missing');
      assert.equal((await stored()).size, before);
    });
  });
}
