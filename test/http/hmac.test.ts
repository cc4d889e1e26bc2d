/**
 * HMAC request signing over HTTP on both engines: the per-app switch, the four signature errors,
 * rotation with grace, nothing stored on any refusal, audit without secrets, encryption at rest,
 * and cross-node enforcement on PostgreSQL. The CLI is tested in test/cli/hmac-cli.test.ts.
 *
 * Signatures are computed here with node:crypto from the documented recipe, not with server code.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createTenant, ENGINES, http, postTrace, startServer, twoNodesOnePostgres, traceBody, type RunningServer, type TwoNodes, type Tenant, POSTGRES_ONLY } from '../support/harness.js';
import { isWellFormedToken, SECRET_PREFIX } from '../../src/keys/tokens.js';
import { sleep } from '../support/wait.js';

/**
 * The clock of every server in this file: real time plus what a test skipped ahead (the grace
 * period of a rotation), so no test sleeps through it. Signatures are timestamped by it too.
 */
let skippedMs = 0;
const serverNow = () => Date.now() + skippedMs;
const nowSeconds = () => Math.floor(serverNow() / 1000);

function sign(secret: string, t: number | string, method: string, pathAndQuery: string, body: string): string {
  return crypto.createHmac('sha256', secret).update(`${t}.${method}.${pathAndQuery}.${body}`).digest('hex');
}

function header(secret: string, method: string, pathAndQuery: string, body: string, t = nowSeconds()): string {
  return `t=${t},v1=${sign(secret, t, method, pathAndQuery, body)}`;
}

/** Sends exactly `raw` (the bytes that were signed) with the PAK and any extra headers. */
function sendRaw(url: string, pak: string, path: string, raw: string, headers: Record<string, string> = {}) {
  return http(url, 'POST', path, { raw, token: pak, headers: { 'content-type': 'application/json', ...headers } });
}


