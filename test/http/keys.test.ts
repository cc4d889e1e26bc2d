/** PAK lifecycle over HTTP on both engines: issue once, rotate with grace, revoke at once. */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { createTenant, ENGINES, http, postTrace, startServer, twoNodesOnePostgres, traceBody, type RunningServer, type TwoNodes, type Tenant, POSTGRES_ONLY } from '../support/harness.js';
import { hashSecret, isWellFormedToken, PAK_PREFIX } from '../../src/keys/tokens.js';

describe('token shape and hash', () => {
  const base62 = (value: number, length: number) => {
    const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
    let out = '';
    for (let i = 0; i < length; i++, value = Math.floor(value / 62)) out = alphabet[value % 62] + out;
    return out;
  };
  const withChecksum = (body: string) => PAK_PREFIX + body + base62(zlib.crc32(PAK_PREFIX + body), 6);

  it('a key with a correct checksum but a character outside base62 is malformed', () => {
    assert.ok(isWellFormedToken(PAK_PREFIX, withChecksum('A'.repeat(32))));
    for (const bad of ['-', '_', '+', '/', ' ', 'é']) assert.equal(isWellFormedToken(PAK_PREFIX, withChecksum('A'.repeat(31) + bad)), false, bad);
  });

  it('hashSecret is the hex SHA-256 of the key', () => {
    const key = withChecksum('B'.repeat(32));
    assert.equal(hashSecret(key), crypto.createHash('sha256').update(key).digest('hex'));
  });
});

for (const engine of ENGINES) {
  describe(`PAK lifecycle [${engine}]`, () => {
    let server: RunningServer;
    let t: Tenant;
    before(async () => {
      server = await startServer(engine);
      t = await createTenant(server.url, { issuePak: false });
    });
    after(() => server.close());

    const send = (pak: string) => postTrace(server.url, pak, traceBody(t.clientId));

    it('issues a well-formed key once; only its hash and a prefix are stored', async () => {
      const res = await http(server.url, 'POST', `/api/apps/${t.clientId}/paks`, { token: t.token });
      assert.equal(res.status, 201);
      const pak = res.body.pak as string;
      assert.ok(isWellFormedToken(PAK_PREFIX, pak));
      assert.equal(pak.length, 'pano_pak_'.length + 38);
      assert.equal(res.body.prefix, pak.slice(0, 15));
      const auth = await server.store.keys.findForAuth(hashSecret(pak));
      assert.equal(auth?.keyId, res.body.id);
      const listed = await http(server.url, 'GET', `/api/apps/${t.clientId}/paks`, { token: t.token });
      assert.ok(!listed.text.includes(pak), 'the list never shows the key');
      assert.equal(listed.body.paks.length, 1);
      assert.equal((await send(pak)).status, 202);
      t.pak = pak;

      const again = await http(server.url, 'POST', `/api/apps/${t.clientId}/paks`, { token: t.token });
      assert.equal(again.status, 409);
      assert.equal(again.body.error.code, 'pak_exists');
    });

    it('records last use without a write per request', async () => {
      await send(t.pak);
      await server.services.paks.flushLastUsed();
      const listed = await http(server.url, 'GET', `/api/apps/${t.clientId}/paks`, { token: t.token });
      assert.ok(listed.body.paks[0].last_used_at !== null);
    });

    it('rotation keeps the old key valid through the grace period', async () => {
      const res = await http(server.url, 'POST', `/api/apps/${t.clientId}/paks/rotate`, { token: t.token, body: { grace_seconds: 3600 } });
      assert.equal(res.status, 201);
      assert.equal(res.body.previous.length, 1);
      assert.equal(res.body.previous[0].status, 'expiring');
      assert.equal((await send(t.pak)).status, 202, 'old key still works during grace');
      assert.equal((await send(res.body.pak)).status, 202, 'new key works at once');
      t.pak = res.body.pak;
    });

    it('rotation with grace 0 cuts the old keys off at once', async () => {
      const old = t.pak;
      const res = await http(server.url, 'POST', `/api/apps/${t.clientId}/paks/rotate`, { token: t.token, body: { grace_seconds: 0 } });
      assert.equal(res.status, 201);
      const denied = await send(old);
      assert.equal(denied.status, 401);
      assert.equal(denied.body.error.code, 'pak_revoked');
      assert.equal((await send(res.body.pak)).status, 202);
      t.pak = res.body.pak;
    });

    it('revoke is immediate, also for a key this node has cached', async () => {
      assert.equal((await send(t.pak)).status, 202); // cached now
      const res = await http(server.url, 'POST', `/api/apps/${t.clientId}/paks/revoke`, { token: t.token, body: {} });
      assert.equal(res.status, 200);
      assert.ok(res.body.revoked.length >= 1);
      const denied = await send(t.pak);
      assert.equal(denied.status, 401);
      assert.equal(denied.body.error.code, 'pak_revoked');
      // With no active key left, a new one can be issued.
      assert.equal((await http(server.url, 'POST', `/api/apps/${t.clientId}/paks`, { token: t.token })).status, 201);
    });

    it('revoking an unknown key id is a 404', async () => {
      const res = await http(server.url, 'POST', `/api/apps/${t.clientId}/paks/revoke`, { token: t.token, body: { key_id: 'pak_nope' } });
      assert.equal(res.status, 404);
      assert.equal(res.body.error.code, 'pak_not_found');
    });

    it('rejects a grace period out of bounds', async () => {
      const res = await http(server.url, 'POST', `/api/apps/${t.clientId}/paks/rotate`, { token: t.token, body: { grace_seconds: -1 } });
      assert.equal(res.status, 400);
      assert.equal(res.body.error.code, 'validation_failed');
    });
  });
}

