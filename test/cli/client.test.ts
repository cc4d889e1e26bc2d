/**
 * `logi`'s HTTP client against servers that are not Panopticon: a redirect is reported, never
 * followed (following it would send the operator token to wherever the redirect points, and turn
 * a POST into a GET), and a server that is not there is named with the way to fix it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { logi } from '../support/logi.js';

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
}

function listen(handler: http.RequestListener): Promise<{ server: http.Server; url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization });
    handler(req, res);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }));
  });
}

describe('logi HTTP client', () => {
  let target: Awaited<ReturnType<typeof listen>>;
  let redirecting: Awaited<ReturnType<typeof listen>>;
  let home: string;

  before(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'logi-client-'));
    target = await listen((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"apps":[]}'));
    redirecting = await listen((req, res) => res.writeHead(req.method === 'POST' ? 307 : 302, { location: `${target.url}${req.url}` }).end());
  });
  after(() => {
    target.server.close();
    redirecting.server.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  for (const args of [['apps', 'list'], ['apps', 'create', '--name', 'billing-bot']]) {
    it(`logi ${args.join(' ')} reports a redirect and does not resend the token`, async () => {
      const before = redirecting.seen.length;
      const res = await logi(args, { LOGI_URL: redirecting.url, LOGI_TOKEN: 'op_secret_token', XDG_CONFIG_HOME: home });
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, new RegExp(`redirected to ${target.url}/api/apps`));
      assert.match(res.stderr, /set LOGI_URL or --url/);
      assert.doesNotMatch(res.stderr + res.stdout, /op_secret_token/);
      assert.equal(redirecting.seen.length, before + 1, 'one request, to the configured server');
      assert.equal(redirecting.seen[before]?.authorization, 'Bearer op_secret_token');
      assert.deepEqual(target.seen, [], 'nothing reached the redirect target');
    });
  }

  it('a server that is not there is named, with how to point logi elsewhere', async () => {
    const closed = await listen(() => undefined);
    await new Promise((resolve) => closed.server.close(resolve));
    const res = await logi(['apps', 'list'], { LOGI_URL: closed.url, LOGI_TOKEN: 'op_secret_token', XDG_CONFIG_HOME: home });
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, new RegExp(`cannot reach ${closed.url} \\(ECONNREFUSED\\)`));
    assert.match(res.stderr, /LOGI_URL or --url/);
  });
});
