/**
 * The built console is served at `/` without disturbing the API: files by their exact path, the
 * SPA's index.html for any other page a browser asks for, and JSON errors everywhere under /api and
 * /panopticon. The console is built by `npm run build` (pretest); this test says so if it is not.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_CONSOLE_DIR } from '../../src/http/console.js';
import { startServer, type RunningServer } from '../support/harness.js';

const html = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };

describe('console static files and SPA fallback', () => {
  let server: RunningServer;
  let asset: string;

  before(async () => {
    assert.ok(fs.existsSync(path.join(DEFAULT_CONSOLE_DIR, 'index.html')), `${DEFAULT_CONSOLE_DIR}/index.html is missing: run npm run build:console`);
    asset = '/assets/' + fs.readdirSync(path.join(DEFAULT_CONSOLE_DIR, 'assets')).find((f) => f.endsWith('.js'))!;
    server = await startServer('sqlite');
  });
  after(async () => server?.close());

  it('serves index.html at / and at any page path a browser opens, with a strict CSP', async () => {
    for (const p of ['/', '/login', '/apps/logi_0123456789ab/timeline?tool=x']) {
      const res = await fetch(server.url + p, { headers: html });
      assert.equal(res.status, 200, p);
      assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
      assert.match(await res.text(), /<div id="root"><\/div>/);
      assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
      assert.equal(res.headers.get('cache-control'), 'no-cache');
    }
  });

  it('serves hashed assets as immutable, and nothing outside the build', async () => {
    const res = await fetch(server.url + asset);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /javascript/);
    assert.match(res.headers.get('cache-control') ?? '', /immutable/);
    // An unread body keeps its keep-alive connection busy, and close() would wait for it.
    assert.ok((await res.text()).length > 1000);
    for (const p of ['/assets/nope.js', '/../package.json', '/%2e%2e/package.json', '/assets/..%2f..%2fpackage.json']) {
      const r = await fetch(server.url + p);
      assert.equal(r.status, 404, p);
      assert.equal((await r.json()).error.code, 'route_not_found');
    }
  });

  it('keeps /api and /panopticon misses JSON errors, even for a browser, and other methods too', async () => {
    for (const p of ['/api/nothing-here', '/api', '/panopticon/nothing', '/panopticon']) {
      const res = await fetch(server.url + p, { headers: html });
      assert.equal(res.status, 404, p);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      assert.equal((await res.json()).error.code, 'route_not_found');
    }
    const post = await fetch(server.url + '/somewhere', { method: 'POST', headers: html });
    assert.equal(post.status, 404);
    assert.equal((await post.json()).error.code, 'route_not_found');
    // A script asking for JSON at a page path gets the API's answer, not HTML.
    const json = await fetch(server.url + '/somewhere', { headers: { accept: 'application/json' } });
    assert.equal(json.status, 404);
    assert.equal((await json.json()).error.code, 'route_not_found');
  });

  it('leaves /healthz and /openapi.json as they were', async () => {
    const health = await fetch(server.url + '/healthz', { headers: html });
    const body = await health.json();
    assert.equal(health.status, 200);
    assert.equal(body.status, 'ok');
    assert.equal(body.engine, 'sqlite');
    const openapi = await fetch(server.url + '/openapi.json', { headers: html });
    assert.equal(openapi.status, 200);
    assert.ok((await openapi.json()).paths['/api/apps/{client_id}/live']);
  });
});