for (const engine of ENGINES) {
  describe(`HMAC request signing [${engine}]`, () => {
    let server: RunningServer;
    let t: Tenant;
    let secret = '';
    const issued: string[] = [];

    before(async () => {
      server = await startServer(engine, {}, undefined, { now: serverNow });
      t = await createTenant(server.url);
    });
    after(() => server.close());

    const count = () => server.store.traces.count(t.clientId);
    const signedTrace = (s: string, overrides: Record<string, unknown> = {}) => {
      const raw = JSON.stringify(traceBody(t.clientId, overrides));
      return sendRaw(server.url, t.pak, '/panopticon/trace', raw, { 'x-panopticon-signature': header(s, 'POST', '/panopticon/trace', raw) });
    };
    async function refused(res: Awaited<ReturnType<typeof http<any>>>, code: string, before: number) {
      assert.equal(res.status, 401, res.text);
      assert.equal(res.body.error.code, code, res.text);
      assert.equal(await count(), before, 'nothing was stored');
    }

    it('is off by default: unsigned traces are accepted and the app says so', async () => {
      assert.equal((await postTrace(server.url, t.pak, traceBody(t.clientId))).status, 202);
      const app = await http(server.url, 'GET', `/api/apps/${t.clientId}`, { token: t.token });
      assert.equal(app.body.hmac_enabled, false);
      const status = await http(server.url, 'GET', `/api/apps/${t.clientId}/hmac`, { token: t.token });
      assert.deepEqual(status.body, { client_id: t.clientId, enabled: false, secrets: [] });
      const rotate = await http(server.url, 'POST', `/api/apps/${t.clientId}/hmac/rotate`, { token: t.token, body: {} });
      assert.equal(rotate.status, 409);
      assert.equal(rotate.body.error.code, 'hmac_not_enabled');
    });

    it('enable issues a pano_sec_ secret once, stores it encrypted, and is refused when already on', async () => {
      const res = await http(server.url, 'POST', `/api/apps/${t.clientId}/hmac/enable`, { token: t.token });
      assert.equal(res.status, 201, res.text);
      secret = res.body.pak_secret;
      issued.push(secret);
      assert.ok(isWellFormedToken(SECRET_PREFIX, secret), secret);
      assert.equal(res.body.enabled, true);
      assert.equal(res.body.secret.prefix, secret.slice(0, SECRET_PREFIX.length + 6));
      assert.equal(res.body.secret.status, 'active');

      const [row, ...others] = await server.store.secrets.listSecrets(t.clientId);
      assert.equal(others.length, 0);
      assert.ok(!row!.sealed.includes(secret) && !row!.sealed.includes(secret.slice(SECRET_PREFIX.length)), 'secret_enc holds no clear text');
      assert.equal(server.services.secrets.open(row!.sealed, t.clientId), secret, 'and opens back to the secret under the server key');

      const status = await http(server.url, 'GET', `/api/apps/${t.clientId}/hmac`, { token: t.token });
      assert.equal(status.body.enabled, true);
      assert.equal(status.body.secrets.length, 1);
      assert.ok(!status.text.includes(secret), 'the status never shows the secret');
      assert.equal((await http(server.url, 'GET', `/api/apps/${t.clientId}`, { token: t.token })).body.hmac_enabled, true);

      const again = await http(server.url, 'POST', `/api/apps/${t.clientId}/hmac/enable`, { token: t.token });
      assert.equal(again.status, 409);
      assert.equal(again.body.error.code, 'hmac_already_enabled');
    });

    it('an unsigned trace is 401 signature_missing, also when its body is not JSON', async () => {
      const n = await count();
      await refused(await postTrace(server.url, t.pak, traceBody(t.clientId)), 'signature_missing', n);
      await refused(await http(server.url, 'POST', '/panopticon/trace', { raw: 'hello', token: t.pak, headers: { 'content-type': 'text/plain' } }), 'signature_missing', n);
      await refused(await postTrace(server.url, t.pak, traceBody(t.clientId), { 'x-panopticon-signature': '' }), 'signature_missing', n);
    });

    it('PAK errors come before signature errors', async () => {
      const res = await postTrace(server.url, 'pano_pak_nope', traceBody(t.clientId));
      assert.equal(res.status, 401);
      assert.equal(res.body.error.code, 'pak_malformed');
      const none = await http(server.url, 'POST', '/panopticon/trace', { body: traceBody(t.clientId) });
      assert.equal(none.body.error.code, 'pak_missing');
    });

    it('a header not of the form t=…,v1=… is 401 signature_malformed', async () => {
      const n = await count();
      const good = sign(secret, nowSeconds(), 'POST', '/panopticon/trace', '{}');
      for (const value of [
        'garbage', `v1=${good}`, `t=${nowSeconds()}`, `t=abc,v1=${good}`, `t=${nowSeconds()},v1=${good.slice(1)}`,
        `t=${nowSeconds()},v1=${'z'.repeat(64)}`, `t=1,t=2,v1=${good}`, `t=${nowSeconds()},,v1=${good}`, `t=-5,v1=${good}`,
      ]) {
        await refused(await postTrace(server.url, t.pak, traceBody(t.clientId), { 'x-panopticon-signature': value }), 'signature_malformed', n);
      }
    });

    it('a timestamp more than 300 s from the server clock is 401 signature_expired, even when correctly signed', async () => {
      const n = await count();
      for (const skew of [-301, 301, -3600]) {
        const raw = JSON.stringify(traceBody(t.clientId));
        const at = nowSeconds() + skew;
        const res = await sendRaw(server.url, t.pak, '/panopticon/trace', raw, { 'x-panopticon-signature': header(secret, 'POST', '/panopticon/trace', raw, at) });
        await refused(res, 'signature_expired', n);
      }
      // Within the tolerance (leaving room for a slow machine) it is accepted.
      const raw = JSON.stringify(traceBody(t.clientId));
      const ok = await sendRaw(server.url, t.pak, '/panopticon/trace', raw, { 'x-panopticon-signature': header(secret, 'POST', '/panopticon/trace', raw, nowSeconds() - 280) });
      assert.equal(ok.status, 202, ok.text);
    });

    it('a signature over anything else is 401 signature_mismatch: secret, body, path, query, method, timestamp', async () => {
      const n = await count();
      const raw = JSON.stringify(traceBody(t.clientId));
      const at = nowSeconds();
      const wrong = {
        secret: header('pano_sec_not_the_secret', 'POST', '/panopticon/trace', raw, at),
        body: header(secret, 'POST', '/panopticon/trace', raw.replace('"hello"', '"hellp"'), at),
        path: header(secret, 'POST', '/panopticon/traces', raw, at),
        method: header(secret, 'PUT', '/panopticon/trace', raw, at),
        timestamp: `t=${at - 1},v1=${sign(secret, at, 'POST', '/panopticon/trace', raw)}`,
      };
      for (const [what, value] of Object.entries(wrong)) {
        const res = await sendRaw(server.url, t.pak, '/panopticon/trace', raw, { 'x-panopticon-signature': value });
        assert.equal(res.body.error?.code, 'signature_mismatch', `changed ${what}: ${res.text}`);
        await refused(res, 'signature_mismatch', n);
      }
      // The query string is part of what is signed.
      const noQuery = header(secret, 'POST', '/panopticon/trace', raw, at);
      await refused(await sendRaw(server.url, t.pak, '/panopticon/trace?x=1', raw, { 'x-panopticon-signature': noQuery }), 'signature_mismatch', n);
      const withQuery = header(secret, 'POST', '/panopticon/trace?x=1', raw, at);
      assert.equal((await sendRaw(server.url, t.pak, '/panopticon/trace?x=1', raw, { 'x-panopticon-signature': withQuery })).status, 202);
      // Whitespace is part of the raw body: the same JSON, formatted otherwise, is another body.
      const spaced = JSON.stringify(JSON.parse(raw), null, 1);
      await refused(await sendRaw(server.url, t.pak, '/panopticon/trace', spaced, { 'x-panopticon-signature': header(secret, 'POST', '/panopticon/trace', raw, at) }), 'signature_mismatch', n + 1);
    });

    it('a bad signature wins over a bad body; a good signature lets body errors through', async () => {
      const n = await count();
      const broken = '{"event_id": ';
      await refused(await sendRaw(server.url, t.pak, '/panopticon/trace', broken, { 'x-panopticon-signature': header(secret, 'POST', '/panopticon/trace', '{}') }), 'signature_mismatch', n);
      const signedBroken = await sendRaw(server.url, t.pak, '/panopticon/trace', broken, { 'x-panopticon-signature': header(secret, 'POST', '/panopticon/trace', broken) });
      assert.equal(signedBroken.status, 400);
      assert.equal(signedBroken.body.error.code, 'malformed_json');
      const poisoned = '{"__proto__": {"x": 1}}';
      const proto = await sendRaw(server.url, t.pak, '/panopticon/trace', poisoned, { 'x-panopticon-signature': header(secret, 'POST', '/panopticon/trace', poisoned) });
      assert.equal(proto.status, 400, 'prototype poisoning is refused as by Fastify\'s own parser');
      // No body at all is checked against the empty body.
      const emptyOk = await http(server.url, 'POST', '/panopticon/trace', { token: t.pak, headers: { 'x-panopticon-signature': header(secret, 'POST', '/panopticon/trace', '') } });
      assert.equal(emptyOk.body.error.code, 'validation_failed', emptyOk.text);
      await refused(await http(server.url, 'POST', '/panopticon/trace', { token: t.pak, headers: { 'x-panopticon-signature': header(secret, 'POST', '/panopticon/trace', 'x') } }), 'signature_mismatch', n);
      assert.equal(await count(), n);
    });

    it('a correctly signed trace is 202, and its resend 200 duplicate', async () => {
      const n = await count();
      const raw = JSON.stringify(traceBody(t.clientId));
      const sig = header(secret, 'POST', '/panopticon/trace', raw);
      const first = await sendRaw(server.url, t.pak, '/panopticon/trace', raw, { 'x-panopticon-signature': sig });
      assert.equal(first.status, 202, first.text);
      const second = await sendRaw(server.url, t.pak, '/panopticon/trace', raw, { 'x-panopticon-signature': sig });
      assert.equal(second.status, 200);
      assert.equal(second.body.status, 'duplicate');
      assert.equal(await count(), n + 1);
    });

    it('several v1 values are allowed; one match is enough, spaces and unknown schemes are ignored', async () => {
      const raw = JSON.stringify(traceBody(t.clientId));
      const at = nowSeconds();
      const good = sign(secret, at, 'POST', '/panopticon/trace', raw);
      const bad = sign('pano_sec_other', at, 'POST', '/panopticon/trace', raw);
      const res = await sendRaw(server.url, t.pak, '/panopticon/trace', raw, { 'x-panopticon-signature': `t=${at}, v1=${bad}, v0=whatever, v1=${good.toUpperCase()}` });
      assert.equal(res.status, 202, res.text);
      const n = await count();
      const none = await sendRaw(server.url, t.pak, '/panopticon/trace', JSON.stringify(traceBody(t.clientId)), { 'x-panopticon-signature': `t=${at},v1=${bad},v1=${bad}` });
      await refused(none, 'signature_mismatch', n);
    });

    it('the batch endpoint is enforced too', async () => {
      const n = await count();
      const raw = JSON.stringify({ traces: [traceBody(t.clientId), traceBody(t.clientId)] });
      await refused(await sendRaw(server.url, t.pak, '/panopticon/traces', raw), 'signature_missing', n);
      await refused(await sendRaw(server.url, t.pak, '/panopticon/traces', raw, { 'x-panopticon-signature': header(secret, 'POST', '/panopticon/trace', raw) }), 'signature_mismatch', n);
      const ok = await sendRaw(server.url, t.pak, '/panopticon/traces', raw, { 'x-panopticon-signature': header(secret, 'POST', '/panopticon/traces', raw) });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.body.accepted, 2);
      assert.equal(await count(), n + 2);
    });

    it('rotation: old and new secret both work during the grace period, the old one not after it', async () => {
      const old = secret;
      const res = await http(server.url, 'POST', `/api/apps/${t.clientId}/hmac/rotate`, { token: t.token, body: { grace_seconds: 2 } });
      assert.equal(res.status, 201, res.text);
      secret = res.body.pak_secret;
      issued.push(secret);
      assert.ok(isWellFormedToken(SECRET_PREFIX, secret));
      assert.notEqual(secret, old);
      assert.deepEqual(res.body.previous.map((p: { status: string }) => p.status), ['expiring']);
      assert.equal((await signedTrace(old)).status, 202, 'old secret still valid during grace');
      assert.equal((await signedTrace(secret)).status, 202, 'new secret valid at once');
      skippedMs += 2100; // past the grace period, on the server's clock
      const n = await count();
      await refused(await signedTrace(old), 'signature_mismatch', n);
      assert.equal((await signedTrace(secret)).status, 202);
    });

    it('rotation with grace 0 cuts the old secret off at once', async () => {
      const old = secret;
      assert.equal((await signedTrace(old)).status, 202); // cached on this node
      const res = await http(server.url, 'POST', `/api/apps/${t.clientId}/hmac/rotate`, { token: t.token, body: { grace_seconds: 0 } });
      assert.equal(res.status, 201);
      secret = res.body.pak_secret;
      issued.push(secret);
      assert.deepEqual(res.body.previous.map((p: { status: string }) => p.status), ['revoked']);
      const n = await count();
      await refused(await signedTrace(old), 'signature_mismatch', n);
      assert.equal((await signedTrace(secret)).status, 202);
    });

    it('disable: unsigned traces are accepted again and every secret is revoked', async () => {
      const res = await http(server.url, 'POST', `/api/apps/${t.clientId}/hmac/disable`, { token: t.token });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.enabled, false);
      assert.equal(res.body.revoked.length, 1);
      assert.equal((await postTrace(server.url, t.pak, traceBody(t.clientId))).status, 202);
      const status = await http(server.url, 'GET', `/api/apps/${t.clientId}/hmac`, { token: t.token });
      assert.equal(status.body.enabled, false);
      assert.deepEqual(status.body.secrets.map((s: { status: string }) => s.status).sort(), ['expired', 'revoked', 'revoked']);
      assert.equal(await server.store.secrets.activeSecrets(t.clientId, serverNow()).then((s) => s.length), 0);
      const again = await http(server.url, 'POST', `/api/apps/${t.clientId}/hmac/disable`, { token: t.token });
      assert.equal(again.status, 409);
      assert.equal(again.body.error.code, 'hmac_not_enabled');
    });

    it('every change is in the audit log, by the operator, without any secret', async () => {
      const entries = await server.store.audit.list(t.clientId, { limit: 100 });
      const hmac = entries.filter((e) => e.action.startsWith('hmac.'));
      assert.deepEqual(hmac.map((e) => e.action), ['hmac.enable', 'hmac.rotate', 'hmac.rotate', 'hmac.disable']);
      const me = (await http(server.url, 'GET', '/api/me', { token: t.token })).body;
      const accountId = me.account.id as string;
      assert.ok(hmac.every((e) => e.actor === `account:${accountId}`), JSON.stringify(hmac.map((e) => e.actor)));
      const text = JSON.stringify(entries);
      assert.equal(issued.length, 3);
      for (const s of issued) assert.ok(!text.includes(s.slice(SECRET_PREFIX.length, SECRET_PREFIX.length + 12)), 'no secret (or part of one) in the audit log');
      assert.deepEqual(JSON.parse(hmac[0]!.after!), { hmac_enabled: true, secret_id: hmac[0]!.target });
      assert.match(hmac[0]!.target!, /^sec_/);
      assert.equal(JSON.parse(hmac[3]!.after!).revoked_secret_ids.length, 1);
    });

    it("another account's application is a 404", async () => {
      const other = await createTenant(server.url, { issuePak: false });
      for (const [method, path] of [['POST', 'enable'], ['POST', 'rotate'], ['POST', 'disable'], ['GET', '']] as const) {
        const res = await http(server.url, method, `/api/apps/${t.clientId}/hmac${path ? `/${path}` : ''}`, { token: other.token, ...(path === 'rotate' ? { body: {} } : {}) });
        assert.equal(res.status, 404, `${method} ${path}`);
        assert.equal(res.body.error.code, 'app_not_found');
      }
      assert.equal((await http(server.url, 'GET', `/api/apps/${t.clientId}`, { token: t.token })).body.hmac_enabled, false);
    });
  });
}

