/** `logi panopticon hmac …` against a real server, as a child process with LOGI_URL and LOGI_TOKEN. */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { isWellFormedToken, SECRET_PREFIX } from '../../src/keys/tokens.js';
import { createTenant, http, postTrace, startServer, tempDir, traceBody, type RunningServer, type Tenant } from '../support/harness.js';
import { logi as runLogi } from '../support/logi.js';

/** The documented recipe, computed here, not with server code. */
function signedTrace(url: string, pak: string, secret: string, clientId: string) {
  const raw = JSON.stringify(traceBody(clientId));
  const t = Math.floor(Date.now() / 1000);
  const v1 = crypto.createHmac('sha256', secret).update(`${t}.POST./panopticon/trace.${raw}`).digest('hex');
  return http(url, 'POST', '/panopticon/trace', { raw, token: pak, headers: { 'content-type': 'application/json', 'x-panopticon-signature': `t=${t},v1=${v1}` } });
}

const logi = (args: string[], env: Record<string, string>) => runLogi(args, env);

describe('logi panopticon hmac', () => {
  let server: RunningServer;
  let t: Tenant;
  let env: Record<string, string>;
  let home: string;
  before(async () => {
    server = await startServer('sqlite');
    t = await createTenant(server.url);
    home = tempDir('cli');
    env = { HOME: home, XDG_CONFIG_HOME: home, LOGI_URL: server.url, LOGI_TOKEN: t.token };
  });
  after(async () => {
    await server.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('enable --json prints {"pak_secret": …}, and that secret signs accepted traces', async () => {
    const run = await logi(['panopticon', 'hmac', 'enable', t.clientId, '--json'], env);
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout) as { pak_secret: string; enabled: boolean };
    assert.ok(isWellFormedToken(SECRET_PREFIX, out.pak_secret));
    assert.equal(out.enabled, true);
    assert.equal((await postTrace(server.url, t.pak, traceBody(t.clientId))).body.error.code, 'signature_missing');
    assert.equal((await signedTrace(server.url, t.pak, out.pak_secret, t.clientId)).status, 202);
  });

  it('enabling twice exits 1 with the error on stderr', async () => {
    const run = await logi(['panopticon', 'hmac', 'enable', t.clientId, '--json'], env);
    assert.equal(run.code, 1);
    assert.equal(JSON.parse(run.stderr).error.code, 'hmac_already_enabled');
  });

  it('rotate shows the new secret once with a warning; a bad --grace is a usage error', async () => {
    const run = await logi(['panopticon', 'hmac', 'rotate', t.clientId, '--grace', '0'], env);
    assert.equal(run.code, 0, run.stderr);
    const secret = /(pano_sec_\w+)/.exec(run.stdout)?.[1];
    assert.ok(secret && isWellFormedToken(SECRET_PREFIX, secret), run.stdout);
    assert.match(run.stdout, /store it now/);
    assert.equal((await signedTrace(server.url, t.pak, secret!, t.clientId)).status, 202);
    assert.match(run.stdout, /revoked/);
    const bad = await logi(['panopticon', 'hmac', 'rotate', t.clientId, '--grace', 'soon'], env);
    assert.equal(bad.code, 2);
  });

  it('status lists secrets by prefix; disable turns it off', async () => {
    const status = await logi(['panopticon', 'hmac', 'status', t.clientId, '--json'], env);
    assert.equal(JSON.parse(status.stdout).secrets.length, 2);
    const run = await logi(['panopticon', 'hmac', 'disable', t.clientId, '--json'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).enabled, false);
    assert.equal((await postTrace(server.url, t.pak, traceBody(t.clientId))).status, 202);
  });
});