for (const engine of ENGINES) {
  describe(`revoke after a rotation grace has ended [${engine}]`, () => {
    let server: RunningServer;
    let clock = Date.now();
    before(async () => {
      server = await startServer(engine, {}, undefined, { now: () => clock });
    });
    after(() => server.close());

    it('revoking all stops the keys still valid and leaves the expired one expired; by id, the expired key is a 404', async () => {
      const t = await createTenant(server.url);
      const rotated = await http(server.url, 'POST', `/api/apps/${t.clientId}/paks/rotate`, { token: t.token, body: { grace_seconds: 60 } });
      assert.equal(rotated.status, 201);
      const oldId: string = rotated.body.previous[0].id;
      clock += 61_000;
      const byId = await http(server.url, 'POST', `/api/apps/${t.clientId}/paks/revoke`, { token: t.token, body: { key_id: oldId } });
      assert.equal(byId.status, 404);
      assert.equal(byId.body.error.code, 'pak_not_found');

      const all = await http(server.url, 'POST', `/api/apps/${t.clientId}/paks/revoke`, { token: t.token, body: {} });
      assert.equal(all.status, 200);
      assert.deepEqual(all.body.revoked.map((k: { id: string; status: string }) => [k.id, k.status]), [[rotated.body.id, 'revoked']]);
      const listed = await http(server.url, 'GET', `/api/apps/${t.clientId}/paks`, { token: t.token });
      const status = Object.fromEntries(listed.body.paks.map((k: { id: string; status: string }) => [k.id, k.status]));
      assert.deepEqual(status, { [rotated.body.id]: 'revoked', [oldId]: 'expired' });
      const audit = await http(server.url, 'GET', `/api/apps/${t.clientId}/audit`, { token: t.token });
      const revokes = audit.body.entries.filter((e: { action: string }) => e.action === 'pak.revoke');
      assert.equal(revokes.length, 1, 'nothing revoked by id, nothing audited');
      assert.deepEqual(revokes[0].after.map((k: { id: string }) => k.id), [rotated.body.id]);
    });
  });
}

describe('revoke on every node (two nodes, one PostgreSQL)', POSTGRES_ONLY, () => {
  let a: RunningServer;
  let b: RunningServer;
  let t: Tenant;
  let nodes: TwoNodes;
  before(async () => {
    nodes = await twoNodesOnePostgres();
    ({ a, b, t } = nodes);
  });
  after(() => nodes.close());

  it('a key revoked on node A is refused by node B within a second, though B had it cached', async () => {
    assert.equal((await postTrace(b.url, t.pak, traceBody(t.clientId))).status, 202);
    assert.equal((await http(a.url, 'POST', `/api/apps/${t.clientId}/paks/revoke`, { token: t.token, body: {} })).status, 200);
    const deadline = Date.now() + 1000;
    let status = 0;
    while (Date.now() < deadline) {
      status = (await postTrace(b.url, t.pak, traceBody(t.clientId))).status;
      if (status === 401) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(status, 401);
  });

  it('disabling the app on node A stops ingestion on node B', async () => {
    const pak = (await http(a.url, 'POST', `/api/apps/${t.clientId}/paks`, { token: t.token })).body.pak as string;
    assert.equal((await postTrace(b.url, pak, traceBody(t.clientId))).status, 202);
    await http(a.url, 'PATCH', `/api/apps/${t.clientId}`, { token: t.token, body: { panopticon_enabled: false } });
    const deadline = Date.now() + 1000;
    let status = 0;
    while (Date.now() < deadline) {
      status = (await postTrace(b.url, pak, traceBody(t.clientId))).status;
      if (status === 403) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(status, 403);
  });
});
