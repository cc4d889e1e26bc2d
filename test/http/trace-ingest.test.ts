/** POST /panopticon/trace against the real server on both engines: happy, error and security. */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createTenant, ENGINES, http, postTrace, startServer, traceBody, type RunningServer, type Tenant } from '../support/harness.js';

for (const engine of ENGINES) {
  describe(`trace ingest [${engine}]`, () => {
    let server: RunningServer;
    let tenant: Tenant;
    let other: Tenant;

    before(async () => {
      server = await startServer(engine);
      tenant = await createTenant(server.url);
      other = await createTenant(server.url);
    });
    after(() => server.close());

    const count = () => server.store.traces.count(tenant.clientId);

    it('answers 202 accepted, then 200 duplicate for the same event_id, storing one row', async () => {
      const body = traceBody(tenant.clientId);
      const first = await postTrace(server.url, tenant.pak, body);
      assert.equal(first.status, 202);
      assert.equal(first.text, `{"event_id":"${body.event_id as string}","status":"accepted"}`);
      const again = await postTrace(server.url, tenant.pak, body);
      assert.equal(again.status, 200);
      assert.equal(again.text, `{"event_id":"${body.event_id as string}","status":"duplicate"}`);
      const stored = await server.store.traces.list({ clientId: tenant.clientId, limit: 10 });
      assert.equal(stored.filter((t) => t.eventId === body.event_id).length, 1);
    });

    it('scopes idempotency per app: the same event_id is new for another app', async () => {
      const eventId = crypto.randomUUID();
      assert.equal((await postTrace(server.url, tenant.pak, traceBody(tenant.clientId, { event_id: eventId }))).status, 202);
      assert.equal((await postTrace(server.url, other.pak, traceBody(other.clientId, { event_id: eventId }))).status, 202);
    });

    it('accepts exactly one of N concurrent sends of one event_id', async () => {
      const body = traceBody(tenant.clientId);
      const results = await Promise.all(Array.from({ length: 40 }, () => postTrace(server.url, tenant.pak, body)));
      assert.deepEqual(results.map((r) => r.status).sort(), [202, ...Array(39).fill(200)].sort());
    });

    it('keeps started_at in UTC to the microsecond and the optional fields', async () => {
      const body = traceBody(tenant.clientId, {
        started_at: '2026-05-09T12:11:12.123456+02:00',
        user_sub: 'user-1',
        session_id: 's-1',
        error_message: 'boom',
        status: 'error',
        attributes: { model: 'x', nested: { a: [1, 2] } },
      });
      assert.equal((await postTrace(server.url, tenant.pak, body)).status, 202);
      const [row] = (await server.store.traces.list({ clientId: tenant.clientId, limit: 500 })).filter((t) => t.eventId === body.event_id);
      assert.ok(row);
      assert.equal(row.startedAtUs, Date.parse('2026-05-09T10:11:12.123Z') * 1000 + 456);
      assert.equal(row.day, '2026-05-09');
      assert.equal(row.userSub, 'user-1');
      assert.equal(row.sessionId, 's-1');
      assert.equal(row.errorMessage, 'boom');
      assert.deepEqual(JSON.parse(row.attributes!), { model: 'x', nested: { a: [1, 2] } });
    });

    it('accepts attributes just under the byte bound (the request id format is req_ and 20 hex digits)', async () => {
      // {"note":"…"} is 11 bytes around the text: 16,373 ASCII bytes of text make 16,384 exactly.
      const res = await postTrace(server.url, tenant.pak, traceBody(tenant.clientId, { attributes: { note: 'x'.repeat(16_373) } }));
      assert.equal(res.status, 202);
      const bad = await postTrace(server.url, tenant.pak, traceBody(tenant.clientId, { attributes: { note: 'x'.repeat(16_374) } }));
      assert.equal(bad.status, 400);
      assert.match(bad.body.error.request_id, /^req_[0-9a-f]{20}$/);
    });

    it('accepts user_sub null, as the product page example sends', async () => {
      assert.equal((await postTrace(server.url, tenant.pak, traceBody(tenant.clientId, { user_sub: null }))).status, 202);
    });

    describe('errors store nothing', () => {
      const cases: Array<{ name: string; status: number; code: string; send: () => Promise<{ status: number; body: any; headers: Headers }> }> = [
        { name: 'missing PAK', status: 401, code: 'pak_missing', send: () => http(server.url, 'POST', '/panopticon/trace', { body: traceBody(tenant.clientId) }) },
        { name: 'not Bearer', status: 401, code: 'pak_malformed', send: () => http(server.url, 'POST', '/panopticon/trace', { body: traceBody(tenant.clientId), headers: { authorization: `Basic ${tenant.pak}` } }) },
        { name: 'bad checksum', status: 401, code: 'pak_malformed', send: () => postTrace(server.url, tenant.pak.slice(0, -1) + (tenant.pak.endsWith('A') ? 'B' : 'A'), traceBody(tenant.clientId)) },
        { name: 'unknown PAK', status: 401, code: 'pak_invalid', send: () => postTrace(server.url, 'pano_pak_' + 'A'.repeat(32) + checksumFor('A'.repeat(32)), traceBody(tenant.clientId)) },
        { name: "another app's client_id", status: 403, code: 'client_id_mismatch', send: () => postTrace(server.url, tenant.pak, traceBody(other.clientId)) },
        { name: 'not JSON', status: 415, code: 'unsupported_media_type', send: () => http(server.url, 'POST', '/panopticon/trace', { raw: 'hello', token: tenant.pak, headers: { 'content-type': 'text/plain' } }) },
        { name: 'malformed JSON', status: 400, code: 'malformed_json', send: () => http(server.url, 'POST', '/panopticon/trace', { raw: '{"event_id":', token: tenant.pak, headers: { 'content-type': 'application/json' } }) },
        { name: 'too large', status: 413, code: 'payload_too_large', send: () => postTrace(server.url, tenant.pak, traceBody(tenant.clientId, { error_message: 'x'.repeat(70_000) })) },
        { name: 'attributes too deep', status: 400, code: 'validation_failed', send: () => postTrace(server.url, tenant.pak, traceBody(tenant.clientId, { attributes: { a: { b: { c: { d: { e: { f: { g: { h: { i: 1 } } } } } } } } } })) },
        // 6,000 characters, 18,000 bytes of UTF-8: over the 16 KB bound in bytes though not in characters.
        { name: 'attributes over the byte bound in multi-byte text', status: 400, code: 'validation_failed', send: () => postTrace(server.url, tenant.pak, traceBody(tenant.clientId, { attributes: { note: '€'.repeat(6_000) } })) },
        { name: 'NUL in a text field', status: 400, code: 'validation_failed', send: () => postTrace(server.url, tenant.pak, traceBody(tenant.clientId, { tool: 'search\u0000docs' })) },
        { name: 'string duration', status: 400, code: 'validation_failed', send: () => postTrace(server.url, tenant.pak, traceBody(tenant.clientId, { duration_ms: '12' })) },
      ];
      for (const c of cases) {
        it(`${c.name} → ${c.status} ${c.code}`, async () => {
          const before = await count();
          const res = await c.send();
          assert.equal(res.status, c.status);
          assert.equal(res.body.error.code, c.code);
          assert.match(res.body.error.request_id, /^req_/);
          assert.equal(await count(), before);
        });
      }

      it('a NUL in one request does not sink the others riding the same group commit', async () => {
        const good = Array.from({ length: 20 }, () => traceBody(tenant.clientId));
        const bad = traceBody(tenant.clientId, { session_id: 'a\u0000b' });
        const results = await Promise.all([...good.slice(0, 10), bad, ...good.slice(10)].map((body) => postTrace(server.url, tenant.pak, body)));
        assert.deepEqual(results.map((r) => r.status), [...Array(10).fill(202), 400, ...Array(10).fill(202)]);
        assert.deepEqual(results[10]!.body.error.fields, [{ field: 'session_id', message: 'must not contain U+0000 (NUL)' }]);
      });

      it('a lone surrogate in a text field is stored as U+FFFD and does not sink the group commit it rides', async () => {
        const good = Array.from({ length: 10 }, () => traceBody(tenant.clientId));
        // JSON allows "\ud800" (no UTF-8 form): sent as the raw escape, as a client might.
        const odd = traceBody(tenant.clientId, { tool: 'PLACEHOLDER' });
        const raw = JSON.stringify(odd).replace('"tool":"PLACEHOLDER"', '"tool":"bad\\ud800tool"');
        const results = await Promise.all([
          ...good.slice(0, 5).map((body) => postTrace(server.url, tenant.pak, body)),
          http(server.url, 'POST', '/panopticon/trace', { raw, token: tenant.pak, headers: { 'content-type': 'application/json' } }),
          ...good.slice(5).map((body) => postTrace(server.url, tenant.pak, body)),
        ]);
        assert.deepEqual(results.map((r) => r.status), Array(11).fill(202));
        const [row] = (await server.store.traces.list({ clientId: tenant.clientId, limit: 500 })).filter((t) => t.eventId === odd.event_id);
        assert.equal(row?.tool, 'bad\ufffdtool');
      });

      it('a schema violation names every offending field', async () => {
        const res = await postTrace(server.url, tenant.pak, { ...traceBody(tenant.clientId, { status: 'great', duration_ms: -1, extra: 1 }), tool: undefined });
        assert.equal(res.status, 400);
        const fields = (res.body.error.fields as Array<{ field: string }>).map((f) => f.field).sort();
        assert.deepEqual(fields, ['duration_ms', 'extra', 'status', 'tool']);
      });

      it('disabled app → 403 panopticon_disabled', async () => {
        await http(server.url, 'PATCH', `/api/apps/${tenant.clientId}`, { token: tenant.token, body: { panopticon_enabled: false } });
        try {
          const res = await postTrace(server.url, tenant.pak, traceBody(tenant.clientId));
          assert.equal(res.status, 403);
          assert.equal(res.body.error.code, 'panopticon_disabled');
        } finally {
          await http(server.url, 'PATCH', `/api/apps/${tenant.clientId}`, { token: tenant.token, body: { panopticon_enabled: true } });
        }
        assert.equal((await postTrace(server.url, tenant.pak, traceBody(tenant.clientId))).status, 202);
      });
    });
  });
}

import { generateToken } from '../../src/keys/tokens.js';
import zlib from 'node:zlib';
function checksumFor(body: string): string {
  // Build a well-formed key that was never issued, using the same checksum as real ones.
  const token = generateToken('pano_pak_');
  void token;
  const B = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  let v = zlib.crc32('pano_pak_' + body);
  let out = '';
  for (let i = 0; i < 6; i++) {
    out = B[v % 62] + out;
    v = Math.floor(v / 62);
  }
  return out;
}
