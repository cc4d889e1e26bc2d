/**
 * HMAC enforcement covers every PAK-authenticated route, not only traces: the guard check and the
 * approval poll refuse unsigned requests (recording nothing) and accept signed ones. Both engines.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createTenant, ENGINES, http, startServer, type RunningServer, type Tenant } from '../support/harness.js';

function signed(secret: string, method: string, pathAndQuery: string, body: string): Record<string, string> {
  const t = Math.floor(Date.now() / 1000);
  const v1 = crypto.createHmac('sha256', secret).update(`${t}.${method}.${pathAndQuery}.${body}`).digest('hex');
  return { 'x-panopticon-signature': `t=${t},v1=${v1}` };
}

for (const engine of ENGINES) {
  describe(`HMAC on the guard and approval routes [${engine}]`, () => {
    let server: RunningServer;
    let t: Tenant;
    let secret: string;
    before(async () => {
      server = await startServer(engine);
      t = await createTenant(server.url);
      await http(server.url, 'POST', `/api/apps/${t.clientId}/policies/rules`, { token: t.token, body: { name: 'ask', effect: 'require_approval', match: { tools: ['transfer'] } } });
      const enabled = await http(server.url, 'POST', `/api/apps/${t.clientId}/hmac/enable`, { token: t.token });
      assert.equal(enabled.status, 201, enabled.text);
      secret = enabled.body.pak_secret as string;
    });
    after(() => server.close());

    it('the guard check needs a signature; unsigned records nothing, signed decides', async () => {
      const body = JSON.stringify({ client_id: t.clientId, tool: 'transfer', scope: 'pay' });
      const unsigned = await http(server.url, 'POST', '/panopticon/guard/check', { token: t.pak, raw: body, headers: { 'content-type': 'application/json' } });
      assert.equal(unsigned.status, 401);
      assert.equal(unsigned.body.error.code, 'signature_missing');
      const wrong = await http(server.url, 'POST', '/panopticon/guard/check', { token: t.pak, raw: body, headers: { 'content-type': 'application/json', ...signed('pano_sec_wrong', 'POST', '/panopticon/guard/check', body) } });
      assert.equal(wrong.body.error.code, 'signature_mismatch');
      assert.equal((await http(server.url, 'GET', `/api/apps/${t.clientId}/checks`, { token: t.token })).body.checks.length, 0);

      const ok = await http(server.url, 'POST', '/panopticon/guard/check', { token: t.pak, raw: body, headers: { 'content-type': 'application/json', ...signed(secret, 'POST', '/panopticon/guard/check', body) } });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.body.decision, 'require_approval');

      const poll = `${ok.body.approval.poll_url}?wait=0`;
      const unsignedPoll = await http(server.url, 'GET', poll, { token: t.pak });
      assert.equal(unsignedPoll.body.error.code, 'signature_missing');
      const signedPoll = await http(server.url, 'GET', poll, { token: t.pak, headers: signed(secret, 'GET', poll, '') });
      assert.equal(signedPoll.status, 200, signedPoll.text);
      assert.equal(signedPoll.body.status, 'pending');
    });
  });
}