describe('HMAC signing on every node (two nodes, one PostgreSQL)', POSTGRES_ONLY, () => {
  let a: RunningServer;
  let b: RunningServer;
  let t: Tenant;
  let nodes: TwoNodes;
  before(async () => {
    nodes = await twoNodesOnePostgres({ now: serverNow });
    ({ a, b, t } = nodes);
  });
  after(() => nodes.close());

  it('enabling on node A makes node B demand signatures within a second, and B verifies with the new secret', async () => {
    assert.equal((await postTrace(b.url, t.pak, traceBody(t.clientId))).status, 202); // B has the key cached, signing off
    const enabled = await http(a.url, 'POST', `/api/apps/${t.clientId}/hmac/enable`, { token: t.token });
    assert.equal(enabled.status, 201);
    const deadline = Date.now() + 1000;
    let res = await postTrace(b.url, t.pak, traceBody(t.clientId));
    while (res.status !== 401 && Date.now() < deadline) {
      await sleep(20);
      res = await postTrace(b.url, t.pak, traceBody(t.clientId));
    }
    assert.equal(res.status, 401);
    assert.equal(res.body.error.code, 'signature_missing');
    const raw = JSON.stringify(traceBody(t.clientId));
    const ok = await sendRaw(b.url, t.pak, '/panopticon/trace', raw, { 'x-panopticon-signature': header(enabled.body.pak_secret, 'POST', '/panopticon/trace', raw) });
    assert.equal(ok.status, 202, ok.text);
  });
});
